//! The one error type of the session crate, and the kinds callers map to statuses.

use std::path::PathBuf;
use std::time::Duration;

use sandpit_engine::{EngineError, EngineErrorKind};

/// Result alias used throughout Sandpit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What kind of failure an [`Error`] is: what a server turns into a status code, an MCP
/// server into a tool error, a command line into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller asked for something malformed or impossible (bad path, bad library name).
    InvalidInput,
    /// What was asked for does not exist (image, file).
    NotFound,
    /// It exists already, or is in a state that forbids the call.
    Conflict,
    /// The session is closed, or its container was removed or killed.
    Gone,
    /// An operation took longer than allowed.
    Timeout,
    /// A limit was reached: a pool is exhausted, the sandbox can start no more processes.
    Exhausted,
    /// The session's security policy forbids it.
    Refused,
    /// The engine or runtime cannot do this at all.
    Unsupported,
    /// The container engine is out of reach.
    EngineUnavailable,
    /// A failure inside Sandpit or the engine.
    Internal,
}

impl ErrorKind {
    /// The kind's name as it appears in JSON error bodies (`invalid_input`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Refused => "refused",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::EngineUnavailable => "engine_unavailable",
            ErrorKind::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Everything that can go wrong while talking to the engine or running code.
///
/// Each engine operation has its own variant holding the engine's error, so a message always
/// says which step failed; [`Error::kind`] classifies it for callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine did not answer (socket missing, connection refused, no reply in time).
    #[error("cannot reach the container engine: {reason}. Start the engine or point DOCKER_HOST at one that runs")]
    EngineUnreachable {
        /// What the connection attempt reported, with the endpoint.
        reason: String,
    },
    /// The TLS handshake with a remote engine failed.
    #[error("TLS connection to the container engine failed: {reason}. Check that the CA certificate signed the engine's certificate and that the client certificate and key belong together")]
    Tls {
        /// What the TLS layer reported, with the endpoint.
        reason: String,
    },
    /// Connection settings that cannot work (bad DOCKER_HOST, missing certificate files).
    #[error("invalid connection settings: {0}")]
    InvalidConnection(String),
    /// The engine could not say what it is and can do.
    #[error("asking the container engine what it can do failed: {0}")]
    Info(EngineError),
    /// An image is neither local nor pullable.
    #[error("image {image} is not in the engine and could not be pulled ({reason}); build or load it, or choose another image")]
    ImageNotFound {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        reason: String,
    },
    /// Inspecting an image failed for a reason other than absence.
    #[error("inspecting image {image} failed: {cause}")]
    InspectImage {
        /// The image reference.
        image: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// A Dockerfile build failed.
    #[error("building image {image} failed: {message}")]
    BuildImage {
        /// The tag being built.
        image: String,
        /// The last error line of the build output.
        message: String,
    },
    /// The Debian base image could not be made.
    #[error("cannot provide the base image {image}: {reason}")]
    BaseImage {
        /// The base image reference.
        image: String,
        /// What is missing and what to do.
        reason: String,
    },
    /// Listing images failed.
    #[error("listing images failed: {0}")]
    ListImages(EngineError),
    /// Removing an image failed.
    #[error("removing image {image} failed: {cause}")]
    RemoveImage {
        /// The image reference.
        image: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Creating the session's container failed.
    #[error("creating the sandbox container from {image} failed: {cause}")]
    CreateContainer {
        /// The image reference.
        image: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Starting the session's container failed.
    #[error("starting sandbox container {container} failed: {cause}")]
    StartContainer {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// The engine could not start a process in the sandbox (most often: the sandbox holds as
    /// many processes as its limit allows). Never reported as program output.
    #[error("the engine could not start a process in sandbox container {container}: {reason}")]
    ExecStart {
        /// Container name.
        container: String,
        /// The engine's or runtime's message.
        reason: String,
    },
    /// Attaching to the sandbox's agent (its main process) failed at the engine.
    #[error("connecting to the agent of sandbox container {container} failed: {cause}")]
    Attach {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// The agent inside the sandbox could not be reached or spoke out of turn (it could not
    /// start in the image, or the channel to it broke).
    #[error("the agent of sandbox container {container} {reason}")]
    Agent {
        /// Container name.
        container: String,
        /// What went wrong, and what to do.
        reason: String,
    },
    /// A session Sandpit cannot serve (opened by an older Sandpit, without the agent inside).
    #[error("session {session} cannot be served: {reason}")]
    Incompatible {
        /// Session id.
        session: String,
        /// Why, and what to do.
        reason: String,
    },
    /// No process with that id was started in the session (or it ended and was reported).
    #[error("no process {pid} in this session; list the session's processes to see which run")]
    ProcessNotFound {
        /// The process id asked for.
        pid: u32,
    },
    /// No kernel context with that id.
    #[error("no context {context} in this session; create one first")]
    ContextNotFound {
        /// The context id asked for.
        context: String,
    },
    /// Running a command inside the container failed at the engine.
    #[error("running a command in sandbox container {container} failed: {cause}")]
    Exec {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Uploading files into the container failed.
    #[error("copying into sandbox container {container} at {path} failed: {cause}")]
    Upload {
        /// Container name.
        container: String,
        /// Destination inside the container.
        path: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Downloading files from the container failed.
    #[error("copying {path} out of sandbox container {container} failed: {cause}")]
    Download {
        /// Container name.
        container: String,
        /// Source path inside the container.
        path: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Committing the container to a template image failed.
    #[error("committing sandbox container {container} to {image} failed: {cause}")]
    Commit {
        /// Container name.
        container: String,
        /// The template tag.
        image: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Removing the session's container failed.
    #[error("removing sandbox container {container} failed: {cause}")]
    RemoveContainer {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Listing containers failed.
    #[error("listing containers failed: {0}")]
    ListContainers(EngineError),
    /// Freezing or thawing the container failed.
    #[error("pausing or resuming sandbox container {container} failed: {cause}")]
    Pause {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Reading the container's resource usage failed.
    #[error("reading the resource usage of sandbox container {container} failed: {cause}")]
    Stats {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Attaching or detaching the network around a library install failed.
    #[error("changing the network of sandbox container {container} failed: {cause}")]
    Network {
        /// Container name.
        container: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// Creating or removing the session's volume failed.
    #[error("the workdir volume {volume} failed: {cause}")]
    Volume {
        /// Volume name.
        volume: String,
        /// The engine's error.
        cause: EngineError,
    },
    /// The session's container no longer exists or no longer runs.
    #[error("sandbox container {container} is gone (removed, killed or the engine restarted); open a new session")]
    SessionGone {
        /// Container name.
        container: String,
    },
    /// The session was already closed.
    #[error("session {session} is closed; open a new session")]
    SessionClosed {
        /// Session id.
        session: String,
    },
    /// Installing libraries failed.
    #[error("installing {libraries} failed (exit code {exit_code}): {message}")]
    LibraryInstall {
        /// The libraries asked for, comma separated.
        libraries: String,
        /// The installer's exit code.
        exit_code: i64,
        /// The installer's own error text.
        message: String,
    },
    /// A step of the language's setup failed.
    #[error("session setup step `{command}` failed (exit code {exit_code}): {message}")]
    Setup {
        /// The command that failed.
        command: String,
        /// Its exit code.
        exit_code: i64,
        /// Its error output.
        message: String,
    },
    /// An operation took longer than allowed.
    #[error("{operation} did not finish within {after:?}")]
    Timeout {
        /// What was being done.
        operation: String,
        /// The limit that passed.
        after: Duration,
    },
    /// A path that is not allowed (escapes its destination, not absolute, missing).
    #[error("invalid path {path}: {reason}")]
    InvalidPath {
        /// The offending path.
        path: String,
        /// Why it is refused.
        reason: String,
    },
    /// A file or folder that does not exist.
    #[error("{path} does not exist{where_}", where_ = if *.in_sandbox { " in the sandbox" } else { " on the host" })]
    PathNotFound {
        /// The path.
        path: String,
        /// True for a path inside the sandbox, false for one on the host.
        in_sandbox: bool,
    },
    /// A file or folder is in the way.
    #[error("{path} exists already; choose another destination or delete it first")]
    PathExists {
        /// The path.
        path: String,
    },
    /// A local file operation failed.
    #[error("{action} {path} failed: {source}")]
    Io {
        /// What Sandpit was doing.
        action: &'static str,
        /// The local path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The workdir's disk could not be prepared on the engine's host.
    #[error("preparing the session's disk failed: {reason}")]
    Disk {
        /// What failed.
        reason: String,
    },
    /// The session's policy forbids the operation.
    #[error("refused by the session's security policy: {0}")]
    Refused(String),
    /// The engine or the session's runtime cannot do this.
    #[error("{what} is not possible here: {reason}")]
    Unsupported {
        /// What was asked.
        what: String,
        /// Why not, and what to do instead.
        reason: String,
    },
    /// A pool cannot give out sessions: it is closed, or it fails to open them.
    #[error("{reason}")]
    Pool {
        /// What is wrong.
        reason: String,
        /// The kind of the failure behind it.
        kind: ErrorKind,
    },
    /// A pool has handed out as many sessions as it may.
    #[error("the session pool is exhausted: all {max_size} sessions are in use; release one or raise max_size")]
    PoolExhausted {
        /// The pool's maximum.
        max_size: usize,
    },
    /// Bad input from the caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A failure inside Sandpit (a task that panicked).
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// An engine error for operation `op`: an engine out of reach is always
    /// [`Error::EngineUnreachable`] (or [`Error::Tls`]), whatever the operation.
    pub(crate) fn engine(cause: EngineError, op: impl FnOnce(EngineError) -> Error) -> Error {
        match cause.kind {
            EngineErrorKind::Unreachable => Error::EngineUnreachable {
                reason: cause.message,
            },
            EngineErrorKind::Tls => Error::Tls {
                reason: cause.message,
            },
            _ => op(cause),
        }
    }

    /// A task that panicked or was cancelled.
    pub(crate) fn join(what: &str, e: tokio::task::JoinError) -> Error {
        Error::Internal(format!("{what} failed: {e}"))
    }

    /// True when the error means the session's container no longer exists or runs.
    pub fn is_session_gone(&self) -> bool {
        matches!(self, Error::SessionGone { .. })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        use Error as E;
        match self {
            E::EngineUnreachable { .. } | E::Tls { .. } => ErrorKind::EngineUnavailable,
            E::InvalidConnection(_)
            | E::InvalidPath { .. }
            | E::InvalidInput(_)
            | E::LibraryInstall { .. }
            | E::BuildImage { .. } => ErrorKind::InvalidInput,
            E::ImageNotFound { .. }
            | E::PathNotFound { .. }
            | E::ProcessNotFound { .. }
            | E::ContextNotFound { .. } => ErrorKind::NotFound,
            E::PathExists { .. } => ErrorKind::Conflict,
            E::SessionGone { .. } | E::SessionClosed { .. } | E::Incompatible { .. } => {
                ErrorKind::Gone
            }
            E::Timeout { .. } => ErrorKind::Timeout,
            E::PoolExhausted { .. } | E::ExecStart { .. } => ErrorKind::Exhausted,
            E::Refused(_) => ErrorKind::Refused,
            E::Unsupported { .. } => ErrorKind::Unsupported,
            E::Pool { kind, .. } => *kind,
            E::InspectImage { cause, .. }
            | E::ListImages(cause)
            | E::Info(cause)
            | E::RemoveImage { cause, .. }
            | E::CreateContainer { cause, .. }
            | E::StartContainer { cause, .. }
            | E::Exec { cause, .. }
            | E::Attach { cause, .. }
            | E::Upload { cause, .. }
            | E::Download { cause, .. }
            | E::Commit { cause, .. }
            | E::RemoveContainer { cause, .. }
            | E::ListContainers(cause)
            | E::Pause { cause, .. }
            | E::Stats { cause, .. }
            | E::Network { cause, .. }
            | E::Volume { cause, .. } => match cause.kind {
                EngineErrorKind::Unreachable | EngineErrorKind::Tls => ErrorKind::EngineUnavailable,
                EngineErrorKind::NotFound => ErrorKind::NotFound,
                EngineErrorKind::Conflict => ErrorKind::Conflict,
                EngineErrorKind::InvalidRequest => ErrorKind::InvalidInput,
                EngineErrorKind::Unsupported => ErrorKind::Unsupported,
                _ => ErrorKind::Internal,
            },
            E::BaseImage { .. }
            | E::Setup { .. }
            | E::Io { .. }
            | E::Disk { .. }
            | E::Agent { .. }
            | E::Internal(_) => ErrorKind::Internal,
        }
    }
}

impl From<sandpit_engine::ConnectionError> for Error {
    fn from(e: sandpit_engine::ConnectionError) -> Self {
        Error::InvalidConnection(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_errors_out_of_reach_become_unreachable_whatever_the_operation() {
        let cause = EngineError::new(EngineErrorKind::Unreachable, "unix:///x: refused");
        let e = Error::engine(cause, |cause| Error::Exec {
            container: "c".into(),
            cause,
        });
        assert!(matches!(e, Error::EngineUnreachable { .. }));
        assert_eq!(e.kind(), ErrorKind::EngineUnavailable);
    }

    #[test]
    fn kinds_follow_the_engine_cause() {
        let e = Error::CreateContainer {
            image: "i".into(),
            cause: EngineError::from_status(400, "unknown or invalid runtime name: nope"),
        };
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let e = Error::Upload {
            container: "c".into(),
            path: "/x".into(),
            cause: EngineError::from_status(500, "boom"),
        };
        assert_eq!(e.kind(), ErrorKind::Internal);
        assert_eq!(
            Error::PoolExhausted { max_size: 2 }.kind(),
            ErrorKind::Exhausted
        );
        assert_eq!(Error::Internal("panic".into()).kind(), ErrorKind::Internal);
    }

    #[test]
    fn messages_name_no_command_line_flags() {
        let samples = [
            Error::EngineUnreachable { reason: "x".into() }.to_string(),
            Error::ImageNotFound {
                image: "i".into(),
                reason: "r".into(),
            }
            .to_string(),
        ];
        for m in samples {
            assert!(!m.contains("--"), "{m}");
            assert!(!m.contains("sandpit "), "{m}");
        }
    }
}
