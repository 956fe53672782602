//! Running code: libraries first, the source file, compile steps, the run step.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::output::{ExecOutput, OutputChunk, OutputSink, RunResult, RunUsage};
use crate::paths::container_path;
use crate::runner::User;
use crate::session::SandboxSession;
use crate::step::Step;

/// Options of one run; `Default` means the session's timeout, no stdin, no arguments.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Libraries to install first (once per session).
    pub libraries: Vec<String>,
    /// Overrides the session's timeout for this run (compile and run together).
    pub timeout: Option<Duration>,
    /// Bytes fed to the program's standard input (otherwise it reads an empty input).
    pub stdin: Option<Vec<u8>>,
    /// Command-line arguments for the program.
    pub args: Vec<String>,
    /// Extra environment variables for this run.
    pub env: Vec<(String, String)>,
    /// Receives compile and program output as it arrives.
    pub on_output: Option<OutputSink>,
    /// Save the figures the program leaves open as PNG artifacts (Python's matplotlib).
    pub capture_plots: bool,
}

impl RunOptions {
    /// Options with defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Libraries to install before running.
    pub fn libraries<I, S>(mut self, libraries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.libraries = libraries.into_iter().map(Into::into).collect();
        self
    }

    /// A timeout for this run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Standard input for the program.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Arguments for the program.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// An environment variable for this run.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Returns the figures the program leaves open as PNG artifacts (Python's matplotlib;
    /// no `show()` or `savefig()` needed).
    pub fn capture_plots(mut self, capture: bool) -> Self {
        self.capture_plots = capture;
        self
    }

    /// Calls `f` with output chunks as they arrive (the result still holds all of it).
    pub fn on_output(mut self, f: impl Fn(OutputChunk) + Send + Sync + 'static) -> Self {
        self.on_output = Some(OutputSink::new(f));
        self
    }
}

impl SandboxSession {
    /// Runs `code`, installing `libraries` first where they are not installed yet.
    pub async fn run(&self, code: &str, libraries: &[&str]) -> Result<RunResult> {
        self.run_with(code, RunOptions::new().libraries(libraries.iter().copied()))
            .await
    }

    /// Runs `code` with options (stdin, arguments, timeout, libraries).
    pub async fn run_with(&self, code: &str, options: RunOptions) -> Result<RunResult> {
        self.check_open()?;
        if !options.libraries.is_empty() {
            self.install(&options.libraries).await?;
        }
        let inner = &self.inner;
        let _running = inner.install_lock.read().await;
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(inner.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be longer than zero".into(),
            ));
        }
        let file = inner.runner.source_file(code);
        // A read-only workdir takes no source: it goes to /tmp.
        let source_dir = if inner.policy.workdir_writable {
            inner.workdir.clone()
        } else {
            "/tmp".to_string()
        };
        let source_path = container_path(&source_dir, &file)?;
        let rel = source_path
            .strip_prefix(&format!("{source_dir}/"))
            .unwrap_or(&file)
            .to_string();
        self.write_file(
            &source_dir,
            User::Sandbox,
            &rel,
            code.as_bytes(),
            None,
            &file,
        )
        .await?;
        let file = if inner.policy.workdir_writable {
            file
        } else {
            source_path
        };

        let plots = options
            .capture_plots
            .then(|| inner.runner.run_capturing_plots(&file))
            .flatten();
        let artifacts_dir = plots
            .is_some()
            .then(|| format!("sandpit-artifacts-{}", crate::ids::random_hex(12)));
        let plan = plots.unwrap_or_else(|| inner.runner.run(&file));
        let mut compile_out: Option<ExecOutput> = None;
        for step in &plan.compile {
            let remaining = timeout.saturating_sub(started.elapsed());
            let out = self
                .exec_user_step(Step {
                    env: &options.env,
                    sink: options.on_output.clone(),
                    ..Step::new(step, remaining)
                })
                .await?;
            let failed = !out.success();
            compile_out = Some(merge_compile(compile_out, out));
            if failed {
                let c = compile_out.clone().expect("just set");
                return Ok(RunResult {
                    stdout: String::new(),
                    stderr: String::new(),
                    exit_code: c.exit_code,
                    timed_out: c.timed_out,
                    truncated: c.truncated,
                    oom_killed: c.oom_killed,
                    duration: started.elapsed(),
                    usage: c.usage,
                    compile: compile_out,
                    artifacts: Vec::new(),
                });
            }
        }

        let mut run = plan.run.clone();
        run.argv.extend(options.args.iter().cloned());
        if let Some(dir) = &artifacts_dir {
            let path = format!("{}/{dir}", crate::artifacts::ARTIFACTS_ROOT);
            run = run.env("SANDPIT_ARTIFACTS", path.as_str());
        }
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let out = self
            .exec_user_step(Step {
                stdin: options.stdin.clone(),
                env: &options.env,
                sink: options.on_output.clone(),
                ..Step::new(&run, remaining)
            })
            .await?;
        let duration = started.elapsed();
        let artifacts = match &artifacts_dir {
            Some(dir) => self.collect_artifacts(dir).await?,
            None => Vec::new(),
        };
        Ok(RunResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            truncated: out.truncated,
            oom_killed: out.oom_killed,
            duration,
            usage: total_usage(compile_out.as_ref().and_then(|c| c.usage), out.usage),
            compile: compile_out,
            artifacts,
        })
    }

    /// Runs `code` and streams its output: the returned [`RunStream`] yields chunks as they
    /// arrive, then [`RunStream::result`] gives the final result.
    pub fn run_stream(&self, code: &str, options: RunOptions) -> RunStream {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let previous = options.on_output.clone();
        let options = RunOptions {
            on_output: Some(OutputSink::new(move |chunk: OutputChunk| {
                if let Some(p) = &previous {
                    p.send(chunk.clone());
                }
                let _ = tx.send(chunk);
            })),
            ..options
        };
        let session = self.clone();
        let code = code.to_string();
        let task = tokio::spawn(async move { session.run_with(&code, options).await });
        RunStream {
            rx,
            task: Some(task),
        }
    }
}

