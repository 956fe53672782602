//! This node in the cluster: it registers (a new epoch per process), holds a lease that
//! carries its address, engine and load, keeps the watched copy of the registry current, and
//! does the chores every node shares: removals the registry could not take when they
//! happened, declaring lost the nodes whose lease lapsed and that no longer answer, and
//! clearing the records of lost sessions once they would have expired.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use etcd_client::{
    Client, Compare, CompareOp, EventType, GetOptions, PutOptions, Txn, TxnOp, WatchOptions,
};
use sandpit_service::{ClusterConfig, Manager, ServiceResult};

use crate::cache::View;
use crate::etcd::{connect, within, CALL_TIMEOUT};
use crate::layout::{Lost, NodeInfo, EPOCHS, LOST, NODES, ROOT, SESSIONS};

/// What this node runs on, announced with its lease.
#[derive(Debug, Clone)]
pub struct NodeSpec {
    /// The engine (`docker 20.10.24`).
    pub engine: String,
    /// OCI runtimes it offers.
    pub runtimes: Vec<String>,
}

/// A node of the cluster. Cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("node", &self.inner.config.node_name)
            .field("epoch", &self.epoch())
            .finish()
    }
}

pub(crate) struct Inner {
    pub(crate) client: Client,
    pub(crate) config: ClusterConfig,
    pub(crate) spec: NodeSpec,
    pub(crate) memory_bytes: u64,
    pub(crate) epoch: AtomicI64,
    pub(crate) lease: AtomicI64,
    /// The lease is alive and etcd answered lately.
    pub(crate) ready: AtomicBool,
    pub(crate) view: RwLock<View>,
    /// Session records whose removal etcd did not take yet.
    pub(crate) pending_removals: Mutex<HashSet<String>>,
    /// Sessions placed on each node since its last announcement (so a burst spreads).
    pub(crate) placed: Mutex<std::collections::HashMap<String, usize>>,
    pub(crate) manager: OnceLock<Manager>,
}

impl Cluster {
    /// Joins the cluster `config` names: registers this node (a new epoch), takes its lease,
    /// reads the registry, and starts the watch and the chores. Fails when etcd cannot be
    /// reached now.
    pub async fn join(config: ClusterConfig, spec: NodeSpec) -> ServiceResult<Cluster> {
        config.validate()?;
        let endpoints = config.endpoints()?;
        let client = connect(&endpoints).await?;
        let cluster = Cluster {
            inner: Arc::new(Inner {
                client,
                config,
                spec,
                memory_bytes: machine_memory(),
                epoch: AtomicI64::new(0),
                lease: AtomicI64::new(0),
                ready: AtomicBool::new(false),
                view: RwLock::new(View::default()),
                pending_removals: Mutex::new(HashSet::new()),
                placed: Mutex::new(Default::default()),
                manager: OnceLock::new(),
            }),
        };
        cluster.new_epoch().await?;
        cluster.register().await?;
        cluster.reload().await?;
        let me = cluster.clone();
        tokio::spawn(async move { me.keep_lease().await });
        let me = cluster.clone();
        tokio::spawn(async move { me.watch().await });
        let me = cluster.clone();
        tokio::spawn(async move { me.chores().await });
        tracing::info!(
            "joined the cluster as node {} (epoch {})",
            cluster.name(),
            cluster.epoch()
        );
        Ok(cluster)
    }

    /// Lets the node announce the load of `manager` (its open sessions and their memory).
    /// Publishes its warm pools' idle members too, so other nodes can claim them.
    pub fn attach(&self, manager: Manager) {
        if self.inner.manager.set(manager.clone()).is_ok() {
            let me = self.clone();
            tokio::spawn(async move { me.publish_idle(manager).await });
        }
    }

    /// mTLS between nodes, when configured (`[cluster.tls]`).
    pub fn peer_tls(&self) -> Option<&sandpit_service::PeerTls> {
        self.inner.config.tls.as_ref()
    }

    /// This node's name.
    pub fn name(&self) -> &str {
        &self.inner.config.node_name
    }

    /// This node's address.
    pub fn advertise(&self) -> &str {
        &self.inner.config.advertise
    }

    /// The epoch of this process.
    pub fn epoch(&self) -> i64 {
        self.inner.epoch.load(Ordering::SeqCst)
    }

