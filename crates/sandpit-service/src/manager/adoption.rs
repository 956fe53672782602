//! Adoption: carrying on with the sessions a previous server process left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::{Entry, Manager, SERVER_LABEL};
use crate::registry::Ownership;
use crate::store::now;

impl Manager {
    /// Carries on with the sessions whose container stopped while this server ran (the engine
    /// restarted under it): each is adopted again, which starts its container (its files are
    /// kept, a kernel's memory is not). Looked for every few seconds, one listing each time;
    /// a session with a call in flight is left to that call.
    pub(super) async fn readopt_stopped(&self) {
        {
            let mut checked = self.shared.stopped_checked.lock().expect("stopped");
            if checked.elapsed() < Duration::from_secs(3) {
                return;
            }
            *checked = Instant::now();
        }
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        let Ok(containers) = self.shared.engine.list_containers(&label).await else {
            return;
        };
        for c in containers {
            if !matches!(
                c.status,
                sandpit::engine::ContainerStatus::Exited
                    | sandpit::engine::ContainerStatus::Created
            ) {
                continue;
            }
            let Some(id) = c.labels.get(sandpit::labels::SESSION) else {
                continue;
            };
            let Some(old) = self
                .shared
                .sessions
                .read()
                .expect("sessions")
                .get(id)
                .cloned()
            else {
                continue;
            };
            if old.in_flight.load(Ordering::SeqCst) > 0 {
                continue;
            }
            self.readopt(&old).await;
        }
    }

    /// Adopts the session of `old` again (its container had stopped: adopting starts it) and
    /// puts it in the place of `old`; false when it could not be adopted.
    pub(super) async fn readopt(&self, old: &Arc<Entry>) -> bool {
        let id = old.session.id().to_string();
        // `adopt`'s future is not `Send`: it runs on a blocking thread of its own.
        let (engine, sid) = (self.shared.engine.clone(), id.clone());
        let handle = tokio::runtime::Handle::current();
        let adopted = tokio::task::spawn_blocking(move || {
            handle.block_on(async move { sandpit::adopt(&engine, &sid).await })
        })
        .await;
        let Ok(Ok(session)) = adopted else {
            return false;
        };
        let record = old.record();
        if !record.env.is_empty() {
            let _ = session.replace_env(record.env.clone());
        }
        let entry = Arc::new(Entry {
            session,
            language: old.language,
            record: Mutex::new(record),
            in_flight: AtomicUsize::new(0),
            last_saved: Mutex::new(Instant::now()),
        });
        tracing::info!(
            "session {id}: its container had stopped (the engine restarted?); started again"
        );
        let replaced = self
            .shared
            .sessions
            .write()
            .expect("sessions")
            .insert(id.clone(), entry);
        // The old handle must not remove the container when it goes (the library's drop
        // worker does for a last handle): it is never dropped.
        std::mem::forget(replaced);
        true
    }

    /// Removes every container of session `id`.
    async fn remove_containers_of(&self, id: &str) {
        let label = format!("{}={id}", sandpit::labels::SESSION);
        if let Ok(containers) = self.shared.engine.list_containers(&label).await {
            for c in containers {
                let _ = self.shared.engine.remove_container(&c.name).await;
            }
        }
    }

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
                    let ownership = self
                        .shared
                        .registry
                        .as_ref()
                        .map(|r| r.ownership(&record.id));
                    if ownership == Some(Ownership::Fenced) {
                        tracing::warn!(
                            "removing session {}: this node was declared lost since it opened",
                            record.id
                        );
                        let _ = entry.session.close().await;
                        let _ = self.shared.store.delete_session(&record.id);
                        continue;
                    }
                    if t >= record.expires_at + paused_for {
                        tracing::info!(
                            "session {} expired while the server was away; closing it",
                            record.id
                        );
                        let _ = entry.session.close().await;
                        let _ = self.shared.store.delete_session(&record.id);
                        if let Some(registry) = &self.shared.registry {
                            registry.remove_session(&record.id).await;
                        }
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
                    tracing::warn!(
                        "session {} cannot be taken over ({e}); it is lost",
                        record.id
                    );
                    if matches!(e, sandpit::Error::Incompatible { .. }) {
                        // Nobody can reach into it: its container goes now.
                        self.remove_containers_of(&record.id).await;
                    }
                    let why = sandpit::one_line(&e);
                    let _ = self.shared.store.mark_lost(&record.id, &record.owner, &why);
                    let _ = self.shared.store.delete_session(&record.id);
                    if let Some(registry) = &self.shared.registry {
                        registry.remove_session(&record.id).await;
                    }
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
