//! A kernel process: started by the agent with its standard input as a pipe, its output read
//! as JSON frames by a task of its own, interrupted and killed through the agent.

use std::time::Duration;

use sandpit_agent::protocol::{self as wire, EventBody, Input, Op, SignalProcess, SignalScope};
use tokio::sync::{mpsc, oneshot};

use super::result::Accumulator;
use super::Context;
use crate::agent::{unexpected, Agent, Call};
use crate::error::{Error, Result};
use crate::launch::{exit_code, Launch};
use crate::runner::User;
use crate::session::SandboxSession;
use crate::step::libc_signal;

pub(crate) enum Frame {
    Json(serde_json::Value),
    /// The kernel ended: how, with the tail of its own stderr.
    Exited(String),
}

/// A running kernel. Dropping it cancels its call: the agent kills it and what it started.
pub(crate) struct Kernel {
    pub(super) pid: u32,
    pub(super) frames: mpsc::UnboundedReceiver<Frame>,
    agent: Agent,
    pump: tokio::task::JoinHandle<()>,
}

impl Drop for Kernel {
    fn drop(&mut self) {
        self.pump.abort();
    }
}

/// How long a kernel may take to start and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl SandboxSession {
    /// Starts `context`'s kernel; when the sandbox cannot start a process (its process limit is
    /// full of leftovers), every process of the sandbox user is stopped and the start tried once
    /// more.
    pub(super) async fn start_kernel_process(&self, context: &Context) -> Result<Kernel> {
        match self.spawn_kernel(context).await {
            Err(Error::ExecStart { .. }) => {
                self.clear_process_limit().await?;
                self.spawn_kernel(context).await
            }
            other => other,
        }
    }

    async fn spawn_kernel(&self, context: &Context) -> Result<Kernel> {
        let inner = &self.inner;
        let spec = context.runner.kernel().ok_or_else(|| Error::Unsupported {
            what: format!("stateful execution in {}", context.runner.language()),
            reason: "the language has no kernel; run the code with run() instead".into(),
        })?;
        self.write_file(
            "/tmp",
            User::Sandbox,
            spec.file,
            spec.script.as_bytes(),
            None,
            spec.file,
        )
        .await?;
        let mut argv = spec.argv.clone();
        argv.push(format!("/tmp/{}", spec.file));
        let mut env = self.env_now();
        env.push((
            "SANDPIT_OUTPUT_LIMIT".to_string(),
            inner.output_limit.to_string(),
        ));
        let launch = Launch {
            env,
            ..Launch::new(
                argv,
                User::Sandbox,
                &context.cwd,
                Duration::ZERO,
                inner.output_limit,
            )
        };
        let mut spawn = self.spawn_request(&launch, false, Some(format!("kernel {}", context.id)));
        spawn.stdin = wire::StdinMode::Pipe;
        spawn.output_limit = None;
        let agent = self.agent().await?;
        let call = agent.call(Op::Spawn(spawn), &[]).await?;
        let (started_tx, started_rx) = oneshot::channel();
        let (tx, frames) = mpsc::unbounded_channel();
        let pump = tokio::spawn(pump(call, started_tx, tx));
        let pid = match started_rx.await {
            Ok(Ok(pid)) => pid,
            Ok(Err(Refusal::Lost(e))) => return Err(self.explain_lost(e).await),
            Ok(Err(Refusal::Agent(e))) if e.kind == wire::ErrorKind::CannotExec => {
                return Err(self.kernel_cannot_exec(&spec.argv, &e.message))
            }
            Ok(Err(Refusal::Agent(e))) => {
                return Err(unexpected(&inner.container, "to start the kernel", e))
            }
            Err(_) => {
                return Err(Error::Agent {
                    container: inner.container.clone(),
                    reason: "ended the kernel's call before it started".into(),
                })
            }
        };
        let mut kernel = Kernel {
            pid,
            frames,
            agent,
            pump,
        };
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                match kernel.frames.recv().await {
                    Some(Frame::Json(v)) if v["type"] == "ready" => return Ok(()),
                    Some(Frame::Json(_)) => continue,
                    Some(Frame::Exited(said)) => return Err(said),
                    None => return Err("the kernel exited without a word".to_string()),
                }
            }
        })
        .await;
        match ready {
            Ok(Ok(())) => Ok(kernel),
            Ok(Err(said)) => {
                if said.contains("exited with code 127") {
                    return Err(self.kernel_cannot_exec(&spec.argv, &said));
                }
                Err(Error::Setup {
                    command: "the kernel".into(),
                    exit_code: -1,
                    message: said,
                })
            }
            Err(_) => {
                let _ = self.kill_kernel(kernel).await;
                Err(Error::Timeout {
                    operation: "starting the kernel".into(),
                    after: START_TIMEOUT,
                })
            }
        }
    }

    /// The kernel's interpreter could not be run: most often a PATH set on the session that
    /// does not hold it.
    fn kernel_cannot_exec(&self, argv: &[String], said: &str) -> Error {
        let program = argv
            .first()
            .map(String::as_str)
            .unwrap_or("the interpreter");
        match self.env_now().into_iter().find(|(k, _)| k == "PATH") {
            Some((_, path)) => Error::InvalidInput(format!(
                "the kernel could not start: `{program}` is not on the session's PATH ({path:?}); unset PATH to go back to the image's, or set one that holds the interpreter's folder"
            )),
            None => Error::Setup {
                command: "the kernel".into(),
                exit_code: 127,
                message: format!("`{program}` could not be run: {said}"),
            },
        }
    }

    /// Sends `signal` to the kernel process alone.
    pub(super) async fn signal_kernel(&self, kernel: &Kernel, signal: i32) -> Result<()> {
        let op = Op::Signal(SignalProcess {
            pid: kernel.pid,
            signal,
            scope: SignalScope::Process,
        });
        let answer = match kernel.agent.ask(op, &[]).await {
            Ok(answer) => answer,
            Err(e) => return Err(self.explain_lost(e).await),
        };
        match answer {
            Ok(_) => Ok(()),
            // It ended meanwhile: nothing to interrupt.
            Err(e) if e.kind == wire::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unexpected(&self.inner.container, "to signal the kernel", e)),
        }
    }

    /// Stops a kernel that is gone or must go, with everything it started.
    pub(super) async fn kill_kernel(&self, kernel: Kernel) -> Result<()> {
        let op = Op::Signal(SignalProcess {
            pid: kernel.pid,
            signal: libc_signal::KILL,
            scope: SignalScope::Tree,
        });
        let killed = kernel.agent.ask(op, &[]).await;
        drop(kernel);
        let killed = match killed {
            Ok(answer) => answer,
            // Its connection is gone: the agent stopped it when the connection was replaced.
            Err(Error::Agent { .. }) => return Ok(()),
            Err(e) => return Err(e),
        };
        match killed {
            Ok(_) => Ok(()),
            Err(e) if e.kind == wire::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(unexpected(&self.inner.container, "to stop the kernel", e)),
        }
    }

    /// Writes one request line to the kernel's standard input; false when its input is gone.
    pub(super) async fn write_kernel(&self, kernel: &Kernel, line: &[u8]) -> Result<bool> {
        let op = Op::Input(Input {
            pid: kernel.pid,
            eof: false,
        });
        let answer = match kernel.agent.ask(op, line).await {
            Ok(answer) => answer,
            // The connection the kernel lived on is gone, and the kernel with it.
            Err(e @ Error::Agent { .. }) => match self.explain_lost(e).await {
                Error::Agent { .. } => return Ok(false),
                other => return Err(other),
            },
            Err(e) => return Err(e),
        };
        match answer {
            Ok(_) => Ok(true),
            Err(e) if e.kind == wire::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(unexpected(
                &self.inner.container,
                "to write to the kernel",
                e,
            )),
        }
    }
}

