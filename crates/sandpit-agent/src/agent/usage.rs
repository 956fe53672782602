//! What the sandbox uses: its cgroup, its disk, its network.

use sandpit_agent::protocol::{CallId, EventBody, Usage, UsageRequest};

use super::state::Agent;
use super::sys;

/// Answers `Usage`.
pub fn usage(agent: &mut Agent, call: CallId, req: UsageRequest) {
    let cg = &agent.cgroup;
    let (disk_used_bytes, disk_size_bytes) = disk(&req.workdir).unzip();
    let (net_rx_bytes, net_tx_bytes) = network();
    let usage = Usage {
        cpu_ns: cg.cpu_ns(),
        memory_bytes: cg.memory(),
        memory_peak_bytes: cg.memory_peak(),
        memory_limit_bytes: cg.memory_limit(),
        pids: cg.pids(),
        oom_kills: cg.oom_kills(),
        disk_used_bytes,
        disk_size_bytes,
        net_rx_bytes,
        net_tx_bytes,
    };
    agent.reply(call, EventBody::Usage(usage));
}

/// (used, size) of the filesystem holding `folder`.
fn disk(folder: &str) -> Option<(u64, u64)> {
    let path = sys::cstring(folder).ok()?;
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    sys::cvt(unsafe { libc::statvfs(path.as_ptr(), &mut st) }).ok()?;
    let block = st.f_frsize as u64;
    Some((
        (st.f_blocks as u64).saturating_sub(st.f_bfree as u64) * block,
        st.f_blocks as u64 * block,
    ))
}

/// Bytes (received, sent) on every interface but loopback.
fn network() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/net/dev").unwrap_or_default();
    let mut total = (0, 0);
    for line in text.lines().skip(2) {
        let Some((name, counters)) = line.split_once(':') else {
            continue;
        };
        if name.trim() == "lo" {
            continue;
        }
        let fields: Vec<u64> = counters
            .split_ascii_whitespace()
            .filter_map(|f| f.parse().ok())
            .collect();
        if fields.len() >= 9 {
            total.0 += fields[0];
            total.1 += fields[8];
        }
    }
    total
}
