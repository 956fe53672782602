//! The messages Sandpit and the agent exchange, defined once for both ends.
//!
//! The host sends [`Request`]s, each naming a call it chose; the agent answers with
//! [`Event`]s naming the same call. A call ends with exactly one final event
//! ([`EventBody::is_final`]); a call the host cancelled ends with none. Bytes (process output,
//! standard input, file contents) travel in the frame's payload beside the message, never
//! inside the JSON (see [`crate::frame`]).
//!
//! Three requests do not open a call of their own but act on an open one, named by their
//! `call`: [`Op::WriteData`] (the next bytes of a file being written), [`Op::Credit`] (flow
//! control) and [`Op::Cancel`].

use serde::{Deserialize, Serialize};

/// The protocol's version; the host and the agent must speak the same one.
pub const PROTOCOL_VERSION: u32 = 1;

/// Payload bytes the agent may send for one call (output, file data) before the host grants
/// more with [`Op::Credit`].
pub const INITIAL_WINDOW: u64 = 4 << 20;

/// Bytes of output the agent keeps for a detached process while nobody is attached to it
/// (the oldest are dropped first).
pub const DETACHED_BACKLOG: usize = 1 << 20;

/// Names a call; chosen by the host, unique within one connection.
pub type CallId = u64;

/// Host → agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    /// The call this request opens, or (for `WriteData`, `Credit`, `Cancel`) acts on.
    pub call: CallId,
    /// What to do.
    #[serde(flatten)]
    pub op: Op,
}

/// What the host asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// Opens (or takes over) the connection. Every call of an earlier connection is cancelled:
    /// its processes are killed unless they were spawned `detached`. Answered by
    /// [`EventBody::Hello`].
    Hello(Hello),
    /// Starts a process. Answered by `Started`, then `Output` as it comes, then `Exited`
    /// (final); or by `Error` when it could not start.
    Spawn(Spawn),
    /// Bytes for a process's standard input, in the payload; `eof` closes it after them.
    /// Answered by `Done` once every byte is in the pipe.
    Input(Input),
    /// Sends a signal to a process (and, by scope, what it started). Answered by `Signalled`.
    Signal(SignalProcess),
    /// Sends a signal to every process but the agent (optionally only those of one user),
    /// without starting any process. Answered by `Signalled`.
    SignalAll(SignalAll),
    /// Subscribes to a process's output: `Started`, what was kept while nobody listened, then
    /// `Output` as it comes and `Exited` (final). Cancel the call to detach.
    Attach(Attach),
    /// The processes the agent started and still knows. Answered by `Processes`.
    List,
    /// Makes the sandbox as it was before any code ran (see [`Reset`]). Answered by
    /// `ResetDone`, or `Error` with kind [`ErrorKind::Dirty`].
    Reset(Reset),
    /// What the sandbox uses now. Answered by `Usage`.
    Usage(UsageRequest),
    /// A file operation confined to a root folder. Answered by `File`, `Listing`, `Data` or
    /// `Done` (see [`FileOp`]).
    File(FileRequest),
    /// The next bytes (payload) of the file that call `call` writes; `eof` ends the file.
    WriteData(WriteData),
    /// The host consumed output of call `call`: the agent may send `bytes` more.
    Credit(Credit),
    /// Ends call `call`: a process it spawned is killed (with what it started) unless it was
    /// spawned `detached`; an attach detaches; a file transfer stops. No event follows.
    Cancel,
}

/// Opens a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// [`PROTOCOL_VERSION`] of the host.
    pub version: u32,
    /// Random text echoed in the answer: output before the answer carrying it is not trusted
    /// (a host that attaches to a running agent joins its output stream mid-way).
    pub token: String,
}

