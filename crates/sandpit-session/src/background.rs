//! Processes that outlive the call that started them (a server, a long build, E2B's background
//! commands): started, listed, attached to again, written to and signalled through the
//! sandbox's agent, which keeps them while nobody listens.

use std::time::Duration;

use bytes::Bytes;
use sandpit_agent::protocol::{
    self as wire, ErrorKind as AgentErrorKind, EventBody, Input, Op, SignalProcess, SignalScope,
};

use crate::agent::{unexpected, Call};
use crate::error::{Error, Result};
use crate::launch::{exit_code, Launch};
use crate::output::{OutputChunk, StreamKind};
use crate::runner::User;
use crate::session::SandboxSession;
use crate::step::libc_signal;

/// A process to start in the background.
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    /// Program and arguments, no shell (a program without `/` is looked up in `PATH`).
    pub argv: Vec<String>,
    /// Variables on top of the session's environment.
    pub env: Vec<(String, String)>,
    /// Its working directory (absolute); default the workdir.
    pub cwd: Option<String>,
    /// Run as root (with the capabilities package installs get, never more).
    pub as_root: bool,
    /// Keep standard input open, for [`SandboxSession::write_stdin`]; otherwise it reads an
    /// empty input.
    pub stdin: bool,
    /// Free text shown by [`SandboxSession::processes`].
    pub tag: Option<String>,
    /// Killed (with what it started) after this long; `None`: it runs until it exits or is
    /// killed, or the session closes.
    pub timeout: Option<Duration>,
}

impl SpawnOptions {
    /// `argv` with defaults.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        SpawnOptions {
            argv: argv.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// An environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The working directory.
    pub fn cwd(mut self, cwd: impl Into<String>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Run as root.
    pub fn as_root(mut self) -> Self {
        self.as_root = true;
        self
    }

    /// Keep standard input open.
    pub fn stdin(mut self) -> Self {
        self.stdin = true;
        self
    }

    /// A tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tag = Some(tag.into());
        self
    }

    /// A timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

/// A background process as [`SandboxSession::processes`] lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessInfo {
    /// Its id in the sandbox.
    pub pid: u32,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The variables it was given on top of the session's.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: String,
    /// Its tag.
    pub tag: Option<String>,
    /// Runs as root.
    pub as_root: bool,
    /// Its standard input is open.
    pub stdin_open: bool,
    /// Still running (an ended one is listed until its end was reported to someone).
    pub running: bool,
}

/// How a background process ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ProcessExit {
    /// Its exit code as a shell gives it (128 + the signal when one ended it).
    pub exit_code: i64,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// The memory limit's killer ended it.
    pub oom_killed: bool,
    /// Wall time from start to end.
    #[serde(rename = "duration_ms", serialize_with = "crate::output::millis")]
    pub duration: Duration,
}

/// What a [`ProcessHandle`] tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessEvent {
    /// Output, as it came.
    Output(OutputChunk),
    /// The process ended; nothing follows.
    Exited(ProcessExit),
}

/// A subscription to one background process: its output as it comes, then its end. Dropping
/// it detaches; the process goes on.
#[derive(Debug)]
pub struct ProcessHandle {
    pid: u32,
    call: Call,
    /// Events read while waiting for the start, not handed out yet.
    early: Vec<(EventBody, Bytes)>,
}

impl ProcessHandle {
    /// The process's id in the sandbox.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The next event; `None` after [`ProcessEvent::Exited`].
    pub async fn next_event(&mut self) -> Result<Option<ProcessEvent>> {
        loop {
            let next = if self.early.is_empty() {
                self.call.next().await?
            } else {
                Some(self.early.remove(0))
            };
            let Some((event, payload)) = next else {
                return Ok(None);
            };
            match event {
                EventBody::Started { .. } => continue,
                EventBody::Output { stream, .. } => {
                    return Ok(Some(ProcessEvent::Output(OutputChunk {
                        stream: match stream {
                            wire::Stream::Stdout => StreamKind::Stdout,
                            wire::Stream::Stderr => StreamKind::Stderr,
                        },
                        data: payload.to_vec(),
                    })))
                }
                EventBody::Exited(exit) => {
                    return Ok(Some(ProcessEvent::Exited(ProcessExit {
                        exit_code: exit_code(&exit),
                        signal: exit.signal,
                        timed_out: exit.timed_out,
                        oom_killed: exit.oom_killed,
                        duration: Duration::from_millis(exit.duration_ms),
                    })))
                }
                EventBody::Error(e) if e.kind == AgentErrorKind::NotFound => {
                    return Err(Error::ProcessNotFound { pid: self.pid })
                }
                EventBody::Error(e) => {
                    return Err(unexpected(self.call.container(), "to follow a process", e))
                }
                other => {
                    return Err(Error::Agent {
                        container: self.call.container().to_string(),
                        reason: format!("answered a process's output with {other:?}"),
                    })
                }
            }
        }
    }
}