/// Turns the kernel call's events into frames: JSON lines from its standard output, and its
/// end with the tail of its standard error.
/// Why a kernel's process did not start.
enum Refusal {
    /// The agent said why.
    Agent(wire::AgentError),
    /// The connection broke.
    Lost(Error),
}

async fn pump(
    mut call: Call,
    started: oneshot::Sender<std::result::Result<u32, Refusal>>,
    frames: mpsc::UnboundedSender<Frame>,
) {
    let mut started = Some(started);
    let mut line = Vec::new();
    let mut stderr_tail: Vec<u8> = Vec::new();
    let container = call.container().to_string();
    let end = loop {
        match call.next().await {
            Ok(Some((EventBody::Started { pid }, _))) => {
                if let Some(tx) = started.take() {
                    let _ = tx.send(Ok(pid));
                }
            }
            Ok(Some((EventBody::Output { stream, .. }, data))) => match stream {
                wire::Stream::Stdout => {
                    for &b in data.iter() {
                        if b == b'\n' {
                            if let Ok(v) = serde_json::from_slice(&line) {
                                let _ = frames.send(Frame::Json(v));
                            }
                            line.clear();
                        } else {
                            line.push(b);
                        }
                    }
                }
                wire::Stream::Stderr => {
                    stderr_tail.extend_from_slice(&data);
                    if stderr_tail.len() > 4096 {
                        stderr_tail.drain(..stderr_tail.len() - 4096);
                    }
                }
            },
            Ok(Some((EventBody::Exited(exit), _))) => {
                let said = String::from_utf8_lossy(&stderr_tail).trim().to_string();
                let how = match (exit.code, exit.signal) {
                    (_, Some(signal)) => format!("it was killed by signal {signal}"),
                    _ => format!("it exited with code {}", exit_code(&exit)),
                };
                break if said.is_empty() {
                    how
                } else {
                    format!("{how} ({said})")
                };
            }
            Ok(Some((EventBody::Error(e), _))) => match started.take() {
                Some(tx) => {
                    let _ = tx.send(Err(Refusal::Agent(e)));
                    return;
                }
                None => break unexpected(&container, "to run the kernel", e).to_string(),
            },
            Ok(Some((other, _))) => break format!("its agent answered with {other:?}"),
            Ok(None) => break "its call ended".to_string(),
            Err(e) => match started.take() {
                Some(tx) => {
                    let _ = tx.send(Err(Refusal::Lost(e)));
                    return;
                }
                None => break format!("the connection to it broke: {e}"),
            },
        }
    };
    let _ = frames.send(Frame::Exited(end));
}

pub(crate) enum Outcome {
    Done,
    Exited(String),
    Deadline,
}

pub(crate) async fn collect(
    kernel: &mut Kernel,
    acc: &mut Accumulator,
    deadline: Option<tokio::time::Instant>,
) -> Outcome {
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, kernel.frames.recv()).await {
                Ok(f) => f,
                Err(_) => return Outcome::Deadline,
            },
            None => kernel.frames.recv().await,
        };
        match next {
            Some(Frame::Json(v)) => {
                if acc.take(v) {
                    return Outcome::Done;
                }
            }
            Some(Frame::Exited(said)) => return Outcome::Exited(said),
            None => return Outcome::Exited("the kernel's output ended".into()),
        }
    }
}

pub(crate) async fn drain_exit(kernel: &mut Kernel) -> String {
    tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(f) = kernel.frames.recv().await {
            if let Frame::Exited(said) = f {
                return said;
            }
        }
        "the kernel's output ended".to_string()
    })
    .await
    .unwrap_or_else(|_| "the kernel stopped reading its input".into())
}
