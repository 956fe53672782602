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
        if let Err(e) = inner.engine.pause_container(&inner.container).await {
            // Paused already (by a call that raced this one): nothing to do.
            self.container_is(e, |s| s.paused).await?;
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
        if let Err(e) = inner.engine.unpause_container(&inner.container).await {
            // Not paused (any more: two calls resumed it at once): nothing to do.
            self.container_is(e, |s| s.running && !s.paused).await?;
        }
        inner.paused.store(false, Ordering::SeqCst);
        Ok(())
    }

    /// After a pause or resume the engine refused: Ok when the container is in the state the
    /// call wanted anyway (engines differ in how they say so: Docker answers 500, Podman 409),
    /// else the engine's error.
    async fn container_is(
        &self,
        refused: sandpit_engine::EngineError,
        wanted: impl Fn(&sandpit_engine::ContainerState) -> bool,
    ) -> Result<()> {
        let container = &self.inner.container;
        if refused.is_not_found() {
            return Err(pause_error(container, refused));
        }
        match self.inner.engine.inspect_container(container).await {
            Ok(state) if wanted(&state) => Ok(()),
            _ => Err(pause_error(container, refused)),
        }
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
