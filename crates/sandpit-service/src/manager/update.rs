//! Changing a session: lifetime, idle timeout, metadata, environment.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::validation::{check_idle, check_meta};
use super::{Entry, Manager, Owner};
use crate::error::{ServiceError, ServiceResult};
use crate::store::now;
use crate::types::{SessionInfo, UpdateSession};

impl Manager {
    /// Changes a session's lifetime, idle timeout or metadata.
    pub async fn update(
        &self,
        owner: &Owner,
        id: &str,
        req: UpdateSession,
    ) -> ServiceResult<SessionInfo> {
        let entry = self.get(owner, id)?;
        let max = self.shared.config.max_lifetime;
        // Everything is checked before anything changes: a refused request changes nothing.
        if let Some(meta) = &req.metadata {
            for k in meta.keys() {
                check_meta(k)?;
            }
        }
        if let Some(idle) = req.idle_timeout {
            check_idle(idle, max)?;
        }
        let saved = {
            let mut r = entry.record.lock().expect("record");
            if let Some(secs) = req.timeout {
                let t = now();
                let until = t.saturating_add(secs);
                let limit = r.created + max;
                if secs == 0 || until > limit {
                    return Err(ServiceError::invalid(format!(
                        "timeout {secs} s: a session lives at most {max} s after it opened, so at most {} s from now",
                        limit.saturating_sub(t)
                    )));
                }
                r.expires_at = until;
            }
            if let Some(idle) = req.idle_timeout {
                r.idle_timeout = idle;
            }
            if let Some(meta) = req.metadata {
                r.metadata.extend(meta);
            }
            r.last_used = now();
            self.shared.store.save_session(&r)?;
            r.clone()
        };
        if let (Some(registry), Some(_)) = (&self.shared.registry, req.timeout) {
            registry.update_session(&saved).await;
        }
        self.info(&entry, false).await
    }

    /// Replaces the session's environment (kept across a restart).
    pub fn set_env(&self, entry: &Arc<Entry>, env: BTreeMap<String, String>) -> ServiceResult<()> {
        entry.session.replace_env(env.clone())?;
        let mut r = entry.record.lock().expect("record");
        r.env = env;
        self.shared.store.save_session(&r)
    }
}