/// A process to start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spawn {
    /// Program and arguments; a program without `/` is looked up in the `PATH` of the
    /// resulting environment.
    pub argv: Vec<String>,
    /// Variables set on top of the agent's own environment (the container's).
    #[serde(default)]
    pub env: Vec<(String, String)>,
    /// The working directory (absolute).
    pub cwd: String,
    /// Who runs it.
    pub user: Ids,
    /// Resource limits set in the child before it starts the program.
    #[serde(default)]
    pub rlimits: Vec<Rlimit>,
    /// Where standard input comes from.
    #[serde(default)]
    pub stdin: StdinMode,
    /// Killed (with what it started) after this long; `timed_out` says so.
    #[serde(default)]
    pub timeout_ms: Option<u64>,
    /// Bytes of each stream forwarded; the rest is read and dropped and `truncated` set.
    #[serde(default)]
    pub output_limit: Option<u64>,
    /// Outlives its call: a cancel or a new connection detaches instead of killing.
    #[serde(default)]
    pub detached: bool,
    /// Free text shown by `List`.
    #[serde(default)]
    pub tag: Option<String>,
    /// With `detached`: `Started` is the call's only event, and the output is kept (as for a
    /// detached process nobody follows) for the first `Attach`, from its very first byte.
    #[serde(default)]
    pub start_only: bool,
}

/// A user and group id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ids {
    /// User id.
    pub uid: u32,
    /// Group id (supplementary groups are cleared).
    pub gid: u32,
}

impl Ids {
    /// Root.
    pub const ROOT: Ids = Ids { uid: 0, gid: 0 };
}

/// A resource limit, soft and hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rlimit {
    /// Which one.
    pub resource: RlimitKind,
    /// Its value.
    pub value: u64,
}

/// The resource limits a process can be given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RlimitKind {
    /// Processes of the user (`RLIMIT_NPROC`).
    Nproc,
    /// Open files (`RLIMIT_NOFILE`).
    Nofile,
    /// Largest file written (`RLIMIT_FSIZE`).
    Fsize,
    /// Core dump size (`RLIMIT_CORE`).
    Core,
}

/// Where a process's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StdinMode {
    /// `/dev/null`: a program that reads its input sees the end at once.
    #[default]
    Null,
    /// A pipe fed by [`Op::Input`] until one says `eof`.
    Pipe,
}

/// Bytes for a process's standard input (in the payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input {
    /// The process.
    pub pid: u32,
    /// Close standard input after these bytes.
    #[serde(default)]
    pub eof: bool,
}

/// A signal to one process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalProcess {
    /// The process.
    pub pid: u32,
    /// The signal's number (`libc::SIGKILL`, ...).
    pub signal: i32,
    /// Whom it reaches.
    #[serde(default)]
    pub scope: SignalScope,
}

/// Whom a signal to a process reaches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalScope {
    /// The process alone.
    #[default]
    Process,
    /// The process and everything it started: its descendants, its process group and every
    /// process that inherited its marker, even after a double fork. With `SIGKILL` every one
    /// is stopped first, so nothing forks meanwhile, and the answer comes once they are reaped.
    Tree,
}

/// A signal to every process but the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalAll {
    /// The signal's number.
    pub signal: i32,
    /// Only the processes of this user.
    #[serde(default)]
    pub uid: Option<u32>,
    /// With `SIGKILL`: answer once they are reaped (up to this long), so the process limit has
    /// room again.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// Subscribes to a process's output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attach {
    /// The process.
    pub pid: u32,
}

/// Makes a sandbox that ran code as it was before: every process but the agent killed and
/// reaped, the contents of every writable folder removed, System V IPC objects and POSIX
/// message queues removed, then checked. Anything left, or a reset past `timeout_ms`, is an
/// error of kind [`ErrorKind::Dirty`], and the sandbox must not be used again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reset {
    /// Folders (mount points) whose contents are removed; the folders themselves stay, with
    /// their owner and mode.
    pub clear: Vec<String>,
    /// The longest the whole reset may take.
    pub timeout_ms: u64,
}

/// What a reset did.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ResetReport {
    /// Processes killed.
    pub killed: u32,
    /// Entries (files, folders, links) removed.
    pub removed: u64,
    /// IPC objects removed.
    pub ipc_removed: u32,
    /// How long it took.
    pub duration_ms: u64,
}

/// Asks what the sandbox uses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageRequest {
    /// The folder whose filesystem's use is reported.
    pub workdir: String,
}