/// CPU time of the steps added up, the larger memory peak.
fn total_usage(a: Option<RunUsage>, b: Option<RunUsage>) -> Option<RunUsage> {
    match (a, b) {
        (Some(a), Some(b)) => Some(RunUsage {
            cpu: match (a.cpu, b.cpu) {
                (Some(x), Some(y)) => Some(x + y),
                (x, y) => x.or(y),
            },
            memory_peak_bytes: match (a.memory_peak_bytes, b.memory_peak_bytes) {
                (Some(x), Some(y)) => Some(x.max(y)),
                (x, y) => x.or(y),
            },
        }),
        (a, b) => a.or(b),
    }
}

fn merge_compile(prev: Option<ExecOutput>, next: ExecOutput) -> ExecOutput {
    match prev {
        None => next,
        Some(mut p) => {
            p.stdout.push_str(&next.stdout);
            p.stderr.push_str(&next.stderr);
            p.exit_code = next.exit_code;
            p.timed_out |= next.timed_out;
            p.truncated |= next.truncated;
            p.oom_killed |= next.oom_killed;
            p.duration += next.duration;
            p.usage = total_usage(p.usage, next.usage);
            p
        }
    }
}

/// Output chunks of a run as they arrive; the run goes on in the background until it ends.
/// Chunks are held only up to the output limit, so an unread stream stays small. Dropping the
/// stream before the run ended stops the run: its processes are killed.
#[derive(Debug)]
pub struct RunStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<OutputChunk>,
    task: Option<tokio::task::JoinHandle<Result<RunResult>>>,
}

impl Drop for RunStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            // Dropping the run's future kills what it started (see the exec's kill guard).
            task.abort();
        }
    }
}

impl RunStream {
    /// The next chunk, or `None` once the run has ended and every chunk was read.
    pub async fn next_chunk(&mut self) -> Option<OutputChunk> {
        self.rx.recv().await
    }

    /// Waits for the run to end and returns its result (chunks not yet read are dropped).
    pub async fn result(mut self) -> Result<RunResult> {
        let task = self
            .task
            .take()
            .expect("the run task is there until result()");
        task.await.map_err(|e| Error::join("the run", e))?
    }
}

impl futures_util::Stream for RunStream {
    type Item = OutputChunk;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<OutputChunk>> {
        self.rx.poll_recv(cx)
    }
}
