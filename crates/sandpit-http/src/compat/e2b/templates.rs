//! E2B templates as Sandpit languages and images: `base` and `code-interpreter-v1` (the two
//! SDKs' defaults) are Python with a kernel; others come from `[e2b.templates]`.

use sandpit::Language;
use sandpit_service::E2bConfig;

/// The E2B SDK's default template.
pub const BASE: &str = "base";
/// The code interpreter SDK's default template.
pub const CODE_INTERPRETER: &str = "code-interpreter-v1";

/// What a template opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    /// Its name (E2B's template id).
    pub name: String,
    /// The sandbox's language: its runner and its default kernel.
    pub language: Language,
    /// An image other than the language's default.
    pub image: Option<String>,
}

/// The template `requested` names (`name`, or `name:tag` with the tag `default` or `latest`);
/// `None` for one this server does not know.
pub fn template(config: &E2bConfig, requested: &str) -> Option<Template> {
    let name = requested.trim();
    let name = name
        .strip_suffix(":default")
        .or_else(|| name.strip_suffix(":latest"))
        .unwrap_or(name);
    if let Some(t) = config.templates.get(name) {
        return Some(Template {
            name: name.to_string(),
            language: t.language.parse().ok()?,
            image: t.image.clone(),
        });
    }
    (name == BASE || name == CODE_INTERPRETER).then(|| Template {
        name: name.to_string(),
        language: Language::Python,
        image: None,
    })
}

#[cfg(test)]
mod tests {
    use sandpit_service::E2bTemplate;

    use super::*;

    #[test]
    fn defaults_and_configured_templates() {
        let mut config = E2bConfig::default();
        assert_eq!(
            template(&config, "base").unwrap().language,
            Language::Python
        );
        assert_eq!(
            template(&config, "code-interpreter-v1:latest")
                .unwrap()
                .name,
            "code-interpreter-v1"
        );
        assert!(template(&config, "desktop").is_none());
        config.templates.insert(
            "node".into(),
            E2bTemplate {
                language: "javascript".into(),
                image: Some("my/node:1".into()),
            },
        );
        let t = template(&config, "node").unwrap();
        assert_eq!(t.language, Language::JavaScript);
        assert_eq!(t.image.as_deref(), Some("my/node:1"));
    }
}
