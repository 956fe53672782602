//! The requests and answers every transport shares (HTTP bodies, MCP tool arguments, function
//! calling tools), with their JSON Schemas derived from the types themselves.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A size: bytes, or text such as `512m` or `1g`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Size {
    /// Bytes.
    Bytes(u64),
    /// A number with `k`, `m` or `g`.
    Text(String),
}

impl Size {
    /// The size in bytes.
    pub fn bytes(&self, what: &str) -> Result<u64, String> {
        match self {
            Size::Bytes(n) => Ok(*n),
            Size::Text(t) => crate::parse_size(t)
                .map(|n| n as u64)
                .map_err(|e| format!("{what}: {e}")),
        }
    }
}

/// `POST /v1/sessions`: a new session (or, with a `name` the key holds already, that one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// python, java, javascript, cpp, go or ruby (aliases such as py, js, c++ work); with
    /// `from_snapshot` it may be left out (the snapshot's language).
    #[serde(default)]
    pub language: String,
    /// A name unique for the key: asking again for the same name returns the same session.
    #[serde(default)]
    pub name: Option<String>,
    /// An image instead of the language's default.
    #[serde(default)]
    pub image: Option<String>,
    /// Libraries installed before any code runs.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Environment variables for everything that runs.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// `none` (default) or `bridge`.
    #[serde(default)]
    pub network: Option<String>,
    /// Memory limit (default 512m).
    #[serde(default)]
    pub memory: Option<Size>,
    /// CPUs (default 1).
    #[serde(default)]
    pub cpus: Option<f64>,
    /// Most processes at once (default 256).
    #[serde(default)]
    pub max_processes: Option<i64>,
    /// Disk in the workdir (default 1g).
    #[serde(default)]
    pub disk: Option<Size>,
    /// strict, standard (default) or permissive.
    #[serde(default)]
    pub policy: Option<String>,
    /// An OCI runtime the engine offers (runsc for gVisor).
    #[serde(default)]
    pub runtime: Option<String>,
    /// The session's lifetime in seconds (default 6 h).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Seconds without a call before the session closes (default 30 min).
    #[serde(default)]
    pub idle_timeout: Option<u64>,
    /// Default timeout of each run, command and execute, in seconds (default 60).
    #[serde(default)]
    pub run_timeout: Option<f64>,
    /// The caller's own labels, for listing and finding sessions.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The working folder, an absolute path (default `/sandbox`): the session's disk, where
    /// files go and code runs.
    #[serde(default)]
    pub workdir: Option<String>,
    /// Open from this snapshot: its files, libraries and environment.
    #[serde(default)]
    pub from_snapshot: Option<String>,
    /// In a cluster: open it on this node (by name).
    #[serde(default)]
    pub node: Option<String>,
    /// In a cluster: open it on a node carrying all these labels.
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
}

/// `PATCH /v1/sessions/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateSession {
    /// Expire this many seconds from now (E2B's `set_timeout`).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// A new idle timeout in seconds.
    #[serde(default)]
    pub idle_timeout: Option<u64>,
    /// Metadata merged into the session's.
    #[serde(default)]
    pub metadata: Option<BTreeMap<String, String>>,
}

/// What a session uses now.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct UsageInfo {
    /// CPU time since it opened.
    pub cpu_seconds: f64,
    /// Memory in use now.
    pub memory_bytes: u64,
    /// The most memory used since it opened.
    pub memory_peak_bytes: Option<u64>,
    /// The memory limit.
    pub memory_limit_bytes: u64,
    /// Processes and threads now.
    pub pids: u64,
    /// Bytes used in the workdir.
    pub disk_used_bytes: u64,
    /// The workdir's size limit.
    pub disk_limit_bytes: Option<u64>,
    /// Bytes received over the network.
    pub net_rx_bytes: u64,
    /// Bytes sent over the network.
    pub net_tx_bytes: u64,
}

impl From<crate::SessionUsage> for UsageInfo {
    fn from(u: crate::SessionUsage) -> Self {
        UsageInfo {
            cpu_seconds: (u.cpu.as_secs_f64() * 1000.0).round() / 1000.0,
            memory_bytes: u.memory_bytes,
            memory_peak_bytes: u.memory_peak_bytes,
            memory_limit_bytes: u.memory_limit_bytes,
            pids: u.pids,
            disk_used_bytes: u.disk_used_bytes,
            disk_limit_bytes: u.disk_limit_bytes,
            net_rx_bytes: u.net_rx_bytes,
            net_tx_bytes: u.net_tx_bytes,
        }
    }
}

