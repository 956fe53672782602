//! What the owner's sessions use, each and together.

use std::sync::Arc;

use super::{Entry, Manager, Owner};
use crate::error::ServiceResult;

impl Manager {
    /// The memory limits of the open sessions, added up (what a cluster node announces).
    pub fn reserved_memory(&self) -> u64 {
        self.shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .map(|e| e.session.policy().memory)
            .sum()
    }

    /// What all the owner's sessions use together (CPU, memory, processes, disk, network).
    pub async fn total_usage(&self, owner: &Owner) -> ServiceResult<crate::types::UsageInfo> {
        let mut total = crate::types::UsageInfo {
            cpu_seconds: 0.0,
            memory_bytes: 0,
            memory_peak_bytes: None,
            memory_limit_bytes: 0,
            pids: 0,
            disk_used_bytes: 0,
            disk_limit_bytes: None,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
        };
        for (_, health) in self.health_all(owner).await {
            let u = health?;
            total.cpu_seconds += u.cpu_seconds;
            total.memory_bytes += u.memory_bytes;
            total.memory_limit_bytes += u.memory_limit_bytes;
            total.pids += u.pids;
            total.disk_used_bytes += u.disk_used_bytes;
            total.net_rx_bytes += u.net_rx_bytes;
            total.net_tx_bytes += u.net_tx_bytes;
        }
        Ok(total)
    }

    /// Asks each of the owner's sessions what it uses: a session that answers is healthy, one
    /// that does not says why.
    pub async fn health_all(
        &self,
        owner: &Owner,
    ) -> Vec<(String, ServiceResult<crate::types::UsageInfo>)> {
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .filter(|e| e.owner() == owner.0)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let id = e.session.id().to_string();
            let usage = match e.session.usage().await {
                Ok(u) => Ok(u.into()),
                Err(err) => Err(self.failed(&e, err).await),
            };
            out.push((id, usage));
        }
        out
    }
}
