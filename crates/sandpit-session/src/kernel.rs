//! Stateful execution: one kernel process per session, started on first use, driven over
//! its attached standard input and output with JSON frames. No files are polled and no process
//! is started per call, so it works the same on a remote engine and with the network off.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;
use serde::Serialize;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::exec::{exec_error, kill_marked, new_marker, user_name, Capped, WRAPPER};
use crate::output::{OutputChunk, OutputSink, StreamKind};
use crate::runner::{Command, User};
use crate::session::SandboxSession;

/// One output of a request, in several representations keyed by mime type, as Jupyter has
/// them: `text/plain`, `text/html`, `image/png` (base64), `application/json`, ...
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct MimeBundle(pub BTreeMap<String, serde_json::Value>);

impl MimeBundle {
    /// The representation for `mime`, when it is text (PNG comes as base64 text).
    pub fn get(&self, mime: &str) -> Option<&str> {
        self.0.get(mime).and_then(|v| v.as_str())
    }

    /// `text/plain`.
    pub fn text(&self) -> Option<&str> {
        self.get("text/plain")
    }

    /// `text/html`.
    pub fn html(&self) -> Option<&str> {
        self.get("text/html")
    }

    /// `image/png`, decoded.
    pub fn png(&self) -> Option<Vec<u8>> {
        let b64 = self.get("image/png")?;
        base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .ok()
    }

    /// `application/json`.
    pub fn json(&self) -> Option<&serde_json::Value> {
        self.0.get("application/json")
    }
}

/// An exception raised by the code, in Jupyter's terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecutionError {
    /// The exception's type, e.g. `ZeroDivisionError`, `KeyboardInterrupt`, `KernelDied`.
    pub name: String,
    /// Its message.
    pub value: String,
    /// The traceback, one line per entry.
    pub traceback: Vec<String>,
}

/// The outcome of [`SandboxSession::execute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecuteResult {
    /// Displayed values: the last expression's value, `display()` calls, figures.
    pub results: Vec<MimeBundle>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exception, if the code raised one (also a timeout's interrupt, or a dead kernel).
    pub error: Option<ExecutionError>,
    /// True when the code ran past its timeout and was interrupted.
    pub timed_out: bool,
    /// True when output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// True when the kernel's state is gone: it died, or ignored the interrupt and was restarted.
    pub state_lost: bool,
    /// True when this request started a fresh kernel (the first one, or after a loss).
    pub kernel_started: bool,
    /// Wall time.
    #[serde(rename = "duration_ms", serialize_with = "crate::output::millis")]
    pub duration: Duration,
}

impl ExecuteResult {
    /// Standard output as lines.
    pub fn stdout_lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// Standard error as lines.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// True when the code ran to the end without an exception.
    pub fn success(&self) -> bool {
        self.error.is_none() && !self.timed_out
    }

    /// The PNG images among the results.
    pub fn images(&self) -> Vec<Vec<u8>> {
        self.results.iter().filter_map(|b| b.png()).collect()
    }
}

/// Options of one `execute`.
#[derive(Debug, Clone, Default)]
pub struct ExecuteOptions {
    /// Overrides the session's timeout.
    pub timeout: Option<Duration>,
    /// Receives output as it arrives.
    pub on_output: Option<OutputSink>,
}

impl ExecuteOptions {
    /// Defaults: the session's timeout, no streaming.
    pub fn new() -> Self {
        Self::default()
    }

    /// A timeout for this request.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Calls `f` with output chunks as they arrive.
    pub fn on_output(mut self, f: impl Fn(OutputChunk) + Send + Sync + 'static) -> Self {
        self.on_output = Some(OutputSink::new(f));
        self
    }
}

enum Frame {
    Json(serde_json::Value),
    /// The kernel's output ended: it exited. Holds the tail of its own stderr.
    Exited(String),
}

/// A running kernel process.
pub(crate) struct Kernel {
    input: Pin<Box<dyn AsyncWrite + Send>>,
    frames: mpsc::UnboundedReceiver<Frame>,
    pid: u64,
    marker: String,
    exec_id: String,
}

/// How long a kernel may take to start and say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long an interrupted request may take to stop before the kernel is restarted.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);

impl SandboxSession {
    /// Runs `code` in the session's kernel, keeping variables, imports, functions and open files
    /// between calls, like a notebook. Python, JavaScript and Ruby have kernels.
    pub async fn execute(&self, code: &str) -> Result<ExecuteResult> {
        self.execute_with(code, ExecuteOptions::default()).await
    }