/// A session as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionInfo {
    /// Its id.
    pub id: String,
    /// Its name, when it has one.
    pub name: Option<String>,
    /// Its language.
    pub language: String,
    /// The image it runs.
    pub image: String,
    /// `running` or `paused`.
    pub state: String,
    /// The OCI runtime, when not the engine's default.
    pub runtime: Option<String>,
    /// `none` or `bridge`.
    pub network: String,
    /// When it opened (RFC 3339).
    pub created_at: String,
    /// When it closes (RFC 3339).
    pub expires_at: String,
    /// Seconds without a call before it closes.
    pub idle_timeout: u64,
    /// Default timeout of each run, command and execute, in seconds.
    pub run_timeout: f64,
    /// The last call (RFC 3339).
    pub last_used_at: String,
    /// The caller's metadata.
    pub metadata: BTreeMap<String, String>,
    /// Libraries installed in it.
    pub libraries: Vec<String>,
    /// What it uses now (on `GET /v1/sessions/{id}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub usage: Option<UsageInfo>,
    /// How it was restored, on the answer to `POST /v1/sessions` with `from_snapshot`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub restored: Option<RestoredFrom>,
    /// In a cluster, the node that owns it.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub node: Option<String>,
}

/// How a session opened with `from_snapshot` was restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoredFrom {
    /// The snapshot's name.
    pub snapshot: String,
    /// Regular files written back into the workdir (modes kept).
    pub files: u64,
    /// Bytes of file content written back.
    pub content_bytes: u64,
    /// Libraries installed again.
    pub libraries: Vec<String>,
    /// The memory of processes is not part of a snapshot: the kernel starts empty.
    pub kernel_state: String,
    /// Milliseconds the restore took, opening the session included.
    pub duration_ms: u64,
}

/// `GET /v1/sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SessionList {
    /// The key's sessions.
    pub sessions: Vec<SessionInfo>,
}

/// `POST /v1/sessions/{id}/execute`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteRequest {
    /// Code for the session's kernel; variables, imports and functions stay for the next call.
    pub code: String,
    /// Seconds before the code is interrupted (default: the session's run timeout).
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// An exception raised by the code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ExecutionErrorInfo {
    /// The exception's type, e.g. `ZeroDivisionError`.
    pub name: String,
    /// Its message.
    pub value: String,
    /// The traceback, one line per entry.
    pub traceback: Vec<String>,
}

/// What a kernel call returns, notebook-shaped.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExecuteResponse {
    /// Mime bundles: the last value, display() calls, every figure created or changed (PNG,
    /// base64 in `image/png`).
    pub results: Vec<BTreeMap<String, serde_json::Value>>,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exception, if the code raised one.
    pub error: Option<ExecutionErrorInfo>,
    /// The code ran past its timeout and was interrupted.
    pub timed_out: bool,
    /// Output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// The kernel's state is gone (it died, or was restarted).
    pub state_lost: bool,
    /// This call started a fresh kernel.
    pub kernel_started: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl From<crate::ExecuteResult> for ExecuteResponse {
    fn from(r: crate::ExecuteResult) -> Self {
        ExecuteResponse {
            results: r.results.into_iter().map(|b| b.0).collect(),
            stdout: r.stdout,
            stderr: r.stderr,
            error: r.error.map(|e| ExecutionErrorInfo {
                name: e.name,
                value: e.value,
                traceback: e.traceback,
            }),
            timed_out: r.timed_out,
            truncated: r.truncated,
            state_lost: r.state_lost,
            kernel_started: r.kernel_started,
            duration_ms: r.duration.as_millis() as u64,
        }
    }
}

/// `POST /v1/sessions/{id}/run`: one program in the session.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    /// The program's source.
    pub code: String,
    /// Libraries to install first (once per session).
    #[serde(default)]
    pub libraries: Vec<String>,
    /// The program's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Command-line arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds before the program is killed (compile included).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Extra environment variables for this run.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `POST /v1/run`: one program in a fresh sandbox.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OneShotRequest {
    /// python, java, javascript, cpp, go or ruby.
    pub language: String,
    /// The program's source.
    pub code: String,
    /// Libraries to install first.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// The program's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Command-line arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// Seconds before the program is killed (compile included; default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// A sandbox no earlier run used, even where the server serves a key's runs from sandboxes
    /// its earlier runs used (reset in between).
    #[serde(default)]
    pub fresh: bool,
}

/// One step's outcome: a command, or a compile step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StepResponse {
    /// Standard output (UTF-8, lossy).
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code (137: killed).
    pub exit_code: i64,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// Output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// It was killed for using more memory than allowed.
    pub oom_killed: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
    /// CPU time in milliseconds, where the sandbox shows it.
    pub cpu_ms: Option<u64>,
    /// The session's memory peak so far, in bytes.
    pub memory_peak_bytes: Option<u64>,
}

