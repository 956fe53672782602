//! Writing a file: opened (created or truncated) beneath the root when the request comes,
//! filled by the `WriteData` payloads as they arrive, described once the last is in.

use std::os::fd::{AsRawFd, OwnedFd};

use sandpit_agent::protocol::{CallId, EventBody, WriteData};

use super::super::error::{invalid, os_error, OpResult};
use super::super::resolve::{RelPath, Root};
use super::super::state::{Agent, CallKind, CallRef};
use super::super::sys;
use super::describe;
use super::mkdir::make_dirs;

/// A file being written.
pub struct WriteJob {
    fd: OwnedFd,
    path: String,
}

/// Opens the file; its bytes follow in `WriteData` requests.
pub fn start(
    agent: &mut Agent,
    call: CallId,
    root: &Root,
    path: &str,
    mode: Option<u32>,
    parents: bool,
) {
    match open(root, path, mode, parents) {
        Ok(job) => {
            agent.open_call(call, CallKind::Write(job));
        }
        Err(e) => agent.reply(call, EventBody::Error(e)),
    }
}

fn open(root: &Root, path: &str, mode: Option<u32>, parents: bool) -> OpResult<WriteJob> {
    let rel = RelPath::parse(path)?;
    if rel.name().is_none() {
        return Err(invalid(format!("{:?} names a folder, not a file", path)));
    }
    if parents {
        make_dirs(root, &rel.parent())?;
    }
    let at = |e: std::io::Error| os_error(&e, &rel.display());
    // Non-blocking: opening a FIFO for writing must not wait for a reader.
    let flags = libc::O_WRONLY | libc::O_NONBLOCK | libc::O_NOCTTY;
    let (fd, new) = match root.open_at(&rel, flags | libc::O_CREAT | libc::O_EXCL, 0o644) {
        Ok(fd) => (fd, true),
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => (
            root.open_at(&rel, flags | libc::O_TRUNC, 0).map_err(at)?,
            false,
        ),
        Err(e) => return Err(at(e)),
    };
    let st = sys::fstat(fd.as_raw_fd()).map_err(at)?;
    if !sys::is(st.st_mode, libc::S_IFREG) {
        return Err(invalid(format!("{}: not a regular file", rel.display())));
    }
    let mode = match (mode, new) {
        (Some(m), _) => Some(m & 0o7777),
        (None, true) => Some(0o644),
        (None, false) => None,
    };
    if let Some(m) = mode {
        sys::cvt(unsafe { libc::fchmod(fd.as_raw_fd(), m) }).map_err(at)?;
    }
    Ok(WriteJob {
        fd,
        path: rel.display(),
    })
}

/// Writes the payload of a `WriteData`; answers `File` after the last.
pub fn write_data(agent: &mut Agent, reply: CallRef, req: WriteData, payload: &[u8]) {
    let Some(CallKind::Write(job)) = agent.call_mut(reply) else {
        return;
    };
    let fd = job.fd.as_raw_fd();
    let body = match sys::write_all(fd, payload) {
        Err(e) => EventBody::Error(os_error(&e, &job.path)),
        Ok(()) if !req.eof => return,
        Ok(()) => match sys::fstat(fd) {
            Ok(st) => EventBody::File(describe(job.path.clone(), &st, fd, c"")),
            Err(e) => EventBody::Error(os_error(&e, &job.path)),
        },
    };
    agent.emit(reply, body, &[]);
}
