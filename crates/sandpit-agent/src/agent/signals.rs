//! Signals to the agent, turned into bytes on a pipe its loop polls (the self-pipe trick:
//! it works wherever signals do, under gVisor too, and needs no blocked signal mask that
//! children would have to undo).

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicI32, Ordering};

use super::sys;

/// The pipe's write end, for the handler.
static WRITE_END: AtomicI32 = AtomicI32::new(-1);

/// The signals the agent catches.
const CAUGHT: [i32; 3] = [libc::SIGCHLD, libc::SIGTERM, libc::SIGINT];

/// Signals that end or stop a process by default and are not raised by its own faults.
const IGNORED: [i32; 15] = [
    libc::SIGHUP,
    libc::SIGQUIT,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGALRM,
    libc::SIGSTKFLT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGXCPU,
    libc::SIGXFSZ,
    libc::SIGVTALRM,
    libc::SIGPROF,
    libc::SIGIO,
    libc::SIGPWR,
];

/// One signal received: its number and the pid that sent it (0 from outside the sandbox).
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// The signal.
    pub signal: i32,
    /// Its sender as the agent's pid namespace sees it.
    pub sender: i32,
}

/// The read end of the signal pipe.
pub struct Signals {
    read_end: OwnedFd,
    _write_end: OwnedFd,
}

extern "C" fn on_signal(signal: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let saved = unsafe { *libc::__errno_location() };
    let sender = if info.is_null() {
        0
    } else {
        unsafe { (*info).si_pid() }
    };
    let mut record = [0u8; 8];
    record[..4].copy_from_slice(&signal.to_ne_bytes());
    record[4..].copy_from_slice(&sender.to_ne_bytes());
    let fd = WRITE_END.load(Ordering::Relaxed);
    // A full pipe loses the record: the loop reaps on every wake-up anyway.
    unsafe { libc::write(fd, record.as_ptr().cast(), record.len()) };
    unsafe { *libc::__errno_location() = saved };
}

impl Signals {
    /// Installs the handlers; `SIGPIPE` is ignored (a closed pipe is an `EPIPE` to handle).
    pub fn install() -> io::Result<Signals> {
        let (read_end, write_end) = sys::pipe()?;
        sys::set_nonblocking(read_end.as_raw_fd())?;
        sys::set_nonblocking(write_end.as_raw_fd())?;
        WRITE_END.store(write_end.as_raw_fd(), Ordering::Relaxed);
        for signal in CAUGHT {
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_RESTART | libc::SA_NOCLDSTOP;
            unsafe { libc::sigemptyset(&mut action.sa_mask) };
            sys::cvt(unsafe { libc::sigaction(signal, &action, std::ptr::null_mut()) })?;
        }
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
        // Every other signal that would end or stop it is ignored: as PID 1 the kernel drops
        // them anyway, but gVisor does not, and a root process inside (an install step) holds
        // CAP_KILL. Children get every disposition back to default before they exec.
        for signal in IGNORED
            .iter()
            .copied()
            .chain(libc::SIGRTMIN()..=libc::SIGRTMAX())
        {
            unsafe { libc::signal(signal, libc::SIG_IGN) };
        }
        let mut none: libc::sigset_t = unsafe { std::mem::zeroed() };
        unsafe {
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        }
        Ok(Signals {
            read_end,
            _write_end: write_end,
        })
    }

    /// The descriptor to poll.
    pub fn fd(&self) -> i32 {
        self.read_end.as_raw_fd()
    }

    /// The signals received since the last call.
    pub fn drain(&self) -> Vec<Received> {
        let mut out = Vec::new();
        let mut buf = [0u8; 512];
        while let Ok(n) = sys::read(self.read_end.as_raw_fd(), &mut buf) {
            if n == 0 {
                break;
            }
            for record in buf[..n].chunks_exact(8) {
                out.push(Received {
                    signal: i32::from_ne_bytes(record[..4].try_into().expect("4 bytes")),
                    sender: i32::from_ne_bytes(record[4..].try_into().expect("4 bytes")),
                });
            }
        }
        out
    }
}
