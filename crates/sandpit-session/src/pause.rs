//! Pausing: the engine freezes every process of the sandbox (memory, processes and a
//! kernel's state stay; no CPU is used) until it is resumed.

use std::sync::atomic::Ordering;

use crate::error::{Error, Result};
use crate::session::SandboxSession;

impl SandboxSession {
    /// Freezes the sandbox. Calls on a paused session are refused until [`Self::resume`].
    pub async fn pause(&self) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        if !inner.info.capabilities.pause {
            return Err(Error::Unsupported {
                what: "pausing a session".into(),
                reason: format!("the {} engine cannot freeze containers", inner.info.kind),
            });
        }
        // No install or run may be half-way: wait for them, and keep new ones out.
        let _alone = inner.install_lock.write().await;
        match inner.engine.pause_container(&inner.container).await {
            Ok(()) => {}
            Err(e) if e.is_conflict() && inner.paused.load(Ordering::SeqCst) => {}
            Err(e) => return Err(pause_error(&inner.container, e)),
        }
        inner.paused.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Thaws a paused sandbox; its processes carry on where they were.
    pub async fn resume(&self) -> Result<()> {
        if self.is_closed() {
            return Err(Error::SessionClosed {
                session: self.inner.id.clone(),
            });
        }
        let inner = &self.inner;
        match inner.engine.unpause_container(&inner.container).await {
            Ok(()) => {}
            // Not paused (any more): nothing to do.
            Err(e) if e.is_conflict() => {}
            Err(e) => return Err(pause_error(&inner.container, e)),
        }
        inner.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// True while paused.
    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::SeqCst)
    }
}

fn pause_error(container: &str, e: sandpit_engine::EngineError) -> Error {
    if e.is_not_found() {
        return Error::SessionGone {
            container: container.to_string(),
        };
    }
    Error::engine(e, |cause| Error::Pause {
        container: container.to_string(),
        cause,
    })
}
