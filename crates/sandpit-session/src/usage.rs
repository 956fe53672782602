//! What a session uses now: CPU, memory (now and peak), processes, disk in the workdir,
//! network bytes. The agent reads them from the sandbox's own cgroup and /proc (the engine's
//! stats call takes about a second on Docker); the engine's stats where the sandbox has no
//! cgroup files (gVisor).

use std::time::Duration;

use serde::Serialize;

use sandpit_agent::protocol::{EventBody, Op, UsageRequest};

use crate::agent::unexpected;
use crate::error::{Error, Result};
use crate::session::SandboxSession;

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

impl SandboxSession {
    /// What the session uses now: the agent reads the sandbox's cgroup and /proc (no process is
    /// started); the engine's figures where the sandbox has no cgroup inside (gVisor).
    pub async fn usage(&self) -> Result<SessionUsage> {
        self.check_open()?;
        let inner = &self.inner;
        let op = Op::Usage(UsageRequest {
            workdir: inner.workdir.clone(),
        });
        let read = match self.ask(op, &[]).await? {
            Ok((EventBody::Usage(usage), _)) => usage,
            Ok((other, _)) => {
                return Err(Error::Agent {
                    container: inner.container.clone(),
                    reason: format!("answered a usage request with {other:?}"),
                })
            }
            Err(e) => return Err(unexpected(&inner.container, "to read the usage", e)),
        };
        let mut usage = SessionUsage {
            cpu: Duration::from_nanos(read.cpu_ns.unwrap_or(0)),
            memory_bytes: read.memory_bytes.unwrap_or(0),
            memory_peak_bytes: read.memory_peak_bytes,
            memory_limit_bytes: read
                .memory_limit_bytes
                .unwrap_or(inner.policy.memory)
                .min(inner.policy.memory),
            pids: read.pids.unwrap_or(0),
            disk_used_bytes: read.disk_used_bytes.unwrap_or(0),
            disk_limit_bytes: read.disk_size_bytes.filter(|_| self.has_disk_limit()),
            net_rx_bytes: read.net_rx_bytes,
            net_tx_bytes: read.net_tx_bytes,
        };
        if read.cpu_ns.is_none() || read.memory_bytes.is_none() {
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
