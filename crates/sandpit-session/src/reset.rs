//! Making a recyclable sandbox as it was before any code ran, so that it can serve the next run
//! of the same owner: the agent kills every process but itself, empties every place code could
//! write (all of them memory folders, the root filesystem being read-only), removes IPC objects,
//! and checks that nothing is left.

use std::sync::atomic::Ordering;
use std::time::Duration;

use sandpit_agent::protocol::{ErrorKind as AgentErrorKind, EventBody, Op, Reset};

use crate::agent::unexpected;
use crate::error::{Error, Result};
use crate::session::SandboxSession;
use crate::settings::{scratch_folders, ENGINE_SCRATCH};

/// The longest a reset may take; past it the sandbox is not reused.
const RESET_WITHIN: Duration = Duration::from_secs(10);

impl SandboxSession {
    /// Resets a recyclable session (see [`crate::SessionBuilder::recyclable`]): every process is
    /// stopped, every folder code could write is emptied, IPC objects are removed, kernels and
    /// environment changes are forgotten. An error means the sandbox could not be made clean
    /// (or not in time): close it instead of using it again.
    pub async fn reset(&self) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        if !inner.recyclable {
            return Err(Error::Refused(
                "only a session opened as recyclable can be reset: its root filesystem is read-only and its workdir is memory, so emptying them leaves nothing behind".into(),
            ));
        }
        let _alone = inner.install_lock.write().await;
        let mut clear: Vec<String> = scratch_folders(&inner.workdir, true)
            .into_iter()
            .map(|f| f.path)
            .collect();
        clear.extend(ENGINE_SCRATCH.iter().map(|p| p.to_string()));
        let op = Op::Reset(Reset {
            clear,
            timeout_ms: RESET_WITHIN.as_millis() as u64,
        });
        let answer = tokio::time::timeout(RESET_WITHIN + Duration::from_secs(5), self.ask(op, &[]))
            .await
            .map_err(|_| Error::Timeout {
                operation: format!("resetting {}", inner.container),
                after: RESET_WITHIN,
            })?;
        match answer {
            Ok(Ok((EventBody::ResetDone(report), _))) => {
                tracing::debug!(
                    "{}: reset in {} ms ({} processes, {} entries, {} IPC objects)",
                    inner.container,
                    report.duration_ms,
                    report.killed,
                    report.removed,
                    report.ipc_removed
                );
            }
            Ok(Ok((other, _))) => {
                return Err(Error::Agent {
                    container: inner.container.clone(),
                    reason: format!("answered a reset with {other:?}"),
                })
            }
            Ok(Err(e)) if e.kind == AgentErrorKind::Dirty => {
                return Err(Error::Agent {
                    container: inner.container.clone(),
                    reason: format!("could not make the sandbox clean: {}", e.message),
                })
            }
            Ok(Err(e)) => return Err(unexpected(&inner.container, "to reset the sandbox", e)),
            Err(e) => return Err(self.explain_lost(e).await),
        }
        self.inner.contexts.lock().expect("contexts").clear();
        *inner.env.write().expect("session env") = inner.opening_env.clone();
        inner.paused.store(false, Ordering::SeqCst);
        Ok(())
    }
}
