//! Paths resolved by the kernel beneath a root folder: `openat2` with `RESOLVE_BENEATH`, or,
//! where the kernel has no `openat2`, a walk one component at a time that follows only
//! relative symlinks and never climbs above the root.

use std::collections::VecDeque;
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use sandpit_agent::protocol::ErrorKind;

use super::error::{fail, invalid, os_error, OpResult};
use super::sys;

/// Symlinks followed in one resolution, at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// A path of a request: its components below the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelPath {
    /// Components, without empty ones and `.`; `..` kept (the resolution checks it).
    pub parts: Vec<String>,
}

impl RelPath {
    /// Reads a request's path; `""` and `"."` are the root.
    pub fn parse(path: &str) -> OpResult<RelPath> {
        if path.starts_with('/') {
            return Err(fail(
                ErrorKind::Outside,
                format!("{path}: an absolute path; paths are relative to the root"),
            ));
        }
        if path.contains('\0') {
            return Err(invalid(format!("{path:?}: a path holds a NUL byte")));
        }
        Ok(RelPath {
            parts: path
                .split('/')
                .filter(|p| !p.is_empty() && *p != ".")
                .map(str::to_string)
                .collect(),
        })
    }

    /// The path as reported back (`""` for the root).
    pub fn display(&self) -> String {
        self.parts.join("/")
    }

    /// True for the root itself.
    pub fn is_root(&self) -> bool {
        self.parts.is_empty()
    }

    /// The last component, when it names an entry (not the root, not `..`).
    pub fn name(&self) -> Option<&str> {
        self.parts.last().map(String::as_str).filter(|n| *n != "..")
    }

    /// The path of the folder holding the last component.
    pub fn parent(&self) -> RelPath {
        RelPath {
            parts: self.parts[..self.parts.len().saturating_sub(1)].to_vec(),
        }
    }
}

/// True when the kernel has `openat2` (Linux 5.6; gVisor may not).
pub fn probe_openat2() -> bool {
    let Ok(root) = sys::open("/", libc::O_PATH | libc::O_DIRECTORY) else {
        return false;
    };
    openat2(root.as_raw_fd(), c".", libc::O_PATH, 0).is_ok()
}

fn openat2(dir: RawFd, path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (flags | libc::O_CLOEXEC) as u64;
    how.mode = if flags & (libc::O_CREAT | libc::O_TMPFILE) != 0 {
        u64::from(mode)
    } else {
        0
    };
    how.resolve = libc::RESOLVE_BENEATH | libc::RESOLVE_NO_MAGICLINKS;
    // EAGAIN: a rename raced a `..` lookup; the kernel asks to try again.
    let mut tries = 0;
    loop {
        let r = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                &how as *const libc::open_how,
                std::mem::size_of::<libc::open_how>(),
            )
        };
        if r >= 0 {
            return Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) });
        }
        let e = io::Error::last_os_error();
        match e.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EAGAIN) if tries < 16 => tries += 1,
            _ => return Err(e),
        }
    }
}

/// A root folder paths are resolved beneath.
pub struct Root {
    fd: OwnedFd,
    openat2: bool,
}

impl Root {
    /// Opens the root folder (an absolute path).
    pub fn open(path: &str, openat2: bool) -> OpResult<Root> {
        if !path.starts_with('/') {
            return Err(invalid(format!("root {path:?} is not an absolute path")));
        }
        let fd = sys::open(path, libc::O_PATH | libc::O_DIRECTORY)
            .map_err(|e| os_error(&e, &format!("root {path}")))?;
        Ok(Root { fd, openat2 })
    }

    /// Opens `path` beneath the root with `flags` (symlinks inside the root are followed,
    /// except a last one with `O_NOFOLLOW`).
    pub fn open_at(&self, path: &RelPath, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        if self.openat2 {
            let joined = if path.is_root() {
                ".".to_string()
            } else {
                path.display()
            };
            return openat2(self.fd.as_raw_fd(), &sys::cstring(joined)?, flags, mode);
        }
        self.walk(path, flags, mode)
    }