    /// [`Self::execute`] with options.
    pub async fn execute_with(&self, code: &str, options: ExecuteOptions) -> Result<ExecuteResult> {
        self.check_open()?;
        let inner = &self.inner;
        let _running = inner.install_lock.read().await;
        let mut slot = inner.kernel.lock().await;
        let started = Instant::now();
        let kernel_started = slot.is_none();
        if kernel_started {
            *slot = Some(self.start_kernel_process().await?);
        }
        let kernel = slot.as_mut().expect("just started");
        let timeout = options.timeout.unwrap_or(inner.timeout);
        let mut acc = Accumulator::new(inner.output_limit, options.on_output.clone());
        acc.kernel_started = kernel_started;

        let request = serde_json::json!({ "code": code }).to_string() + "\n";
        let written = async {
            kernel.input.write_all(request.as_bytes()).await?;
            kernel.input.flush().await
        }
        .await;
        if written.is_err() {
            // The kernel's stdin is closed: find out why, report, and start afresh next time.
            let tail = drain_exit(kernel).await;
            let old = slot.take().expect("present");
            let why = self.why_lost(&old, tail).await?;
            return Ok(acc.died(why, started));
        }

        let deadline = tokio::time::Instant::now() + timeout;
        match collect(kernel, &mut acc, Some(deadline)).await {
            Outcome::Done => Ok(acc.finish(started)),
            Outcome::Exited(tail) => {
                let old = slot.take().expect("present");
                let why = self.why_lost(&old, tail).await?;
                Ok(acc.died(why, started))
            }
            Outcome::Deadline => {
                acc.timed_out = true;
                self.signal_kernel(kernel.pid, "INT").await?;
                let grace = tokio::time::Instant::now() + INTERRUPT_GRACE;
                match collect(kernel, &mut acc, Some(grace)).await {
                    Outcome::Done => Ok(acc.finish(started)),
                    Outcome::Exited(tail) => {
                        let old = slot.take().expect("present");
                        let why = self.why_lost(&old, tail).await?;
                        Ok(acc.died(why, started))
                    }
                    Outcome::Deadline => {
                        // It ignored the interrupt: kill it and have a fresh one ready.
                        let old = slot.take().expect("present");
                        kill_marked(&inner.engine, &inner.container, User::Sandbox, &old.marker)
                            .await?;
                        *slot = Some(self.start_kernel_process().await?);
                        acc.state_lost = true;
                        acc.error = Some(ExecutionError {
                            name: "KernelRestarted".into(),
                            value: format!(
                                "the code ran past its {timeout:?} timeout and did not stop when interrupted; the kernel was restarted and its state is lost"
                            ),
                            traceback: Vec::new(),
                        });
                        Ok(acc.finish(started))
                    }
                }
            }
        }
    }

