//! The session manager: sessions with an owner (the key that made them), a name, metadata, a
//! lifetime and an idle timeout; per-key limits; the sweeper that closes what expired; and the
//! adoption of live sessions after a restart. Every transport goes through it.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, UNIX_EPOCH};

use sandpit::{
    Engine, Language, LanguageExt, Network, PoolConfig, RunOptions, SandboxSession, SecurityPolicy,
    SessionPool, WhenExhausted,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::ServiceConfig;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::metrics::Metrics;
use crate::store::{now, SessionRecord, Store};
use crate::types::{CreateSession, OneShotRequest, RunResponse, SessionInfo, UpdateSession};

mod snapshots;

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
    pools: tokio::sync::Mutex<HashMap<Language, SessionPool>>,
    metrics: Metrics,
    /// When the sweeper last looked for containers of sessions that never opened.
    orphans_checked: Mutex<Instant>,
    /// Where snapshots go (`snapshots` in the config), when configured.
    snapshots: Option<sandpit_snapshot::SnapshotStore>,
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
    /// sessions a previous server process left (closing the expired ones and any container of
    /// this server the store does not know), then sweeps every `sweep_interval` seconds.
    pub async fn start(
        config: ServiceConfig,
        engine: Engine,
        store: Store,
    ) -> ServiceResult<Manager> {
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
                pools: tokio::sync::Mutex::new(HashMap::new()),
                metrics: Metrics::default(),
                orphans_checked: Mutex::new(Instant::now()),
                snapshots,
            }),
        };
        manager.adopt_all().await;
        let weak = Arc::downgrade(&manager.shared);
        let every = Duration::from_secs(manager.shared.config.sweep_interval.max(1));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = weak.upgrade() else { return };
                Manager { shared }.sweep().await;
            }
        });
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

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// Sessions open now.
    pub fn open_count(&self) -> usize {
        self.shared.sessions.read().expect("sessions").len()
    }

    /// Opens a session for `owner`; with a name the owner holds already, returns that one.
    /// The flag is true when a session was made.
    pub async fn create(
        &self,
        owner: &Owner,
        req: CreateSession,
    ) -> ServiceResult<(SessionInfo, bool)> {
        if req.from_snapshot.is_some() {
            return self.restore(owner, req).await;
        }
        let language: Language = req
            .language
            .parse()
            .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?;
        if let Some(name) = &req.name {
            check_name(name)?;
            if let Some(entry) = self.find_named(owner, name) {
                self.touch(&entry);
                return Ok((self.info(&entry, false).await?, false));
            }
        }
        let lifetime = self.lifetime(req.timeout)?;
        if let Some(idle) = req.idle_timeout {
            check_idle(idle, self.shared.config.max_lifetime)?;
        }
        let idle = req
            .idle_timeout
            .unwrap_or(self.shared.config.default_idle_timeout);
        let run_timeout = seconds("run_timeout", req.run_timeout.unwrap_or(60.0))?;
        let builder = self.builder(owner, language, &req, run_timeout)?;
        let _slot = self.reserve(owner)?;
        let started = Instant::now();
        let session = builder.open().await?;
        self.shared.metrics.run("open", started.elapsed());
        self.shared.metrics.opened();
        let t = now();
        let record = SessionRecord {
            id: session.id().to_string(),
            owner: owner.0.clone(),
            name: req.name.clone(),
            created: t,
            expires_at: t + lifetime.as_secs(),
            idle_timeout: idle,
            last_used: t,
            metadata: req.metadata.clone(),
            env: req.env.clone(),
            run_timeout_ms: run_timeout.as_millis() as u64,
            paused_since: None,
        };
        if let Err(e) = self.shared.store.save_session(&record) {
            let _ = session.close().await;
            return Err(e);
        }
        let entry = Arc::new(Entry {
            session,
            language,
            record: Mutex::new(record),
            in_flight: AtomicUsize::new(0),
            last_saved: Mutex::new(Instant::now()),
        });
        self.shared
            .sessions
            .write()
            .expect("sessions")
            .insert(entry.session.id().to_string(), entry.clone());
        Ok((self.info(&entry, false).await?, true))
    }

    fn builder(
        &self,
        owner: &Owner,
        language: Language,
        req: &CreateSession,
        run_timeout: Duration,
    ) -> ServiceResult<sandpit::SessionBuilder> {
        let mut policy = match &req.policy {
            Some(name) => SecurityPolicy::preset(name).map_err(ServiceError::invalid)?,
            None => SecurityPolicy::standard(),
        };
        if let Some(n) = &req.network {
            policy.network = n.parse::<Network>().map_err(ServiceError::invalid)?;
            if !matches!(policy.network, Network::None | Network::Bridge) {
                return Err(ServiceError::invalid(format!(
                    "network {n:?}: choose none or bridge"
                )));
            }
        }
        if let Some(m) = &req.memory {
            policy.memory = m.bytes("memory").map_err(ServiceError::invalid)?;
        }
        if let Some(c) = req.cpus {
            policy.cpus = c;
        }
        if let Some(p) = req.max_processes {
            // The kernel's own ceiling on process ids; past it the engine fails to start it.
            if p > 4_194_304 {
                return Err(ServiceError::invalid(format!(
                    "max_processes {p}: at most 4194304"
                )));
            }
            policy.max_processes = p;
        }
        if let Some(d) = &req.disk {
            policy.disk = d.bytes("disk").map_err(ServiceError::invalid)?;
        }
        if let Some(r) = &req.runtime {
            policy.runtime = sandpit::RuntimeChoice::Named(r.clone());
        }
        for (key, value) in &req.env {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return Err(ServiceError::invalid(format!(
                    "{key:?} is not an environment variable name"
                )));
            }
            if value.contains('\0') {
                return Err(ServiceError::invalid(format!(
                    "the value of {key} holds a NUL byte"
                )));
            }
        }
        let mut b = SandboxSession::builder()
            .language(language)
            .engine(self.shared.engine.clone())
            .policy(policy)
            .timeout(run_timeout)
            .libraries(req.libraries.iter().cloned())
            .tied_to_process(false)
            .lifetime(Duration::from_secs(self.shared.config.max_lifetime))
            .label(crate::labels::OWNER, owner.0.clone())
            .label(SERVER_LABEL, self.shared.server_id.clone())
            .label(KIND_LABEL, "session");
        for (k, v) in &req.env {
            b = b.env(k.clone(), v.clone());
        }
        for (k, v) in &req.metadata {
            check_meta(k)?;
            b = b.label(k.clone(), v.clone());
        }
        if let Some(image) = &req.image {
            check_image(image)?;
            b = b.image(image.clone());
        }
        if let Some(ca) = &self.shared.config.ca_bundle {
            b = b.extra_ca_certificates(ca.clone());
        }
        Ok(b)
    }

    /// Holds a place in the owner's session limit while a session opens.
    fn reserve(&self, owner: &Owner) -> ServiceResult<Reservation> {
        let limit = if owner.is_anonymous() {
            self.shared.config.anonymous_sessions
        } else {
            self.shared.config.sessions_per_key
        };
        let held = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .filter(|e| e.owner() == owner.0)
            .count();
        let mut opening = self.shared.opening.lock().expect("opening");
        let pending = opening.entry(owner.0.clone()).or_default();
        if held + *pending >= limit {
            return Err(ServiceError::new(
                ErrorKind::Exhausted,
                format!("this key holds {held} sessions (and {pending} opening), its limit is {limit}: close one first"),
            ));
        }
        *pending += 1;
        Ok(Reservation {
            manager: self.clone(),
            owner: owner.0.clone(),
        })
    }

    fn lifetime(&self, requested: Option<u64>) -> ServiceResult<Duration> {
        let max = self.shared.config.max_lifetime;
        let secs = requested.unwrap_or(self.shared.config.default_lifetime);
        if secs == 0 || secs > max {
            return Err(ServiceError::invalid(format!(
                "timeout {secs} s: a session lives between 1 s and {max} s"
            )));
        }
        Ok(Duration::from_secs(secs))
    }

    fn find_named(&self, owner: &Owner, name: &str) -> Option<Arc<Entry>> {
        self.shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .find(|e| {
                let r = e.record.lock().expect("record");
                r.owner == owner.0 && r.name.as_deref() == Some(name)
            })
            .cloned()
    }

    /// The owner's session `id` (another owner's is "not found").
    pub fn get(&self, owner: &Owner, id: &str) -> ServiceResult<Arc<Entry>> {
        let entry = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .get(id)
            .cloned()
            .ok_or_else(|| ServiceError::no_session(id))?;
        if entry.owner() != owner.0 {
            return Err(ServiceError::no_session(id));
        }
        Ok(entry)
    }

    /// The owner's session `id`, held for one run: counts against the owner's concurrent
    /// runs (`Exhausted` past the limit) and resumes a paused session.
    pub async fn busy(&self, owner: &Owner, id: &str) -> ServiceResult<Busy> {
        let entry = self.get(owner, id)?;
        let permit = self.runs_of(owner).try_acquire_owned().map_err(|_| {
            ServiceError::new(
                ErrorKind::Exhausted,
                format!(
                    "this key has {} runs going, its limit: wait for one to end",
                    self.run_limit(owner)
                ),
            )
        })?;
        self.occupy(entry, Some(permit)).await
    }

    /// The owner's session `id`, held for a file or listing call: like [`Manager::busy`]
    /// (the sweeper leaves it open, a paused session resumes) but without taking one of the
    /// owner's run slots, so files can be read while code runs.
    pub async fn hold(&self, owner: &Owner, id: &str) -> ServiceResult<Busy> {
        let entry = self.get(owner, id)?;
        self.occupy(entry, None).await
    }

    async fn occupy(
        &self,
        entry: Arc<Entry>,
        permit: Option<OwnedSemaphorePermit>,
    ) -> ServiceResult<Busy> {
        entry.in_flight.fetch_add(1, Ordering::SeqCst);
        let busy = Busy {
            entry: entry.clone(),
            _permit: permit,
            manager: self.clone(),
        };
        if entry.record.lock().expect("record").paused_since.is_some() {
            self.resume_entry(&entry).await?;
        }
        Ok(busy)
    }

    fn run_limit(&self, owner: &Owner) -> usize {
        if owner.is_anonymous() {
            self.shared.config.anonymous_concurrent_runs
        } else {
            self.shared.config.concurrent_runs_per_key
        }
    }

    fn runs_of(&self, owner: &Owner) -> Arc<Semaphore> {
        self.shared
            .runs
            .lock()
            .expect("runs")
            .entry(owner.0.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.run_limit(owner))))
            .clone()
    }

    /// Notes a call on the session (its idle clock restarts); saved now and then.
    fn touch(&self, entry: &Arc<Entry>) {
        let record = {
            let mut r = entry.record.lock().expect("record");
            r.last_used = now();
            r.clone()
        };
        let mut saved = entry.last_saved.lock().expect("saved");
        if saved.elapsed() > Duration::from_secs(10) {
            *saved = Instant::now();
            let _ = self.shared.store.save_session(&record);
        }
    }

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

    async fn forget(&self, entry: &Arc<Entry>) {
        let id = entry.session.id().to_string();
        let removed = self.shared.sessions.write().expect("sessions").remove(&id);
        if removed.is_some() {
            let _ = self.shared.store.delete_session(&id);
            let _ = entry.session.close().await;
            self.shared.metrics.closed();
        }
    }

    /// The session as the API shows it; with `usage`, what it uses now.
    pub async fn info(&self, entry: &Arc<Entry>, usage: bool) -> ServiceResult<SessionInfo> {
        let r = entry.record();
        let s = &entry.session;
        let usage = if usage {
            match s.usage().await {
                Ok(u) => Some(u.into()),
                Err(e) => return Err(self.failed(entry, e).await),
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
        {
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
        }
        self.info(&entry, false).await
    }

    /// Closes the owner's session.
    pub async fn destroy(&self, owner: &Owner, id: &str) -> ServiceResult<()> {
        let entry = self.get(owner, id)?;
        self.shared.sessions.write().expect("sessions").remove(id);
        let closed = entry.session.close().await;
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

    /// What all the owner's sessions use together (CPU, memory, processes, disk, network).
    pub async fn total_usage(&self, owner: &Owner) -> ServiceResult<crate::types::UsageInfo> {
        let mut total = crate::types::UsageInfo {
            cpu_seconds: 0.0,
            memory_bytes: 0,
            memory_peak_bytes: None,
            memory_limit_bytes: 0,
            pids: 0,
            disk_used_bytes: 0,
            disk_limit_bytes: None,
            net_rx_bytes: 0,
            net_tx_bytes: 0,
        };
        for (_, health) in self.health_all(owner).await {
            let u = health?;
            total.cpu_seconds += u.cpu_seconds;
            total.memory_bytes += u.memory_bytes;
            total.memory_limit_bytes += u.memory_limit_bytes;
            total.pids += u.pids;
            total.disk_used_bytes += u.disk_used_bytes;
            total.net_rx_bytes += u.net_rx_bytes;
            total.net_tx_bytes += u.net_tx_bytes;
        }
        Ok(total)
    }

    /// Asks each of the owner's sessions what it uses: a session that answers is healthy, one
    /// that does not says why.
    pub async fn health_all(
        &self,
        owner: &Owner,
    ) -> Vec<(String, ServiceResult<crate::types::UsageInfo>)> {
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .filter(|e| e.owner() == owner.0)
            .cloned()
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for e in entries {
            let id = e.session.id().to_string();
            let usage = match e.session.usage().await {
                Ok(u) => Ok(u.into()),
                Err(err) => Err(self.failed(&e, err).await),
            };
            out.push((id, usage));
        }
        out
    }

    /// Replaces the session's environment (kept across a restart).
    pub fn set_env(&self, entry: &Arc<Entry>, env: BTreeMap<String, String>) -> ServiceResult<()> {
        entry.session.replace_env(env.clone())?;
        let mut r = entry.record.lock().expect("record");
        r.env = env;
        self.shared.store.save_session(&r)
    }

    /// One program in a fresh sandbox, from the language's warm pool when it has one.
    pub async fn run_once(&self, owner: &Owner, req: OneShotRequest) -> ServiceResult<RunResponse> {
        let language: Language = req
            .language
            .parse()
            .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?;
        let timeout = seconds("timeout", req.timeout.unwrap_or(60.0))?;
        let _permit = self.runs_of(owner).try_acquire_owned().map_err(|_| {
            ServiceError::new(
                ErrorKind::Exhausted,
                format!(
                    "this key has {} runs going, its limit: wait for one to end",
                    self.run_limit(owner)
                ),
            )
        })?;
        let started = Instant::now();
        let pool = self.pool(language).await?;
        let session = pool.acquire().await?;
        let mut options = RunOptions::new()
            .timeout(timeout)
            .libraries(req.libraries.iter().cloned())
            .args(req.args.iter().cloned());
        if let Some(stdin) = req.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = session.run_with(&req.code, options).await;
        // Closed by the drop worker: the answer does not wait, and a shutdown cannot lose it.
        drop(session);
        self.shared.metrics.run("one_shot", started.elapsed());
        Ok(result?.into())
    }

    /// One program in a fresh sandbox, with what [`Self::run_once`] does not offer (the
    /// compatibility APIs need it): files written beside the program first, a memory limit
    /// of its own (then a sandbox opened for it rather than one from the warm pool), and a
    /// wait of up to `wait` for one of the owner's run slots (`Exhausted` after it). The
    /// run's options (timeout, stdin, arguments, environment, output sink) are the caller's.
    /// The sandbox is closed before this returns.
    pub async fn run_program(
        &self,
        owner: &Owner,
        program: Program,
    ) -> ServiceResult<sandpit::RunResult> {
        let runs = self.runs_of(owner);
        let _permit = match tokio::time::timeout(program.wait, runs.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(ServiceError::new(
                    ErrorKind::Exhausted,
                    format!(
                        "this key has {} runs going, its limit, and none ended within {:.1} s: try again later",
                        self.run_limit(owner),
                        program.wait.as_secs_f64()
                    ),
                ))
            }
        };
        let started = Instant::now();
        let result = match program.memory {
            Some(memory) => {
                let mut policy = SecurityPolicy::standard();
                policy.memory = memory;
                let mut builder = SandboxSession::builder()
                    .language(program.language)
                    .engine(self.shared.engine.clone())
                    .policy(policy)
                    .label(SERVER_LABEL, self.shared.server_id.clone())
                    .label(crate::labels::OWNER, owner.0.clone())
                    .lifetime(Duration::from_secs(3600));
                if let Some(ca) = &self.shared.config.ca_bundle {
                    builder = builder.extra_ca_certificates(ca.clone());
                }
                let session = builder.open().await?;
                let result =
                    run_with_files(&session, &program.code, program.options, &program.files).await;
                if let Err(e) = session.close().await {
                    tracing::warn!("closing the sandbox of a one-shot run failed: {e}");
                }
                result?
            }
            None => {
                let pool = self.pool(program.language).await?;
                let session = pool.acquire().await?;
                let result =
                    run_with_files(&session, &program.code, program.options, &program.files).await;
                if let Err(e) = session.release().await {
                    tracing::warn!("closing the pooled sandbox of a one-shot run failed: {e}");
                }
                result?
            }
        };
        self.shared.metrics.run("one_shot", started.elapsed());
        Ok(result)
    }

    async fn pool(&self, language: Language) -> ServiceResult<SessionPool> {
        let mut pools = self.shared.pools.lock().await;
        if let Some(pool) = pools.get(&language) {
            return Ok(pool.clone());
        }
        let idle = self
            .shared
            .config
            .pool
            .get(language.name())
            .copied()
            .unwrap_or(0);
        // Warm sandboxes belong to this process (never adopted): `sandpit gc` removes what a
        // killed server left of them.
        let mut builder = SandboxSession::builder()
            .language(language)
            .engine(self.shared.engine.clone())
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
        pools.insert(language, pool.clone());
        Ok(pool)
    }

    /// Starts the warm pools the config asks for (so the first one-shot run finds them warm).
    pub async fn warm_pools(&self) {
        let languages: Vec<Language> = self
            .shared
            .config
            .pool
            .iter()
            .filter(|(_, n)| **n > 0)
            .filter_map(|(l, _)| l.parse().ok())
            .collect();
        for language in languages {
            if let Err(e) = self.pool(language).await {
                tracing::warn!("the {language} pool cannot start: {e}");
            }
        }
    }

    /// Closes what expired or idled (or pauses what idled, when configured).
    pub async fn sweep(&self) {
        let t = now();
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .cloned()
            .collect();
        for entry in entries {
            let r = entry.record();
            let busy = entry.in_flight.load(Ordering::SeqCst) > 0;
            let expired = t >= r.expires_at;
            let idle = !busy
                && r.paused_since.is_none()
                && t >= r.last_used.saturating_add(r.idle_timeout);
            if expired || (idle && !self.shared.config.pause_when_idle) {
                tracing::info!(
                    "closing session {} ({})",
                    r.id,
                    if expired {
                        "its lifetime ended"
                    } else {
                        "idle"
                    }
                );
                self.forget(&entry).await;
            } else if idle {
                if let Err(e) = self.pause_entry(&entry).await {
                    tracing::warn!("pausing idle session {}: {e}", r.id);
                }
            }
        }
        self.remove_orphans().await;
    }

    /// Removes, now and then, the containers of this server's sessions that belong to no
    /// session: an open that failed half-way (the engine went away while it ran, so its
    /// clean-up could not reach the engine either) leaves one that nobody can reach. Only
    /// containers of [`Manager::create`]'s sessions count (not a warm pool's or a one-shot
    /// run's), made a while ago, of an owner with no open in progress.
    async fn remove_orphans(&self) {
        {
            let mut checked = self.shared.orphans_checked.lock().expect("orphans");
            if checked.elapsed() < Duration::from_secs(15) {
                return;
            }
            *checked = Instant::now();
        }
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        let Ok(containers) = self.shared.engine.list_containers(&label).await else {
            return;
        };
        let t = now() as i64;
        for c in containers {
            let ours = c.labels.get(KIND_LABEL).map(String::as_str) == Some("session");
            let (Some(id), Some(owner)) = (
                c.labels.get(sandpit::labels::SESSION),
                c.labels.get(crate::labels::OWNER),
            ) else {
                continue;
            };
            let known = self
                .shared
                .sessions
                .read()
                .expect("sessions")
                .contains_key(id);
            let opening = self
                .shared
                .opening
                .lock()
                .expect("opening")
                .get(owner)
                .is_some_and(|n| *n > 0);
            if !ours || known || opening || t - c.created < 30 {
                continue;
            }
            tracing::info!(
                "removing container {}: no session of this server owns it",
                c.name
            );
            // Closed as a session (its disk goes too); `adopt`'s future is not `Send`, so it
            // runs on a blocking thread of its own rather than in the sweeper's task.
            let (engine, id) = (self.shared.engine.clone(), id.clone());
            let handle = tokio::runtime::Handle::current();
            let closed = tokio::task::spawn_blocking(move || {
                handle.block_on(async move {
                    match sandpit::adopt(&engine, &id).await {
                        Ok(session) => session.close().await.is_ok(),
                        Err(_) => false,
                    }
                })
            })
            .await
            .unwrap_or(false);
            if !closed {
                let _ = self.shared.engine.remove_container(&c.name).await;
            }
        }
    }

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

    async fn pause_entry(&self, entry: &Arc<Entry>) -> ServiceResult<()> {
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

    async fn resume_entry(&self, entry: &Arc<Entry>) -> ServiceResult<()> {
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

    /// Carries on with the sessions of this server's previous process.
    async fn adopt_all(&self) {
        let records = match self.shared.store.sessions() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot read the sessions of the previous server: {e}");
                return;
            }
        };
        let t = now();
        let mut known = std::collections::HashSet::new();
        for record in records {
            known.insert(record.id.clone());
            match sandpit::adopt(&self.shared.engine, &record.id).await {
                Ok(session) => {
                    let language = session.runner().language();
                    if !record.env.is_empty() {
                        let _ = session.replace_env(record.env.clone());
                    }
                    let entry = Arc::new(Entry {
                        session,
                        language,
                        record: Mutex::new(record.clone()),
                        in_flight: AtomicUsize::new(0),
                        last_saved: Mutex::new(Instant::now()),
                    });
                    let paused_for = record
                        .paused_since
                        .map(|s| t.saturating_sub(s))
                        .unwrap_or(0);
                    if t >= record.expires_at + paused_for {
                        tracing::info!(
                            "session {} expired while the server was away; closing it",
                            record.id
                        );
                        let _ = entry.session.close().await;
                        let _ = self.shared.store.delete_session(&record.id);
                        continue;
                    }
                    tracing::info!("adopted session {}", record.id);
                    self.shared
                        .sessions
                        .write()
                        .expect("sessions")
                        .insert(record.id.clone(), entry);
                }
                Err(e) => {
                    tracing::warn!("session {} is gone ({e}); forgetting it", record.id);
                    let _ = self.shared.store.delete_session(&record.id);
                }
            }
        }
        // Containers of this server that no record names (a crash between opening and
        // saving, or warm pool sessions): nobody can reach them, so they go.
        let label = format!("{SERVER_LABEL}={}", self.shared.server_id);
        if let Ok(containers) = self.shared.engine.list_containers(&label).await {
            for c in containers {
                let id = c
                    .labels
                    .get(sandpit::labels::SESSION)
                    .cloned()
                    .unwrap_or_default();
                if !known.contains(&id) {
                    if let Ok(s) = sandpit::adopt(&self.shared.engine, &id).await {
                        tracing::info!("closing session {id}, which no record names");
                        let _ = s.close().await;
                    } else {
                        let _ = self.shared.engine.remove_container(&c.name).await;
                    }
                }
            }
        }
    }

    /// Removes the warm pool sessions a closed pool could not: one its filler was still opening
    /// finishes after the close, and the pool closes it in a task this exiting process would
    /// not run. Nobody could reach them; they would wait for the next start otherwise.
    async fn remove_pool_leftovers(&self) {
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

    /// Closes the warm pools (sessions stay: the next server process adopts them).
    pub async fn shutdown(&self) {
        for (_, pool) in self.shared.pools.lock().await.drain() {
            let _ = pool.close().await;
        }
        // Sandboxes of one-shot runs still being removed.
        let _ =
            tokio::task::spawn_blocking(|| sandpit::wait_for_drops(Duration::from_secs(30))).await;
        self.remove_pool_leftovers().await;
        let records: Vec<SessionRecord> = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .values()
            .map(|e| e.record())
            .collect();
        for r in records {
            let _ = self.shared.store.save_session(&r);
        }
        // The sessions stay for the next server process, but dropping a session's last handle
        // removes its container (the library's drop worker): let the handles go unclosed.
        let entries: Vec<Arc<Entry>> = self
            .shared
            .sessions
            .write()
            .expect("sessions")
            .drain()
            .map(|(_, e)| e)
            .collect();
        for entry in entries {
            std::mem::forget(entry);
        }
    }
}

/// A program for [`Manager::run_program`].
#[derive(Debug)]
pub struct Program {
    /// Its language.
    pub language: Language,
    /// Its source.
    pub code: String,
    /// Timeout, stdin, arguments, environment, output sink.
    pub options: RunOptions,
    /// Files written into the workdir before it runs: (relative path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// A memory limit in bytes other than the standard policy's (`None`: the standard one).
    pub memory: Option<u64>,
    /// How long to wait for a free run slot of the owner.
    pub wait: Duration,
}

/// Writes `files`, then runs `code`.
async fn run_with_files(
    session: &SandboxSession,
    code: &str,
    options: RunOptions,
    files: &[(String, Vec<u8>)],
) -> sandpit::Result<sandpit::RunResult> {
    for (path, data) in files {
        session.files().write(path, data, None).await?;
    }
    session.run_with(code, options).await
}

/// A place held in an owner's session limit.
struct Reservation {
    manager: Manager,
    owner: String,
}

impl Drop for Reservation {
    fn drop(&mut self) {
        let mut opening = self.manager.shared.opening.lock().expect("opening");
        if let Some(n) = opening.get_mut(&self.owner) {
            *n = n.saturating_sub(1);
        }
    }
}

fn rfc3339(secs: u64) -> String {
    sandpit::time::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

/// Seconds from a request, checked.
pub fn seconds(what: &str, secs: f64) -> ServiceResult<Duration> {
    if !(secs > 0.0 && secs.is_finite() && secs <= 86_400.0) {
        return Err(ServiceError::invalid(format!(
            "{what} {secs}: give seconds between 0 and 86400"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_name(name: &str) -> ServiceResult<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(ServiceError::invalid(
            "a session name is 1 to 128 printable characters",
        ));
    }
    Ok(())
}

/// An idle timeout no longer than the longest lifetime (a session cannot idle past its end).
fn check_idle(idle: u64, max_lifetime: u64) -> ServiceResult<()> {
    if idle == 0 || idle > max_lifetime {
        return Err(ServiceError::invalid(format!(
            "idle_timeout {idle} s: give between 1 s and {max_lifetime} s (the longest lifetime)"
        )));
    }
    Ok(())
}

fn check_meta(key: &str) -> ServiceResult<()> {
    if key.is_empty()
        || key.len() > 128
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ServiceError::invalid(format!(
            "metadata key {key:?}: use letters, digits, _, - and ."
        )));
    }
    // Metadata become container labels: Sandpit's own (owner, session, expiry) are not the
    // caller's to set.
    if key.starts_with("sandpit.") {
        return Err(ServiceError::invalid(format!(
            "metadata key {key:?}: keys starting with `sandpit.` are reserved for Sandpit's own labels"
        )));
    }
    Ok(())
}

/// An image reference as the engine reads one (`name[:tag][@digest]`), so a malformed one is
/// bad input rather than an engine failure.
fn check_image(image: &str) -> ServiceResult<()> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.starts_with(['-', '.', '/', ':', '@'])
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
        && !image.contains("..")
        && !image.contains("//");
    if !ok {
        return Err(ServiceError::invalid(format!(
            "image {image:?} is not an image reference such as sandpit/python:latest"
        )));
    }
    Ok(())
}
