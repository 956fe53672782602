//! Warm pools of sandboxes for one-shot runs: one per language, and one per language and
//! library set that runs asked for (its sandboxes start from an image with the libraries in).
//! Their sandboxes are recyclable: a read-only root, memory folders only, so a reset leaves
//! nothing of a run behind.

use std::time::{Duration, Instant};

use sandpit::{LanguageExt, PoolConfig, SandboxSession, SessionPool, WhenExhausted};

use super::recycling::PoolKey;
use super::{Manager, SERVER_LABEL};
use crate::error::ServiceResult;

impl Manager {
    pub(super) async fn pool(&self, key: &PoolKey) -> ServiceResult<SessionPool> {
        let mut pools = self.shared.pools.lock().await;
        if let Some(pool) = pools.get(key) {
            return Ok(pool.clone());
        }
        // Only the plain language pools are kept warm; a library set's opens on demand.
        let idle = if key.libraries.is_empty() {
            self.shared
                .config
                .pool
                .get(key.language.name())
                .copied()
                .unwrap_or(0)
        } else {
            0
        };
        // Warm sandboxes belong to this process (never adopted): `sandpit gc` removes what a
        // killed server left of them.
        let mut builder = SandboxSession::builder()
            .language(key.language)
            .engine(self.shared.engine.clone())
            .recyclable(true)
            .libraries(key.libraries.iter().cloned())
            .label(SERVER_LABEL, self.shared.server_id.clone())
            .label(crate::labels::OWNER, "pool")
            .lifetime(Duration::from_secs(3600));
        if let Some(ca) = &self.shared.config.ca_bundle {
            builder = builder.extra_ca_certificates(ca.clone());
        }
        let pool = SessionPool::new(
            builder,
            PoolConfig {
                idle,
                max_size: 64,
                idle_lifetime: Duration::from_secs(600),
                when_exhausted: WhenExhausted::Wait(Duration::from_secs(120)),
                ..Default::default()
            },
        )?;
        pools.insert(key.clone(), pool.clone());
        self.follow_pool(&pool);
        Ok(pool)
    }

    /// Starts the warm pools the config asks for (so the first one-shot run finds them warm).
    pub async fn warm_pools(&self) {
        let languages: Vec<sandpit::Language> = self
            .shared
            .config
            .pool
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(l, _)| l.parse().ok())
            .collect();
        for language in languages {
            if let Err(e) = self.pool(&PoolKey::new(language, &[])).await {
                tracing::warn!("the {language} pool cannot start: {e}");
            }
        }
    }

    /// Removes the warm pool sessions a closed pool could not: one its filler was still opening
    /// finishes after the close, and the pool closes it in a task this exiting process would
    /// not run. Nobody could reach them; they would wait for the next start otherwise.
    pub(super) async fn remove_pool_leftovers(&self) {
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut quiet = 0;
        while quiet < 2 && Instant::now() < deadline {
            let Ok(containers) = self.shared.engine.list_containers(&label).await else {
                return;
            };
            let pool: Vec<String> = containers
                .iter()
                .filter(|c| c.labels.get(crate::labels::OWNER).map(String::as_str) == Some("pool"))
                .filter_map(|c| c.labels.get(sandpit::labels::SESSION).cloned())
                .collect();
            if pool.is_empty() {
                quiet += 1;
            } else {
                quiet = 0;
                for id in pool {
                    if let Ok(session) = sandpit::adopt(&self.shared.engine, &id).await {
                        let _ = session.close().await;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}