/// What the sandbox uses now; `None` where the sandbox cannot tell (no cgroup inside, as under
/// gVisor).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Usage {
    /// CPU time of the whole sandbox.
    pub cpu_ns: Option<u64>,
    /// Memory in use, without inactive page cache.
    pub memory_bytes: Option<u64>,
    /// The most memory used.
    pub memory_peak_bytes: Option<u64>,
    /// The memory limit.
    pub memory_limit_bytes: Option<u64>,
    /// Processes and threads.
    pub pids: Option<u64>,
    /// Out-of-memory kills so far.
    pub oom_kills: Option<u64>,
    /// Bytes used on the workdir's filesystem.
    pub disk_used_bytes: Option<u64>,
    /// The size of the workdir's filesystem.
    pub disk_size_bytes: Option<u64>,
    /// Bytes received over the network (loopback excluded).
    pub net_rx_bytes: u64,
    /// Bytes sent over the network (loopback excluded).
    pub net_tx_bytes: u64,
}

/// A file operation, as `user`, confined to `root`: every path is resolved by the kernel
/// beneath `root` (`openat2` with `RESOLVE_BENEATH` where the kernel has it), so no `..` and no
/// symlink leads out of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRequest {
    /// The folder every path is relative to (absolute).
    pub root: String,
    /// Whose permissions apply.
    pub user: Ids,
    /// What to do.
    #[serde(flatten)]
    pub op: FileOp,
}

/// The file operations. Paths are relative to the request's root; `""` or `"."` is the root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "file", rename_all = "snake_case")]
pub enum FileOp {
    /// A file's bytes: `Data` events, the last with `eof`.
    Read {
        /// The file.
        path: String,
    },
    /// Creates or replaces a file with the bytes of the `WriteData` requests that follow;
    /// answered by `File` once the last (`eof`) is written.
    Write {
        /// The file.
        path: String,
        /// Permission bits; default 0o644 for a new file, kept for an existing one.
        #[serde(default)]
        mode: Option<u32>,
        /// Make missing parent folders.
        #[serde(default)]
        parents: bool,
    },
    /// What is at a path (a symlink is described, not followed). Answered by `File`.
    Stat {
        /// The path.
        path: String,
    },
    /// A folder's entries, sorted by path. Answered by `Listing` batches, the last with `done`.
    List {
        /// The folder.
        path: String,
        /// 1: the folder's own entries; `None`: everything below.
        #[serde(default)]
        depth: Option<u32>,
    },
    /// Makes a folder and its missing parents; one that exists is fine. Answered by `File`.
    Mkdir {
        /// The folder.
        path: String,
    },
    /// Renames; `to` must not exist. Answered by `File` (of `to`).
    Move {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Copies a file or folder with its modes; `to` must not exist. Answered by `File`.
    Copy {
        /// From.
        from: String,
        /// To.
        to: String,
    },
    /// Changes the owner of the path itself (a symlink is not followed), the root included.
    /// Answered by `File`.
    Chown {
        /// The path.
        path: String,
        /// The new owner.
        uid: u32,
        /// The new group.
        gid: u32,
    },
    /// Removes a file, or a folder with everything in it (never the root). Answered by `Done`.
    Remove {
        /// The path.
        path: String,
    },
}

/// The next bytes of a file being written (in the payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteData {
    /// The last bytes of the file.
    #[serde(default)]
    pub eof: bool,
}

/// More room for a call's payload bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credit {
    /// Bytes.
    pub bytes: u64,
}

/// Agent → host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The call it answers.
    pub call: CallId,
    /// What happened.
    #[serde(flatten)]
    pub body: EventBody,
}

/// What the agent tells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "ev", rename_all = "snake_case")]
pub enum EventBody {
    /// The connection is open.
    Hello(HelloReply),
    /// The process runs (answers `Spawn` and `Attach`).
    Started {
        /// Its pid in the sandbox.
        pid: u32,
    },
    /// Output of a process (payload).
    Output {
        /// The process.
        pid: u32,
        /// Which stream.
        stream: Stream,
    },
    /// A process ended.
    Exited(Exit),
    /// The processes the agent knows.
    Processes {
        /// One per process.
        processes: Vec<ProcessInfo>,
    },
    /// Signals sent.
    Signalled {
        /// Processes reached.
        count: u32,
        /// With a wait: processes still not reaped when it ran out.
        #[serde(default)]
        left: u32,
    },
    /// A reset finished and found the sandbox clean.
    ResetDone(ResetReport),
    /// What the sandbox uses.
    Usage(Usage),
    /// One file's description.
    File(FileInfo),
    /// A folder's entries, in batches; the last batch has `done`.
    Listing {
        /// The entries of this batch.
        entries: Vec<FileInfo>,
        /// The last batch.
        done: bool,
    },
    /// File bytes (payload); `eof` ends the read.
    Data {
        /// The last bytes.
        eof: bool,
    },
    /// The call succeeded and has nothing else to say.
    Done,
    /// The call failed.
    Error(AgentError),
}

