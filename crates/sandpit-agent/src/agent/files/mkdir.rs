//! Making a folder and its missing parents.

use std::os::fd::AsRawFd;

use super::super::error::{os_error, OpResult};
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::{describe_at, Answer};

/// Answers `Mkdir`: a folder that exists is fine.
pub fn mkdir(root: &Root, path: &str) -> Answer {
    let rel = RelPath::parse(path)?;
    make_dirs(root, &rel)?;
    if rel.name().is_none() {
        return super::stat::stat(root, path);
    }
    let (dir, name) = root.parent(&rel)?;
    describe_at(rel.display(), dir.as_raw_fd(), &name).map_err(|e| os_error(&e, &rel.display()))
}

/// Makes every missing folder of `rel`, each beneath the root.
pub fn make_dirs(root: &Root, rel: &RelPath) -> OpResult<()> {
    for end in 1..=rel.parts.len() {
        let prefix = RelPath {
            parts: rel.parts[..end].to_vec(),
        };
        match root.open_at(&prefix, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(_) => continue,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(os_error(&e, &prefix.display())),
        }
        let (dir, name) = root.parent(&prefix)?;
        let made = sys::cvt(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) });
        match made {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
            Err(e) => return Err(os_error(&e, &prefix.display())),
        }
    }
    Ok(())
}
