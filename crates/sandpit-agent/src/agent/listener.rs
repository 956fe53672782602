//! The agent's socket: the abstract unix socket `@sandpit-agent`, where a host that lost the
//! engine's attach (Podman closes a container's stdin when the attach ends) connects again
//! through `sandpit-agent connect`. Only root may connect: user code (uid 1000) never reaches
//! the channel.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::sys;

/// The socket's name in the abstract namespace (of the sandbox's network namespace).
const NAME: &[u8] = b"sandpit-agent";

/// The address of the socket.
fn address() -> (libc::sockaddr_un, libc::socklen_t) {
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // A leading zero byte: the abstract namespace, no file anywhere.
    for (slot, &b) in addr.sun_path[1..].iter_mut().zip(NAME) {
        *slot = b as libc::c_char;
    }
    let len = std::mem::size_of::<libc::sa_family_t>() + 1 + NAME.len();
    (addr, len as libc::socklen_t)
}

fn unix_socket(flags: i32) -> io::Result<OwnedFd> {
    let fd = sys::cvt(unsafe {
        libc::socket(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | flags,
            0,
        )
    })?;
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The listening socket.
pub struct Listener {
    fd: OwnedFd,
}

impl Listener {
    /// Binds `@sandpit-agent` (before any user code runs, so none can take the name).
    pub fn bind() -> io::Result<Listener> {
        let fd = unix_socket(libc::SOCK_NONBLOCK)?;
        let (addr, len) = address();
        sys::cvt(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })?;
        sys::cvt(unsafe { libc::listen(fd.as_raw_fd(), 8) })?;
        Ok(Listener { fd })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }

    /// The next connection from root, if one waits; others are closed at once.
    pub fn accept(&self) -> Option<OwnedFd> {
        loop {
            let fd = unsafe {
                libc::accept4(
                    self.fd.as_raw_fd(),
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                )
            };
            if fd < 0 {
                return None;
            }
            let connection = unsafe { OwnedFd::from_raw_fd(fd) };
            match peer_uid(&connection) {
                Some(0) => return Some(connection),
                uid => super::log(format_args!(
                    "refused a connection to the agent's socket from uid {uid:?}: only root may connect"
                )),
            }
        }
    }
}

/// The uid of the process at the other end of a connection.
fn peer_uid(connection: &OwnedFd) -> Option<u32> {
    let mut cred: libc::ucred = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    let r = unsafe {
        libc::getsockopt(
            connection.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (r == 0).then_some(cred.uid)
}

/// A blocking connection to a running agent's socket.
pub fn connect() -> io::Result<OwnedFd> {
    let fd = unix_socket(0)?;
    let (addr, len) = address();
    sys::retry(|| {
        sys::cvt(unsafe {
            libc::connect(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_un).cast(),
                len,
            )
        })
    })?;
    Ok(fd)
}
