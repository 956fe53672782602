//! Hands a path to another owner: the path itself, never what a symlink points to.

use std::os::fd::AsRawFd;

use super::super::error::os_error;
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::{describe, describe_at, Answer};

/// Answers `Chown`.
pub fn chown(root: &Root, path: &str, uid: u32, gid: u32) -> Answer {
    let rel = RelPath::parse(path)?;
    if rel.name().is_none() {
        // The root (or a folder reached by `..`): change it through a descriptor of its own.
        let fd = root
            .open_at(&rel, libc::O_RDONLY | libc::O_DIRECTORY, 0)
            .map_err(|e| os_error(&e, &rel.display_or_root()))?;
        sys::cvt(unsafe { libc::fchown(fd.as_raw_fd(), uid, gid) })
            .map_err(|e| os_error(&e, &rel.display_or_root()))?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(|e| os_error(&e, &rel.display_or_root()))?;
        return Ok(describe(rel.display(), &st, fd.as_raw_fd(), c""));
    }
    let (dir, name) = root.parent(&rel)?;
    sys::cvt(unsafe {
        libc::fchownat(
            dir.as_raw_fd(),
            name.as_ptr(),
            uid,
            gid,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
    .map_err(|e| os_error(&e, &rel.display()))?;
    describe_at(rel.display(), dir.as_raw_fd(), &name).map_err(|e| os_error(&e, &rel.display()))
}
