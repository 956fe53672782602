//! Result shapes of commands and runs.

use std::sync::Arc;
use std::time::Duration;

use serde::{Serialize, Serializer};

pub use sandpit_engine::StreamKind;

/// Output as it arrives, before the command ends. Chunks hold raw bytes: a multi-byte UTF-8
/// character may be split between two chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputChunk {
    /// Where it came from.
    pub stream: StreamKind,
    /// The bytes.
    pub data: Vec<u8>,
}

impl OutputChunk {
    /// The bytes as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.data).into_owned()
    }
}

/// Receives output chunks as they arrive (only bytes within the output limit).
#[derive(Clone)]
pub struct OutputSink(pub(crate) Arc<dyn Fn(OutputChunk) + Send + Sync>);

impl OutputSink {
    /// A sink calling `f` for each chunk.
    pub fn new(f: impl Fn(OutputChunk) + Send + Sync + 'static) -> Self {
        OutputSink(Arc::new(f))
    }

    pub(crate) fn send(&self, chunk: OutputChunk) {
        (self.0)(chunk)
    }
}

impl std::fmt::Debug for OutputSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OutputSink")
    }
}

/// The outcome of one command in the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExecOutput {
    /// Standard output (lossy UTF-8), capped at the session's output limit.
    pub stdout: String,
    /// Standard error (lossy UTF-8), capped at the session's output limit.
    pub stderr: String,
    /// The exit code; 137 when killed (timeout).
    pub exit_code: i64,
    /// True when the command ran past its timeout and was killed.
    pub timed_out: bool,
    /// True when stdout or stderr passed the output limit and the rest was dropped.
    pub truncated: bool,
    /// True when the kernel killed the command for using more memory than the session allows.
    pub oom_killed: bool,
    /// Wall time from start to exit.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// CPU time and memory peak, where the sandbox shows them.
    #[serde(flatten, serialize_with = "usage_fields")]
    pub usage: Option<RunUsage>,
}

/// What a command used: CPU time, and the memory peak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunUsage {
    /// CPU time the sandbox used while the command ran (all its processes), when the sandbox's
    /// cgroup shows it (not under gVisor).
    pub cpu: Option<Duration>,
    /// The sandbox's memory peak so far, this command included, in bytes.
    pub memory_peak_bytes: Option<u64>,
}

fn usage_fields<S: Serializer>(usage: &Option<RunUsage>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let usage = usage.unwrap_or_default();
    let mut map = s.serialize_map(Some(2))?;
    map.serialize_entry("cpu_ms", &usage.cpu.map(|d| d.as_millis() as u64))?;
    map.serialize_entry("memory_peak_bytes", &usage.memory_peak_bytes)?;
    map.end()
}

impl ExecOutput {
    /// True for exit code 0 within the timeout.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out
    }
}

/// The outcome of running code: the run itself, and the compile step for compiled languages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunResult {
    /// The program's standard output.
    pub stdout: String,
    /// The program's standard error (for a compile failure: empty; see `compile`).
    pub stderr: String,
    /// The program's exit code; the compiler's when compilation failed.
    pub exit_code: i64,
    /// True when the program (or compiler) ran past its timeout and was killed.
    pub timed_out: bool,
    /// True when output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// True when the kernel killed the program (or compiler) for using too much memory (exit code 137).
    pub oom_killed: bool,
    /// Wall time of the whole run, compile included.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    /// The compile step, for languages that compile; `None` otherwise.
    pub compile: Option<ExecOutput>,
    /// Files the run produced for the caller, such as captured plots (see `RunOptions::capture_plots`).
    pub artifacts: Vec<Artifact>,
    /// CPU time (compile included) and memory peak, where the sandbox shows them.
    #[serde(flatten, serialize_with = "usage_fields")]
    pub usage: Option<RunUsage>,
}

/// A file a run produced, such as a plot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Artifact {
    /// File name, e.g. `figure-1.png`.
    pub name: String,
    /// Mime type, e.g. `image/png`.
    pub mime: String,
    /// The bytes (base64 in JSON).
    #[serde(rename = "data_base64", serialize_with = "base64_bytes")]
    pub data: Vec<u8>,
}

fn base64_bytes<S: Serializer>(data: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use base64::Engine as _;
    s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(data))
}

impl RunResult {
    /// True when compilation (if any) and the program both succeeded.
    pub fn success(&self) -> bool {
        self.exit_code == 0 && !self.timed_out && self.compile.as_ref().is_none_or(|c| c.success())
    }

    /// True when a compile step failed, so the program did not run.
    pub fn compile_failed(&self) -> bool {
        self.compile.as_ref().is_some_and(|c| !c.success())
    }
}

pub(crate) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}