    /// Whether etcd answers and the lease is alive.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
    }

    /// A copy of the watched view.
    pub fn view(&self) -> View {
        self.inner.view.read().expect("view").clone()
    }

    pub(crate) fn client(&self) -> Client {
        self.inner.client.clone()
    }

    /// A new epoch: the revision of a write of `epochs/{name}`.
    async fn new_epoch(&self) -> ServiceResult<()> {
        let key = format!("{EPOCHS}{}", self.name());
        let mut client = self.client();
        let put = within("registering the node", client.put(key, "", None)).await?;
        let epoch = put.header().map(|h| h.revision()).unwrap_or_default();
        self.inner.epoch.store(epoch, Ordering::SeqCst);
        Ok(())
    }

    /// What this node announces now.
    fn announcement(&self) -> NodeInfo {
        let (sessions, memory_reserved) = match self.inner.manager.get() {
            Some(m) => (m.open_count(), m.reserved_memory()),
            None => (0, 0),
        };
        let c = &self.inner.config;
        NodeInfo {
            name: c.node_name.clone(),
            advertise: c.advertise.trim_end_matches('/').to_string(),
            epoch: self.epoch(),
            lease: self.inner.lease.load(Ordering::SeqCst),
            engine: self.inner.spec.engine.clone(),
            runtimes: self.inner.spec.runtimes.clone(),
            labels: c.labels.clone(),
            max_sessions: c.max_sessions,
            memory_bytes: self.inner.memory_bytes,
            sessions,
            memory_reserved,
            pool_idle: 0,
        }
    }

    /// Takes a lease and announces the node on it.
    async fn register(&self) -> ServiceResult<()> {
        let mut client = self.client();
        let ttl = self.inner.config.lease_ttl as i64;
        let lease = within("taking the node's lease", client.lease_grant(ttl, None)).await?;
        self.inner.lease.store(lease.id(), Ordering::SeqCst);
        self.announce().await?;
        self.inner.ready.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Puts the announcement on the lease.
    async fn announce(&self) -> ServiceResult<()> {
        let info = self.announcement();
        let value = serde_json::to_vec(&info).expect("node info");
        let key = format!("{NODES}{}", self.name());
        let options = PutOptions::new().with_lease(info.lease);
        let mut client = self.client();
        within("announcing the node", client.put(key, value, Some(options))).await?;
        self.inner.placed.lock().expect("placed").clear();
        Ok(())
    }

    /// Renews the lease; when it lapses (etcd out of reach or without quorum), takes a new one
    /// as soon as etcd answers. A node declared lost meanwhile starts a new epoch: the
    /// sessions of the old one are fenced (the sweeper removes their containers).
    async fn keep_lease(self) {
        let every = Duration::from_millis(self.inner.config.lease_ttl * 1000 / 3);
        loop {
            let lease = self.inner.lease.load(Ordering::SeqCst);
            let alive = async {
                let mut client = self.client();
                let (mut keeper, mut stream) = client.lease_keep_alive(lease).await?;
                loop {
                    keeper.keep_alive().await?;
                    match stream.message().await? {
                        Some(r) if r.ttl() > 0 => {}
                        _ => return Ok::<(), etcd_client::Error>(()),
                    }
                    tokio::time::sleep(every).await;
                }
            };
            // Each round trip must come back in time, or the lease counts as lost here.
            let outcome = tokio::select! {
                r = alive => r.map_err(|e| e.to_string()),
                _ = self.stalled(every) => Err("etcd stopped answering".to_string()),
            };
            self.inner.ready.store(false, Ordering::SeqCst);
            match outcome {
                Err(e) => tracing::warn!("the node's lease lapsed: {e}"),
                Ok(()) => tracing::warn!("the node's lease lapsed"),
            }
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                match self.rejoin().await {
                    Ok(()) => break,
                    Err(e) => tracing::debug!("rejoining the cluster: {e}"),
                }
            }
        }
    }

    /// Resolves when no keep-alive succeeded for a lease's time to live.
    async fn stalled(&self, every: Duration) {
        let ttl = Duration::from_secs(self.inner.config.lease_ttl);
        let mut last_ok = Instant::now();
        loop {
            tokio::time::sleep(every).await;
            let lease = self.inner.lease.load(Ordering::SeqCst);
            let mut client = self.client();
            let check =
                tokio::time::timeout(CALL_TIMEOUT, client.lease_time_to_live(lease, None)).await;
            match check {
                Ok(Ok(r)) if r.ttl() > 0 => last_ok = Instant::now(),
                Ok(Ok(_)) => return,
                _ if last_ok.elapsed() >= ttl => return,
                _ => {}
            }
        }
    }

    /// Back in the cluster after the lease lapsed.
    async fn rejoin(&self) -> ServiceResult<()> {
        let mut client = self.client();
        let key = format!("{LOST}{}", self.name());
        let got = within("reading the node's state", client.get(key, None)).await?;
        let lost = got
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice::<Lost>(kv.value()).ok());
        if lost.is_some_and(|l| l.epoch >= self.epoch()) {
            tracing::warn!(
                "node {} was declared lost while it was cut off: its sessions are fenced, a new epoch starts",
                self.name()
            );
            self.new_epoch().await?;
        }
        self.register().await?;
        self.reload().await?;
        tracing::info!(
            "node {} is back in the cluster (epoch {})",
            self.name(),
            self.epoch()
        );
        Ok(())
    }

    /// Reads the whole registry into the view; returns the revision read.
    async fn reload(&self) -> ServiceResult<i64> {
        let mut client = self.client();
        let got = within(
            "reading the registry",
            client.get(ROOT, Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let revision = got.header().map(|h| h.revision()).unwrap_or_default();
        let kvs: Vec<(Vec<u8>, Vec<u8>)> = got
            .kvs()
            .iter()
            .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
            .collect();
        let mut view = self.inner.view.write().expect("view");
        *view = view.reloaded(&kvs);
        Ok(revision)
    }

    /// Keeps the view current: a full read, then every change after it.
    async fn watch(self) {
        loop {
            if let Err(e) = self.watch_once().await {
                tracing::debug!("watching the registry: {e}");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    async fn watch_once(&self) -> Result<(), String> {
        let revision = self.reload().await.map_err(|e| e.to_string())?;
        let mut client = self.client();
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(revision + 1);
        let mut stream = client
            .watch(ROOT, Some(options))
            .await
            .map_err(|e| e.to_string())?;
        while let Some(response) = stream.message().await.map_err(|e| e.to_string())? {
            if response.canceled() {
                return Err(format!("watch canceled: {}", response.cancel_reason()));
            }
            let mut view = self.inner.view.write().expect("view");
            for event in response.events() {
                let Some(kv) = event.kv() else { continue };
                match event.event_type() {
                    EventType::Put => view.apply(kv.key(), Some(kv.value())),
                    EventType::Delete => view.apply(kv.key(), None),
                }
            }
        }
        Err("the watch ended".into())
    }

    /// Every second: removals left over, lost nodes, the load; now and then, old records.
    async fn chores(self) {
        let mut announced = (usize::MAX, u64::MAX);
        let mut last_clean = Instant::now();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if !self.is_ready() {
                continue;
            }
            self.flush_removals().await;
            self.declare_lost().await;
            let a = self.announcement();
            if (a.sessions, a.memory_reserved) != announced && self.announce().await.is_ok() {
                announced = (a.sessions, a.memory_reserved);
            }
            if last_clean.elapsed() > Duration::from_secs(30) {
                last_clean = Instant::now();
                self.clear_lost_records().await;
            }
        }
    }

    /// Makes the removals etcd could not take when the sessions closed.
    async fn flush_removals(&self) {
        let ids: Vec<String> = self
            .inner
            .pending_removals
            .lock()
            .expect("removals")
            .iter()
            .cloned()
            .collect();
        for id in ids {
            let mut client = self.client();
            let key = format!("{SESSIONS}{id}");
            if within("removing a session record", client.delete(key, None))
                .await
                .is_ok()
            {
                tracing::info!("session {id}: its record is removed now that the registry answers");
                self.inner
                    .pending_removals
                    .lock()
                    .expect("removals")
                    .remove(&id);
            }
        }
    }

    /// Declares lost each node whose lease lapsed and whose address no longer answers; a node
    /// that still answers (cut from etcd only) keeps its sessions.
    async fn declare_lost(&self) {
        let suspects: Vec<NodeInfo> = {
            let view = self.inner.view.read().expect("view");
            view.known
                .values()
                .filter(|n| n.name != self.name())
                .filter(|n| !view.live.contains_key(&n.name))
                .filter(|n| !view.is_lost(&n.name, n.epoch))
                .cloned()
                .collect()
        };
        for node in suspects {
            if answers(&node.advertise).await {
                continue;
            }
            if let Err(e) = self.mark_lost(&node).await {
                tracing::debug!("declaring node {} lost: {e}", node.name);
            }
        }
    }

    /// Writes `lost/{node}` unless the node came back meanwhile.
    pub(crate) async fn mark_lost(&self, node: &NodeInfo) -> ServiceResult<()> {
        let lost = Lost {
            epoch: node.epoch,
            at: sandpit_service::now(),
            by: self.name().to_string(),
        };
        let node_key = format!("{NODES}{}", node.name);
        let txn = Txn::new()
            .when([Compare::version(node_key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                format!("{LOST}{}", node.name),
                serde_json::to_vec(&lost).expect("lost"),
                None,
            )]);
        let mut client = self.client();
        let done = within("declaring a node lost", client.txn(txn)).await?;
        if done.succeeded() {
            tracing::warn!(
                "node {} is lost (its lease lapsed and {} does not answer): its sessions answer 410",
                node.name,
                node.advertise
            );
            self.inner
                .view
                .write()
                .expect("view")
                .lost
                .insert(node.name.clone(), lost);
        }
        Ok(())
    }

    /// Removes the records of lost sessions past their expiry (410 until then).
    async fn clear_lost_records(&self) {
        let t = sandpit_service::now();
        let old: Vec<String> = {
            let view = self.inner.view.read().expect("view");
            view.sessions
                .iter()
                .filter(|(_, r)| r.expires_at < t && view.is_lost(&r.node, r.epoch))
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in old {
            let mut client = self.client();
            let _ = within(
                "clearing a lost session's record",
                client.delete(format!("{SESSIONS}{id}"), None),
            )
            .await;
        }
    }
}

/// Whether something listens at the URL's host and port (within half a second).
pub(crate) async fn answers(url: &str) -> bool {
    let authority = url
        .trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/');
    let connect = tokio::net::TcpStream::connect(authority.to_string());
    matches!(
        tokio::time::timeout(Duration::from_millis(500), connect).await,
        Ok(Ok(_))
    )
}

/// The machine's memory in bytes (`/proc/meminfo`), 0 when unknown.
fn machine_memory() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}
