//! `sandpit-agent connect`: relays its standard input to the agent's socket and the socket to
//! its standard output, until either side ends. A host whose engine closed the agent's stdin
//! runs it as one long-lived root exec and speaks the protocol through it.

use std::os::fd::AsRawFd;

use super::{listener, sys};

/// Bytes relayed at once.
const CHUNK: usize = 256 << 10;

/// Runs the relay; returns only by exiting (0 when a side ended, 1 when the agent cannot be
/// reached).
pub fn run() -> ! {
    sys::not_dumpable();
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    let socket = match listener::connect() {
        Ok(socket) => socket,
        Err(e) => {
            eprintln!("sandpit-agent connect: the agent's socket cannot be reached: {e}");
            std::process::exit(1);
        }
    };
    let pairs = [(0, socket.as_raw_fd()), (socket.as_raw_fd(), 1)];
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut fds = pairs.map(|(from, _)| libc::pollfd {
            fd: from,
            events: libc::POLLIN,
            revents: 0,
        });
        if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
            continue;
        }
        for (fd, (from, to)) in fds.iter().zip(pairs) {
            if fd.revents == 0 {
                continue;
            }
            match sys::read(from, &mut buf) {
                Ok(n) if n > 0 && sys::write_all(to, &buf[..n]).is_ok() => {}
                _ => std::process::exit(0),
            }
        }
    }
}
