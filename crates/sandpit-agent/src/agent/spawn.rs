//! Starting a process: fork, set it up, exec; the exec's failure comes back on a pipe.

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use sandpit_agent::protocol::{
    CallId, ErrorKind, EventBody, RlimitKind, Spawn, StdinMode, INITIAL_WINDOW,
};

use super::error::{fail, invalid, os_error, OpResult};
use super::process::{Backlog, Proc, StdinPipe};
use super::state::{Agent, CallKind};
use super::sys;

/// The variable every started process inherits, unique per process: a tree kill finds what a
/// process left behind by it, even after a double fork and `setsid`.
pub const MARKER: &str = "SANDPIT_PROCESS";

/// `PATH` when the environment has none (Debian's default).
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where the child stopped, reported with its errno before it exits.
#[derive(Clone, Copy)]
#[repr(u32)]
enum Stage {
    Session = 1,
    Streams = 2,
    Cwd = 3,
    Limits = 4,
    Ids = 5,
    Exec = 6,
}

/// Everything the child needs, made before the fork: the child only makes system calls.
struct Prepared {
    _argv: Vec<CString>,
    /// Pointers into `argv`, then NULL (the strings' heap buffers do not move).
    argv_ptrs: Vec<*const libc::c_char>,
    env_ptrs: Vec<*const libc::c_char>,
    _env: Vec<CString>,
    candidates: Vec<CString>,
    cwd: CString,
    rlimits: Vec<(libc::__rlimit_resource_t, libc::rlimit)>,
    nofile: libc::rlimit,
    uid: u32,
    gid: u32,
}

/// Answers `Spawn`: `Started`, then output and `Exited` as they come, or `Error`.
pub fn spawn(agent: &mut Agent, call: CallId, spec: Spawn) {
    let Some(reply) = agent.open_call(
        call,
        CallKind::Process {
            pid: 0,
            window: INITIAL_WINDOW,
            spawned: true,
        },
    ) else {
        return;
    };
    let start_only = spec.start_only && spec.detached;
    match start(agent, spec) {
        Ok(pid) if start_only => {
            agent.emit(reply, EventBody::Started { pid }, &[]);
            agent.calls.remove(&reply.call);
        }
        Ok(pid) => {
            if let Some(CallKind::Process { pid: p, .. }) = agent.call_mut(reply) {
                *p = pid;
            }
            agent
                .procs
                .get_mut(&pid)
                .expect("just inserted")
                .subscribers
                .push(reply);
            agent.emit(reply, EventBody::Started { pid }, &[]);
        }
        Err(e) => agent.emit(reply, EventBody::Error(e), &[]),
    }
}

/// Starts the process and records it; its pid.
fn start(agent: &mut Agent, spec: Spawn) -> OpResult<u32> {
    agent.next_marker += 1;
    let marker = format!("{:016x}-{}", agent.me.boot, agent.next_marker);
    let prepared = prepare(agent, &spec, &marker)?;
    let stdin = match spec.stdin {
        StdinMode::Null => None,
        StdinMode::Pipe => Some(pipe()?),
    };
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (report_r, report_w) = pipe()?;
    let stdin_fd = stdin
        .as_ref()
        .map_or(agent.devnull.as_raw_fd(), |(r, _)| r.as_raw_fd());
    let oom_kills_before = agent.cgroup.oom_kills();
    let started = Instant::now();
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        let errno = sys::errno_of(&e);
        let kind = if errno == libc::EAGAIN || errno == libc::ENOMEM {
            ErrorKind::CannotStart
        } else {
            ErrorKind::Io
        };
        return Err(sandpit_agent::protocol::AgentError {
            kind,
            message: format!(
                "cannot start a process: {e} (the sandbox's process or memory limit is full)"
            ),
            errno: Some(errno),
        });
    }
    if pid == 0 {
        unsafe {
            child(
                &prepared,
                [stdin_fd, out_w.as_raw_fd(), err_w.as_raw_fd()],
                report_w.as_raw_fd(),
            )
        }
    }
    drop((out_w, err_w, report_w));
    let stdin = stdin.map(|(r, w)| {
        drop(r);
        w
    });
    if let Some((stage, errno)) = exec_report(&report_r) {
        return Err(child_error(&spec, &prepared, stage, errno));
    }
    let stdin = match stdin {
        Some(fd) => {
            sys::set_nonblocking(fd.as_raw_fd()).map_err(|e| os_error(&e, "standard input"))?;
            Some(StdinPipe {
                fd,
                queue: Default::default(),
                queued: 0,
                close_after: false,
            })
        }
        None => None,
    };
    for fd in [&out_r, &err_r] {
        sys::set_nonblocking(fd.as_raw_fd()).map_err(|e| os_error(&e, "output pipe"))?;
    }
    let pid = pid as u32;
    agent.procs.insert(
        pid,
        Proc {
            deadline: spec
                .timeout_ms
                .map(|ms| started + Duration::from_millis(ms)),
            spec,
            marker,
            started,
            out: [Some(out_r), Some(err_r)],
            stdin,
            forwarded: [0; 2],
            truncated: false,
            subscribers: Vec::new(),
            backlog: Backlog::default(),
            ended: None,
            grace: None,
            timed_out: false,
            oom_kills_before,
        },
    );
    Ok(pid)
}

