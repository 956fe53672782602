//! File operations confined to a root folder, as a given user: one file per operation.

mod chown;
mod copy;
mod list;
mod mkdir;
mod read;
mod remove;
mod rename;
mod stat;
mod write;

use std::ffi::CStr;
use std::os::fd::RawFd;

use sandpit_agent::protocol::{CallId, EventBody, FileInfo, FileKind, FileOp, FileRequest};

use super::creds::AsUser;
use super::error::OpResult;
use super::resolve::Root;
use super::state::Agent;
use super::sys;

pub use list::{pump_listing, ListJob};
pub use read::{pump_read, ReadJob};
pub use write::{write_data, WriteJob};

/// Answers a `File` request: at once, or (read, write, list) as its data flows.
pub fn file(agent: &mut Agent, call: CallId, req: FileRequest) {
    let _as = match AsUser::new(req.user) {
        Ok(guard) => guard,
        Err(e) => return agent.reply(call, EventBody::Error(e)),
    };
    let root = match Root::open(&req.root, agent.openat2) {
        Ok(root) => root,
        Err(e) => return agent.reply(call, EventBody::Error(e)),
    };
    let answer = match req.op {
        FileOp::Read { path } => return read::start(agent, call, &root, &path),
        FileOp::Write {
            path,
            mode,
            parents,
        } => return write::start(agent, call, &root, &path, mode, parents),
        FileOp::List { path, depth } => {
            return list::start(agent, call, root, &path, depth, req.user)
        }
        FileOp::Stat { path } => stat::stat(&root, &path).map(EventBody::File),
        FileOp::Mkdir { path } => mkdir::mkdir(&root, &path).map(EventBody::File),
        FileOp::Move { from, to } => rename::rename(&root, &from, &to).map(EventBody::File),
        FileOp::Copy { from, to } => copy::copy(&root, &from, &to).map(EventBody::File),
        FileOp::Chown { path, uid, gid } => {
            chown::chown(&root, &path, uid, gid).map(EventBody::File)
        }
        FileOp::Remove { path } => remove::remove(&root, &path).map(|()| EventBody::Done),
    };
    agent.reply(call, answer.unwrap_or_else(EventBody::Error));
}

/// The description of an entry from its `stat`; a symlink's target is read from `dir`/`name`.
pub fn describe(path: String, st: &libc::stat, dir: RawFd, name: &CStr) -> FileInfo {
    let kind = match st.st_mode & libc::S_IFMT {
        libc::S_IFREG => FileKind::File,
        libc::S_IFDIR => FileKind::Dir,
        libc::S_IFLNK => FileKind::Symlink,
        _ => FileKind::Other,
    };
    let symlink_target = (kind == FileKind::Symlink)
        .then(|| sys::readlinkat(dir, name).ok())
        .flatten()
        .map(|t| String::from_utf8_lossy(&t).into_owned());
    FileInfo {
        name: path.rsplit('/').next().unwrap_or_default().to_string(),
        path,
        kind,
        size: st.st_size as u64,
        mode: st.st_mode & 0o7777,
        uid: st.st_uid,
        gid: st.st_gid,
        mtime_ns: st.st_mtime * 1_000_000_000 + st.st_mtime_nsec,
        symlink_target,
    }
}

/// The description of an entry by its parent folder and name, not following a symlink.
pub fn describe_at(path: String, dir: RawFd, name: &CStr) -> std::io::Result<FileInfo> {
    let st = sys::fstatat(dir, name, libc::AT_SYMLINK_NOFOLLOW)?;
    Ok(describe(path, &st, dir, name))
}

/// Result of an operation answered at once.
pub type Answer = OpResult<FileInfo>;
