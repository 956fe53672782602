//! The one error type of the session crate.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout Sandpit.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while talking to the engine or running code.
///
/// Each Docker operation has its own variant wrapping bollard's error, so a
/// message always says which step failed; every message says what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The engine did not answer (socket missing, connection refused, no reply in time).
    #[error("cannot reach the Docker engine at {endpoint}: {reason}. Start the engine (dockerd) or point DOCKER_HOST / --host at one that runs")]
    EngineUnreachable {
        /// Where Sandpit tried to connect.
        endpoint: String,
        /// What the connection attempt reported.
        reason: String,
    },
    /// The TLS handshake with a remote engine failed.
    #[error("TLS connection to the Docker engine at {endpoint} failed: {reason}. Check that the CA certificate signed the engine's certificate and that the client certificate and key belong together")]
    Tls {
        /// Where Sandpit tried to connect.
        endpoint: String,
        /// What the TLS layer reported.
        reason: String,
    },
    /// Connection settings that cannot work (bad DOCKER_HOST, missing certificate files).
    #[error("invalid connection settings: {0}")]
    InvalidConnection(String),
    /// The engine's API version could not be negotiated.
    #[error("negotiating the API version with the engine at {endpoint} failed: {source}")]
    NegotiateVersion {
        /// Where Sandpit connected.
        endpoint: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// An image is neither local nor pullable.
    #[error("image {image} is not in the engine and could not be pulled: {reason}. Build it (`sandpit images build`), load it (`docker load`), or choose another image")]
    ImageNotFound {
        /// The image reference.
        image: String,
        /// Why the pull failed.
        reason: String,
    },
    /// Inspecting an image failed for a reason other than absence.
    #[error("inspecting image {image} failed: {source}")]
    InspectImage {
        /// The image reference.
        image: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
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
    ListImages(#[source] bollard::errors::Error),
    /// Removing an image failed.
    #[error("removing image {image} failed: {source}")]
    RemoveImage {
        /// The image reference.
        image: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Creating the session's container failed.
    #[error("creating the sandbox container from {image} failed: {source}")]
    CreateContainer {
        /// The image reference.
        image: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Starting the session's container failed.
    #[error("starting sandbox container {container} failed: {source}")]
    StartContainer {
        /// Container name.
        container: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Running a command inside the container failed at the engine.
    #[error("running a command in sandbox container {container} failed: {source}")]
    Exec {
        /// Container name.
        container: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Uploading files into the container failed.
    #[error("copying into sandbox container {container} at {path} failed: {source}")]
    Upload {
        /// Container name.
        container: String,
        /// Destination inside the container.
        path: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Downloading files from the container failed.
    #[error("copying {path} out of sandbox container {container} failed: {source}")]
    Download {
        /// Container name.
        container: String,
        /// Source path inside the container.
        path: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Committing the container to a template image failed.
    #[error("committing sandbox container {container} to {image} failed: {source}")]
    Commit {
        /// Container name.
        container: String,
        /// The template tag.
        image: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Removing the session's container failed.
    #[error("removing sandbox container {container} failed: {source}")]
    RemoveContainer {
        /// Container name.
        container: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Listing containers failed.
    #[error("listing containers failed: {0}")]
    ListContainers(#[source] bollard::errors::Error),
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
    /// An engine operation took longer than allowed.
    #[error("{operation} did not finish within {after:?}; the engine may be overloaded")]
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
    /// Attaching or detaching the network around a library install failed.
    #[error("changing the network of sandbox container {container} failed: {source}")]
    Network {
        /// Container name.
        container: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// Creating or removing the session's volume failed.
    #[error("the workdir volume {volume} failed: {source}")]
    Volume {
        /// Volume name.
        volume: String,
        /// bollard's error.
        #[source]
        source: bollard::errors::Error,
    },
    /// The session's policy forbids the operation.
    #[error("refused by the session's security policy: {0}")]
    Refused(String),
    /// Bad input from the caller.
    #[error("invalid input: {0}")]
    InvalidInput(String),
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

    /// True when the error means the session's container no longer exists or runs.
    pub fn is_session_gone(&self) -> bool {
        matches!(self, Error::SessionGone { .. })
    }
}

/// The HTTP status of an engine error, if the engine answered.
pub(crate) fn status_code(err: &bollard::errors::Error) -> Option<u16> {
    match err {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The whole `source()` chain of an error as one line.
pub(crate) fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !out.contains(&s) {
            out.push_str(": ");
            out.push_str(&s);
        }
        cur = e.source();
    }
    out
}

/// True when bollard failed before the engine answered (transport level).
pub(crate) fn is_transport(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    matches!(
        err,
        B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
            | B::IOError { .. }
            | B::RequestTimeoutError
            | B::SocketNotFoundError(_)
    )
}
