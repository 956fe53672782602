//! The kernel process: started as an exec with standard input attached, its output read as
//! JSON frames by a task of its own, interrupted or killed by its marker.

use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt;
use sandpit_engine::{ExecStream, StreamKind};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;

use super::result::Accumulator;
use crate::error::{Error, Result};
use crate::exec::{
    exec_error, exit_status, kill_marked, new_marker, reset_user_processes, wrapped_request,
};
use crate::runner::User;
use crate::session::SandboxSession;
use crate::step::{shell, Step, HOUSEKEEPING};

pub(crate) enum Frame {
    Json(serde_json::Value),
    /// The kernel's output ended: it exited. Holds the tail of its own stderr.
    Exited(String),
}

/// A running kernel process.
pub(crate) struct Kernel {
    pub(super) input: Pin<Box<dyn AsyncWrite + Send>>,
    pub(super) frames: mpsc::UnboundedReceiver<Frame>,
    pub(super) pid: u64,
    pub(super) marker: String,
    exec_id: String,
}

/// How long a kernel may take to start and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);

impl SandboxSession {
    /// Starts a kernel; when the sandbox cannot start a process (its process limit is full of
    /// leftovers), every process of the sandbox user is stopped and the start tried once more.
    pub(super) async fn start_kernel_process(&self) -> Result<Kernel> {
        let failure = match self.spawn_kernel().await {
            Ok(kernel) => return Ok(kernel),
            Err(e) => e,
        };
        let full = match failure {
            Error::ExecStart { .. } => true,
            Error::Setup { .. } | Error::Timeout { .. } => !self.can_start_processes().await?,
            _ => false,
        };
        if !full {
            return Err(failure);
        }
        reset_user_processes(&self.inner.engine, &self.inner.container).await?;
        self.spawn_kernel().await
    }

    async fn spawn_kernel(&self) -> Result<Kernel> {
        let inner = &self.inner;
        let spec = inner.runner.kernel().ok_or_else(|| Error::Unsupported {
            what: format!("stateful execution in {}", inner.runner.language()),
            reason: "the language has no kernel; run the code with run() instead".into(),
        })?;
        let path = format!("/tmp/{}", spec.file);
        let marker = new_marker();
        let mut env: Vec<String> = self
            .env_now()
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        env.extend([
            format!("SANDPIT_EXEC={marker}"),
            format!("SANDPIT_SOURCE_PATH={path}"),
            format!("SANDPIT_SOURCE={}", spec.script),
            "SANDPIT_KEEP_STDIN=1".to_string(),
            format!("SANDPIT_RELAY={}", if inner.gvisor { "1" } else { "" }),
            format!("SANDPIT_OUTPUT_LIMIT={}", inner.output_limit),
        ]);
        if inner.gvisor {
            env.push(format!("SANDPIT_NPROC={}", inner.policy.max_processes));
        }
        let mut argv = spec.argv.clone();
        argv.push(path);
        let request = wrapped_request(&argv, env, User::Sandbox, Some(inner.workdir.clone()), true);
        let ExecStream {
            id: exec_id,
            mut output,
            input,
        } = inner
            .engine
            .start_exec(&inner.container, &request)
            .await
            .map_err(|e| exec_error(&inner.container, e))?;
        let Some(input) = input else {
            return Err(Error::Internal(
                "the engine attached no standard input to the kernel".into(),
            ));
        };

        let (tx, frames) = mpsc::unbounded_channel();
        if inner.gvisor {
            // A sandbox that died leaves the kernel's stream open under gVisor: watch it.
            let (watch, engine, container) =
                (tx.clone(), inner.engine.clone(), inner.container.clone());
            tokio::spawn(async move {
                while !watch.is_closed() {
                    tokio::time::sleep(crate::exec::WATCH_EVERY).await;
                    if !crate::exec::container_runs(&engine, &container)
                        .await
                        .unwrap_or(true)
                    {
                        let _ = watch.send(Frame::Exited("the sandbox stopped".into()));
                        return;
                    }
                }
            });
        }
        tokio::spawn(async move {
            let mut line = Vec::new();
            let mut stderr_tail = Vec::new();
            while let Some(item) = output.next().await {
                match item {
                    Ok(chunk) if chunk.stream == StreamKind::Stdout => {
                        let message = chunk.data;
                        for &b in message.iter() {
                            if b == b'\n' {
                                if let Ok(v) = serde_json::from_slice(&line) {
                                    let _ = tx.send(Frame::Json(v));
                                }
                                line.clear();
                            } else {
                                line.push(b);
                            }
                        }
                    }
                    Ok(chunk) => {
                        stderr_tail.extend_from_slice(&chunk.data);
                        if stderr_tail.len() > 4096 {
                            stderr_tail.drain(..stderr_tail.len() - 4096);
                        }
                    }
                    Err(_) => break,
                }
            }
            let _ = tx.send(Frame::Exited(
                String::from_utf8_lossy(&stderr_tail).into_owned(),
            ));
        });

        let mut kernel = Kernel {
            input,
            frames,
            pid: 0,
            marker,
            exec_id: exec_id.clone(),
        };
        let ready = tokio::time::timeout(START_TIMEOUT, async {
            loop {
                match kernel.frames.recv().await {
                    Some(Frame::Json(v)) if v["type"] == "ready" => {
                        return Ok(v["pid"].as_u64().unwrap_or(0))
                    }
                    Some(Frame::Json(_)) => continue,
                    Some(Frame::Exited(tail)) => return Err(exit_message(&tail)),
                    None => return Err(exit_message("")),
                }
            }
        })
        .await;
        match ready {
            Ok(Ok(pid)) => {
                kernel.pid = pid;
                Ok(kernel)
            }
            Ok(Err(tail)) => {
                let status =
                    exit_status(&inner.engine, &inner.container, &kernel.exec_id, false).await?;
                if status.never_started {
                    return Err(Error::ExecStart {
                        container: inner.container.clone(),
                        reason: "the runtime could not start the kernel process; the sandbox probably holds as many processes as its limit allows".into(),
                    });
                }
                // 127: the interpreter was not found, which a PATH set on the session causes.
                let path = self
                    .env_now()
                    .into_iter()
                    .find(|(k, _)| k == "PATH")
                    .map(|(_, v)| v);
                if let (127, Some(path)) = (status.code, path) {
                    return Err(Error::InvalidInput(format!(
                        "the kernel could not start: `{}` is not on the session's PATH ({path:?}); unset PATH to go back to the image's, or set one that holds the interpreter's folder",
                        spec.argv.first().map(String::as_str).unwrap_or("the interpreter")
                    )));
                }
                Err(Error::Setup {
                    command: "the kernel".into(),
                    exit_code: status.code,
                    message: tail,
                })
            }
            Err(_) => {
                let _ = kill_marked(
                    &inner.engine,
                    &inner.container,
                    User::Sandbox,
                    &kernel.marker,
                )
                .await;
                Err(Error::Timeout {
                    operation: "starting the kernel".into(),
                    after: START_TIMEOUT,
                })
            }
        }
    }

