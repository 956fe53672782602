//! The sweeper: closes what expired or idled (or pauses what idled), and removes containers
//! of sessions that never opened.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Entry, Manager, KIND_LABEL, SERVER_LABEL};
use crate::registry::Ownership;
use crate::store::now;

impl Manager {
    /// Sweeps every `sweep_interval` seconds while the manager lives.
    pub(super) fn spawn_sweeper(&self) {
        let weak = Arc::downgrade(&self.shared);
        let every = Duration::from_secs(self.shared.config.sweep_interval.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = weak.upgrade() else { return };
                Manager { shared }.sweep().await;
            }
        });
    }

    /// Closes what expired or idled (or pauses what idled, when configured).
    pub async fn sweep(&self) {
        self.close_parked(false);
        self.close_claimed(false);
        let t = now();
        // A lost session is remembered as long as it could have lived.
        let _ = self
            .shared
            .store
            .forget_lost_before(t.saturating_sub(self.shared.config.max_lifetime));
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .cloned()
            .collect();
        for entry in entries {
            if self
                .shared
                .registry
                .as_ref()
                .is_some_and(|registry| registry.ownership(entry.session.id()) == Ownership::Fenced)
            {
                self.fence(&entry).await;
                continue;
            }
            let r = entry.record();
            let busy = entry.in_flight.load(Ordering::SeqCst) > 0;
            let expired = t >= r.expires_at;
            let idle = !busy
                && r.paused_since.is_none()
                && t >= r.last_used.saturating_add(r.idle_timeout);
            if expired || (idle && !self.shared.config.pause_when_idle) {
                tracing::info!(
                    "closing session {} ({})",
                    r.id,
                    if expired {
                        "its lifetime ended"
                    } else {
                        "idle"
                    }
                );
                self.forget(&entry).await;
            } else if idle {
                if let Err(e) = self.pause_entry(&entry).await {
                    tracing::warn!("pausing idle session {}: {e}", r.id);
                }
            }
        }
        self.remove_orphans().await;
        self.readopt_stopped().await;
    }

    /// Removes, now and then, the containers of this server's sessions that belong to no
    /// session: an open that failed half-way (the engine went away while it ran, so its
    /// clean-up could not reach the engine either) leaves one that nobody can reach. Only
    /// containers of [`Manager::create`]'s sessions count (not a warm pool's or a one-shot
    /// run's), made a while ago, of an owner with no open in progress.
    async fn remove_orphans(&self) {
        {
            let mut checked = self.shared.orphans_checked.lock().expect("orphans");
            if checked.elapsed() < Duration::from_secs(15) {
                return;
            }
            *checked = Instant::now();
        }
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        let Ok(containers) = self.shared.engine.list_containers(&label).await else {
            return;
        };
        let t = now() as i64;
        for c in containers {
            let ours = c.labels.get(KIND_LABEL).map(String::as_str) == Some("session");
            let (Some(id), Some(owner)) = (
                c.labels.get(sandpit::labels::SESSION),
                c.labels.get(crate::labels::OWNER),
            ) else {
                continue;
            };
            let known = self
                .shared
                .sessions
                .read()
                .expect("sessions")
                .contains_key(id);
            let opening = self
                .shared
                .opening
                .lock()
                .expect("opening")
                .get(owner)
                .is_some_and(|n| *n > 0);
            if !ours || known || opening || t - c.created < 30 {
                continue;
            }
            tracing::info!(
                "removing container {}: no session of this server owns it",
                c.name
            );
            // Closed as a session (its disk goes too); `adopt`'s future is not `Send`, so it
            // runs on a blocking thread of its own rather than in the sweeper's task.
            let (engine, id) = (self.shared.engine.clone(), id.clone());
            let handle = tokio::runtime::Handle::current();
            let closed = tokio::task::spawn_blocking(move || {
                handle.block_on(async move {
                    match sandpit::adopt(&engine, &id).await {
                        Ok(session) => session.close().await.is_ok(),
                        Err(_) => false,
                    }
                })
            })
            .await
            .unwrap_or(false);
            if !closed {
                let _ = self.shared.engine.remove_container(&c.name).await;
            }
        }
    }
}
