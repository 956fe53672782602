//! Signals to one process, or to it and everything it started (its tree): descendants, its
//! session and process group, and every process carrying its marker. No process is started.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sandpit_agent::protocol::{CallId, ErrorKind, EventBody, SignalProcess, SignalScope};

use super::error::fail;
use super::procfs::{self, Entry};
use super::spawn::MARKER;
use super::state::{Agent, CallKind, Me, Wait, WaitFor};
use super::sys;

/// Rounds of stopping before the kill, at most (a round finds what forked meanwhile).
const STOP_ROUNDS: usize = 64;
/// The longest a tree kill waits for its processes to be reaped before it answers.
const REAP_WAIT: Duration = Duration::from_secs(2);

/// The processes of the tree of `root` now (`root` included while it exists).
fn members(me: Me, root: u32, marker: &[u8], known: &HashSet<u32>) -> Vec<u32> {
    let scope = procfs::scope(me);
    let mut set: HashSet<u32> = known.clone();
    for e in &scope {
        if e.pid == root || e.session == root || e.pgrp == root {
            set.insert(e.pid);
        }
    }
    // Descendants of any member are members.
    loop {
        let before = set.len();
        for e in &scope {
            if set.contains(&e.ppid) {
                set.insert(e.pid);
            }
        }
        if set.len() == before {
            break;
        }
    }
    for e in &scope {
        if !set.contains(&e.pid) && e.state != b'Z' && procfs::has_env(e.pid, marker) {
            set.insert(e.pid);
        }
    }
    let present: HashSet<u32> = scope.iter().map(|e: &Entry| e.pid).collect();
    set.into_iter().filter(|p| present.contains(p)).collect()
}

/// `MARKER=value`, as it appears in an environment.
fn marker_entry(marker: &str) -> Vec<u8> {
    format!("{MARKER}={marker}").into_bytes()
}

/// Stops the tree of `root` in rounds until nothing new appears, then kills it; the pids
/// killed.
pub fn kill_tree(me: Me, root: u32, marker: &str) -> Vec<u32> {
    let entry = marker_entry(marker);
    let mut stopped = HashSet::new();
    for _ in 0..STOP_ROUNDS {
        let found = members(me, root, &entry, &stopped);
        let new: Vec<u32> = found.into_iter().filter(|p| !stopped.contains(p)).collect();
        if new.is_empty() {
            break;
        }
        for pid in new {
            sys::kill(pid, libc::SIGSTOP);
            stopped.insert(pid);
        }
    }
    let killed: Vec<u32> = stopped.into_iter().collect();
    for &pid in &killed {
        sys::kill(pid, libc::SIGKILL);
    }
    killed
}

/// Sends `signal` to every process of the tree of `root` once; how many it reached.
fn signal_tree(me: Me, root: u32, marker: &str, signal: i32) -> u32 {
    let members = members(me, root, &marker_entry(marker), &HashSet::new());
    members
        .into_iter()
        .filter(|&p| sys::kill(p, signal))
        .count() as u32
}

/// Answers `Signal`: `Signalled` (after the reaping, for a tree kill), or `Error`.
pub fn signal(agent: &mut Agent, call: CallId, req: SignalProcess) {
    let Some(p) = agent.procs.get(&req.pid) else {
        agent.reply(
            call,
            EventBody::Error(fail(
                ErrorKind::NotFound,
                format!("no process {} was started by this agent", req.pid),
            )),
        );
        return;
    };
    if !(0..=libc::SIGRTMAX()).contains(&req.signal) {
        agent.reply(
            call,
            EventBody::Error(super::error::invalid(format!(
                "{} is not a signal number",
                req.signal
            ))),
        );
        return;
    }
    let marker = p.marker.clone();
    let ended = p.ended.is_some();
    match req.scope {
        SignalScope::Process => {
            // An ended process's pid may belong to another process by now.
            let count = u32::from(!ended && sys::kill(req.pid, req.signal));
            agent.reply(call, EventBody::Signalled { count, left: 0 });
        }
        SignalScope::Tree if req.signal == libc::SIGKILL => {
            let killed = kill_tree(agent.me, req.pid, &marker);
            let Some(reply) = agent.open_call(call, CallKind::Waiting) else {
                return;
            };
            agent.waits.push(Wait {
                reply,
                until: Instant::now() + REAP_WAIT,
                count: killed.len() as u32,
                target: WaitFor::Pids(killed),
            });
        }
        SignalScope::Tree => {
            let count = signal_tree(agent.me, req.pid, &marker, req.signal);
            agent.reply(call, EventBody::Signalled { count, left: 0 });
        }
    }
}

/// Kills the tree of a process the agent started (a timeout, a cancelled call), or what it
/// left behind once it ended: nobody waits for an answer; its `Exited` follows the reaping.
pub fn kill_quietly(agent: &mut Agent, pid: u32) {
    if let Some(p) = agent.procs.get(&pid) {
        let marker = p.marker.clone();
        kill_tree(agent.me, pid, &marker);
    }
}
