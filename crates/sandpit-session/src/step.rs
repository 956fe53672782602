//! Running one of a runner's commands in the session, with the session's environment.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{container_runs, exec, reset_user_processes, wrapper_could_not_fork, ExecSpec};
use crate::output::{ExecOutput, OutputSink};
use crate::runner::Command;
use crate::session::SandboxSession;

/// One of a runner's commands with what it is given: a timeout, and optionally an inline
/// source file, standard input, extra environment and an output sink.
#[derive(Clone)]
pub(crate) struct Step<'a> {
    pub command: &'a Command,
    pub timeout: Duration,
    pub inline_file: Option<(String, String)>,
    pub stdin: Option<Vec<u8>>,
    pub env: &'a [(String, String)],
    pub sink: Option<OutputSink>,
}

impl<'a> Step<'a> {
    /// `command` with `timeout` and nothing else.
    pub(crate) fn new(command: &'a Command, timeout: Duration) -> Self {
        Step {
            command,
            timeout,
            inline_file: None,
            stdin: None,
            env: &[],
            sink: None,
        }
    }
}

impl SandboxSession {
    /// The session's environment as it is now (later runs see changes).
    pub(crate) fn env_now(&self) -> Vec<(String, String)> {
        self.inner.env.read().expect("session env").clone()
    }

    pub(crate) async fn exec_step(&self, step: Step<'_>) -> Result<ExecOutput> {
        let Step {
            command,
            timeout,
            inline_file,
            stdin,
            env: extra_env,
            sink,
        } = step;
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
                nproc: inner.gvisor.then_some(inner.policy.max_processes),
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

/// What a step's stderr starts with when it ran only after the process limit was cleared.
const PROCESS_LIMIT_CLEARED: &str = "sandpit: the sandbox's process limit was full (processes left running by earlier code: a fork bomb, or too many background jobs), so nothing could start; every process in the sandbox was stopped (a kernel's state is lost) and this ran after that\n";

impl SandboxSession {
    /// A step of the caller's own (a command, a run's compile or run). When it cannot start
    /// because processes that earlier code left behind fill the process limit, every process in
    /// the sandbox is stopped and the step runs once more; its stderr says so. Without this, a
    /// fork bomb left in the background would leave a session that can start nothing.
    pub(crate) async fn exec_user_step(&self, step: Step<'_>) -> Result<ExecOutput> {
        let started = std::time::Instant::now();
        // A gVisor sandbox that earlier code took down as a whole (its runtime runs out of host
        // threads under a fork bomb) is started again before the step, which then runs.
        let mut restarted = None;
        if self.inner.gvisor && !container_runs(&self.inner.engine, &self.inner.container).await? {
            restarted = self.restart_stopped_sandbox().await?;
            if restarted.is_none() {
                return Err(Error::SessionGone {
                    container: self.inner.container.clone(),
                });
            }
        }
        let first = self.exec_step(step.clone()).await;
        let note = |mut out: ExecOutput| {
            if let Some(why) = &restarted {
                out.stderr
                    .insert_str(0, &format!("sandpit: before this ran, {why}\n"));
            }
            out
        };
        match first {
            Err(Error::ExecStart { .. }) => {}
            Ok(out) if out.stdout.is_empty() && wrapper_could_not_fork(&out.stderr) => {}
            other => return other.map(note),
        }
        tracing::warn!(
            "{}: the process limit is full; stopping every process in the sandbox",
            self.inner.container
        );
        reset_user_processes(&self.inner.engine, &self.inner.container).await?;
        self.forget_idle_kernel();
        let timeout = step
            .timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let mut out = self.exec_step(Step { timeout, ..step }).await?;
        out.stderr.insert_str(0, PROCESS_LIMIT_CLEARED);
        Ok(note(out))
    }
}

/// A short shell snippet run as the sandbox user, with a short timeout.
pub(crate) fn shell(script: &str) -> Command {
    Command::new(["/bin/sh", "-c", script])
}

/// The timeout of Sandpit's own housekeeping commands.
pub(crate) const HOUSEKEEPING: Duration = Duration::from_secs(20);
