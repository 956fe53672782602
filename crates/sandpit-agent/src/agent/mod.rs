//! The agent: each sandbox's PID 1, serving one framed channel on its standard input and
//! output. Single threaded, one poll loop; it forks only to run a requested process.

mod attach;
mod cancel;
mod cgroup;
mod channel;
pub mod connect;
mod creds;
mod dispatch;
mod error;
mod event_loop;
mod exit;
mod files;
mod hello;
mod input;
mod ipc;
mod kill;
mod listener;
mod output;
mod process;
mod processes;
mod procfs;
mod reset;
mod resolve;
mod signal_all;
mod signals;
mod spawn;
mod state;
mod sys;
mod tree;
mod usage;
mod waits;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use state::{Agent, Me};

/// Writes one line to standard error, prefixed `sandpit-agent:`; dropped rather than block
/// when nobody reads it.
pub fn log(args: std::fmt::Arguments) {
    let line = format!("sandpit-agent: {args}\n");
    let mut fd = libc::pollfd {
        fd: 2,
        events: libc::POLLOUT,
        revents: 0,
    };
    if unsafe { libc::poll(&mut fd, 1, 0) } == 1 && fd.revents & libc::POLLOUT != 0 {
        let _ = sys::write(2, line.as_bytes());
    }
}

/// Starts the agent and runs it; returns only by exiting.
pub fn run() -> ! {
    match start() {
        Ok(agent) => event_loop::run(agent),
        Err(e) => {
            log(format_args!("cannot start: {e}"));
            std::process::exit(1)
        }
    }
}

/// Sets the process up and builds its state.
fn start() -> std::io::Result<Agent> {
    // Nothing may trace the agent or read its memory, descriptors or environment.
    sys::not_dumpable();
    let pid = std::process::id();
    let pid1 = pid == 1;
    if !pid1 {
        // On a host (tests): orphans of what it started come back to it.
        unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    }
    close_on_exec_inherited();
    // The channel moves off 0 and 1 (close-on-exec); /dev/null takes their place.
    let input = dup_cloexec(0)?;
    let output = dup_cloexec(1)?;
    let devnull = sys::open("/dev/null", libc::O_RDWR)
        .map_err(|e| std::io::Error::new(e.kind(), format!("/dev/null: {e}")))?;
    for fd in [0, 1] {
        sys::cvt(unsafe { libc::dup2(devnull.as_raw_fd(), fd) })?;
    }
    if unsafe { libc::geteuid() } == 0 {
        // Root's supplementary groups would otherwise apply to file operations done as a user.
        unsafe { libc::setgroups(0, std::ptr::null()) };
    }
    let _ = std::env::set_current_dir("/");
    let nofile = raise_nofile();
    let signals = signals::Signals::install()?;
    let env = std::env::vars_os()
        .map(|(k, v)| (k.into_encoded_bytes(), v.into_encoded_bytes()))
        .collect();
    let chan = channel::Channel::new(channel::Endpoint::stdio(input, output)?);
    // Bound before any user code runs, so no other process can hold the name.
    let listener = listener::Listener::bind()
        .map_err(|e| log(format_args!("the agent's socket cannot be bound: {e}")))
        .ok();
    Ok(Agent {
        chan,
        listener,
        signals,
        env,
        procs: Default::default(),
        calls: Default::default(),
        waits: Vec::new(),
        me: Me {
            pid,
            pid1,
            boot: boot_id(),
        },
        devnull,
        openat2: resolve::probe_openat2(),
        cgroup: cgroup::Cgroup::find(),
        nofile,
        next_serial: 0,
        next_marker: 0,
    })
}

/// Marks every descriptor the agent inherited (past the standard three) close-on-exec: none
/// may reach the processes it starts.
fn close_on_exec_inherited() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|&fd| fd > 2)
        .collect();
    for fd in fds {
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
    }
}

fn dup_cloexec(fd: i32) -> std::io::Result<OwnedFd> {
    let new = sys::cvt(unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) })?;
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

/// Raises the agent's open-files limit to its hard limit (deep folder trees hold one
/// descriptor per level); the limit found is what children get back.
fn raise_nofile() -> libc::rlimit {
    let mut found = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut found) };
    let raised = libc::rlimit {
        rlim_cur: found.rlim_max,
        rlim_max: found.rlim_max,
    };
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) };
    found
}

/// A random number for this start (process markers must not be guessable across starts).
fn boot_id() -> u64 {
    let mut bytes = [0u8; 8];
    let n = unsafe { libc::getrandom(bytes.as_mut_ptr().cast(), bytes.len(), 0) };
    if n == bytes.len() as isize {
        return u64::from_ne_bytes(bytes);
    }
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()).rotate_left(32)
}
