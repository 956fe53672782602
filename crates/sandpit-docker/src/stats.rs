//! One stats reading as Sandpit's [`ContainerStats`].

use bollard::models::ContainerStatsResponse;
use sandpit_engine::ContainerStats;

/// Converts the engine's stats answer.
pub(crate) fn container_stats(s: ContainerStatsResponse) -> ContainerStats {
    let memory = s.memory_stats.unwrap_or_default();
    let pick = |keys: &[&str]| {
        memory
            .stats
            .as_ref()
            .and_then(|m| keys.iter().find_map(|k| m.get(*k)))
            .copied()
            .unwrap_or(0)
    };
    let inactive = pick(&["total_inactive_file", "inactive_file"]);
    let cache = pick(&["total_cache", "cache", "file"]);
    let (rx, tx) = s
        .networks
        .unwrap_or_default()
        .values()
        .fold((0, 0), |(rx, tx), n| {
            (rx + n.rx_bytes.unwrap_or(0), tx + n.tx_bytes.unwrap_or(0))
        });
    ContainerStats {
        cpu_ns: s
            .cpu_stats
            .and_then(|c| c.cpu_usage)
            .and_then(|u| u.total_usage)
            .unwrap_or(0),
        memory_bytes: memory.usage.unwrap_or(0).saturating_sub(inactive),
        memory_usage_bytes: memory.usage.unwrap_or(0),
        memory_cache_bytes: cache,
        memory_peak_bytes: memory.max_usage.filter(|m| *m > 0),
        memory_limit_bytes: memory.limit.unwrap_or(0),
        pids: s.pids_stats.and_then(|p| p.current).unwrap_or(0),
        net_rx_bytes: rx,
        net_tx_bytes: tx,
    }
}
