//! Closing the owner's sessions.

use super::{Manager, Owner};
use crate::error::{ServiceError, ServiceResult};

impl Manager {
    /// Closes the owner's session.
    pub async fn destroy(&self, owner: &Owner, id: &str) -> ServiceResult<()> {
        let entry = self.get(owner, id)?;
        self.shared.sessions.write().expect("sessions").remove(id);
        let closed = entry.session.close().await;
        if let Some(registry) = &self.shared.registry {
            registry.remove_session(id).await;
        }
        self.shared.store.delete_session(id)?;
        self.shared.metrics.closed();
        closed.map_err(ServiceError::from)
    }

    /// Closes every session of the owner; returns how many.
    pub async fn destroy_all(&self, owner: &Owner) -> ServiceResult<usize> {
        let ids: Vec<String> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .filter(|e| e.owner() == owner.0)
            .map(|e| e.session.id().to_string())
            .collect();
        for id in &ids {
            self.destroy(owner, id).await?;
        }
        Ok(ids.len())
    }
}