impl EventBody {
    /// True for the events that end a call.
    pub fn is_final(&self) -> bool {
        match self {
            EventBody::Started { .. } | EventBody::Output { .. } => false,
            EventBody::Data { eof } => *eof,
            EventBody::Listing { done, .. } => *done,
            _ => true,
        }
    }
}

/// The answer to `Hello`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HelloReply {
    /// [`PROTOCOL_VERSION`] of the agent.
    pub version: u32,
    /// The host's token, echoed.
    pub token: String,
    /// The agent's own version (its crate version).
    pub agent_version: String,
    /// True when the kernel resolves paths with `openat2` (else the agent walks them itself,
    /// one component at a time, never following a symlink out).
    pub openat2: bool,
    /// Processes still known from earlier connections (detached ones).
    pub processes: Vec<ProcessInfo>,
}

/// Standard output or standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// How a process ended.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Exit {
    /// The process.
    pub pid: u32,
    /// Its exit status, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did.
    pub signal: Option<i32>,
    /// It ran past its timeout and was killed.
    pub timed_out: bool,
    /// Output passed the limit and the rest was dropped.
    pub truncated: bool,
    /// The memory cgroup's out-of-memory killer ended it.
    pub oom_killed: bool,
    /// User and system CPU time of the process and of the children it waited for.
    pub cpu_ns: u64,
    /// The largest resident set of the process or a child it waited for.
    pub max_rss_bytes: u64,
    /// Wall time from start to end.
    pub duration_ms: u64,
}

/// A process the agent started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    /// Its pid in the sandbox.
    pub pid: u32,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// The variables it was given on top of the container's.
    pub env: Vec<(String, String)>,
    /// Its working directory.
    pub cwd: String,
    /// Who runs it.
    pub user: Ids,
    /// The tag it was given.
    pub tag: Option<String>,
    /// Spawned `detached`.
    pub detached: bool,
    /// Its standard input is an open pipe.
    pub stdin_open: bool,
    /// Still running; an ended one is listed until its `Exited` was delivered to a subscriber.
    pub running: bool,
}

/// A file, folder or link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// Its path relative to the request's root (`""` for the root).
    pub path: String,
    /// Its name.
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Bytes.
    pub size: u64,
    /// Permission bits (`0o7777` at most).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Last modification, nanoseconds since the epoch.
    pub mtime_ns: i64,
    /// Where a symlink points (as written in it).
    #[serde(default)]
    pub symlink_target: Option<String>,
}

/// What a path is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link.
    Symlink,
    /// Anything else (FIFO, socket, device).
    Other,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentError {
    /// What kind of failure, for the host to act on.
    pub kind: ErrorKind,
    /// What happened, in words for a person.
    pub message: String,
    /// The OS error number behind it, when there is one.
    #[serde(default)]
    pub errno: Option<i32>,
}

/// Kinds of failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// No such path, process or call.
    NotFound,
    /// The path exists already.
    Exists,
    /// A folder was needed.
    NotADirectory,
    /// A file was needed.
    IsADirectory,
    /// The path leads out of the root (`..`, an absolute symlink, a symlink out).
    Outside,
    /// The user may not do that.
    PermissionDenied,
    /// The filesystem is full.
    NoSpace,
    /// No process could be started (the process or memory limit is full).
    CannotStart,
    /// The program could not be executed (not found, not executable, bad format).
    CannotExec,
    /// A reset could not make the sandbox clean, or took too long.
    Dirty,
    /// The request cannot be understood (bad frame, unknown operation, bad argument).
    InvalidRequest,
    /// The agent has too much in flight for this call (e.g. unwritten standard input).
    Busy,
    /// Any other failure of the operating system.
    Io,
}
