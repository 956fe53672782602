//! One-shot sandboxes served again to the same key: after a run the sandbox's agent resets it
//! (every process killed, every memory folder emptied, IPC objects removed, checked), and it
//! waits for that key's next run of the same language and libraries. Never another key's: the
//! bins are keyed by owner. A reset that fails or takes too long closes the sandbox instead.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sandpit::{Language, SandboxSession};

use super::{Manager, Owner};

/// What a parked sandbox may serve: one owner's runs of one language and library set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BinKey {
    owner: String,
    pub(super) pool: PoolKey,
}

/// A pool's kind of sandbox: a language and the libraries in its image (sorted, once each).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PoolKey {
    pub language: Language,
    pub libraries: Vec<String>,
}

impl PoolKey {
    pub(super) fn new(language: Language, libraries: &[String]) -> Self {
        let mut libraries: Vec<String> = libraries.iter().map(|l| l.trim().to_string()).collect();
        libraries.sort();
        libraries.dedup();
        PoolKey {
            language,
            libraries,
        }
    }
}

/// Reset sandboxes waiting for their owner's next run.
#[derive(Default)]
pub(super) struct Bins {
    parked: Mutex<HashMap<BinKey, Vec<(SandboxSession, Instant)>>>,
}

/// How long a reset sandbox waits for its owner's next run before it is closed.
const PARKED_FOR: Duration = Duration::from_secs(120);

impl Manager {
    /// A reset sandbox that served `owner` before, for a run of `pool`'s kind.
    pub(super) fn recycled(&self, owner: &Owner, pool: &PoolKey) -> Option<SandboxSession> {
        let key = BinKey {
            owner: owner.0.clone(),
            pool: pool.clone(),
        };
        let mut parked = self.shared.bins.parked.lock().expect("bins");
        let bin = parked.get_mut(&key)?;
        let session = bin.pop().map(|(s, _)| s);
        if bin.is_empty() {
            parked.remove(&key);
        }
        session
    }

    /// Whether a reset sandbox waits for `owner`'s next run of `pool`'s kind.
    pub(super) fn has_parked(&self, owner: &Owner, pool: &PoolKey) -> bool {
        let key = BinKey {
            owner: owner.0.clone(),
            pool: pool.clone(),
        };
        let parked = self.shared.bins.parked.lock().expect("bins");
        parked.get(&key).is_some_and(|bin| !bin.is_empty())
    }

    /// Resets `session` after a run of `owner`'s, in the background, and parks it for the
    /// owner's next run; closes it instead when the reset fails or the owner has as many parked
    /// as run slots.
    pub(super) fn recycle(&self, owner: &Owner, pool: PoolKey, session: SandboxSession) {
        let manager = self.clone();
        let key = BinKey {
            owner: owner.0.clone(),
            pool,
        };
        let limit = self.run_limit(owner);
        tokio::spawn(async move {
            if let Err(e) = session.reset().await {
                tracing::warn!(
                    "a one-shot sandbox could not be reset ({e}); it is closed, not reused"
                );
                session.close_in_background();
                return;
            }
            let mut parked = manager.shared.bins.parked.lock().expect("bins");
            let bin = parked.entry(key).or_default();
            if bin.len() < limit {
                bin.push((session, Instant::now()));
            } else {
                session.close_in_background();
            }
        });
    }

    /// Closes the parked sandboxes that waited too long (all of them when `all`).
    pub(super) fn close_parked(&self, all: bool) {
        let mut parked = self.shared.bins.parked.lock().expect("bins");
        for bin in parked.values_mut() {
            bin.retain(|(session, since)| {
                let keep = !all && since.elapsed() < PARKED_FOR;
                if !keep {
                    session.close_in_background();
                }
                keep
            });
        }
        parked.retain(|_, bin| !bin.is_empty());
    }
}
