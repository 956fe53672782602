//! A key's turn to run one-shot code: one of its run slots at once when one is free, else a
//! place in a bounded line (first come, first served) for a bounded time. A line that is full,
//! or a wait that runs out, is refused with a `Retry-After` from the recent pace of runs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::OwnedSemaphorePermit;

use super::{Manager, Owner};
use crate::error::{ErrorKind, ServiceError, ServiceResult};

/// Runs of one key waiting for a slot.
#[derive(Debug, Default)]
pub(super) struct Line {
    waiting: AtomicUsize,
}

/// Leaves the line when the wait ends, however it ends.
struct InLine(Arc<Line>);

impl Drop for InLine {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Manager {
    /// One of `owner`'s run slots, waiting in line for it when all are taken.
    pub(super) async fn take_turn(&self, owner: &Owner) -> ServiceResult<OwnedSemaphorePermit> {
        let runs = self.runs_of(owner);
        if let Ok(permit) = runs.clone().try_acquire_owned() {
            return Ok(permit);
        }
        let config = &self.shared.config;
        let line = self.line_of(owner);
        let ahead = line.waiting.fetch_add(1, Ordering::SeqCst);
        let _in_line = InLine(line);
        if ahead >= config.run_queue_length {
            return Err(self.come_back(
                owner,
                ahead,
                format!(
                    "this key has {} runs going, its limit, and {ahead} more waiting, as many as may wait",
                    self.run_limit(owner)
                ),
            ));
        }
        let wait = Duration::from_secs_f64(config.run_queue_wait);
        match tokio::time::timeout(wait, runs.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(self.come_back(
                owner,
                ahead,
                format!(
                    "this key has {} runs going, its limit, and none ended within the {:.1} s a run may wait",
                    self.run_limit(owner),
                    wait.as_secs_f64()
                ),
            )),
        }
    }

    fn line_of(&self, owner: &Owner) -> Arc<Line> {
        self.shared
            .lines
            .lock()
            .expect("lines")
            .entry(owner.0.clone())
            .or_default()
            .clone()
    }

    /// A refusal saying when to come back: when the runs ahead should have ended, at the pace of
    /// recent runs (at least one second).
    fn come_back(&self, owner: &Owner, ahead: usize, why: String) -> ServiceError {
        let pace = self.shared.metrics.one_shot_pace();
        let rounds = (ahead / self.run_limit(owner).max(1)) as u32 + 1;
        let wait = (pace * rounds).max(Duration::from_secs(1));
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        ServiceError::new(
            ErrorKind::Exhausted,
            format!("{why}: try again in {secs} s"),
        )
        .retry_after(Duration::from_secs(secs))
    }
}
