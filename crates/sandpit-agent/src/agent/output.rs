//! A process's output: read as it comes, forwarded to every subscriber within its window, cut
//! at the output limit, kept for a detached process nobody listens to.

use std::io;
use std::os::fd::AsRawFd;

use sandpit_agent::protocol::EventBody;

use super::process::STREAMS;
use super::state::{Agent, CallKind, CallRef};
use super::sys;

/// Largest chunk read from a pipe at once (and so the largest `Output` payload).
const CHUNK: usize = 64 << 10;

/// The smallest window among `subscribers`, `None` when there are none.
fn min_window(agent: &Agent, subscribers: &[CallRef]) -> Option<u64> {
    subscribers
        .iter()
        .map(|s| match agent.calls.get(&s.call) {
            Some(c) if c.serial == s.serial => match c.kind {
                CallKind::Process { window, .. } => window,
                _ => 0,
            },
            _ => 0,
        })
        .min()
}

/// How many bytes may be read from stream `index` of `pid` now: 0 while a subscriber's window
/// is empty or the channel is full (the child then blocks on a full pipe).
pub fn readable(agent: &Agent, pid: u32, index: usize) -> usize {
    let Some(p) = agent.procs.get(&pid) else {
        return 0;
    };
    if p.out[index].is_none() {
        return 0;
    }
    let limit_reached = p.spec.output_limit.is_some_and(|l| p.forwarded[index] >= l);
    if limit_reached {
        return CHUNK;
    }
    match min_window(agent, &p.subscribers) {
        None => CHUNK,
        Some(_) if !agent.chan.has_room() => 0,
        Some(w) => CHUNK.min(w as usize),
    }
}

/// Reads one chunk of stream `index` of `pid` and forwards it; false when nothing was there
/// (or nothing may be read now).
pub fn pump(agent: &mut Agent, pid: u32, index: usize) -> bool {
    let room = readable(agent, pid, index);
    if room == 0 {
        return false;
    }
    let mut buf = vec![0u8; room];
    let p = agent.procs.get_mut(&pid).expect("readable checked it");
    let fd = p.out[index].as_ref().expect("readable checked it");
    let n = match sys::read(fd.as_raw_fd(), &mut buf) {
        Ok(0) => {
            p.out[index] = None;
            return false;
        }
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return false,
        Err(e) => {
            super::log(format_args!("output of process {pid} cannot be read: {e}"));
            p.out[index] = None;
            return false;
        }
    };
    let keep = match p.spec.output_limit {
        Some(limit) => (limit.saturating_sub(p.forwarded[index]) as usize).min(n),
        None => n,
    };
    if keep < n {
        p.truncated = true;
    }
    p.forwarded[index] += keep as u64;
    if keep == 0 {
        return true;
    }
    let data = &buf[..keep];
    let stream = STREAMS[index];
    if p.subscribers.is_empty() {
        if p.spec.detached {
            p.backlog.push(stream, data);
        }
        return true;
    }
    for s in p.subscribers.clone() {
        if let Some(CallKind::Process { window, .. }) = agent.call_mut(s) {
            *window = window.saturating_sub(keep as u64);
        }
        agent.emit(s, EventBody::Output { pid, stream }, data);
    }
    true
}

/// Chunks read from a pipe at the grace deadline before it is closed.
const LAST_CHUNKS: usize = 16;

/// At a process's grace deadline: reads what its pipes hold now and closes them. False when a
/// subscriber's window holds them back (the process's own last output may still be there).
pub fn close_left_open(agent: &mut Agent, pid: u32) -> bool {
    for index in 0..2 {
        if agent.procs[&pid].out[index].is_some() && readable(agent, pid, index) == 0 {
            return false;
        }
    }
    for index in 0..2 {
        for _ in 0..LAST_CHUNKS {
            if !pump(agent, pid, index) {
                break;
            }
        }
        if let Some(p) = agent.procs.get_mut(&pid) {
            p.out[index] = None;
        }
    }
    true
}
