//! Adoption: carrying on with the sessions a previous server process left.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{Entry, Manager, SERVER_LABEL};
use crate::store::now;

impl Manager {
    /// Carries on with the sessions of this server's previous process.
    pub(super) async fn adopt_all(&self) {
        let records = match self.shared.store.sessions() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read the sessions of the previous server: {e}");
                return;
            }
        };
        let t = now();
        let mut known = std::collections::HashSet::new();
        for record in records {
            known.insert(record.id.clone());
            match sandpit::adopt(&self.shared.engine, &record.id).await {
                Ok(session) => {
                    let language = session.runner().language();
                    if !record.env.is_empty() {
                        let _ = session.replace_env(record.env.clone());
                    }
                    let entry = Arc::new(Entry {
                        session,
                        language,
                        record: Mutex::new(record.clone()),
                        in_flight: AtomicUsize::new(0),
                        last_saved: Mutex::new(Instant::now()),
                    });
                    let paused_for = record
                        .paused_since
                        .map(|s| t.saturating_sub(s))
                        .unwrap_or(0);
                    if t >= record.expires_at + paused_for {
                        tracing::info!(
                            "session {} expired while the server was away; closing it",
                            record.id
                        );
                        let _ = entry.session.close().await;
                        let _ = self.shared.store.delete_session(&record.id);
                        continue;
                    }
                    tracing::info!("adopted session {}", record.id);
                    self.shared
                        .sessions
                        .write()
                        .expect("sessions")
                        .insert(record.id.clone(), entry);
                }
                Err(e) => {
                    tracing::warn!("session {} is gone ({e}); forgetting it", record.id);
                    let _ = self.shared.store.delete_session(&record.id);
                }
            }
        }
        // Containers of this server that no record names (a crash between opening and
        // saving, or warm pool sessions): nobody can reach them, so they go.
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        if let Ok(containers) = self.shared.engine.list_containers(&label).await {
            for c in containers {
                let id = c
                    .labels
                    .get(sandpit::labels::SESSION)
                    .cloned()
                    .unwrap_or_default();
                if !known.contains(&id) {
                    if let Ok(s) = sandpit::adopt(&self.shared.engine, &id).await {
                        tracing::info!("closing session {id}, which no record names");
                        let _ = s.close().await;
                    } else {
                        let _ = self.shared.engine.remove_container(&c.name).await;
                    }
                }
            }
        }
    }
}
