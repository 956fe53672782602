//! Removing a file, or a folder with everything in it; a symlink is removed, never followed;
//! never the root.

use std::os::fd::AsRawFd;

use super::super::error::{invalid, os_error, OpResult};
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::super::tree;

/// Answers `Remove`.
pub fn remove(root: &Root, path: &str) -> OpResult<()> {
    let rel = RelPath::parse(path)?;
    if rel.is_root() {
        return Err(invalid("the root folder itself cannot be removed"));
    }
    let (dir, name) = root.parent(&rel)?;
    let at = |e: std::io::Error| os_error(&e, &rel.display());
    let st = sys::fstatat(dir.as_raw_fd(), &name, libc::AT_SYMLINK_NOFOLLOW).map_err(at)?;
    if !sys::is(st.st_mode, libc::S_IFDIR) {
        sys::cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) }).map_err(at)?;
        return Ok(());
    }
    let folder = sys::openat(
        dir.as_raw_fd(),
        &name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    )
    .map_err(at)?;
    let removal = tree::remove_children(folder.as_raw_fd(), None, None);
    if let Some((e, inner)) = removal.error {
        return Err(os_error(&e, &format!("{}/{inner}", rel.display())));
    }
    drop(folder);
    sys::cvt(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) })
        .map_err(at)?;
    Ok(())
}
