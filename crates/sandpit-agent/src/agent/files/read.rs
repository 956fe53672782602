//! Reading a file: `Data` frames within the call's window, the last with `eof`.

use std::os::fd::{AsRawFd, OwnedFd};

use sandpit_agent::frame::MAX_PAYLOAD;
use sandpit_agent::protocol::{CallId, ErrorKind, EventBody, INITIAL_WINDOW};

use super::super::error::{fail, invalid, os_error};
use super::super::resolve::{RelPath, Root};
use super::super::state::{Agent, CallKind, CallRef};
use super::super::sys;

/// A file being read.
pub struct ReadJob {
    fd: OwnedFd,
    /// Payload bytes that may still be sent.
    pub window: u64,
    offset: u64,
    buf: Vec<u8>,
}

/// Opens the file and sends its first bytes.
pub fn start(agent: &mut Agent, call: CallId, root: &Root, path: &str) {
    let opened = RelPath::parse(path).and_then(|rel| {
        // Non-blocking: opening a FIFO must not wait for a writer.
        let fd = root
            .open_at(&rel, libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY, 0)
            .map_err(|e| os_error(&e, &rel.display_or_root()))?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(|e| os_error(&e, &rel.display()))?;
        if sys::is(st.st_mode, libc::S_IFDIR) {
            return Err(fail(
                ErrorKind::IsADirectory,
                format!("{}: a folder, not a file", rel.display_or_root()),
            ));
        }
        if !sys::is(st.st_mode, libc::S_IFREG) {
            return Err(invalid(format!("{}: not a regular file", rel.display())));
        }
        Ok(fd)
    });
    let fd = match opened {
        Ok(fd) => fd,
        Err(e) => return agent.reply(call, EventBody::Error(e)),
    };
    let job = ReadJob {
        fd,
        window: INITIAL_WINDOW,
        offset: 0,
        buf: Vec::new(),
    };
    if let Some(reply) = agent.open_call(call, CallKind::Read(job)) {
        pump_read(agent, reply);
    }
}

/// Sends the next bytes of a read if its window and the channel allow; true when it did.
pub fn pump_read(agent: &mut Agent, reply: CallRef) -> bool {
    if !agent.chan.has_room() {
        return false;
    }
    let Some(CallKind::Read(job)) = agent.call_mut(reply) else {
        return false;
    };
    if job.window == 0 {
        // The end needs no window: send it once every byte is out.
        let size = sys::fstat(job.fd.as_raw_fd()).map(|st| st.st_size as u64);
        if !matches!(size, Ok(s) if s <= job.offset) {
            return false;
        }
    }
    let want = (job.window as usize).min(MAX_PAYLOAD);
    job.buf.resize(want, 0);
    let body = match sys::read(job.fd.as_raw_fd(), &mut job.buf) {
        Ok(n) => {
            job.buf.truncate(n);
            job.offset += n as u64;
            job.window -= n as u64;
            EventBody::Data { eof: n == 0 }
        }
        Err(e) => {
            job.buf.clear();
            EventBody::Error(os_error(&e, "read"))
        }
    };
    let data = std::mem::take(&mut job.buf);
    agent.emit(reply, body, &data);
    if let Some(CallKind::Read(job)) = agent.call_mut(reply) {
        job.buf = data;
    }
    true
}