impl SandboxSession {
    /// Starts a process in the background and subscribes to it.
    pub async fn spawn(&self, options: SpawnOptions) -> Result<ProcessHandle> {
        let call = self.spawn_call(options, false).await?;
        self.subscribed(call, None).await
    }

    /// Starts a process in the background without following it; its pid. Its output is kept
    /// from the first byte (the last MiB) for [`SandboxSession::attach_process`].
    pub async fn start_process(&self, options: SpawnOptions) -> Result<u32> {
        let call = self.spawn_call(options, true).await?;
        Ok(self.subscribed(call, None).await?.pid)
    }

    /// Sends the `Spawn` of `options`; the call, not yet answered.
    async fn spawn_call(&self, options: SpawnOptions, start_only: bool) -> Result<Call> {
        self.check_open()?;
        if options.argv.is_empty() || options.argv[0].is_empty() {
            return Err(Error::InvalidInput(
                "a process needs a program: give argv with at least the program's name".into(),
            ));
        }
        if !self.inner.policy.allow_commands {
            return Err(Error::Refused(
                "processes are not allowed in this session (allow_commands is off); run code with run() instead".into(),
            ));
        }
        let cwd = match &options.cwd {
            Some(dir) if !dir.starts_with('/') => {
                return Err(Error::InvalidPath {
                    path: dir.clone(),
                    reason: "a process's working directory must be an absolute path".into(),
                })
            }
            Some(dir) => dir.clone(),
            None => self.inner.workdir.clone(),
        };
        let mut env = self.env_now();
        env.extend(options.env.iter().cloned());
        let user = if options.as_root {
            User::Root
        } else {
            User::Sandbox
        };
        let launch = Launch {
            env,
            ..Launch::new(
                options.argv.clone(),
                user,
                &cwd,
                options.timeout.unwrap_or(Duration::ZERO),
                usize::MAX,
            )
        };
        let mut spawn = self.spawn_request(&launch, true, options.tag.clone());
        if !options.stdin {
            spawn.stdin = wire::StdinMode::Null;
        }
        spawn.start_only = start_only;
        let _running = self.inner.install_lock.read().await;
        let agent = self.agent().await?;
        agent.call(Op::Spawn(spawn), &[]).await
    }

    /// Subscribes to a background process again: what it wrote while nobody listened (the last
    /// MiB), then its output as it comes and its end.
    pub async fn attach_process(&self, pid: u32) -> Result<ProcessHandle> {
        self.check_open()?;
        let agent = self.agent().await?;
        let call = agent.call(Op::Attach(wire::Attach { pid }), &[]).await?;
        self.subscribed(call, Some(pid)).await
    }

    /// Waits for the start (or the refusal) of a call that follows a process.
    async fn subscribed(&self, mut call: Call, pid: Option<u32>) -> Result<ProcessHandle> {
        let mut early = Vec::new();
        loop {
            let Some((event, payload)) = call.next().await? else {
                return Err(Error::Agent {
                    container: self.inner.container.clone(),
                    reason: "ended a process's call before it started".into(),
                });
            };
            match event {
                EventBody::Started { pid } => {
                    return Ok(ProcessHandle { pid, call, early });
                }
                // An attach to a process that ended: its end is all there is.
                EventBody::Exited(exit) => {
                    let pid = exit.pid;
                    early.push((EventBody::Exited(exit), payload));
                    return Ok(ProcessHandle { pid, call, early });
                }
                EventBody::Output { .. } => early.push((event, payload)),
                EventBody::Error(e) => {
                    return Err(match (e.kind, pid) {
                        (AgentErrorKind::NotFound, Some(pid)) => Error::ProcessNotFound { pid },
                        (AgentErrorKind::CannotExec, _) => Error::InvalidInput(format!(
                            "the process could not be started: {}",
                            e.message
                        )),
                        _ => unexpected(&self.inner.container, "to start a process", e),
                    })
                }
                other => {
                    return Err(Error::Agent {
                        container: self.inner.container.clone(),
                        reason: format!("answered a process's start with {other:?}"),
                    })
                }
            }
        }
    }

