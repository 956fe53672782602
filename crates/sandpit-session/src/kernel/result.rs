//! What `execute` returns, and how it is assembled from the kernel's frames.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::Serialize;

use crate::capped::Capped;
use crate::output::{OutputChunk, OutputSink, StreamKind};

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

/// The outcome of [`crate::SandboxSession::execute`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExecuteResult {
    /// Displayed values: the last expression's value, `display()` calls, figures.
    pub results: Vec<MimeBundle>,
    /// Which of `results` is the code's own value (its last expression), when it has one; the
    /// others came from `display()` calls and figures.
    pub main_result: Option<usize>,
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

/// Builds an [`ExecuteResult`] from frames.
pub(crate) struct Accumulator {
    pub(crate) results: Vec<MimeBundle>,
    pub(crate) main_result: Option<usize>,
    pub(crate) stdout: Capped,
    pub(crate) stderr: Capped,
    /// The kernel itself dropped output past the limit.
    pub(crate) kernel_truncated: bool,
    pub(crate) error: Option<ExecutionError>,
    pub(crate) timed_out: bool,
    pub(crate) state_lost: bool,
    pub(crate) kernel_started: bool,
    pub(crate) sink: Option<OutputSink>,
}

impl Accumulator {
    pub(crate) fn new(limit: usize, sink: Option<OutputSink>) -> Self {
        Accumulator {
            results: Vec::new(),
            main_result: None,
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
    pub(crate) fn take(&mut self, v: serde_json::Value) -> bool {
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
                    if v["main"] == true {
                        self.main_result = Some(self.results.len());
                    }
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

    pub(crate) fn died(mut self, why: String, started: Instant) -> ExecuteResult {
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

    pub(crate) fn finish(self, started: Instant) -> ExecuteResult {
        ExecuteResult {
            results: self.results,
            main_result: self.main_result,
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
