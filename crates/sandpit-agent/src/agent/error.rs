//! Failures as the protocol reports them.

use std::io;

use sandpit_agent::protocol::{AgentError, ErrorKind};

use super::sys;

/// What an operation returns.
pub type OpResult<T> = Result<T, AgentError>;

/// A failure of kind `kind`.
pub fn fail(kind: ErrorKind, message: impl Into<String>) -> AgentError {
    AgentError {
        kind,
        message: message.into(),
        errno: None,
    }
}

/// A request the agent cannot act on.
pub fn invalid(message: impl Into<String>) -> AgentError {
    fail(ErrorKind::InvalidRequest, message)
}

/// The kind an OS error number stands for.
pub fn kind_of(errno: i32) -> ErrorKind {
    match errno {
        libc::ENOENT => ErrorKind::NotFound,
        libc::EEXIST | libc::ENOTEMPTY => ErrorKind::Exists,
        libc::ENOTDIR => ErrorKind::NotADirectory,
        libc::EISDIR => ErrorKind::IsADirectory,
        libc::EXDEV | libc::ELOOP => ErrorKind::Outside,
        libc::EACCES | libc::EPERM | libc::EROFS => ErrorKind::PermissionDenied,
        libc::ENOSPC | libc::EDQUOT | libc::EFBIG => ErrorKind::NoSpace,
        _ => ErrorKind::Io,
    }
}

/// An OS error on `what` (a path, a process), in words a person reads.
pub fn os_error(e: &io::Error, what: &str) -> AgentError {
    let errno = sys::errno_of(e);
    let kind = kind_of(errno);
    let reason = match errno {
        libc::EXDEV | libc::ELOOP => {
            "leads out of the root (through .., an absolute symlink or a symlink out)".to_string()
        }
        _ => sys::os(errno).to_string(),
    };
    AgentError {
        kind,
        message: format!("{what}: {reason}"),
        errno: Some(errno),
    }
}
