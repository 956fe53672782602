//! A sandbox that untrusted code stopped as a whole is started again: one its memory limit
//! stopped (under gVisor the sandbox is one process on the host, and the host's OOM killer
//! takes all of it), or a gVisor sandbox that crashed. The workdir keeps its files; processes,
//! kernels among them, are gone. A container killed from outside stays gone.

use sandpit_agent::protocol::FileOp;

use crate::agent::Agent;
use crate::error::{Error, Result};
use crate::runner::User;
use crate::session::SandboxSession;
use crate::settings::{scratch_folders, SANDBOX_UID};

impl SandboxSession {
    /// Starts the container again when code in it stopped it, and says why it had stopped.
    /// `None` when the container runs, is gone, or was stopped from outside (SIGKILL, SIGTERM)
    /// or closed.
    pub(crate) async fn restart_stopped_sandbox(&self) -> Result<Option<String>> {
        let inner = &self.inner;
        if self.is_closed() {
            return Ok(None);
        }
        let state = match inner.engine.inspect_container(&inner.container).await {
            Ok(state) => state,
            Err(_) => return Ok(None),
        };
        let crashed = inner.gvisor && !matches!(state.exit_code, Some(0 | 137 | 143));
        if state.running || !(state.oom_killed || crashed) {
            return Ok(None);
        }
        let why = if state.oom_killed {
            format!(
                "the code used more memory than the session allows ({} MiB) and the whole sandbox was stopped",
                inner.policy.memory >> 20
            )
        } else {
            format!(
                "the sandbox's runtime stopped (exit code {})",
                state.exit_code.unwrap_or(-1)
            )
        };
        tracing::warn!("{}: {why}; starting it again", inner.container);
        let _one = inner.reconnecting.lock().await;
        inner
            .engine
            .start_container(&inner.container)
            .await
            .map_err(|e| {
                Error::engine(e, |cause| Error::StartContainer {
                    container: inner.container.clone(),
                    cause,
                })
            })?;
        let (agent, _) = Agent::rejoin(&inner.engine, &inner.container).await?;
        self.set_agent(agent);
        drop(_one);
        self.forget_kernels();
        self.hand_over_scratch_folders().await?;
        Ok(Some(format!(
            "{why}; it was started again: files in the workdir are kept, running processes are not"
        )))
    }

    /// Gives the sandbox user its memory folders where the engine could not mount them so
    /// (Podman takes no `uid=` for tmpfs). The agent does it: the image needs no `chown`.
    pub(crate) async fn hand_over_scratch_folders(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.info.capabilities.tmpfs_owner {
            return Ok(());
        }
        for folder in scratch_folders(&inner.workdir, inner.recyclable)
            .into_iter()
            .filter(|f| f.owned)
        {
            let op = FileOp::Chown {
                path: String::new(),
                uid: SANDBOX_UID,
                gid: SANDBOX_UID,
            };
            self.file_op(&folder.path, User::Root, op, &folder.path)
                .await?;
        }
        Ok(())
    }
}
