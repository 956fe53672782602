//! What `/proc` says about the processes the agent may act on.

use std::collections::{HashMap, HashSet};

use super::creds::AsUser;
use super::state::Me;
use sandpit_agent::protocol::Ids;

/// One process as `/proc/PID/stat` describes it.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    /// Its pid.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// Its process group.
    pub pgrp: u32,
    /// Its session.
    pub session: u32,
    /// Its state letter (`R`, `S`, `T`, `Z`, ...).
    pub state: u8,
}

fn stat(pid: u32) -> Option<Entry> {
    let text = std::fs::read(format!("/proc/{pid}/stat")).ok()?;
    // The name in parentheses may hold anything, parentheses too: the fields follow the last.
    let close = text.iter().rposition(|&b| b == b')')?;
    let rest = std::str::from_utf8(&text[close + 1..]).ok()?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next()?.bytes().next()?;
    let mut num = || fields.next()?.parse::<u32>().ok();
    Some(Entry {
        pid,
        state,
        ppid: num()?,
        pgrp: num()?,
        session: num()?,
    })
}

/// Every process in `/proc`.
fn all() -> Vec<Entry> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(stat)
        .collect()
}

/// The processes the agent may act on, itself excluded: every process of the sandbox when it
/// is PID 1, else only its own descendants (never the host's other processes).
pub fn scope(me: Me) -> Vec<Entry> {
    let all = all();
    if me.pid1 {
        return all.into_iter().filter(|e| e.pid != me.pid).collect();
    }
    let mut children: HashMap<u32, Vec<Entry>> = HashMap::new();
    for e in all {
        children.entry(e.ppid).or_default().push(e);
    }
    let mut out = Vec::new();
    let mut todo = vec![me.pid];
    let mut seen = HashSet::new();
    while let Some(pid) = todo.pop() {
        for e in children.remove(&pid).unwrap_or_default() {
            if seen.insert(e.pid) {
                todo.push(e.pid);
                out.push(e);
            }
        }
    }
    out
}

/// A field of `/proc/PID/status` with ids (`Uid:` or `Gid:`): (real, effective).
fn status_ids(pid: u32, field: &str) -> Option<(u32, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field))?;
    let mut ids = line[field.len()..].split_ascii_whitespace();
    Some((ids.next()?.parse().ok()?, ids.next()?.parse().ok()?))
}

/// The real uid of a process.
pub fn real_uid(pid: u32) -> Option<u32> {
    status_ids(pid, "Uid:").map(|(real, _)| real)
}

/// True when the environment of `pid` holds `NAME=value` (`entry`). The agent has no
/// `CAP_SYS_PTRACE`, so it reads as the process's own user (the kernel then allows it).
pub fn has_env(pid: u32, entry: &[u8]) -> bool {
    let Some(((_, uid), (_, gid))) = status_ids(pid, "Uid:").zip(status_ids(pid, "Gid:")) else {
        return false;
    };
    let environ = match AsUser::new(Ids { uid, gid }) {
        Ok(_as) => std::fs::read(format!("/proc/{pid}/environ")),
        Err(_) => return false,
    };
    environ.is_ok_and(|env| env.split(|&b| b == 0).any(|v| v == entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agent_s_own_stat_is_read() {
        let me = std::process::id();
        let e = stat(me).expect("own stat");
        assert_eq!(e.pid, me);
        assert_eq!(e.ppid, std::os::unix::process::parent_id());
    }
}
