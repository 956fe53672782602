//! The session as the API shows it, and the owner's sessions listed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use sandpit::Language;

use super::{Entry, Manager, Owner};
use crate::error::{ServiceError, ServiceResult};
use crate::types::SessionInfo;

/// How long a look at a session waits for its usage.
const USAGE_WAIT: Duration = Duration::from_secs(5);

impl Manager {
    /// The session as the API shows it; with `usage`, what it uses now.
    pub async fn info(&self, entry: &Arc<Entry>, usage: bool) -> ServiceResult<SessionInfo> {
        let r = entry.record();
        let s = &entry.session;
        // A look never waits long on the sandbox: a busy agent leaves the usage out.
        let usage = if usage {
            match tokio::time::timeout(USAGE_WAIT, s.usage()).await {
                Ok(Ok(u)) => Some(u.into()),
                Ok(Err(e)) => return Err(self.failed(entry, e).await),
                Err(_) => {
                    tracing::warn!(
                        "session {}: its usage did not come within {USAGE_WAIT:?}; shown without it",
                        s.id()
                    );
                    None
                }
            }
        } else {
            None
        };
        Ok(SessionInfo {
            id: s.id().to_string(),
            name: r.name.clone(),
            language: entry.language.name().to_string(),
            image: s.image().to_string(),
            state: if r.paused_since.is_some() {
                "paused"
            } else {
                "running"
            }
            .into(),
            runtime: s.runtime().map(String::from),
            network: s.policy().network.mode(),
            created_at: rfc3339(r.created),
            expires_at: rfc3339(r.expires_at),
            idle_timeout: r.idle_timeout,
            run_timeout: r.run_timeout_ms as f64 / 1000.0,
            last_used_at: rfc3339(r.last_used),
            metadata: r.metadata,
            libraries: s.installed_libraries(),
            usage,
            restored: None,
            node: self.shared.registry.as_ref().map(|r| r.node().to_string()),
        })
    }

    /// The owner's sessions, filtered by language, name and metadata (all must match).
    pub async fn list(
        &self,
        owner: &Owner,
        language: Option<&str>,
        name: Option<&str>,
        metadata: &BTreeMap<String, String>,
    ) -> ServiceResult<Vec<SessionInfo>> {
        let language: Option<Language> = match language {
            Some(l) => Some(
                l.parse()
                    .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?,
            ),
            None => None,
        };
        let mut entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .filter(|e| {
                let r = e.record.lock().expect("record");
                r.owner == owner.0
                    && language.is_none_or(|l| l == e.language)
                    && name.is_none_or(|n| r.name.as_deref() == Some(n))
                    && metadata.iter().all(|(k, v)| r.metadata.get(k) == Some(v))
            })
            .cloned()
            .collect();
        entries.sort_by_key(|e| (e.record().created, e.session.id().to_string()));
        let mut out = Vec::with_capacity(entries.len());
        for e in &entries {
            out.push(self.info(e, false).await?);
        }
        Ok(out)
    }
}

fn rfc3339(secs: u64) -> String {
    sandpit::time::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}
