//! Removing everything inside a folder, never following a symlink, one level of descriptors
//! at a time (no recursion: code in the sandbox may nest folders as deep as it likes).

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Instant;

use super::sys;

/// What a removal did.
#[derive(Debug, Default)]
pub struct Removal {
    /// Entries removed.
    pub removed: u64,
    /// The first failure, with the entry's name; the removal went on past it.
    pub error: Option<(io::Error, String)>,
}

struct Level {
    fd: OwnedFd,
    names: Vec<Vec<u8>>,
    next: usize,
    /// Its name in the level below, to remove once it is empty; `None` for the top.
    name: Option<CString>,
    /// Its path from the top (`""` for the top).
    path: String,
}

fn join(parent: &str, name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    if parent.is_empty() {
        name.into_owned()
    } else {
        format!("{parent}/{name}")
    }
}

/// Removes everything inside folder `dir`. With `device`, folders of another filesystem (a
/// mount inside) are left alone; with `deadline`, the removal stops when it passes.
pub fn remove_children(
    dir: RawFd,
    device: Option<libc::dev_t>,
    deadline: Option<Instant>,
) -> Removal {
    let mut out = Removal::default();
    let top = sys::openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)
        .and_then(|fd| Ok((sys::dir_names(fd.as_raw_fd())?, fd)));
    let (names, fd) = match top {
        Ok(v) => v,
        Err(e) => {
            out.error = Some((e, String::new()));
            return out;
        }
    };
    let mut stack = vec![Level {
        fd,
        names,
        next: 0,
        name: None,
        path: String::new(),
    }];
    let note = |out: &mut Removal, e: io::Error, path: String| {
        if out.error.is_none() {
            out.error = Some((e, path));
        }
    };
    while let Some(level) = stack.last_mut() {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            note(&mut out, sys::os(libc::ETIMEDOUT), String::new());
            break;
        }
        if level.next == level.names.len() {
            let done = stack.pop().expect("a level");
            if let (Some(name), Some(parent)) = (done.name, stack.last()) {
                drop(done.fd);
                match sys::cvt(unsafe {
                    libc::unlinkat(parent.fd.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR)
                }) {
                    Ok(_) => out.removed += 1,
                    Err(e) => note(&mut out, e, done.path),
                }
            }
            continue;
        }
        let raw = level.names[level.next].clone();
        level.next += 1;
        let path = join(&level.path, &raw);
        let Ok(name) = sys::cstring(raw.clone()) else {
            continue;
        };
        let fd = level.fd.as_raw_fd();
        let st = match sys::fstatat(fd, &name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
            Err(e) => {
                note(&mut out, e, path);
                continue;
            }
        };
        if sys::is(st.st_mode, libc::S_IFDIR) {
            if device.is_some_and(|d| d != st.st_dev) {
                continue;
            }
            let sub = sys::openat(
                fd,
                &name,
                libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
                0,
            )
            .and_then(|sub| Ok((sys::dir_names(sub.as_raw_fd())?, sub)));
            match sub {
                Ok((names, sub)) => stack.push(Level {
                    fd: sub,
                    names,
                    next: 0,
                    name: Some(name),
                    path,
                }),
                Err(e) => note(&mut out, e, path),
            }
        } else {
            match sys::cvt(unsafe { libc::unlinkat(fd, name.as_ptr(), 0) }) {
                Ok(_) => out.removed += 1,
                Err(e) => note(&mut out, e, path),
            }
        }
    }
    out
}