impl From<crate::ExecOutput> for StepResponse {
    fn from(o: crate::ExecOutput) -> Self {
        let usage = o.usage.unwrap_or_default();
        StepResponse {
            stdout: o.stdout,
            stderr: o.stderr,
            exit_code: o.exit_code,
            timed_out: o.timed_out,
            truncated: o.truncated,
            oom_killed: o.oom_killed,
            duration_ms: o.duration.as_millis() as u64,
            cpu_ms: usage.cpu.map(|d| d.as_millis() as u64),
            memory_peak_bytes: usage.memory_peak_bytes,
        }
    }
}

/// A file a run produced (a captured figure).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArtifactInfo {
    /// File name.
    pub name: String,
    /// Mime type.
    pub mime: String,
    /// The bytes, base64.
    pub data_base64: String,
}

/// What a run returns (the CLI's `--json` shape).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResponse {
    /// The program's standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// Its exit code; the compiler's when compiling failed.
    pub exit_code: i64,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// Output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// It was killed for using more memory than allowed.
    pub oom_killed: bool,
    /// Wall time in milliseconds, compile included.
    pub duration_ms: u64,
    /// The compile step, for compiled languages.
    pub compile: Option<StepResponse>,
    /// Captured figures.
    pub artifacts: Vec<ArtifactInfo>,
    /// CPU time in milliseconds, where the sandbox shows it.
    pub cpu_ms: Option<u64>,
    /// The session's memory peak so far, in bytes.
    pub memory_peak_bytes: Option<u64>,
}

impl From<crate::RunResult> for RunResponse {
    fn from(r: crate::RunResult) -> Self {
        use base64::Engine as _;
        let usage = r.usage.unwrap_or_default();
        RunResponse {
            stdout: r.stdout,
            stderr: r.stderr,
            exit_code: r.exit_code,
            timed_out: r.timed_out,
            truncated: r.truncated,
            oom_killed: r.oom_killed,
            duration_ms: r.duration.as_millis() as u64,
            compile: r.compile.map(StepResponse::from),
            artifacts: r
                .artifacts
                .into_iter()
                .map(|a| ArtifactInfo {
                    name: a.name,
                    mime: a.mime,
                    data_base64: base64::engine::general_purpose::STANDARD.encode(a.data),
                })
                .collect(),
            cpu_ms: usage.cpu.map(|d| d.as_millis() as u64),
            memory_peak_bytes: usage.memory_peak_bytes,
        }
    }
}

/// `POST /v1/sessions/{id}/commands`: one shell command as the sandbox user.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// The command line, run by `sh -c` in the workdir.
    pub command: String,
    /// Seconds before it is killed.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Its standard input.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// `POST /v1/sessions/{id}/processes`: a process that runs in the background, beyond the call
/// that starts it (a server, a watcher, a long build).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StartProcess {
    /// Program and arguments, run without a shell; give this or `command`.
    #[serde(default)]
    pub argv: Vec<String>,
    /// A command line, run by `sh -c`; give this or `argv`.
    #[serde(default)]
    pub command: Option<String>,
    /// Extra environment variables.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Its working folder (absolute); default the workdir.
    #[serde(default)]
    pub cwd: Option<String>,
    /// Keep its standard input open, to write to it later; otherwise it reads an empty input.
    #[serde(default)]
    pub stdin: bool,
    /// Free text shown in the listing.
    #[serde(default)]
    pub tag: Option<String>,
    /// Seconds after which it is killed, with what it started; none: it runs until it ends,
    /// is signalled, or the session closes.
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// A background process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessEntry {
    /// Its id in the sandbox.
    pub pid: u32,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Its working folder.
    pub cwd: String,
    /// Its tag.
    pub tag: Option<String>,
    /// Still running (an ended one is listed until its end was read once).
    pub running: bool,
    /// Its standard input is open.
    pub stdin_open: bool,
}

impl From<crate::ProcessInfo> for ProcessEntry {
    fn from(p: crate::ProcessInfo) -> Self {
        ProcessEntry {
            pid: p.pid,
            argv: p.argv,
            cwd: p.cwd,
            tag: p.tag,
            running: p.running,
            stdin_open: p.stdin_open,
        }
    }
}

/// `GET /v1/sessions/{id}/processes`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessList {
    /// The session's background processes.
    pub processes: Vec<ProcessEntry>,
}

/// `POST /v1/sessions/{id}/processes/{pid}/stdin`: text for its standard input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessInput {
    /// The text.
    #[serde(default)]
    pub data: String,
    /// Close its standard input after the text (it reads the end).
    #[serde(default)]
    pub eof: bool,
}

/// `POST /v1/sessions/{id}/processes/{pid}/signal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProcessSignal {
    /// `term`, `kill` (with everything it started), `int`, `hup`, `quit`, `usr1`, `usr2`,
    /// `stop` or `cont`.
    #[schemars(with = "String")]
    pub signal: crate::Signal,
}

