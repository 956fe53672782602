//! Signals to every process but the agent (of one user, or all): no process is started, so it
//! works with the process limit full.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sandpit_agent::protocol::{CallId, EventBody, SignalAll};

use super::error::invalid;
use super::procfs::{self, Entry};
use super::state::{Agent, CallKind, Me, Wait, WaitFor};
use super::sys;

/// Rounds of stopping before the kill, at most.
const STOP_ROUNDS: usize = 64;

/// The processes a signal to all reaches now (zombies included: they hold pids until reaped).
pub fn targets(me: Me, uid: Option<u32>) -> Vec<Entry> {
    procfs::scope(me)
        .into_iter()
        .filter(|e| uid.is_none() || procfs::real_uid(e.pid) == uid)
        .collect()
}

fn is_stopped_or_dead(e: &Entry) -> bool {
    matches!(e.state, b'T' | b't' | b'Z' | b'X')
}

/// Stops every target in rounds until none runs (so none forks meanwhile), then kills them;
/// how many processes it reached.
pub fn kill_all(me: Me, uid: Option<u32>) -> u32 {
    let mut seen = HashSet::new();
    for _ in 0..STOP_ROUNDS {
        let now = targets(me, uid);
        seen.extend(now.iter().filter(|e| e.state != b'Z').map(|e| e.pid));
        let running: Vec<u32> = now
            .iter()
            .filter(|e| !is_stopped_or_dead(e))
            .map(|e| e.pid)
            .collect();
        if running.is_empty() {
            break;
        }
        if me.pid1 && uid.is_none() {
            // One call reaches every process but the agent.
            unsafe { libc::kill(-1, libc::SIGSTOP) };
        } else {
            for pid in running {
                sys::kill(pid, libc::SIGSTOP);
            }
        }
    }
    if me.pid1 && uid.is_none() {
        unsafe { libc::kill(-1, libc::SIGKILL) };
    } else {
        for e in targets(me, uid) {
            sys::kill(e.pid, libc::SIGKILL);
        }
    }
    seen.len() as u32
}

/// Sends `signal` to every target once; how many it reached.
fn send_all(me: Me, uid: Option<u32>, signal: i32) -> u32 {
    let now: Vec<Entry> = targets(me, uid)
        .into_iter()
        .filter(|e| e.state != b'Z')
        .collect();
    if me.pid1 && uid.is_none() {
        unsafe { libc::kill(-1, signal) };
        return now.len() as u32;
    }
    now.into_iter().filter(|e| sys::kill(e.pid, signal)).count() as u32
}

/// Answers `SignalAll`: `Signalled`, after the reaping when a wait was asked for.
pub fn signal_all(agent: &mut Agent, call: CallId, req: SignalAll) {
    if !(1..=libc::SIGRTMAX()).contains(&req.signal) {
        agent.reply(
            call,
            EventBody::Error(invalid(format!("{} is not a signal number", req.signal))),
        );
        return;
    }
    if req.signal != libc::SIGKILL {
        let count = send_all(agent.me, req.uid, req.signal);
        agent.reply(call, EventBody::Signalled { count, left: 0 });
        return;
    }
    let count = kill_all(agent.me, req.uid);
    match req.wait_ms {
        None => agent.reply(call, EventBody::Signalled { count, left: 0 }),
        Some(ms) => {
            let Some(reply) = agent.open_call(call, CallKind::Waiting) else {
                return;
            };
            agent.waits.push(Wait {
                reply,
                until: Instant::now() + Duration::from_millis(ms),
                count,
                target: WaitFor::All { uid: req.uid },
            });
        }
    }
}
