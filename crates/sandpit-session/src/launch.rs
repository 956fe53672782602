//! One process run to completion by the sandbox's agent: output under a cap and as it
//! arrives, a timeout that kills the whole process tree, exit code, CPU time and memory peak.
//! A caller that stops waiting (a dropped future) cancels the call, and the agent kills what
//! the process started.

use std::time::{Duration, Instant};

use sandpit_agent::protocol::{
    self as wire, ErrorKind as AgentErrorKind, EventBody, Exit, Input, Op, Spawn, StdinMode,
};

use crate::agent::{unexpected, Agent};
use crate::capped::Capped;
use crate::error::{Error, Result};
use crate::output::{ExecOutput, OutputChunk, OutputSink, RunUsage, StreamKind};
use crate::runner::User;
use crate::session::SandboxSession;

/// How long past its own timeout a process may take to be reported ended before the call is
/// given up (the agent kills at the timeout; this only guards against a stuck agent).
const REPORT_GRACE: Duration = Duration::from_secs(30);

/// Bytes of standard input per frame.
const INPUT_CHUNK: usize = 256 << 10;

/// One process to run to completion.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    pub argv: Vec<String>,
    pub user: User,
    /// Variables on top of the container's.
    pub env: Vec<(String, String)>,
    pub cwd: String,
    pub timeout: Duration,
    pub output_limit: usize,
    /// Bytes for standard input (closed after them); `None`: it reads an empty input.
    pub stdin: Option<Vec<u8>>,
    /// Receives output as it arrives.
    pub sink: Option<OutputSink>,
}

impl Launch {
    /// `argv` as `user` in `cwd`, with nothing else.
    pub(crate) fn new(
        argv: Vec<String>,
        user: User,
        cwd: &str,
        timeout: Duration,
        output_limit: usize,
    ) -> Self {
        Launch {
            argv,
            user,
            env: Vec::new(),
            cwd: cwd.to_string(),
            timeout,
            output_limit,
            stdin: None,
            sink: None,
        }
    }
}

/// A user's ids on the wire.
pub(crate) fn ids(user: User) -> wire::Ids {
    match user {
        User::Sandbox => wire::Ids {
            uid: crate::settings::SANDBOX_UID,
            gid: crate::settings::SANDBOX_UID,
        },
        User::Root => wire::Ids::ROOT,
    }
}

impl SandboxSession {
    /// Runs `launch` to its end (or its timeout).
    pub(crate) async fn launch(&self, launch: Launch) -> Result<ExecOutput> {
        let agent = self.agent().await?;
        match run(&agent, self.spawn_request(&launch, false, None), launch).await {
            Err(e @ Error::Agent { .. }) => Err(self.explain_lost(e).await),
            other => other,
        }
    }

    /// The agent's request for `launch`: the session's process limit where the runtime does
    /// not count it itself (gVisor's execs got none; the agent's children inherit it anyway,
    /// and stating it keeps it true for every runtime).
    pub(crate) fn spawn_request(
        &self,
        launch: &Launch,
        detached: bool,
        tag: Option<String>,
    ) -> Spawn {
        let inner = &self.inner;
        let mut rlimits = Vec::new();
        if inner.gvisor && launch.user == User::Sandbox {
            rlimits.push(wire::Rlimit {
                resource: wire::RlimitKind::Nproc,
                value: inner.policy.max_processes as u64,
            });
        }
        // Later settings win: a run's own variables over the session's.
        let mut env: Vec<(String, String)> = Vec::with_capacity(launch.env.len());
        for (key, value) in &launch.env {
            env.retain(|(k, _)| k != key);
            env.push((key.clone(), value.clone()));
        }
        Spawn {
            argv: launch.argv.clone(),
            env,
            cwd: launch.cwd.clone(),
            user: ids(launch.user),
            rlimits,
            stdin: if launch.stdin.is_some() || detached {
                StdinMode::Pipe
            } else {
                StdinMode::Null
            },
            timeout_ms: (!launch.timeout.is_zero()).then_some(launch.timeout.as_millis() as u64),
            output_limit: (!detached).then_some(launch.output_limit as u64),
            detached,
            tag,
            start_only: false,
        }
    }

    /// A call into the agent that ended with its connection, explained: the engine out of
    /// reach, the container stopped (gone), or the connection alone broke. Other errors pass.
    pub(crate) async fn explain_lost(&self, e: Error) -> Error {
        if !matches!(e, Error::Agent { .. }) {
            return e;
        }
        let inner = &self.inner;
        match crate::state::container_runs(&inner.engine, &inner.container).await {
            Err(unreachable @ (Error::EngineUnreachable { .. } | Error::Tls { .. })) => unreachable,
            _ => {
                crate::state::gone_or(&inner.engine, &inner.container, e, Duration::from_secs(2))
                    .await
            }
        }
    }
}

