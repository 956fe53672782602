//! Opening a session: the request checked, the container's builder, a place held in the
//! owner's session limit while it opens, the record saved.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandpit::{Language, LanguageExt, Network, SandboxSession, SecurityPolicy};

use super::validation::{check_idle, check_image, check_meta, check_name, check_workdir, seconds};
use super::{Entry, Manager, Owner, KIND_LABEL, SERVER_LABEL};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::store::{now, SessionRecord};
use crate::types::{CreateSession, SessionInfo};

impl Manager {
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
        if let Some(registry) = &self.shared.registry {
            registry.ready()?;
        }
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
        if let Some(registry) = &self.shared.registry {
            if let Err(e) = registry.add_session(&record, language.name()).await {
                // Closed here; a container this close cannot reach is found by its labels
                // and removed by the sweeper.
                let _ = session.close().await;
                return Err(e);
            }
        }
        if let Err(e) = self.shared.store.save_session(&record) {
            let _ = session.close().await;
            if let Some(registry) = &self.shared.registry {
                registry.remove_session(&record.id).await;
            }
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
        if let Some(registry) = &self.shared.registry {
            for (k, v) in registry.labels() {
                b = b.label(k, v);
            }
        }
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
        if let Some(dir) = &req.workdir {
            check_workdir(dir)?;
            b = b.workdir(dir.clone());
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

    pub(super) fn find_named(&self, owner: &Owner, name: &str) -> Option<Arc<Entry>> {
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
