//! `[e2b]`: how the E2B compatibility layer (`/compat/e2b`) maps E2B's notions onto Sandpit's.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::error::{ServiceError, ServiceResult};

/// The E2B layer's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct E2bConfig {
    /// The domain of sandbox host names (`{port}-{sandbox id}.{domain}`): requests with such a
    /// `Host` reach the sandbox's port (wildcard DNS and TLS in front of Sandpit), and the SDKs'
    /// `get_host(port)` names it. None: sandboxes are reached by the SDKs' headers only.
    pub domain: Option<String>,
    /// Whether a sandbox whose create asks for internet access gets it (the bridge network).
    /// Off by default: then every E2B sandbox has no network, whatever the create asks.
    pub allow_internet_access: bool,
    /// Templates beyond `base` and `code-interpreter-v1`: name to language and image.
    pub templates: BTreeMap<String, E2bTemplate>,
}

/// One template of `[e2b.templates]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct E2bTemplate {
    /// The sandbox's language (python, javascript, ruby, java, cpp, go).
    pub language: String,
    /// The image, when not the language's default.
    #[serde(default)]
    pub image: Option<String>,
}

impl E2bConfig {
    /// Applies `SANDPIT_E2B_DOMAIN` and `SANDPIT_E2B_ALLOW_INTERNET_ACCESS` read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> ServiceResult<()> {
        if let Some(v) = var("SANDPIT_E2B_DOMAIN") {
            self.domain = Some(v).filter(|v| !v.trim().is_empty());
        }
        if let Some(v) = var("SANDPIT_E2B_ALLOW_INTERNET_ACCESS") {
            self.allow_internet_access = match v.trim() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" | "" => false,
                other => {
                    return Err(ServiceError::invalid(format!(
                        "SANDPIT_E2B_ALLOW_INTERNET_ACCESS={other:?}: use true or false"
                    )))
                }
            };
        }
        Ok(())
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> ServiceResult<()> {
        if let Some(domain) = &self.domain {
            let ok = !domain.is_empty()
                && domain.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                });
            if !ok {
                return Err(ServiceError::invalid(format!(
                    "e2b.domain {domain:?} is not a domain name such as sandboxes.example.com"
                )));
            }
        }
        for (name, template) in &self.templates {
            template
                .language
                .parse::<sandpit::Language>()
                .map_err(|e| ServiceError::invalid(format!("e2b.templates.{name}: {e}")))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_and_domain_are_checked() {
        let c: E2bConfig = toml::from_str(
            "domain = \"sb.example.com\"\n[templates.node]\nlanguage = \"javascript\"\n",
        )
        .unwrap();
        assert_eq!(c.templates["node"].language, "javascript");
        c.validate().unwrap();
        let mut bad = c.clone();
        bad.domain = Some("sb..example".into());
        assert!(bad.validate().is_err());
        let mut bad = c;
        bad.templates.insert(
            "x".into(),
            E2bTemplate {
                language: "cobol".into(),
                image: None,
            },
        );
        assert!(bad
            .validate()
            .unwrap_err()
            .message
            .contains("e2b.templates.x"));
        let mut env = E2bConfig::default();
        env.apply_env(|k| (k == "SANDPIT_E2B_ALLOW_INTERNET_ACCESS").then(|| "yes".into()))
            .unwrap();
        assert!(env.allow_internet_access);
    }
}