async fn run(agent: &Agent, spawn: Spawn, launch: Launch) -> Result<ExecOutput> {
    let container = agent.container().to_string();
    let started = Instant::now();
    let mut call = agent.call(Op::Spawn(spawn), &[]).await?;
    let mut stdout = Capped::new(launch.output_limit);
    let mut stderr = Capped::new(launch.output_limit);
    let mut stdin = launch.stdin;
    let mut feeder: Option<AbortOnDrop> = None;
    let give_up = tokio::time::Instant::now() + launch.timeout + REPORT_GRACE;
    let exit = loop {
        let next = tokio::time::timeout_at(give_up, call.next())
            .await
            .map_err(|_| Error::Timeout {
                operation: format!("waiting for {:?} to be reported ended", launch.argv),
                after: launch.timeout + REPORT_GRACE,
            })??;
        let Some((event, payload)) = next else {
            return Err(Error::Agent {
                container,
                reason: "ended a process's call without reporting its end".into(),
            });
        };
        match event {
            EventBody::Started { pid } => {
                if let Some(data) = stdin.take() {
                    feeder = Some(AbortOnDrop(tokio::spawn(feed(agent.clone(), pid, data))));
                }
            }
            EventBody::Output { stream, .. } => {
                let (kind, cap) = match stream {
                    wire::Stream::Stdout => (StreamKind::Stdout, &mut stdout),
                    wire::Stream::Stderr => (StreamKind::Stderr, &mut stderr),
                };
                let kept = cap.push(&payload);
                if let (Some(sink), false) = (&launch.sink, kept.is_empty()) {
                    sink.send(OutputChunk {
                        stream: kind,
                        data: kept.to_vec(),
                    });
                }
            }
            EventBody::Exited(exit) => break exit,
            EventBody::Error(e) if e.kind == AgentErrorKind::CannotExec => {
                // As a shell says it: the program could not be run.
                let said = format!("sandpit: {}\n", e.message);
                if let Some(sink) = &launch.sink {
                    sink.send(OutputChunk {
                        stream: StreamKind::Stderr,
                        data: said.clone().into_bytes(),
                    });
                }
                return Ok(ExecOutput {
                    stdout: String::new(),
                    stderr: said,
                    exit_code: 127,
                    timed_out: false,
                    truncated: false,
                    oom_killed: false,
                    duration: started.elapsed(),
                    usage: None,
                });
            }
            EventBody::Error(e) => {
                return Err(unexpected(&container, "to start a process", e));
            }
            other => {
                return Err(Error::Agent {
                    container,
                    reason: format!("answered a process's start with {other:?}"),
                })
            }
        }
    };
    drop(feeder);
    Ok(output(exit, stdout, stderr))
}

/// An exit report with the output collected.
fn output(exit: Exit, stdout: Capped, stderr: Capped) -> ExecOutput {
    ExecOutput {
        exit_code: exit_code(&exit),
        timed_out: exit.timed_out,
        truncated: exit.truncated || stdout.truncated || stderr.truncated,
        oom_killed: exit.oom_killed,
        duration: Duration::from_millis(exit.duration_ms),
        usage: Some(RunUsage {
            cpu: Some(Duration::from_nanos(exit.cpu_ns)),
            memory_peak_bytes: Some(exit.max_rss_bytes),
        }),
        stdout: stdout.text(),
        stderr: stderr.text(),
    }
}

/// The exit code as a shell reports it: the status, or 128 + the signal that ended it.
pub(crate) fn exit_code(exit: &Exit) -> i64 {
    match (exit.code, exit.signal) {
        (Some(code), _) => i64::from(code),
        (None, Some(signal)) => 128 + i64::from(signal),
        (None, None) => -1,
    }
}

/// Writes `data` to a process's standard input, then closes it.
async fn feed(agent: Agent, pid: u32, data: Vec<u8>) {
    let mut chunks: Vec<&[u8]> = data.chunks(INPUT_CHUNK).collect();
    if chunks.is_empty() {
        chunks.push(&[]);
    }
    let last = chunks.len() - 1;
    for (i, chunk) in chunks.into_iter().enumerate() {
        let eof = i == last;
        match agent.ask(Op::Input(Input { pid, eof }), chunk).await {
            Ok(Ok(_)) => {}
            // The process ended or closed its input: what it did not read is not wanted.
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// A task aborted when its handle drops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