    /// The folder holding the last component of `path`, and that component: for operations
    /// on an entry itself (stat, remove, move, a symlink as the thing), done with the `*at`
    /// calls and `AT_SYMLINK_NOFOLLOW`.
    pub fn parent(&self, path: &RelPath) -> OpResult<(OwnedFd, CString)> {
        let Some(name) = path.name() else {
            return Err(invalid(format!(
                "{:?} names no entry of a folder (the root, or ending in ..)",
                path.display()
            )));
        };
        let dir = self
            .open_at(&path.parent(), libc::O_PATH | libc::O_DIRECTORY, 0)
            .map_err(|e| os_error(&e, &path.parent().display_or_root()))?;
        let name = sys::cstring(name).map_err(|_| invalid("a path holds a NUL byte"))?;
        Ok((dir, name))
    }

    /// The walk for kernels without `openat2`.
    fn walk(&self, path: &RelPath, flags: i32, mode: u32) -> io::Result<OwnedFd> {
        let mut stack: Vec<OwnedFd> = Vec::new();
        let mut todo: VecDeque<Vec<u8>> =
            path.parts.iter().map(|p| p.as_bytes().to_vec()).collect();
        let mut links = 0;
        let follow_last = flags & libc::O_NOFOLLOW == 0;
        while let Some(part) = todo.pop_front() {
            let cur = stack.last().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
            if part.is_empty() || part == b"." {
                continue;
            }
            if part == b".." {
                if stack.pop().is_none() {
                    return Err(sys::os(libc::EXDEV));
                }
                continue;
            }
            let name = sys::cstring(part)?;
            if todo.is_empty() {
                // The last component: follow it only when it is a symlink and asked to.
                match sys::fstatat(cur, &name, libc::AT_SYMLINK_NOFOLLOW) {
                    Ok(st) if follow_last && sys::is(st.st_mode, libc::S_IFLNK) => {
                        let target = sys::readlinkat(cur, &name)?;
                        splice(&mut todo, &target, &mut links)?;
                        continue;
                    }
                    Ok(_) => {}
                    Err(e)
                        if e.raw_os_error() == Some(libc::ENOENT) && flags & libc::O_CREAT != 0 => {
                    }
                    Err(e) => return Err(e),
                }
                // O_NOFOLLOW: a symlink swapped in meanwhile is refused, never followed.
                return sys::openat(cur, &name, flags | libc::O_NOFOLLOW, mode);
            }
            let fd = sys::openat(cur, &name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
            let st = sys::fstat(fd.as_raw_fd())?;
            if sys::is(st.st_mode, libc::S_IFLNK) {
                let target = sys::readlinkat(fd.as_raw_fd(), c"")?;
                splice(&mut todo, &target, &mut links)?;
            } else if sys::is(st.st_mode, libc::S_IFDIR) {
                stack.push(fd);
            } else {
                return Err(sys::os(libc::ENOTDIR));
            }
        }
        let cur = stack.last().map_or(self.fd.as_raw_fd(), |f| f.as_raw_fd());
        sys::openat(cur, c".", flags & !libc::O_NOFOLLOW & !libc::O_CREAT, mode)
    }
}

/// Puts a symlink's target in front of what is left to resolve; an absolute target leads
/// out of the root.
fn splice(todo: &mut VecDeque<Vec<u8>>, target: &[u8], links: &mut usize) -> io::Result<()> {
    if target.starts_with(b"/") {
        return Err(sys::os(libc::EXDEV));
    }
    *links += 1;
    if *links > MAX_LINKS {
        return Err(sys::os(libc::ELOOP));
    }
    for part in target.split(|&b| b == b'/').rev() {
        todo.push_front(part.to_vec());
    }
    Ok(())
}

impl RelPath {
    /// The path as reported, with the root named `.`.
    pub fn display_or_root(&self) -> String {
        if self.is_root() {
            ".".into()
        } else {
            self.display()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_parts_and_dots_are_dropped() {
        let p = RelPath::parse("./a//b/./c/").unwrap();
        assert_eq!(p.display(), "a/b/c");
        assert!(RelPath::parse(".").unwrap().is_root());
        assert_eq!(RelPath::parse("a/..").unwrap().name(), None);
    }

    #[test]
    fn absolute_paths_are_outside() {
        assert_eq!(RelPath::parse("/etc").unwrap_err().kind, ErrorKind::Outside);
    }

    /// A root (`<tmp>/root`) with a file outside, a folder inside and links of every kind.
    fn layout() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("in/deep")).unwrap();
        std::fs::write(dir.path().join("secret"), "out").unwrap();
        std::fs::write(root.join("in/deep/f"), "in").unwrap();
        let link =
            |target: &str, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link("in/deep", "ok");
        link("in/../in/deep/f", "ok-file");
        link("../secret", "rel-out");
        link("in/../../secret", "rel-out-dotdot");
        link(dir.path().join("secret").to_str().unwrap(), "abs");
        link("loop", "loop");
        dir
    }

