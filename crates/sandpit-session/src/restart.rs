//! A sandbox that untrusted code stopped as a whole is started again: one its memory limit
//! stopped (under gVisor the sandbox is one process on the host, and the host's OOM killer
//! takes all of it), or a gVisor sandbox that crashed. The workdir is a volume and keeps its
//! files; processes, a kernel among them, are gone. A container killed from outside stays
//! gone.

use crate::error::{Error, Result};
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
        self.forget_idle_kernel();
        self.hand_over_scratch_folders().await?;
        Ok(Some(format!(
            "{why}; it was started again: files in the workdir are kept, running processes are not"
        )))
    }

    /// Gives the sandbox user its memory folders where the engine could not mount them so.
    pub(crate) async fn hand_over_scratch_folders(&self) -> Result<()> {
        let inner = &self.inner;
        if inner.info.capabilities.tmpfs_owner {
            return Ok(());
        }
        let mut argv = vec!["chown".to_string(), format!("{SANDBOX_UID}:{SANDBOX_UID}")];
        argv.extend(
            scratch_folders(&inner.workdir)
                .into_iter()
                .filter(|(_, owned)| *owned)
                .map(|(path, _)| path.to_string()),
        );
        // The exec itself, not a session step: a step that finds the sandbox stopped restarts it,
        // and a restart calls this.
        let out = crate::exec::exec(
            &inner.engine,
            &inner.container,
            crate::exec::ExecSpec {
                argv,
                user: crate::runner::User::Root,
                env: Vec::new(),
                workdir: "/".into(),
                timeout: crate::step::HOUSEKEEPING,
                output_limit: 64 << 10,
                inline_file: None,
                stdin_path: None,
                stdin_data: None,
                sink: None,
                watch: false,
                nproc: None,
                stats: false,
            },
        )
        .await?;
        if !out.success() {
            return Err(Error::Setup {
                command: "chown of the sandbox user's folders".into(),
                exit_code: out.exit_code,
                message: out.stderr,
            });
        }
        Ok(())
    }
}
