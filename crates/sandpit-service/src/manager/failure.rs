//! A session's failure as the service reports it: a container gone from outside ends the
//! session here too.

use std::sync::Arc;

use super::{Entry, Manager};
use crate::error::{ErrorKind, ServiceError};

impl Manager {
    /// Maps a session's failure: a container gone from outside also ends the session here.
    pub async fn failed(&self, entry: &Arc<Entry>, e: sandpit::Error) -> ServiceError {
        // A container that stopped without being removed (its engine restarted) is started
        // again rather than given up.
        if matches!(
            e.kind(),
            sandpit::ErrorKind::Gone | sandpit::ErrorKind::Internal | sandpit::ErrorKind::Exhausted
        ) {
            let name = entry.session.container_name();
            let stopped = matches!(
                self.shared.engine.inspect_container(name).await,
                Ok(state) if matches!(
                    state.status,
                    sandpit::engine::ContainerStatus::Exited
                        | sandpit::engine::ContainerStatus::Created
                )
            );
            if stopped && self.readopt(entry).await {
                return ServiceError::new(
                    ErrorKind::EngineUnavailable,
                    format!(
                        "sandbox container {name} had stopped (its engine restarted?) and is started again: call again (files are kept, a kernel's variables are not)"
                    ),
                );
            }
        }
        if e.kind() == sandpit::ErrorKind::Gone {
            self.mark_lost(entry, &sandpit::one_line(&e));
            self.forget(entry).await;
        }
        // A container removed from outside while a call ran shows up as whatever that call
        // met ("not running: Removal In Progress", an exec that cannot start): ask the engine.
        if matches!(
            e.kind(),
            sandpit::ErrorKind::Internal | sandpit::ErrorKind::Exhausted
        ) {
            let name = entry.session.container_name();
            let removed = match self.shared.engine.inspect_container(name).await {
                Err(err) => err.kind == sandpit::engine::EngineErrorKind::NotFound,
                Ok(state) => state.status.is_going(),
            };
            if removed {
                let why = format!(
                    "sandbox container {name} is gone (removed or killed from outside); open a new session"
                );
                self.mark_lost(entry, &why);
                self.forget(entry).await;
                return ServiceError::new(ErrorKind::Gone, why);
            }
        }
        e.into()
    }

    /// Remembers a session as lost, so that later calls answer 410 with `why`.
    pub(super) fn mark_lost(&self, entry: &Arc<Entry>, why: &str) {
        if let Err(e) = self
            .shared
            .store
            .mark_lost(entry.session.id(), &entry.owner(), why)
        {
            tracing::warn!("cannot remember that {} was lost: {e}", entry.session.id());
        }
    }

    /// Closes a session that ended without its owner asking (expired, idle, gone).
    pub(super) async fn forget(&self, entry: &Arc<Entry>) {
        if self.drop_entry(entry).await {
            if let Some(registry) = &self.shared.registry {
                registry.remove_session(entry.session.id()).await;
            }
        }
    }

    /// Removes the container of a session the cluster fenced (its node was declared lost while
    /// this process held it): never resurrected, and its record stays, so the cluster goes on
    /// answering 410 for it until it would have expired.
    pub(super) async fn fence(&self, entry: &Arc<Entry>) {
        tracing::warn!(
            "removing session {}: this node was declared lost while it held it",
            entry.session.id()
        );
        self.drop_entry(entry).await;
    }

    /// Takes the session out of the manager and closes it; false when it was gone already.
    async fn drop_entry(&self, entry: &Arc<Entry>) -> bool {
        let id = entry.session.id().to_string();
        let removed = self.shared.sessions.write().expect("sessions").remove(&id);
        if removed.is_none() {
            return false;
        }
        let _ = self.shared.store.delete_session(&id);
        let _ = entry.session.close().await;
        self.shared.metrics.closed();
        true
    }
}
