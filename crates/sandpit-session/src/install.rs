//! Library installs: once per library per session, with the network attached only while they
//! run and every process of user code stopped meanwhile.

use crate::error::{Error, Result};
use crate::policy::Network;
use crate::session::SandboxSession;
use crate::state::engine_error;
use crate::step::libc_signal;

impl SandboxSession {
    /// Installs libraries not yet installed in this session; each is installed once.
    pub async fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        self.check_open()?;
        let missing = {
            let _alone = self.inner.install_lock.read().await;
            self.missing_libraries(libraries)?
        };
        if missing.is_empty() {
            return Ok(());
        }
        let steps = self.inner.runner.install(&missing);
        self.install_steps(&missing, steps, None).await
    }

    /// Runs install steps with the network the session's code never sees: every process of
    /// user code is stopped, the network attached, the steps run, the network detached, the
    /// processes continued. `what` is marked installed when they all succeed.
    pub(crate) async fn install_steps(
        &self,
        what: &[String],
        steps: Vec<crate::runner::Command>,
        stdin: Option<Vec<u8>>,
    ) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        let attach = inner.policy.network == Network::None;
        if attach && !inner.network_hotplug {
            return Err(Error::Unsupported {
                what: format!("installing {} after the session opened", what.join(", ")),
                reason: format!(
                    "the session runs under the {} runtime, which cannot attach a network to a running sandbox; give the libraries when opening the session (they are installed into its image first), or use an image that has them",
                    inner.runtime.as_deref().unwrap_or("engine's default")
                ),
            });
        }
        if attach && !inner.late_installs {
            return Err(Error::Refused(format!(
                "installing {} after the session opened: the session was opened without late installs, so it has no way to a network; give the libraries when opening it",
                what.join(", ")
            )));
        }
        let _alone = inner.install_lock.write().await;
        if attach {
            if let Err(e) = self.attach_network().await {
                let _ = self.signal_user_processes(libc_signal::CONT).await;
                return Err(e);
            }
        }
        let mut installed = Ok(());
        for step in &steps {
            installed = self.checked_step(step, what, stdin.clone()).await;
            if installed.is_err() {
                break;
            }
        }
        if attach {
            self.detach_network().await?;
            self.signal_user_processes(libc_signal::CONT).await?;
        }
        installed?;
        self.mark_installed(what.to_vec());
        Ok(())
    }

    /// Installs the libraries given at open: no user code runs yet, and the network (when user
    /// code gets none) is still attached from creation.
    pub(crate) async fn install_while_opening(&self, libraries: &[String]) -> Result<()> {
        let missing = self.missing_libraries(libraries)?;
        for step in self.inner.runner.install(&missing) {
            self.checked_step(&step, &missing, None).await?;
        }
        self.mark_installed(missing);
        Ok(())
    }

    /// The libraries not installed yet, each checked and named once.
    fn missing_libraries<S: AsRef<str>>(&self, libraries: &[S]) -> Result<Vec<String>> {
        let inner = &self.inner;
        let installed = inner.installed.lock().expect("installed set poisoned");
        let mut missing: Vec<String> = Vec::new();
        for lib in libraries {
            let lib = lib.as_ref().trim().to_string();
            inner
                .runner
                .check_library(&lib)
                .map_err(Error::InvalidInput)?;
            if !installed.contains(&lib) && !missing.contains(&lib) {
                missing.push(lib);
            }
        }
        Ok(missing)
    }

    fn mark_installed(&self, libraries: Vec<String>) {
        self.inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .extend(libraries);
    }

    pub(crate) fn forget_installed(&self, name: &str) {
        self.inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .retain(|l| {
                l != name
                    && !l.starts_with(&format!("{name}="))
                    && !l.starts_with(&format!("{name}@"))
            });
    }

    /// Gives the container the bridge for an install. Every process of user code (a kernel,
    /// anything a run left behind) is stopped first and resumed after the network is gone, so
    /// nothing of the user's ever runs while the container has a network.
    async fn attach_network(&self) -> Result<()> {
        let inner = &self.inner;
        self.signal_user_processes(libc_signal::STOP).await?;
        inner
            .engine
            .connect_network(&inner.container, "bridge")
            .await
            .map_err(|e| network_error(&inner.container, e))
    }

    async fn detach_network(&self) -> Result<()> {
        crate::open::detach_default_network(&self.inner.engine, &self.inner.container).await
    }

    /// Libraries installed by this session so far.
    pub fn installed_libraries(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .iter()
            .cloned()
            .collect();
        v.sort();
        v
    }
}

pub(crate) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

fn network_error(container: &str, e: sandpit_engine::EngineError) -> Error {
    match engine_error(container, e) {
        Error::Exec { container, cause } => Error::Network { container, cause },
        other => other,
    }
}
