//! Finding a session by id for a call: the owner's own only, held while the call runs (a run
//! takes one of the owner's run slots; a file or listing call does not), its idle clock
//! restarted afterwards.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{Busy, Entry, Manager, Owner};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::store::now;

impl Manager {
    /// Whether this server holds session `id` (of any owner).
    pub fn holds(&self, id: &str) -> bool {
        self.shared
            .sessions
            .read()
            .expect("sessions")
            .contains_key(id)
    }

    /// The owner's session `id` (another owner's is "not found").
    pub fn get(&self, owner: &Owner, id: &str) -> ServiceResult<Arc<Entry>> {
        let found = self
            .shared
            .sessions
            .read()
            .expect("sessions")
            .get(id)
            .cloned();
        let Some(entry) = found else {
            return Err(self.lost_or_unknown(owner, id));
        };
        if entry.owner() != owner.0 {
            return Err(ServiceError::no_session(id));
        }
        Ok(entry)
    }

    /// 410 for a session of `owner` this server lost (its sandbox removed from outside, or one
    /// it could not take over after a restart), saying why; else 404.
    fn lost_or_unknown(&self, owner: &Owner, id: &str) -> ServiceError {
        match self.shared.store.lost(id) {
            Ok(Some((lost_owner, reason))) if lost_owner == owner.0 => {
                let mut e = ServiceError::new(
                    ErrorKind::Gone,
                    format!("session {id} was lost: {reason}; open a new session"),
                );
                e.subject = Some(crate::error::Subject::Session);
                e
            }
            _ => ServiceError::no_session(id),
        }
    }

    /// Who owns session `id`, when this server holds it: for a credential that names a
    /// session but no key (E2B's presigned file URLs, checked against the owner's token).
    pub fn owner_of(&self, id: &str) -> Option<Owner> {
        self.shared
            .sessions
            .read()
            .expect("sessions")
            .get(id)
            .map(|e| Owner(e.owner()))
    }

    /// Every session this server holds, with its owner: for a credential that names neither
    /// (an E2B presigned URL reached without its sandbox's host), checked against each.
    pub fn owners(&self) -> Vec<(String, Owner)> {
        self.shared
            .sessions
            .read()
            .expect("sessions")
            .iter()
            .map(|(id, e)| (id.clone(), Owner(e.owner())))
            .collect()
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

    pub(super) fn run_limit(&self, owner: &Owner) -> usize {
        if owner.is_anonymous() {
            self.shared.config.anonymous_concurrent_runs
        } else {
            self.shared.config.concurrent_runs_per_key
        }
    }

    pub(super) fn runs_of(&self, owner: &Owner) -> Arc<Semaphore> {
        self.shared
            .runs
            .lock()
            .expect("runs")
            .entry(owner.0.clone())
            .or_insert_with(|| Arc::new(Semaphore::new(self.run_limit(owner))))
            .clone()
    }

    /// Notes a call on the session (its idle clock restarts); saved now and then.
    pub(super) fn touch(&self, entry: &Arc<Entry>) {
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
}
