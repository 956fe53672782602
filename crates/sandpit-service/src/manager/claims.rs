//! Warm-pool members shared across a cluster: this node's idle members (the cluster publishes
//! them, following [`Manager::pool_changes`]), and a member another node claimed through the
//! registry, taken out of its pool and held for the one run forwarded with the claim.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sandpit::{Language, SandboxSession, SessionPool};
use tokio::sync::watch;

use super::recycling::PoolKey;
use super::{Manager, Owner};

/// How long a claimed member waits for the run it was claimed for (forwarded at once).
const HELD_FOR: Duration = Duration::from_secs(30);

/// Members held for one owner's runs of one pool's kind, with when each was claimed.
type Held = HashMap<(String, PoolKey), Vec<(SandboxSession, Instant)>>;

/// Claimed members held for their run, and the signal of idle-set changes.
pub(super) struct Claims {
    held: Mutex<Held>,
    changed: watch::Sender<u64>,
}

impl Default for Claims {
    fn default() -> Self {
        Claims {
            held: Mutex::new(HashMap::new()),
            changed: watch::channel(0).0,
        }
    }
}

/// The name a cluster gives the pool of runs of `language` with `libraries` (a JSON array:
/// the language, then the libraries sorted).
pub fn pool_name(language: Language, libraries: &[String]) -> String {
    PoolKey::new(language, libraries).name()
}

impl PoolKey {
    fn name(&self) -> String {
        let mut parts = vec![self.language.name().to_string()];
        parts.extend(self.libraries.iter().cloned());
        serde_json::to_string(&parts).expect("strings")
    }
}

impl Manager {
    /// The idle members of this node's warm pools: (member id, pool name).
    pub async fn idle_members(&self) -> Vec<(String, String)> {
        let pools = self.shared.pools.lock().await;
        let mut members = Vec::new();
        for (key, pool) in pools.iter() {
            let name = key.name();
            members.extend(pool.idle_ids().into_iter().map(|id| (id, name.clone())));
        }
        members
    }

    /// Sees a change each time a warm pool's idle set changes or a pool starts.
    pub fn pool_changes(&self) -> watch::Receiver<u64> {
        self.shared.claims.changed.subscribe()
    }

    /// Passes `pool`'s idle-set changes on to [`Self::pool_changes`] while the pool lives.
    pub(super) fn follow_pool(&self, pool: &SessionPool) {
        let mut changes = pool.idle_changes();
        let changed = self.shared.claims.changed.clone();
        changed.send_modify(|n| *n = n.wrapping_add(1));
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                changed.send_modify(|n| *n = n.wrapping_add(1));
            }
        });
    }

    /// Whether a one-shot run of `owner` in `language` with `libraries` finds a sandbox here
    /// without waiting for one to open: an idle pool member, a member claimed for it, or (where
    /// the server recycles and the run does not ask for a fresh one) one its earlier runs used.
    /// A language this server does not know counts as here (the run's handler says what is
    /// wrong).
    pub async fn runs_at_once(
        &self,
        owner: &Owner,
        language: &str,
        libraries: &[String],
        fresh: bool,
    ) -> bool {
        let Ok(language) = language.parse::<Language>() else {
            return true;
        };
        let key = PoolKey::new(language, libraries);
        let held = self
            .shared
            .claims
            .held
            .lock()
            .expect("claims")
            .get(&(owner.0.clone(), key.clone()))
            .is_some_and(|h| !h.is_empty());
        if held || (self.shared.config.recycle && !fresh && self.has_parked(owner, &key)) {
            return true;
        }
        let pools = self.shared.pools.lock().await;
        pools.get(&key).is_some_and(|p| p.idle_count() > 0)
    }

    /// Takes idle member `id` out of its pool and holds it for `owner`'s next run of that
    /// pool's kind (the run forwarded with the claim). False when it is not idle here (taken
    /// by a run of this node in the moment the claim was made): the run is then served as any.
    pub async fn hold_claimed(&self, owner: &Owner, id: &str) -> bool {
        let taken = {
            let pools = self.shared.pools.lock().await;
            pools
                .iter()
                .find_map(|(key, pool)| pool.acquire_id(id).map(|m| (key.clone(), m.detach())))
        };
        let Some((key, session)) = taken else {
            self.shared.metrics.pool_claim("gone");
            tracing::warn!("pool member {id} was claimed for a run but is not idle here any more");
            return false;
        };
        self.shared.metrics.pool_claim("held");
        self.shared
            .claims
            .held
            .lock()
            .expect("claims")
            .entry((owner.0.clone(), key))
            .or_default()
            .push((session, Instant::now()));
        true
    }

    /// A member claimed for `owner`'s run of `key`'s kind, when one is held.
    pub(super) fn claimed(&self, owner: &Owner, key: &PoolKey) -> Option<SandboxSession> {
        let mut held = self.shared.claims.held.lock().expect("claims");
        let k = (owner.0.clone(), key.clone());
        let members = held.get_mut(&k)?;
        let session = members.pop().map(|(s, _)| s);
        if members.is_empty() {
            held.remove(&k);
        }
        session
    }

    /// Closes the claimed members whose run never came (all of them when `all`).
    pub(super) fn close_claimed(&self, all: bool) {
        let mut held = self.shared.claims.held.lock().expect("claims");
        for members in held.values_mut() {
            members.retain(|(session, since)| {
                let keep = !all && since.elapsed() < HELD_FOR;
                if !keep {
                    session.close_in_background();
                }
                keep
            });
        }
        held.retain(|_, members| !members.is_empty());
    }
}