    fn resolve(root: &Root, path: &str, flags: i32) -> Result<Vec<u8>, i32> {
        let fd = root
            .open_at(&RelPath::parse(path).unwrap(), flags, 0)
            .map_err(|e| e.raw_os_error().unwrap())?;
        let mut buf = vec![0; 16];
        let n = sys::read(fd.as_raw_fd(), &mut buf).unwrap_or(0);
        buf.truncate(n);
        Ok(buf)
    }

    /// The same answers with `openat2` and with the walk.
    fn both(check: impl Fn(&Root)) {
        let dir = layout();
        let root = dir.path().join("root");
        for openat2 in [false, probe_openat2()] {
            let root = Root::open(root.to_str().unwrap(), openat2).unwrap();
            check(&root);
        }
    }

    #[test]
    fn links_inside_are_followed() {
        both(|root| {
            assert_eq!(resolve(root, "ok/f", libc::O_RDONLY), Ok(b"in".to_vec()));
            assert_eq!(resolve(root, "ok-file", libc::O_RDONLY), Ok(b"in".to_vec()));
            assert_eq!(
                resolve(root, "in/deep/../deep/f", libc::O_RDONLY),
                Ok(b"in".to_vec())
            );
        });
    }

    #[test]
    fn every_way_out_is_refused() {
        both(|root| {
            for path in [
                "../secret",
                "in/../../secret",
                "rel-out",
                "rel-out-dotdot",
                "abs",
                "ok/../../../secret",
            ] {
                let got = resolve(root, path, libc::O_RDONLY);
                assert!(
                    matches!(got, Err(libc::EXDEV) | Err(libc::ELOOP)),
                    "{path}: {got:?}"
                );
            }
        });
    }

    #[test]
    fn a_link_loop_ends() {
        both(|root| assert_eq!(resolve(root, "loop", libc::O_RDONLY), Err(libc::ELOOP)));
    }

    #[test]
    fn o_nofollow_refuses_a_last_symlink() {
        both(|root| {
            assert_eq!(
                resolve(root, "ok-file", libc::O_RDONLY | libc::O_NOFOLLOW),
                Err(libc::ELOOP)
            )
        });
    }

    #[test]
    fn a_file_is_created_beneath_the_root_only() {
        both(|root| {
            let create = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
            let new = RelPath::parse(&format!("in/new-{}", root.openat2)).unwrap();
            assert!(root.open_at(&new, create, 0o644).is_ok());
            let out = RelPath::parse("rel-out-dotdot/../created").unwrap();
            assert!(root.open_at(&out, create, 0o644).is_err());
        });
    }
}
