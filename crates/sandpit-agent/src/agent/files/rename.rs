//! Moving an entry to a path that does not exist yet.

use std::os::fd::AsRawFd;

use super::super::error::os_error;
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::{describe_at, Answer};

/// Answers `Move`: `renameat2` with `RENAME_NOREPLACE`, so an existing `to` is `Exists`.
/// Where the kernel has no such flag (gVisor answers EINVAL), `to` is checked first; the agent
/// is the only one moving files for Sandpit, and user code racing it only hurts itself.
pub fn rename(root: &Root, from: &str, to: &str) -> Answer {
    let from = RelPath::parse(from)?;
    let to = RelPath::parse(to)?;
    let (from_dir, from_name) = root.parent(&from)?;
    let (to_dir, to_name) = root.parent(&to)?;
    let shown = || format!("{} -> {}", from.display(), to.display());
    let moved = sys::cvt(unsafe {
        libc::renameat2(
            from_dir.as_raw_fd(),
            from_name.as_ptr(),
            to_dir.as_raw_fd(),
            to_name.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    });
    match moved {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
            if sys::fstatat(to_dir.as_raw_fd(), &to_name, libc::AT_SYMLINK_NOFOLLOW).is_ok() {
                return Err(os_error(&sys::os(libc::EEXIST), &shown()));
            }
            sys::cvt(unsafe {
                libc::renameat(
                    from_dir.as_raw_fd(),
                    from_name.as_ptr(),
                    to_dir.as_raw_fd(),
                    to_name.as_ptr(),
                )
            })
            .map_err(|e| os_error(&e, &shown()))?;
        }
        other => {
            other.map_err(|e| os_error(&e, &shown()))?;
        }
    }
    describe_at(to.display(), to_dir.as_raw_fd(), &to_name).map_err(|e| os_error(&e, &to.display()))
}