    /// The background processes the session started and still knows.
    pub async fn processes(&self) -> Result<Vec<ProcessInfo>> {
        self.check_open()?;
        match self.ask(Op::List, &[]).await? {
            Ok((EventBody::Processes { processes }, _)) => Ok(processes
                .into_iter()
                .filter(|p| p.detached)
                .map(|p| ProcessInfo {
                    pid: p.pid,
                    argv: p.argv,
                    env: p.env,
                    cwd: p.cwd,
                    tag: p.tag,
                    as_root: p.user.uid == 0,
                    stdin_open: p.stdin_open,
                    running: p.running,
                })
                .collect()),
            Ok((other, _)) => Err(Error::Agent {
                container: self.inner.container.clone(),
                reason: format!("answered a listing of processes with {other:?}"),
            }),
            Err(e) => Err(unexpected(&self.inner.container, "to list processes", e)),
        }
    }

    /// Writes to a background process's standard input.
    pub async fn write_stdin(&self, pid: u32, data: &[u8]) -> Result<()> {
        self.input(pid, data, false).await
    }

    /// Closes a background process's standard input (it reads the end).
    pub async fn close_stdin(&self, pid: u32) -> Result<()> {
        self.input(pid, &[], true).await
    }

    async fn input(&self, pid: u32, data: &[u8], eof: bool) -> Result<()> {
        self.check_open()?;
        let chunks: Vec<&[u8]> = if data.is_empty() {
            vec![&[]]
        } else {
            data.chunks(sandpit_agent::frame::MAX_PAYLOAD).collect()
        };
        let last = chunks.len() - 1;
        for (i, chunk) in chunks.into_iter().enumerate() {
            let op = Op::Input(Input {
                pid,
                eof: eof && i == last,
            });
            match self.ask(op, chunk).await? {
                Ok(_) => {}
                Err(e) if e.kind == AgentErrorKind::NotFound => {
                    return Err(Error::ProcessNotFound { pid })
                }
                Err(e) => {
                    return Err(unexpected(
                        &self.inner.container,
                        "to write to a process",
                        e,
                    ))
                }
            }
        }
        Ok(())
    }

    /// Sends `signal` to a background process; [`Signal::Kill`] takes what it started too.
    pub async fn signal_process(&self, pid: u32, signal: Signal) -> Result<()> {
        self.check_open()?;
        let op = Op::Signal(SignalProcess {
            pid,
            signal: signal.number(),
            scope: if signal == Signal::Kill {
                SignalScope::Tree
            } else {
                SignalScope::Process
            },
        });
        match self.ask(op, &[]).await? {
            Ok(_) => Ok(()),
            Err(e) if e.kind == AgentErrorKind::NotFound => Err(Error::ProcessNotFound { pid }),
            Err(e) => Err(unexpected(&self.inner.container, "to signal a process", e)),
        }
    }
}

/// Signals a caller may send to a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Signal {
    /// SIGKILL, to the process and everything it started.
    Kill,
    /// SIGTERM.
    Term,
    /// SIGINT.
    Int,
    /// SIGHUP.
    Hup,
    /// SIGQUIT.
    Quit,
    /// SIGUSR1.
    Usr1,
    /// SIGUSR2.
    Usr2,
    /// SIGSTOP.
    Stop,
    /// SIGCONT.
    Cont,
}

impl Signal {
    /// The signal's number in the sandbox.
    pub fn number(self) -> i32 {
        match self {
            Signal::Kill => libc_signal::KILL,
            Signal::Term => libc_signal::TERM,
            Signal::Int => libc_signal::INT,
            Signal::Hup => libc_signal::HUP,
            Signal::Quit => libc_signal::QUIT,
            Signal::Usr1 => libc_signal::USR1,
            Signal::Usr2 => libc_signal::USR2,
            Signal::Stop => libc_signal::STOP,
            Signal::Cont => libc_signal::CONT,
        }
    }
}