/// How a background process ended (the last event of its output stream).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ProcessEnd {
    /// Its exit code as a shell gives it (128 + the signal when one ended it).
    pub exit_code: i64,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// The memory limit's killer ended it.
    pub oom_killed: bool,
    /// Wall time in milliseconds.
    pub duration_ms: u64,
}

impl From<crate::ProcessExit> for ProcessEnd {
    fn from(e: crate::ProcessExit) -> Self {
        ProcessEnd {
            exit_code: e.exit_code,
            signal: e.signal,
            timed_out: e.timed_out,
            oom_killed: e.oom_killed,
            duration_ms: e.duration.as_millis() as u64,
        }
    }
}

/// One file or folder in the workdir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileEntry {
    /// Its name.
    pub name: String,
    /// Its path relative to the workdir.
    pub path: String,
    /// `file`, `dir`, `symlink` or `other`.
    pub kind: String,
    /// Bytes.
    pub size: u64,
    /// Permission bits, octal (`644`).
    pub mode: String,
    /// Last modified (RFC 3339).
    pub modified: String,
}

impl From<crate::FileInfo> for FileEntry {
    fn from(f: crate::FileInfo) -> Self {
        FileEntry {
            name: f.name,
            path: f.path,
            kind: kind_name(f.kind).into(),
            size: f.size,
            mode: format!("{:o}", f.mode),
            modified: crate::time::rfc3339(f.modified),
        }
    }
}

/// A file kind's name in the API: `file`, `dir`, `symlink` or `other`.
pub fn kind_name(kind: crate::FileKind) -> &'static str {
    match kind {
        crate::FileKind::File => "file",
        crate::FileKind::Dir => "dir",
        crate::FileKind::Symlink => "symlink",
        crate::FileKind::Other => "other",
    }
}

/// A listing of files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct FileList {
    /// The entries.
    pub files: Vec<FileEntry>,
}

/// `GET /v1/sessions/{id}/files?path=&recursive=&pattern=`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFiles {
    /// The folder, relative to the workdir (default: the workdir).
    #[serde(default)]
    pub path: Option<String>,
    /// Everything below, not just the folder's own entries.
    #[serde(default)]
    pub recursive: Option<bool>,
    /// A glob the names must match (`*.csv`; `**/x` across folders).
    #[serde(default)]
    pub pattern: Option<String>,
}

/// What a file operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileOpKind {
    /// Copies `path` to `to`.
    Copy,
    /// Moves (renames) `path` to `to`; `rename` is the same.
    #[serde(alias = "rename")]
    Move,
    /// Makes the folder `path`, with its parents.
    Mkdir,
    /// Says what is at `path`.
    Info,
}

impl FileOpKind {
    /// Its name in a request.
    pub fn name(self) -> &'static str {
        match self {
            FileOpKind::Copy => "copy",
            FileOpKind::Move => "move",
            FileOpKind::Mkdir => "mkdir",
            FileOpKind::Info => "info",
        }
    }
}

/// `POST /v1/sessions/{id}/files/ops`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOp {
    /// `copy`, `move` (or `rename`), `mkdir` or `info`.
    pub op: FileOpKind,
    /// The file or folder.
    pub path: String,
    /// The destination, for copy and move.
    #[serde(default)]
    pub to: Option<String>,
}

/// `POST /v1/sessions/{id}/packages`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallPackages {
    /// Packages, optionally with a version the installer understands (`six==1.16.0`,
    /// `ms@2.1.3`).
    #[serde(default)]
    pub packages: Vec<String>,
    /// Upgrade to the newest versions.
    #[serde(default)]
    pub upgrade: bool,
    /// A requirements file's text (Python).
    #[serde(default)]
    pub requirements: Option<String>,
}

/// What an install did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Installed {
    /// The packages handed to the installer.
    pub installed: Vec<String>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PackageEntry {
    /// Its name.
    pub name: String,
    /// Its version, where known.
    pub version: Option<String>,
}

/// `GET /v1/sessions/{id}/packages`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PackageList {
    /// The installed packages.
    pub packages: Vec<PackageEntry>,
}

/// A session's environment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EnvVars {
    /// Variable name to value.
    pub env: BTreeMap<String, String>,
}

/// The engine behind the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct EngineHealth {
    /// `docker` or `podman`.
    pub kind: String,
    /// Its version.
    pub version: String,
    /// The API version negotiated.
    pub api_version: String,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: String,
    /// The engine, when it answers.
    pub engine: Option<EngineHealth>,
    /// Sandpit's version.
    pub version: String,
    /// Sessions open.
    pub sessions: usize,
    /// Why the engine does not answer.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<String>,
}

/// Every error's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// The kind: `invalid_input`, `unauthorized`, `refused`, `not_found`, `conflict`, `gone`,
    /// `too_large`, `exhausted`, `internal`, `unsupported`, `engine_unavailable`, `timeout`.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
}
