//! Listing a folder: depth-limited, in path order component by component (a folder's
//! entries follow it), in `Listing` batches produced as the channel has room.

use std::os::fd::{AsRawFd, OwnedFd};

use sandpit_agent::protocol::{CallId, EventBody, FileInfo, FileKind, Ids};

use super::super::creds::AsUser;
use super::super::error::os_error;
use super::super::resolve::{RelPath, Root};
use super::super::state::{Agent, CallKind, CallRef};
use super::super::sys;
use super::describe_at;

/// Entries per `Listing` batch, at most.
const BATCH: usize = 1000;

/// A listing in progress.
pub struct ListJob {
    user: Ids,
    depth: Option<u32>,
    stack: Vec<Level>,
}

/// One folder being listed.
struct Level {
    fd: OwnedFd,
    /// Its path from the root (`""` for the root).
    path: String,
    names: Vec<Vec<u8>>,
    next: usize,
    /// Depth of its entries (1 for the listed folder's own).
    depth: u32,
}

fn level(fd: OwnedFd, path: String, depth: u32) -> std::io::Result<Level> {
    let mut names = sys::dir_names(fd.as_raw_fd())?;
    names.sort();
    Ok(Level {
        fd,
        path,
        names,
        next: 0,
        depth,
    })
}

/// Opens the folder and sends the first batch.
pub fn start(
    agent: &mut Agent,
    call: CallId,
    root: Root,
    path: &str,
    depth: Option<u32>,
    user: Ids,
) {
    let opened = RelPath::parse(path).and_then(|rel| {
        let fd = root
            .open_at(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| os_error(&e, &rel.display_or_root()))?;
        level(fd, rel.display(), 1).map_err(|e| os_error(&e, &rel.display_or_root()))
    });
    let first = match opened {
        Ok(level) => level,
        Err(e) => return agent.reply(call, EventBody::Error(e)),
    };
    let job = ListJob {
        user,
        depth,
        stack: vec![first],
    };
    if let Some(reply) = agent.open_call(call, CallKind::Listing(job)) {
        pump_listing(agent, reply);
    }
}

/// Sends the next batch if the channel has room; true when it did.
pub fn pump_listing(agent: &mut Agent, reply: CallRef) -> bool {
    if !agent.chan.has_room() {
        return false;
    }
    let Some(CallKind::Listing(job)) = agent.call_mut(reply) else {
        return false;
    };
    let _as = match AsUser::new(job.user) {
        Ok(guard) => guard,
        Err(e) => {
            agent.emit(reply, EventBody::Error(e), &[]);
            return true;
        }
    };
    let mut batch = Vec::new();
    while batch.len() < BATCH {
        let Some(top) = job.stack.last_mut() else {
            break;
        };
        if top.next == top.names.len() {
            job.stack.pop();
            continue;
        }
        let raw = top.names[top.next].clone();
        top.next += 1;
        let Ok(name) = sys::cstring(raw.clone()) else {
            continue;
        };
        let text = String::from_utf8_lossy(&raw);
        let path = if top.path.is_empty() {
            text.into_owned()
        } else {
            format!("{}/{text}", top.path)
        };
        let Ok(info) = describe_at(path.clone(), top.fd.as_raw_fd(), &name) else {
            // Gone since the folder was read.
            continue;
        };
        let deeper = info.kind == FileKind::Dir && job.depth.is_none_or(|d| top.depth < d);
        let depth = top.depth;
        if deeper {
            // A folder the user may not read is listed, its contents are not.
            let sub = sys::openat(
                top.fd.as_raw_fd(),
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .and_then(|fd| level(fd, path, depth + 1));
            if let Ok(sub) = sub {
                job.stack.push(sub);
            }
        }
        batch.push(info);
    }
    let done = job.stack.is_empty();
    drop(_as);
    send(agent, reply, batch, done);
    true
}

fn send(agent: &mut Agent, reply: CallRef, entries: Vec<FileInfo>, done: bool) {
    agent.emit(reply, EventBody::Listing { entries, done }, &[]);
}
