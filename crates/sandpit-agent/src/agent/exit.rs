//! Processes ending: reaped (every orphan too: the agent is PID 1 or a subreaper), reported
//! once their output is drained, or a short while after they ended when something they left
//! behind keeps their pipes open.

use std::time::{Duration, Instant};

use sandpit_agent::protocol::{ErrorKind, EventBody, Exit};

use super::error::fail;
use super::process::{Ended, Proc};
use super::state::Agent;
use super::sys;

/// How long pipes held open by what a process left behind may delay its `Exited`.
pub const GRACE: Duration = Duration::from_millis(200);

/// Reaps every child that ended; the agent's own processes get their `Exited` when due.
pub fn reap(agent: &mut Agent) {
    let mut ours = Vec::new();
    loop {
        let mut status = 0;
        let mut rusage: libc::rusage = unsafe { std::mem::zeroed() };
        let pid = unsafe { libc::wait4(-1, &mut status, libc::WNOHANG, &mut rusage) };
        if pid <= 0 {
            break;
        }
        let pid = pid as u32;
        let Some(p) = agent.procs.get_mut(&pid) else {
            continue;
        };
        let now = Instant::now();
        p.ended = Some(Ended {
            status,
            rusage,
            at: now,
        });
        if !p.output_done() {
            p.grace = Some(now + GRACE);
        }
        ours.push(pid);
    }
    for pid in ours {
        close_stdin(agent, pid);
        try_finish(agent, pid);
    }
}

/// Closes the standard input of a process that ended; bytes still queued are reported lost.
pub fn close_stdin(agent: &mut Agent, pid: u32) {
    let Some(stdin) = agent.procs.get_mut(&pid).and_then(|p| p.stdin.take()) else {
        return;
    };
    for pending in stdin.queue {
        agent.emit(
            pending.reply,
            EventBody::Error(fail(
                ErrorKind::NotFound,
                format!("process {pid} ended before it read all of its input"),
            )),
            &[],
        );
    }
}

/// Sends `Exited` once the process ended and its output is drained. A process nobody
/// received it for stays known when detached (an `Attach` gets it), else it is forgotten.
pub fn try_finish(agent: &mut Agent, pid: u32) {
    let Some(p) = agent.procs.get(&pid) else {
        return;
    };
    if p.ended.is_none() || !p.output_done() {
        return;
    }
    let exit = exit_of(pid, p, agent.cgroup.oom_kills());
    let detached = p.spec.detached;
    let subscribers = std::mem::take(&mut agent.procs.get_mut(&pid).expect("present").subscribers);
    let mut delivered = false;
    for s in subscribers {
        if agent.live(s) {
            agent.emit(s, EventBody::Exited(exit.clone()), &[]);
            delivered = true;
        }
    }
    if delivered || !detached {
        agent.procs.remove(&pid);
    }
}

/// The `Exited` of a process that ended.
pub fn exit_of(pid: u32, p: &Proc, oom_kills_now: Option<u64>) -> Exit {
    let ended = p.ended.as_ref().expect("the process ended");
    let status = ended.status;
    let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
    let oom_killed = signal == Some(libc::SIGKILL)
        && !p.timed_out
        && matches!((p.oom_kills_before, oom_kills_now), (Some(a), Some(b)) if b > a);
    Exit {
        pid,
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal,
        timed_out: p.timed_out,
        truncated: p.truncated,
        oom_killed,
        cpu_ns: sys::timeval_ns(&ended.rusage.ru_utime) + sys::timeval_ns(&ended.rusage.ru_stime),
        max_rss_bytes: (ended.rusage.ru_maxrss as u64) * 1024,
        duration_ms: ended.at.duration_since(p.started).as_millis() as u64,
    }
}
