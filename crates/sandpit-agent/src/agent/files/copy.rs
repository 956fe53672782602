//! Copying a file, a symlink (as a symlink) or a folder with everything in it, with modes.

use std::collections::HashSet;
use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, RawFd};

use super::super::error::{invalid, os_error};
use super::super::resolve::{RelPath, Root};
use super::super::sys;
use super::super::tree;
use super::{describe_at, Answer};

/// Folders nested deeper than this are refused (the copy recurses).
const MAX_DEPTH: usize = 256;
/// Bytes copied at once.
const BUFFER: usize = 256 << 10;

/// Answers `Copy`: `to` must not exist; on failure nothing of `to` is left.
pub fn copy(root: &Root, from: &str, to: &str) -> Answer {
    let from = RelPath::parse(from)?;
    let to = RelPath::parse(to)?;
    let (from_dir, from_name) = root.parent(&from)?;
    let (to_dir, to_name) = root.parent(&to)?;
    let st = sys::fstatat(from_dir.as_raw_fd(), &from_name, libc::AT_SYMLINK_NOFOLLOW)
        .map_err(|e| os_error(&e, &from.display()))?;
    if sys::is(st.st_mode, libc::S_IFLNK) {
        // A link named as the source must lead somewhere beneath the root, as a read would.
        root.open_at(&from, libc::O_PATH, 0)
            .map_err(|e| os_error(&e, &from.display()))?;
    }
    let mut copier = Copier {
        made: HashSet::new(),
        buf: vec![0; BUFFER],
    };
    let copied = copier.entry(
        from_dir.as_raw_fd(),
        &from_name,
        &st,
        to_dir.as_raw_fd(),
        &to_name,
        0,
    );
    if let Err(e) = copied {
        if e.raw_os_error() != Some(libc::EEXIST) {
            undo(to_dir.as_raw_fd(), &to_name);
        }
        if e.raw_os_error() == Some(libc::E2BIG) {
            return Err(invalid(format!(
                "{}: folders nested deeper than {MAX_DEPTH} levels",
                from.display()
            )));
        }
        return Err(os_error(
            &e,
            &format!("{} -> {}", from.display(), to.display()),
        ));
    }
    describe_at(to.display(), to_dir.as_raw_fd(), &to_name).map_err(|e| os_error(&e, &to.display()))
}

/// Removes what a failed copy made.
fn undo(dir: RawFd, name: &CStr) {
    if let Ok(folder) = sys::openat(
        dir,
        name,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
        0,
    ) {
        tree::remove_children(folder.as_raw_fd(), None, None);
        unsafe { libc::unlinkat(dir, name.as_ptr(), libc::AT_REMOVEDIR) };
    } else {
        unsafe { libc::unlinkat(dir, name.as_ptr(), 0) };
    }
}

struct Copier {
    /// Folders the copy made (device, inode): a copy into itself does not copy them again.
    made: HashSet<(u64, u64)>,
    buf: Vec<u8>,
}

impl Copier {
    fn entry(
        &mut self,
        src_dir: RawFd,
        src: &CStr,
        st: &libc::stat,
        dst_dir: RawFd,
        dst: &CStr,
        depth: usize,
    ) -> io::Result<()> {
        let mode = st.st_mode & 0o7777;
        match st.st_mode & libc::S_IFMT {
            libc::S_IFLNK => {
                let target = sys::cstring(sys::readlinkat(src_dir, src)?)?;
                sys::cvt(unsafe { libc::symlinkat(target.as_ptr(), dst_dir, dst.as_ptr()) })?;
            }
            libc::S_IFREG => {
                let input = sys::openat(
                    src_dir,
                    src,
                    libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK,
                    0,
                )?;
                let output = sys::openat(
                    dst_dir,
                    dst,
                    libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                    0o600,
                )?;
                loop {
                    let n = sys::read(input.as_raw_fd(), &mut self.buf)?;
                    if n == 0 {
                        break;
                    }
                    sys::write_all(output.as_raw_fd(), &self.buf[..n])?;
                }
                sys::cvt(unsafe { libc::fchmod(output.as_raw_fd(), mode) })?;
            }
            libc::S_IFDIR => {
                if depth >= MAX_DEPTH {
                    return Err(sys::os(libc::E2BIG));
                }
                sys::cvt(unsafe { libc::mkdirat(dst_dir, dst.as_ptr(), 0o700) })?;
                let output = sys::openat(
                    dst_dir,
                    dst,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )?;
                let made = sys::fstat(output.as_raw_fd())?;
                self.made.insert((made.st_dev, made.st_ino));
                let input = sys::openat(
                    src_dir,
                    src,
                    libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                    0,
                )?;
                let mut names = sys::dir_names(input.as_raw_fd())?;
                names.sort();
                for name in names {
                    let name = sys::cstring(name)?;
                    let inner =
                        match sys::fstatat(input.as_raw_fd(), &name, libc::AT_SYMLINK_NOFOLLOW) {
                            Ok(st) => st,
                            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                            Err(e) => return Err(e),
                        };
                    if self.made.contains(&(inner.st_dev, inner.st_ino)) {
                        continue;
                    }
                    self.entry(
                        input.as_raw_fd(),
                        &name,
                        &inner,
                        output.as_raw_fd(),
                        &name,
                        depth + 1,
                    )?;
                }
                sys::cvt(unsafe { libc::fchmod(output.as_raw_fd(), mode) })?;
            }
            // FIFOs, sockets and devices are not copied.
            _ => return Err(sys::os(libc::EINVAL)),
        }
        Ok(())
    }
}
