//! Running one of a runner's commands in the session, with the session's environment.

use std::time::Duration;

use sandpit_agent::protocol::{EventBody, Op, SignalAll};

use crate::agent::unexpected;
use crate::error::{Error, Result};
use crate::launch::Launch;
use crate::output::{ExecOutput, OutputSink};
use crate::runner::Command;
use crate::session::SandboxSession;
use crate::settings::SANDBOX_UID;

/// One of a runner's commands with what it is given: a timeout, and optionally standard input,
/// extra environment and an output sink.
#[derive(Clone)]
pub(crate) struct Step<'a> {
    pub command: &'a Command,
    pub timeout: Duration,
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
            stdin: None,
            env: &[],
            sink: None,
        }
    }
}

/// How long clearing a full process limit may wait for the killed processes to be reaped.
const CLEAR_WAIT: Duration = Duration::from_secs(15);

impl SandboxSession {
    /// The session's environment as it is now (later runs see changes).
    pub(crate) fn env_now(&self) -> Vec<(String, String)> {
        self.inner.env.read().expect("session env").clone()
    }

    /// Runs a step in the workdir with the session's environment. A sandbox that died under it
    /// (its memory limit stopped it whole) is started again, and the step's result says so.
    pub(crate) async fn exec_step(&self, step: Step<'_>) -> Result<ExecOutput> {
        let inner = &self.inner;
        let mut env = self.env_now();
        env.extend(step.command.env.iter().cloned());
        env.extend(step.env.iter().cloned());
        let launch = Launch {
            env,
            stdin: step.stdin,
            sink: step.sink,
            ..Launch::new(
                step.command.argv.clone(),
                step.command.user,
                &inner.workdir,
                step.timeout,
                inner.output_limit,
            )
        };
        let started = std::time::Instant::now();
        match self.launch(launch).await {
            Err(e @ Error::SessionGone { .. }) => match self.restart_stopped_sandbox().await? {
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
            },
            other => other,
        }
    }
}

/// What a step's stderr starts with when it ran only after the process limit was cleared.
const PROCESS_LIMIT_CLEARED: &str = "sandpit: the sandbox's process limit was full (processes left running by earlier code: a fork bomb, or too many background jobs), so nothing could start; every process in the sandbox was stopped (a kernel's state is lost) and this ran after that\n";

impl SandboxSession {
    /// A step of the caller's own (a command, a run's compile or run). When it cannot start
    /// because processes that earlier code left behind fill the process limit, every process of
    /// the sandbox user is stopped and the step runs once more; its stderr says so. A sandbox
    /// that earlier code took down as a whole is started again first, and the stderr says so.
    pub(crate) async fn exec_user_step(&self, step: Step<'_>) -> Result<ExecOutput> {
        let started = std::time::Instant::now();
        // A working connection means a running sandbox: only a broken one is worth a look.
        let restarted = if self.agent_connected() {
            None
        } else {
            self.restart_stopped_sandbox().await?
        };
        let note = |mut out: ExecOutput| {
            if let Some(why) = &restarted {
                out.stderr
                    .insert_str(0, &format!("sandpit: before this ran, {why}\n"));
            }
            out
        };
        match self.exec_step(step.clone()).await {
            Err(Error::ExecStart { .. }) => {}
            other => return other.map(note),
        }
        tracing::warn!(
            "{}: the process limit is full; stopping every process of the sandbox user",
            self.inner.container
        );
        self.clear_process_limit().await?;
        let timeout = step
            .timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_secs(1));
        let mut out = self.exec_step(Step { timeout, ..step }).await?;
        out.stderr.insert_str(0, PROCESS_LIMIT_CLEARED);
        Ok(note(out))
    }

    /// Kills every process of the sandbox user and waits until they are reaped, so that the
    /// process limit has room again; the agent needs no new process to do it. Every kernel's
    /// state is lost.
    pub(crate) async fn clear_process_limit(&self) -> Result<()> {
        let op = Op::SignalAll(SignalAll {
            signal: libc_signal::KILL,
            uid: Some(SANDBOX_UID),
            wait_ms: Some(CLEAR_WAIT.as_millis() as u64),
        });
        match self.ask(op, &[]).await? {
            Ok((EventBody::Signalled { left: 0, .. }, _)) => {}
            Ok((EventBody::Signalled { left, .. }, _)) => {
                return Err(Error::ExecStart {
                    container: self.inner.container.clone(),
                    reason: format!(
                        "{left} processes of the sandbox were killed but not gone after {CLEAR_WAIT:?}; close the session"
                    ),
                })
            }
            Ok((other, _)) => {
                return Err(Error::Agent {
                    container: self.inner.container.clone(),
                    reason: format!("answered a kill of every process with {other:?}"),
                })
            }
            Err(e) => {
                return Err(unexpected(
                    &self.inner.container,
                    "to stop every process",
                    e,
                ))
            }
        }
        self.forget_kernels();
        Ok(())
    }

    /// Sends `signal` to every process of the sandbox user (no new process needed).
    pub(crate) async fn signal_user_processes(&self, signal: i32) -> Result<()> {
        let op = Op::SignalAll(SignalAll {
            signal,
            uid: Some(SANDBOX_UID),
            wait_ms: None,
        });
        match self.ask(op, &[]).await? {
            Ok(_) => Ok(()),
            Err(e) => Err(unexpected(
                &self.inner.container,
                "to signal the sandbox's processes",
                e,
            )),
        }
    }
}

/// Signal numbers on Linux (the sandbox's), without a libc dependency on the host side.
pub(crate) mod libc_signal {
    /// SIGHUP.
    pub const HUP: i32 = 1;
    /// SIGINT.
    pub const INT: i32 = 2;
    /// SIGQUIT.
    pub const QUIT: i32 = 3;
    /// SIGKILL.
    pub const KILL: i32 = 9;
    /// SIGUSR1.
    pub const USR1: i32 = 10;
    /// SIGUSR2.
    pub const USR2: i32 = 12;
    /// SIGTERM.
    pub const TERM: i32 = 15;
    /// SIGCONT.
    pub const CONT: i32 = 18;
    /// SIGSTOP.
    pub const STOP: i32 = 19;
}
