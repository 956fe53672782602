//! Labels on every container Sandpit creates, so any process can find, adopt or clean up
//! what an earlier one left.

/// The session id.
pub const SESSION: &str = "sandpit.session";
/// The language name.
pub const LANGUAGE: &str = "sandpit.language";
/// Unix seconds after which the container may be removed by anyone.
pub const EXPIRES_AT: &str = "sandpit.expires-at";
/// `host:pid:start` of the process that opened the session; absent on sessions that outlive
/// their process (a server's, which the next server process adopts).
pub const PROCESS: &str = "sandpit.process";
/// Who the session belongs to (an API key's id on a server).
pub const OWNER: &str = "sandpit.owner";
/// Marks every Sandpit container, whatever its session.
pub const MANAGED: &str = "sandpit.managed";
/// The session's settings (JSON), so that another process can adopt it.
pub const CONFIG: &str = "sandpit.config";
/// The agent protocol the sandbox's agent speaks; absent on sessions opened by a Sandpit
/// without an agent inside.
pub const AGENT: &str = "sandpit.agent-protocol";
/// Prefix of labels the caller chose (`sandpit.meta.KEY`).
pub const META_PREFIX: &str = "sandpit.meta.";

/// `host:pid:start` of this process; `start` (boot-relative clock ticks) tells a reused pid
/// apart.
pub(crate) fn this_process() -> String {
    format!(
        "{}:{}:{}",
        hostname(),
        std::process::id(),
        start_ticks(std::process::id()).unwrap_or(0)
    )
}

pub(crate) fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

/// Field 22 of /proc/PID/stat: when the process started.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses; fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}
