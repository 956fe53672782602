//! Running one of a runner's commands in the session, with the session's environment.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{exec, ExecSpec};
use crate::output::{ExecOutput, OutputSink};
use crate::runner::Command;
use crate::session::SandboxSession;

impl SandboxSession {
    /// The session's environment as it is now (later runs see changes).
    pub(crate) fn env_now(&self) -> Vec<(String, String)> {
        self.inner.env.read().expect("session env").clone()
    }

    pub(crate) async fn exec_step(
        &self,
        command: &Command,
        timeout: Duration,
        inline_file: Option<(String, String)>,
        stdin: Option<Vec<u8>>,
        extra_env: &[(String, String)],
        sink: Option<OutputSink>,
    ) -> Result<ExecOutput> {
        let inner = &self.inner;
        let mut env = self.env_now();
        env.extend(command.env.iter().cloned());
        env.extend(extra_env.iter().cloned());
        let started = std::time::Instant::now();
        let out = exec(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv: command.argv.clone(),
                user: command.user,
                env,
                workdir: inner.workdir.clone(),
                timeout,
                output_limit: inner.output_limit,
                inline_file,
                stdin_path: None,
                stdin_data: stdin,
                sink,
                watch: inner.gvisor,
                stats: true,
            },
        )
        .await;
        match out {
            // A sandbox that died mid-command shows as gone, or as one that can start nothing.
            Err(e @ (Error::SessionGone { .. } | Error::ExecStart { .. })) => {
                match self.restart_stopped_sandbox().await? {
                    Some(why) => Ok(ExecOutput {
                        stdout: String::new(),
                        stderr: format!("sandpit: {why}\n"),
                        exit_code: 137,
                        timed_out: false,
                        truncated: false,
                        oom_killed: why.contains("memory"),
                        duration: started.elapsed(),
                        usage: None,
                    }),
                    None => Err(e),
                }
            }
            other => other,
        }
    }
}

/// A short shell snippet run as the sandbox user, with a short timeout.
pub(crate) fn shell(script: &str) -> Command {
    Command::new(["/bin/sh", "-c", script])
}

/// The timeout of Sandpit's own housekeeping commands.
pub(crate) const HOUSEKEEPING: Duration = Duration::from_secs(20);
