//! Packages: install (a version, an upgrade, a requirements file), uninstall, list, check.
//! What each ecosystem can do comes from its runner; the rest is a clear `Unsupported`.

use crate::error::{Error, Result};
use crate::runner::{Command, Package};
use crate::session::SandboxSession;
use crate::step::Step;

/// A package to install: a name, and optionally a version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// The package's name (for Ruby, `apt:` names a Debian package).
    pub name: String,
    /// The version wanted; the newest when `None`.
    pub version: Option<String>,
}

impl PackageSpec {
    /// A package by name, any version.
    pub fn new(name: impl Into<String>) -> Self {
        PackageSpec {
            name: name.into(),
            version: None,
        }
    }

    /// A package at a version.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = Some(version.into());
        self
    }
}

impl SandboxSession {
    /// Installs packages (each once per session); with `upgrade`, to their newest versions
    /// even when installed. Returns the specs handed to the installer.
    pub async fn install_packages(
        &self,
        packages: &[PackageSpec],
        upgrade: bool,
    ) -> Result<Vec<String>> {
        let runner = self.inner.runner.clone();
        let specs: Vec<String> = packages
            .iter()
            .map(|p| match &p.version {
                Some(v) if !v.trim().is_empty() => runner.package_spec(p.name.trim(), v.trim()),
                _ => p.name.trim().to_string(),
            })
            .collect();
        if specs.is_empty() {
            return Err(Error::InvalidInput("no package named".into()));
        }
        if !upgrade {
            self.install(&specs).await?;
            return Ok(specs);
        }
        for spec in &specs {
            runner.check_library(spec).map_err(Error::InvalidInput)?;
        }
        let steps = runner.upgrade(&specs).ok_or_else(|| Error::Unsupported {
            what: format!("upgrading {} packages", runner.language()),
            reason: "its installer has no upgrade mode; install a version instead".into(),
        })?;
        self.install_steps(&specs, steps, None).await?;
        Ok(specs)
    }

    /// Installs what a requirements file lists (Python's `requirements.txt`).
    pub async fn install_requirements(&self, requirements: &str) -> Result<()> {
        let runner = self.inner.runner.clone();
        let step = runner.requirements().ok_or_else(|| Error::Unsupported {
            what: format!("a requirements file for {}", runner.language()),
            reason: "the language has no requirements file; install packages by name".into(),
        })?;
        self.install_steps(
            &["a requirements file".to_string()],
            vec![step],
            Some(requirements.as_bytes().to_vec()),
        )
        .await
    }

    /// Removes an installed package.
    pub async fn uninstall_package(&self, name: &str) -> Result<()> {
        self.check_open()?;
        let runner = self.inner.runner.clone();
        let name = name.trim();
        runner.check_library(name).map_err(Error::InvalidInput)?;
        if !self.is_installed(name).await? {
            return Err(Error::PathNotFound {
                path: format!("package {name}"),
                in_sandbox: true,
            });
        }
        let steps = runner
            .uninstall(&[name.to_string()])
            .ok_or_else(|| Error::Unsupported {
                what: format!("removing {} packages", runner.language()),
                reason: "the language's installer cannot remove them; open a new session".into(),
            })?;
        let _alone = self.inner.install_lock.write().await;
        for step in steps {
            self.checked_step(&step, &[name.to_string()], None).await?;
        }
        self.forget_installed(name);
        Ok(())
    }

    /// The packages installed in the sandbox (for languages whose package manager can list
    /// them), else the ones this session installed.
    pub async fn packages(&self) -> Result<Vec<Package>> {
        self.check_open()?;
        let runner = self.inner.runner.clone();
        let Some(list) = runner.list_packages() else {
            return Ok(self
                .installed_libraries()
                .into_iter()
                .map(|name| Package {
                    name,
                    version: None,
                })
                .collect());
        };
        let out = self
            .exec_step(Step::new(&list, self.inner.install_timeout))
            .await?;
        if !out.success() {
            return Err(Error::Setup {
                command: list.display(),
                exit_code: out.exit_code,
                message: out.stderr,
            });
        }
        let mut packages = runner.parse_packages(&out.stdout);
        packages.sort_by_key(|p| p.name.to_lowercase());
        Ok(packages)
    }

    /// True when a package of that name is installed.
    pub async fn is_installed(&self, name: &str) -> Result<bool> {
        let wanted = normalize(name);
        if self
            .installed_libraries()
            .iter()
            .any(|l| normalize(l) == wanted)
        {
            return Ok(true);
        }
        Ok(self
            .packages()
            .await?
            .iter()
            .any(|p| normalize(&p.name) == wanted))
    }

    /// Runs one install step, failing with the installer's own words.
    pub(crate) async fn checked_step(
        &self,
        step: &Command,
        what: &[String],
        stdin: Option<Vec<u8>>,
    ) -> Result<()> {
        let out = self
            .exec_step(Step {
                stdin,
                ..Step::new(step, self.inner.install_timeout)
            })
            .await?;
        if out.success() {
            return Ok(());
        }
        let text = if out.stderr.trim().is_empty() {
            &out.stdout
        } else {
            &out.stderr
        };
        Err(Error::LibraryInstall {
            libraries: what.join(", "),
            exit_code: out.exit_code,
            message: if out.timed_out {
                format!("it did not finish within {:?}", self.inner.install_timeout)
            } else {
                crate::install::tail(text, 20)
            },
        })
    }
}

/// Package names compare without case, `_` and `-` alike (pip's rule), version stripped.
fn normalize(name: &str) -> String {
    let name = name.trim();
    let name = name.strip_prefix("apt:").unwrap_or(name);
    let bare = name
        .split(['=', '@', '<', '>', '~', '!', ':'])
        .next()
        .unwrap_or(name);
    bare.trim().to_lowercase().replace('_', "-")
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn names_compare_like_pip() {
        assert_eq!(normalize("Typing_Extensions==4.0"), "typing-extensions");
        assert_eq!(normalize("ms@2.1.3"), "ms");
        assert_eq!(normalize(" six "), "six");
        assert_eq!(normalize("apt:ruby-rainbow"), "ruby-rainbow");
    }
}
