//! Thin, checked wrappers over the system calls the agent uses.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `Err(last OS error)` when a call returned -1.
pub fn cvt(r: libc::c_int) -> io::Result<libc::c_int> {
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Retries a call interrupted by a signal.
pub fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            other => return other,
        }
    }
}

/// The OS error number of `e`, `EIO` when it has none.
pub fn errno_of(e: &io::Error) -> i32 {
    e.raw_os_error().unwrap_or(libc::EIO)
}

/// An error for OS error number `n`.
pub fn os(n: i32) -> io::Error {
    io::Error::from_raw_os_error(n)
}

/// `s` as a C string; a NUL byte inside is refused.
pub fn cstring(s: impl Into<Vec<u8>>) -> io::Result<CString> {
    CString::new(s).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte inside"))
}

/// A pipe, both ends close-on-exec: (read end, write end).
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Makes reads and writes on `fd` return `EAGAIN` instead of blocking.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    let flags = cvt(unsafe { libc::fcntl(fd, libc::F_GETFL) })?;
    cvt(unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) })?;
    Ok(())
}

/// `read(2)`, retried on `EINTR`.
pub fn read(fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
    retry(|| {
        let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// `write(2)`, retried on `EINTR`.
pub fn write(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    retry(|| {
        let n = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(n as usize)
        }
    })
}

/// Writes all of `buf` to a blocking `fd`.
pub fn write_all(fd: RawFd, mut buf: &[u8]) -> io::Result<()> {
    while !buf.is_empty() {
        let n = write(fd, buf)?;
        if n == 0 {
            return Err(os(libc::EIO));
        }
        buf = &buf[n..];
    }
    Ok(())
}

/// `openat(2)` with close-on-exec.
pub fn openat(dir: RawFd, path: &CStr, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let fd =
        retry(|| cvt(unsafe { libc::openat(dir, path.as_ptr(), flags | libc::O_CLOEXEC, mode) }))?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `open(2)` of an absolute path with close-on-exec.
pub fn open(path: &str, flags: i32) -> io::Result<OwnedFd> {
    openat(libc::AT_FDCWD, &cstring(path)?, flags, 0)
}

/// `fstatat(2)`; an empty `name` with `AT_EMPTY_PATH` describes `dir` itself.
pub fn fstatat(dir: RawFd, name: &CStr, flags: i32) -> io::Result<libc::stat> {
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    cvt(unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) })?;
    Ok(st)
}

/// What `fd` is.
pub fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    fstatat(fd, c"", libc::AT_EMPTY_PATH)
}

/// True when `mode` is of file type `kind` (`libc::S_IFDIR`, ...).
pub fn is(mode: libc::mode_t, kind: libc::mode_t) -> bool {
    mode & libc::S_IFMT == kind
}

/// Where the symlink `name` in `dir` points (`name` empty: `dir` is the link, opened `O_PATH`).
pub fn readlinkat(dir: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 4096];
    let n = unsafe { libc::readlinkat(dir, name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// The names in folder `dir` (without `.` and `..`), read through a descriptor of its own.
pub fn dir_names(dir: RawFd) -> io::Result<Vec<Vec<u8>>> {
    let fd = openat(dir, c".", libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
    let stream = unsafe { libc::fdopendir(fd.as_raw_fd()) };
    if stream.is_null() {
        return Err(io::Error::last_os_error());
    }
    // The stream owns the descriptor now and closedir closes it.
    std::mem::forget(fd);
    let mut names = Vec::new();
    let result = loop {
        unsafe { *libc::__errno_location() = 0 };
        let entry = unsafe { libc::readdir64(stream) };
        if entry.is_null() {
            let e = io::Error::last_os_error();
            break if e.raw_os_error() == Some(0) {
                Ok(())
            } else {
                Err(e)
            };
        }
        let name = unsafe { CStr::from_ptr((*entry).d_name.as_ptr()) }.to_bytes();
        if name != b"." && name != b".." {
            names.push(name.to_vec());
        }
    };
    unsafe { libc::closedir(stream) };
    result.map(|()| names)
}

/// Sends `signal` to `pid`; true when it was delivered.
pub fn kill(pid: u32, signal: i32) -> bool {
    unsafe { libc::kill(pid as libc::pid_t, signal) == 0 }
}

/// True while a process with this pid exists (a zombie included).
pub fn alive(pid: u32) -> bool {
    let found = unsafe { libc::kill(pid as libc::pid_t, 0) } == 0;
    found || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Nanoseconds of a `timeval`.
pub fn timeval_ns(t: &libc::timeval) -> u64 {
    (t.tv_sec as u64) * 1_000_000_000 + (t.tv_usec as u64) * 1000
}

/// Makes the agent unreadable and untraceable again: a change of ids resets the flag to
/// the system's `suid_dumpable`.
pub fn not_dumpable() {
    unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
}
