//! What is at a path: a symlink is described, not followed.

use std::os::fd::AsRawFd;

use super::super::error::os_error;
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::{describe, describe_at, Answer};

/// Answers `Stat`.
pub fn stat(root: &Root, path: &str) -> Answer {
    let rel = RelPath::parse(path)?;
    if rel.name().is_none() {
        // The root, or a path ending in `..`: a folder reached by resolution.
        let fd = root
            .open_at(&rel, libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| os_error(&e, &rel.display_or_root()))?;
        let st = sys::fstat(fd.as_raw_fd()).map_err(|e| os_error(&e, &rel.display_or_root()))?;
        return Ok(describe(rel.display(), &st, fd.as_raw_fd(), c""));
    }
    let (dir, name) = root.parent(&rel)?;
    describe_at(rel.display(), dir.as_raw_fd(), &name).map_err(|e| os_error(&e, &rel.display()))
}
