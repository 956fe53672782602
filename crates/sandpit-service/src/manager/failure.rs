//! A session's failure as the service reports it: a container gone from outside ends the
//! session here too.

use std::sync::Arc;

use super::{Entry, Manager};
use crate::error::{ErrorKind, ServiceError};

impl Manager {
    /// Maps a session's failure: a container gone from outside also ends the session here.
    pub async fn failed(&self, entry: &Arc<Entry>, e: sandpit::Error) -> ServiceError {
        if e.kind() == sandpit::ErrorKind::Gone {
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
                Ok(state) => matches!(state.status.as_str(), "removing" | "dead"),
            };
            if removed {
                self.forget(entry).await;
                return ServiceError::new(
                    ErrorKind::Gone,
                    format!(
                        "sandbox container {name} is gone (removed or killed from outside); open a new session"
                    ),
                );
            }
        }
        e.into()
    }

    pub(super) async fn forget(&self, entry: &Arc<Entry>) {
        let id = entry.session.id().to_string();
        let removed = self.shared.sessions.write().expect("sessions").remove(&id);
        if removed.is_some() {
            let _ = self.shared.store.delete_session(&id);
            let _ = entry.session.close().await;
            self.shared.metrics.closed();
        }
    }
}
