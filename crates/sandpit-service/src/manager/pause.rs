//! Pausing and resuming a session.

use std::sync::Arc;

use super::{Entry, Manager, Owner};
use crate::error::ServiceResult;
use crate::store::now;
use crate::types::SessionInfo;

impl Manager {
    /// Freezes a session: its processes stop, it uses no CPU, its lifetime clock stops.
    pub async fn pause(&self, owner: &Owner, id: &str) -> ServiceResult<SessionInfo> {
        let entry = self.get(owner, id)?;
        self.pause_entry(&entry).await?;
        self.info(&entry, false).await
    }

    /// Thaws a paused session; its lifetime moves by the time it was paused.
    pub async fn resume(&self, owner: &Owner, id: &str) -> ServiceResult<SessionInfo> {
        let entry = self.get(owner, id)?;
        self.resume_entry(&entry).await?;
        self.info(&entry, false).await
    }

    pub(super) async fn pause_entry(&self, entry: &Arc<Entry>) -> ServiceResult<()> {
        if entry.record().paused_since.is_some() {
            return Ok(());
        }
        if let Err(e) = entry.session.pause().await {
            return Err(self.failed(entry, e).await);
        }
        let mut r = entry.record.lock().expect("record");
        r.paused_since = Some(now());
        self.shared.store.save_session(&r)
    }

    pub(super) async fn resume_entry(&self, entry: &Arc<Entry>) -> ServiceResult<()> {
        let Some(since) = entry.record().paused_since else {
            return Ok(());
        };
        if let Err(e) = entry.session.resume().await {
            return Err(self.failed(entry, e).await);
        }
        let mut r = entry.record.lock().expect("record");
        let paused = now().saturating_sub(since);
        r.expires_at =
            (r.expires_at + paused).min(r.created + self.shared.config.max_lifetime + paused);
        r.paused_since = None;
        r.last_used = now();
        self.shared.store.save_session(&r)
    }
}