    /// The kernel's channel ended. Asks the engine why: an engine out of reach or a container
    /// gone is the caller's error; a kernel still running behind a broken channel is killed;
    /// otherwise the kernel exited, and the message says how.
    pub(super) async fn why_lost(&self, kernel: Kernel, tail: String) -> Result<String> {
        let inner = &self.inner;
        let Kernel {
            exec_id, marker, ..
        } = kernel;
        match inner.engine.inspect_exec(&exec_id).await {
            Err(e) => Err(exec_error(&inner.container, e)),
            Ok(info) if info.running => {
                kill_marked(&inner.engine, &inner.container, User::Sandbox, &marker).await?;
                Ok("the connection to the kernel broke, so the kernel was stopped".into())
            }
            Ok(info) => {
                let said = exit_message(&tail);
                Ok(match info.exit_code {
                    Some(code) if code > 128 => {
                        format!("it was killed by signal {} ({said})", code - 128)
                    }
                    Some(code) => format!("it exited with code {code} ({said})"),
                    None => said,
                })
            }
        }
    }

    /// Sends `signal` to the kernel process. `kill` is a shell builtin: images need not carry a
    /// kill binary.
    pub(super) async fn signal_kernel(&self, pid: u64, signal: &str) -> Result<()> {
        let cmd = shell(&format!("kill -{signal} {pid}"));
        self.exec_step(Step::new(&cmd, HOUSEKEEPING))
            .await
            .map(|_| ())
    }

    /// Stops a kernel that is gone or must go: kills it (and what it started) by its marker.
    pub(super) async fn kill_kernel(&self, kernel: Kernel) -> Result<()> {
        let marker = kernel.marker;
        kill_marked(
            &self.inner.engine,
            &self.inner.container,
            User::Sandbox,
            &marker,
        )
        .await
    }
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
            Some(Frame::Exited(tail)) => return Outcome::Exited(tail),
            None => return Outcome::Exited(String::new()),
        }
    }
}

pub(crate) async fn drain_exit(kernel: &mut Kernel) -> String {
    tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(f) = kernel.frames.recv().await {
            if let Frame::Exited(tail) = f {
                return tail;
            }
        }
        String::new()
    })
    .await
    .unwrap_or_default()
}

/// What the kernel said on its own stderr before it exited.
fn exit_message(tail: &str) -> String {
    match tail.trim() {
        "" => "the kernel exited without a word".to_string(),
        said => said.to_string(),
    }
}