    /// Starts the kernel now (it starts on the first `execute` otherwise). Useful to warm a
    /// session up before handing it out.
    pub async fn start_kernel(&self) -> Result<()> {
        self.check_open()?;
        let mut slot = self.inner.kernel.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_kernel_process().await?);
        }
        Ok(())
    }

    /// Stops the kernel; the next `execute` starts a fresh one with empty state.
    pub async fn restart_kernel(&self) -> Result<()> {
        let mut slot = self.inner.kernel.lock().await;
        if let Some(old) = slot.take() {
            kill_marked(
                &self.inner.engine,
                &self.inner.container,
                User::Sandbox,
                &old.marker,
            )
            .await?;
        }
        Ok(())
    }

    async fn start_kernel_process(&self) -> Result<Kernel> {
        let inner = &self.inner;
        let spec = inner.runner.kernel().ok_or_else(|| {
            Error::InvalidInput(format!(
                "{} has no stateful kernel; use run() instead",
                inner.runner.language()
            ))
        })?;
        let path = format!("/tmp/{}", spec.file);
        let marker = new_marker();
        let mut env: Vec<String> = inner.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.extend([
            format!("SANDPIT_EXEC={marker}"),
            format!("SANDPIT_SOURCE_PATH={path}"),
            format!("SANDPIT_SOURCE={}", spec.script),
            "SANDPIT_KEEP_STDIN=1".to_string(),
            format!("SANDPIT_OUTPUT_LIMIT={}", inner.output_limit),
        ]);
        let mut cmd = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            WRAPPER.into(),
            "sandpit".into(),
        ];
        cmd.extend(spec.argv.iter().cloned());
        cmd.push(path);
        let docker = inner.engine.docker();
        let created = docker
            .create_exec(
                &inner.container,
                CreateExecOptions {
                    attach_stdin: Some(true),
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    tty: Some(false),
                    env: Some(env),
                    cmd: Some(cmd),
                    user: Some(user_name(User::Sandbox).to_string()),
                    working_dir: Some(inner.workdir.clone()),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| exec_error(&inner.engine, &inner.container, e))?;
        let StartExecResults::Attached { mut output, input } = docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| exec_error(&inner.engine, &inner.container, e))?
        else {
            return Err(Error::InvalidInput(
                "the engine started the kernel detached".into(),
            ));
        };

        let (tx, frames) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut line = Vec::new();
            let mut stderr_tail = Vec::new();
            while let Some(item) = output.next().await {
                match item {
                    Ok(bollard::container::LogOutput::StdOut { message }) => {
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
                    Ok(bollard::container::LogOutput::StdErr { message }) => {
                        stderr_tail.extend_from_slice(&message);
                        if stderr_tail.len() > 4096 {
                            stderr_tail.drain(..stderr_tail.len() - 4096);
                        }
                    }
                    Ok(_) => {}
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
            exec_id: created.id,
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
            Ok(Err(tail)) => Err(Error::Setup {
                command: "the kernel".into(),
                exit_code: self.exec_exit_code(&kernel.exec_id).await,
                message: tail,
            }),
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
    async fn why_lost(&self, kernel: &Kernel, tail: String) -> Result<String> {
        let inner = &self.inner;
        match inner.engine.docker().inspect_exec(&kernel.exec_id).await {
            Err(e) => Err(exec_error(&inner.engine, &inner.container, e)),
            Ok(info) if info.running == Some(true) => {
                kill_marked(
                    &inner.engine,
                    &inner.container,
                    User::Sandbox,
                    &kernel.marker,
                )
                .await?;
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

    async fn exec_exit_code(&self, exec_id: &str) -> i64 {
        match self.inner.engine.docker().inspect_exec(exec_id).await {
            Ok(info) => info.exit_code.unwrap_or(-1),
            Err(_) => -1,
        }
    }

    async fn signal_kernel(&self, pid: u64, signal: &str) -> Result<()> {
        // `kill` is a shell builtin; images need not carry a kill binary.
        let cmd = Command::new(["/bin/sh", "-c", &format!("kill -{signal} {pid}")]);
        let inner = &self.inner;
        crate::exec::exec(
            &inner.engine,
            &inner.container,
            crate::exec::ExecSpec {
                argv: cmd.argv,
                user: User::Sandbox,
                env: Vec::new(),
                workdir: "/".into(),
                timeout: Duration::from_secs(10),
                output_limit: 4096,
                inline_file: None,
                stdin_path: None,
                sink: None,
            },
        )
        .await
        .map(|_| ())
    }
}

enum Outcome {
    Done,
    Exited(String),
    Deadline,
}

async fn collect(
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

async fn drain_exit(kernel: &mut Kernel) -> String {
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

/// Builds an [`ExecuteResult`] from frames.
struct Accumulator {
    results: Vec<MimeBundle>,
    stdout: Capped,
    stderr: Capped,
    /// The kernel itself dropped output past the limit.
    kernel_truncated: bool,
    error: Option<ExecutionError>,
    timed_out: bool,
    state_lost: bool,
    kernel_started: bool,
    sink: Option<OutputSink>,
}

impl Accumulator {
    fn new(limit: usize, sink: Option<OutputSink>) -> Self {
        Accumulator {
            results: Vec::new(),
            stdout: Capped::new(limit),
            stderr: Capped::new(limit),
            kernel_truncated: false,
            error: None,
            timed_out: false,
            state_lost: false,
            kernel_started: false,
            sink,
        }
    }

    /// Takes one frame; true at `done`.
    fn take(&mut self, v: serde_json::Value) -> bool {
        match v["type"].as_str() {
            Some("stream") => {
                let text = v["text"].as_str().unwrap_or_default().as_bytes();
                let (buf, kind) = if v["name"] == "stderr" {
                    (&mut self.stderr, StreamKind::Stderr)
                } else {
                    (&mut self.stdout, StreamKind::Stdout)
                };
                let kept = buf.push(text);
                self.kernel_truncated |= v["truncated"] == true;
                if let (Some(sink), false) = (&self.sink, kept.is_empty()) {
                    sink.send(OutputChunk {
                        stream: kind,
                        data: kept.to_vec(),
                    });
                }
                false
            }
            Some("result") => {
                if let serde_json::Value::Object(map) = &v["data"] {
                    self.results
                        .push(MimeBundle(map.clone().into_iter().collect()));
                }
                false
            }
            Some("error") => {
                self.error = Some(ExecutionError {
                    name: v["name"].as_str().unwrap_or("Error").to_string(),
                    value: v["value"].as_str().unwrap_or_default().to_string(),
                    traceback: v["traceback"]
                        .as_array()
                        .map(|a| {
                            a.iter()
                                .filter_map(|l| l.as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default(),
                });
                false
            }
            Some("done") => true,
            _ => false,
        }
    }

    fn died(mut self, why: String, started: Instant) -> ExecuteResult {
        self.state_lost = true;
        self.error = Some(ExecutionError {
            name: "KernelDied".into(),
            value: format!(
                "the kernel stopped while running this code: {why}; its state is lost and the next call starts a fresh kernel"
            ),
            traceback: Vec::new(),
        });
        self.finish(started)
    }

    fn finish(self, started: Instant) -> ExecuteResult {
        ExecuteResult {
            results: self.results,
            stdout: self.stdout.text(),
            stderr: self.stderr.text(),
            error: self.error,
            timed_out: self.timed_out,
            truncated: self.stdout.truncated || self.stderr.truncated || self.kernel_truncated,
            state_lost: self.state_lost,
            kernel_started: self.kernel_started,
            duration: started.elapsed(),
        }
    }
}