fn pipe() -> OpResult<(OwnedFd, OwnedFd)> {
    sys::pipe().map_err(|e| {
        let mut err = os_error(&e, "cannot make a pipe");
        if err.kind == ErrorKind::Io {
            err.kind = ErrorKind::CannotStart;
        }
        err
    })
}

/// Checks the request and builds the child's argv, environment, candidates and limits.
fn prepare(agent: &Agent, spec: &Spawn, marker: &str) -> OpResult<Prepared> {
    let program = spec
        .argv
        .first()
        .ok_or_else(|| invalid("argv is empty: name a program to run"))?;
    if program.is_empty() {
        return Err(invalid("the program's name is empty"));
    }
    if !spec.cwd.starts_with('/') {
        return Err(invalid(format!(
            "cwd {:?} is not an absolute path",
            spec.cwd
        )));
    }
    let nul = |what: &str| invalid(format!("{what} holds a NUL byte"));
    let argv = spec
        .argv
        .iter()
        .map(|a| sys::cstring(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| nul("an argument"))?;
    let mut env: Vec<(Vec<u8>, Vec<u8>)> = agent
        .env
        .iter()
        .filter(|(k, _)| k != MARKER.as_bytes() && !spec.env.iter().any(|(n, _)| n.as_bytes() == k))
        .cloned()
        .collect();
    for (k, v) in &spec.env {
        if k.is_empty() || k.contains('=') {
            return Err(invalid(format!(
                "environment variable name {k:?} is empty or holds '='"
            )));
        }
        if k != MARKER {
            env.push((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        }
    }
    env.push((MARKER.as_bytes().to_vec(), marker.as_bytes().to_vec()));
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == b"PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| DEFAULT_PATH.as_bytes().to_vec());
    let env = env
        .into_iter()
        .map(|(mut k, v)| {
            k.push(b'=');
            k.extend(v);
            sys::cstring(k)
        })
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| nul("an environment variable"))?;
    let candidates = if program.contains('/') {
        vec![sys::cstring(program.as_str()).map_err(|_| nul("the program"))?]
    } else {
        path.split(|&b| b == b':')
            .map(|dir| {
                let mut full = if dir.is_empty() {
                    b".".to_vec()
                } else {
                    dir.to_vec()
                };
                full.push(b'/');
                full.extend_from_slice(program.as_bytes());
                sys::cstring(full)
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| nul("PATH"))?
    };
    let rlimits = spec
        .rlimits
        .iter()
        .map(|l| {
            let resource = match l.resource {
                RlimitKind::Nproc => libc::RLIMIT_NPROC,
                RlimitKind::Nofile => libc::RLIMIT_NOFILE,
                RlimitKind::Fsize => libc::RLIMIT_FSIZE,
                RlimitKind::Core => libc::RLIMIT_CORE,
            };
            let value = l.value as libc::rlim_t;
            (
                resource,
                libc::rlimit {
                    rlim_cur: value,
                    rlim_max: value,
                },
            )
        })
        .collect();
    let pointers = |strings: &[CString]| {
        strings
            .iter()
            .map(|s| s.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect::<Vec<_>>()
    };
    Ok(Prepared {
        argv_ptrs: pointers(&argv),
        env_ptrs: pointers(&env),
        _argv: argv,
        _env: env,
        candidates,
        cwd: sys::cstring(spec.cwd.as_str()).map_err(|_| nul("cwd"))?,
        rlimits,
        nofile: agent.nofile,
        uid: spec.user.uid,
        gid: spec.user.gid,
    })
}

/// The child, between fork and exec: system calls only. Reports (stage, errno) on `report`
/// when a step fails; a successful exec closes `report` (close-on-exec).
unsafe fn child(p: &Prepared, streams: [i32; 3], report: i32) -> ! {
    let fail = |stage: Stage, errno: i32| -> ! {
        let mut record = [0u8; 8];
        record[..4].copy_from_slice(&(stage as u32).to_ne_bytes());
        record[4..].copy_from_slice(&errno.to_ne_bytes());
        libc::write(report, record.as_ptr().cast(), record.len());
        libc::_exit(127)
    };
    let errno = || *libc::__errno_location();
    if libc::setsid() < 0 {
        fail(Stage::Session, errno());
    }
    for (target, fd) in streams.into_iter().enumerate() {
        // dup2 onto itself would keep close-on-exec set.
        let r = if fd == target as i32 {
            libc::fcntl(fd, libc::F_SETFD, 0)
        } else {
            libc::dup2(fd, target as i32)
        };
        if r < 0 {
            fail(Stage::Streams, errno());
        }
    }
    if libc::chdir(p.cwd.as_ptr()) < 0 {
        fail(Stage::Cwd, errno());
    }
    libc::setrlimit(libc::RLIMIT_NOFILE, &p.nofile);
    for (resource, limit) in &p.rlimits {
        if libc::setrlimit(*resource, limit) < 0 {
            fail(Stage::Limits, errno());
        }
    }
    if libc::geteuid() == 0 && libc::setgroups(0, std::ptr::null()) < 0 {
        fail(Stage::Ids, errno());
    }
    if libc::setresgid(p.gid, p.gid, p.gid) < 0 || libc::setresuid(p.uid, p.uid, p.uid) < 0 {
        fail(Stage::Ids, errno());
    }
    for signal in 1..libc::SIGRTMAX() {
        if signal != libc::SIGKILL && signal != libc::SIGSTOP {
            libc::signal(signal, libc::SIG_DFL);
        }
    }
    let mut none: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut none);
    libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    // Like execvp: not found goes on to the next candidate; permission denied is the answer
    // unless a later candidate runs.
    let mut answer = libc::ENOENT;
    for candidate in &p.candidates {
        libc::execve(
            candidate.as_ptr(),
            p.argv_ptrs.as_ptr(),
            p.env_ptrs.as_ptr(),
        );
        match errno() {
            libc::ENOENT | libc::ENOTDIR => {}
            libc::EACCES => answer = libc::EACCES,
            other => {
                answer = other;
                break;
            }
        }
    }
    fail(Stage::Exec, answer)
}

/// What the child reported: `None` when the exec succeeded.
fn exec_report(report: &OwnedFd) -> Option<(u32, i32)> {
    let mut record = [0u8; 8];
    let mut got = 0;
    while got < record.len() {
        match sys::read(report.as_raw_fd(), &mut record[got..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    (got == record.len()).then(|| {
        (
            u32::from_ne_bytes(record[..4].try_into().expect("4 bytes")),
            i32::from_ne_bytes(record[4..].try_into().expect("4 bytes")),
        )
    })
}

/// The error a child's report stands for.
fn child_error(
    spec: &Spawn,
    p: &Prepared,
    stage: u32,
    errno: i32,
) -> sandpit_agent::protocol::AgentError {
    let program = &spec.argv[0];
    let reason = sys::os(errno);
    let mut e = match stage {
        s if s == Stage::Cwd as u32 => os_error(&reason, &format!("working folder {}", spec.cwd)),
        s if s == Stage::Exec as u32 => {
            let kind = if errno == libc::EAGAIN {
                ErrorKind::CannotStart
            } else {
                ErrorKind::CannotExec
            };
            let message = if errno == libc::ENOENT && !program.contains('/') {
                let dirs: Vec<_> = p
                    .candidates
                    .iter()
                    .filter_map(|c| {
                        let c = c.to_string_lossy();
                        c.rsplit_once('/').map(|(d, _)| d.to_string())
                    })
                    .collect();
                format!(
                    "cannot execute {program}: not found in PATH ({})",
                    dirs.join(":")
                )
            } else {
                format!("cannot execute {program}: {reason}")
            };
            fail(kind, message)
        }
        s if s == Stage::Ids as u32 && errno == libc::EAGAIN => fail(
            ErrorKind::CannotStart,
            format!("cannot start {program} as uid {}: {reason}", spec.user.uid),
        ),
        s if s == Stage::Ids as u32 => fail(
            ErrorKind::PermissionDenied,
            format!(
                "cannot start {program} as uid {} gid {}: {reason}",
                spec.user.uid, spec.user.gid
            ),
        ),
        s if s == Stage::Limits as u32 => invalid(format!(
            "a resource limit of {program} cannot be set: {reason}"
        )),
        _ => fail(
            ErrorKind::CannotStart,
            format!("cannot set up {program}: {reason}"),
        ),
    };
    e.errno = Some(errno);
    e
}
