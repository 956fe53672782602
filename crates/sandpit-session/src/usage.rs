//! What a session uses now: CPU, memory (now and peak), processes, disk in the workdir,
//! network bytes. Read from the sandbox's own cgroup and /proc in one command (the engine's
//! stats call takes about a second on Docker); the engine's stats where the sandbox has no
//! cgroup files (gVisor).

use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::session::SandboxSession;
use crate::step::{shell, Step};

/// A session's resource usage at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SessionUsage {
    /// CPU time used since the session opened.
    #[serde(rename = "cpu_seconds", serialize_with = "seconds")]
    pub cpu: Duration,
    /// Memory in use now, without inactive page cache.
    pub memory_bytes: u64,
    /// The most memory used since the session opened, where known.
    pub memory_peak_bytes: Option<u64>,
    /// The memory limit.
    pub memory_limit_bytes: u64,
    /// Processes and threads now.
    pub pids: u64,
    /// Bytes used in the workdir.
    pub disk_used_bytes: u64,
    /// The workdir's size, when it has a limit.
    pub disk_limit_bytes: Option<u64>,
    /// Bytes received over the network (the loopback interface excluded).
    pub net_rx_bytes: u64,
    /// Bytes sent over the network (the loopback interface excluded).
    pub net_tx_bytes: u64,
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1000.0).round() / 1000.0)
}

/// Prints `key=value` words; `-` where a file is missing.
const PROBE: &str = r#"g=/sys/fs/cgroup
c=-; read c 2>/dev/null <$g/cpuacct/cpuacct.usage || { read k c 2>/dev/null <$g/cpu.stat && c=${c}000; } || c=-
m=-; read m 2>/dev/null <$g/memory/memory.usage_in_bytes || read m 2>/dev/null <$g/memory.current || m=-
p=-; read p 2>/dev/null <$g/memory/memory.max_usage_in_bytes || read p 2>/dev/null <$g/memory.peak || p=-
l=-; read l 2>/dev/null <$g/memory/memory.limit_in_bytes || read l 2>/dev/null <$g/memory.max || l=-
n=-; read n 2>/dev/null <$g/pids/pids.current || read n 2>/dev/null <$g/pids.current || n=-
i=$(awk '$1 == "total_inactive_file" || $1 == "inactive_file" {print $2; exit}' $g/memory/memory.stat $g/memory.stat 2>/dev/null)
d=$(df -Pk "$1" 2>/dev/null | awk 'NR == 2 {print $3 * 1024, $2 * 1024}')
t=$(awk 'NR > 2 && $1 != "lo:" {sub(/^[^:]*:/, ""); rx += $1; tx += $9} END {print rx + 0, tx + 0}' /proc/net/dev 2>/dev/null)
echo "cpu=$c mem=$m peak=$p limit=$l pids=$n inactive=${i:--} disk=${d% *} disksize=${d#* } rx=${t% *} tx=${t#* }""#;

impl SandboxSession {
    /// What the session uses now.
    pub async fn usage(&self) -> Result<SessionUsage> {
        self.check_open()?;
        let inner = &self.inner;
        let mut cmd = shell(PROBE);
        cmd.argv
            .extend(["sandpit-usage".to_string(), inner.workdir.clone()]);
        let out = self
            .exec_step(Step::new(&cmd, crate::step::HOUSEKEEPING))
            .await?;
        let field = |name: &str| -> Option<u64> {
            out.stdout
                .split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .and_then(|v| v.parse().ok())
        };
        let mut usage = SessionUsage {
            cpu: Duration::from_nanos(field("cpu").unwrap_or(0)),
            memory_bytes: field("mem")
                .unwrap_or(0)
                .saturating_sub(field("inactive").unwrap_or(0)),
            memory_peak_bytes: field("peak"),
            memory_limit_bytes: field("limit")
                .unwrap_or(inner.policy.memory)
                .min(inner.policy.memory),
            pids: field("pids").unwrap_or(0),
            disk_used_bytes: field("disk").unwrap_or(0),
            disk_limit_bytes: field("disksize").filter(|_| self.has_disk_limit()),
            net_rx_bytes: field("rx").unwrap_or(0),
            net_tx_bytes: field("tx").unwrap_or(0),
        };
        if field("cpu").is_none() || field("mem").is_none() {
            // No cgroup inside (gVisor): the engine's figures.
            let stats = inner
                .engine
                .container_stats(&inner.container)
                .await
                .map_err(|e| {
                    Error::engine(e, |cause| Error::Stats {
                        container: inner.container.clone(),
                        cause,
                    })
                })?;
            usage.cpu = Duration::from_nanos(stats.cpu_ns);
            usage.memory_bytes = stats.memory_bytes;
            usage.memory_peak_bytes = stats.memory_peak_bytes;
            usage.pids = stats.pids;
        }
        Ok(usage)
    }
}
