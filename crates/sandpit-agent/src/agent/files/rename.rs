//! Moving an entry to a path that does not exist yet.

use std::os::fd::AsRawFd;

use super::super::error::os_error;
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::{describe_at, Answer};

/// Answers `Move`: `renameat2` with `RENAME_NOREPLACE`, so an existing `to` is `Exists`.
pub fn rename(root: &Root, from: &str, to: &str) -> Answer {
    let from = RelPath::parse(from)?;
    let to = RelPath::parse(to)?;
    let (from_dir, from_name) = root.parent(&from)?;
    let (to_dir, to_name) = root.parent(&to)?;
    sys::cvt(unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    })
    .map_err(|e| os_error(&e, &format!("{} -> {}", from.display(), to.display())))?;
    describe_at(to.display(), to_dir.as_raw_fd(), &to_name).map_err(|e| os_error(&e, &to.display()))
}
