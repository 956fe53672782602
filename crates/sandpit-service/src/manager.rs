//! The session manager: sessions with an owner (the key that made them), a name, metadata, a
//! lifetime and an idle timeout; per-key limits; the sweeper that closes what expired; and the
//! adoption of live sessions after a restart. Every transport goes through it. One file per
//! operation; this one holds the state they share.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use sandpit::{Engine, Language, SandboxSession, SessionPool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServiceConfig;
use crate::error::ServiceResult;
use crate::keys::KeyStore;
use crate::metrics::Metrics;
use crate::registry::Registry;
use crate::store::{SessionRecord, Store};

mod adoption;
mod claims;
mod create;
mod destroy;
mod failure;
mod info;
mod lookup;
mod one_shot;
mod pause;
mod pools;
mod recycling;
mod run_queue;
mod shutdown;
mod snapshots;
mod sweeper;
mod update;
mod usage;
mod validation;

pub use claims::pool_name;
pub use one_shot::Program;
pub use validation::seconds;

/// Label naming the server (its data folder) that owns a session.
pub const SERVER_LABEL: &str = "sandpit.server";

/// Label on the containers of sessions opened through [`Manager::create`] (`session`), so the
/// sweeper can tell one whose open failed half-way from a warm pool's or a one-shot run's.
const KIND_LABEL: &str = "sandpit.kind";

/// Who makes a request: a key's id, or the anonymous owner of keyless compatibility calls.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Owner(pub String);

impl Owner {
    /// The owner of requests that came without a key (only where the server allows them).
    pub fn anonymous() -> Self {
        Owner("anonymous".into())
    }

    /// True for the anonymous owner.
    pub fn is_anonymous(&self) -> bool {
        self.0 == "anonymous"
    }
}

/// One managed session.
pub struct Entry {
    /// The session.
    pub session: SandboxSession,
    /// Its language.
    pub language: Language,
    record: Mutex<SessionRecord>,
    in_flight: AtomicUsize,
    last_saved: Mutex<Instant>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("session", &self.session.id())
            .finish()
    }
}

impl Entry {
    /// A copy of what the server keeps of it.
    pub fn record(&self) -> SessionRecord {
        self.record.lock().expect("record").clone()
    }

    fn owner(&self) -> String {
        self.record.lock().expect("record").owner.clone()
    }
}

/// Work in flight on a session: counts against the owner's concurrent runs, and keeps the
/// sweeper from closing the session under it.
pub struct Busy {
    entry: Arc<Entry>,
    /// The owner's run slot; `None` for a hold (file and listing calls, which do not count).
    _permit: Option<OwnedSemaphorePermit>,
    manager: Manager,
}

impl Busy {
    /// The session being worked on.
    pub fn session(&self) -> &SandboxSession {
        &self.entry.session
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.entry.in_flight.fetch_sub(1, Ordering::SeqCst);
        self.manager.touch(&self.entry);
    }
}

struct Shared {
    config: ServiceConfig,
    engine: Engine,
    store: Store,
    server_id: String,
    sessions: RwLock<HashMap<String, Arc<Entry>>>,
    /// Sessions being opened, per owner (they count against the limit).
    opening: Mutex<HashMap<String, usize>>,
    runs: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// One-shot runs waiting for a run slot, per owner.
    lines: Mutex<HashMap<String, Arc<run_queue::Line>>>,
    pools: tokio::sync::Mutex<HashMap<recycling::PoolKey, SessionPool>>,
    /// Reset one-shot sandboxes waiting for their owner's next run.
    bins: recycling::Bins,
    /// Pool members claimed by other nodes for the runs they forward here.
    claims: claims::Claims,
    metrics: Metrics,
    /// When the sweeper last looked for containers of sessions that never opened.
    orphans_checked: Mutex<Instant>,
    /// When the sweeper last looked for sessions whose container stopped under it.
    stopped_checked: Mutex<Instant>,
    /// Where snapshots go (`snapshots` in the config), when configured.
    snapshots: Option<sandpit_snapshot::SnapshotStore>,
    /// The cluster's registry, on a cluster node (`None`: a single server).
    registry: Option<Arc<dyn Registry>>,
    /// Where presented keys are checked: the store, or the cluster's keys.
    keys: Arc<dyn KeyStore>,
}

/// The session manager. Cheap to clone.
#[derive(Clone)]
pub struct Manager {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Manager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Manager")
            .field("server", &self.shared.server_id)
            .finish()
    }
}

impl Manager {
    /// Starts the manager on `engine` with the store in the config's data folder: adopts the
    /// sessions a previous server process left (closing the expired ones, the ones the
    /// cluster fenced, and any container of this server the store does not know), then sweeps
    /// every `sweep_interval` seconds. On a cluster node, `registry` is the cluster's.
    pub async fn start(
        config: ServiceConfig,
        engine: Engine,
        store: Store,
        registry: Option<Arc<dyn Registry>>,
    ) -> ServiceResult<Manager> {
        let keys: Arc<dyn KeyStore> = match &registry {
            Some(r) => r.keys(),
            None => Arc::new(store.clone()),
        };
        let server_id = store.server_id()?;
        let snapshots = snapshots::open_store(&config)?;
        let manager = Manager {
            shared: Arc::new(Shared {
                config,
                engine,
                store,
                server_id,
                sessions: RwLock::new(HashMap::new()),
                opening: Mutex::new(HashMap::new()),
                runs: Mutex::new(HashMap::new()),
                lines: Mutex::new(HashMap::new()),
                pools: tokio::sync::Mutex::new(HashMap::new()),
                bins: recycling::Bins::default(),
                claims: claims::Claims::default(),
                metrics: Metrics::default(),
                orphans_checked: Mutex::new(Instant::now()),
                stopped_checked: Mutex::new(Instant::now()),
                snapshots,
                registry,
                keys,
            }),
        };
        manager.adopt_all().await;
        manager.spawn_sweeper();
        Ok(manager)
    }

    /// The settings.
    pub fn config(&self) -> &ServiceConfig {
        &self.shared.config
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.shared.engine
    }

    /// The store (keys, sessions).
    pub fn store(&self) -> &Store {
        &self.shared.store
    }

    /// Where presented keys are checked (the store, or on a cluster node the cluster's keys).
    pub fn keys(&self) -> &dyn KeyStore {
        self.shared.keys.as_ref()
    }

    /// The cluster's registry, on a cluster node.
    pub fn registry(&self) -> Option<&Arc<dyn Registry>> {
        self.shared.registry.as_ref()
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Sessions open now.
    pub fn open_count(&self) -> usize {
        self.shared.sessions.read().expect("sessions").len()
    }
}
