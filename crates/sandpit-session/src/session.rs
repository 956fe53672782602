//! The session guard: one container, closed explicitly or, as a safety net, on drop.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::builder::SessionBuilder;
use crate::connection::Engine;
use crate::error::{Error, Result};
use crate::runner::Runner;

/// One sandbox: a running container and the language runner that drives it.
///
/// Cloning gives another handle to the same container. Close with [`SandboxSession::close`];
/// when the last handle drops without a close, the container is removed in a blocking
/// fallback that works on either tokio runtime flavour (and outside any runtime).
#[derive(Clone, Debug)]
pub struct SandboxSession {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub id: String,
    pub container: String,
    pub runner: Arc<dyn Runner>,
    pub image: String,
    pub built_image: bool,
    pub keep_template: bool,
    pub template_tag: Option<String>,
    pub workdir: String,
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
    pub install_timeout: Duration,
    pub output_limit: usize,
    pub policy: crate::policy::SecurityPolicy,
    pub volume: Option<String>,
    pub disk: Option<crate::disk::LoopDisk>,
    pub oom_seen: std::sync::atomic::AtomicU64,
    pub kernel: tokio::sync::Mutex<Option<crate::kernel::Kernel>>,
    pub closed: AtomicBool,
    pub installed: Mutex<HashSet<String>>,
    /// Runs hold it shared; installs hold it alone, so no user code runs while the network is attached.
    pub install_lock: tokio::sync::RwLock<()>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxSession")
            .field("id", &self.id)
            .field("container", &self.container)
            .field("image", &self.image)
            .field("language", &self.runner.language())
            .finish()
    }
}

impl SandboxSession {
    /// A builder; set a runner (or, with the `sandpit` crate, a language) then `open()`.
    pub fn builder() -> SessionBuilder {
        SessionBuilder::new()
    }

    /// The session id (also the `sandpit.session` label).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    /// The container's name.
    pub fn container_name(&self) -> &str {
        &self.inner.container
    }

    /// The image the container runs.
    pub fn image(&self) -> &str {
        &self.inner.image
    }

    /// The folder code runs in.
    pub fn workdir(&self) -> &str {
        &self.inner.workdir
    }

    /// The engine the session runs on.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<dyn Runner> {
        &self.inner.runner
    }

    /// The security policy the session runs under.
    pub fn policy(&self) -> &crate::policy::SecurityPolicy {
        &self.inner.policy
    }

    /// True when the workdir sits on its own size-limited disk (writes past the limit get ENOSPC).
    pub fn has_disk_limit(&self) -> bool {
        self.inner.disk.is_some()
    }

    /// True once closed.
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(Ordering::SeqCst)
    }

    pub(crate) fn check_open(&self) -> Result<()> {
        if self.is_closed() {
            Err(Error::SessionClosed {
                session: self.inner.id.clone(),
            })
        } else {
            Ok(())
        }
    }
}

/// Opens a session from `builder`, runs `body` with it, and always closes it, also when
/// `body` fails. Returns `body`'s result; a close error is returned only when `body` succeeded.
///
/// ```no_run
/// # async fn demo(builder: sandpit_session::SessionBuilder) -> sandpit_session::Result<()> {
/// let out = sandpit_session::with_session(builder, |s| async move {
///     s.run("print(6 * 7)", &[]).await
/// })
/// .await?;
/// assert_eq!(out.stdout, "42\n");
/// # Ok(()) }
/// ```
pub async fn with_session<F, Fut, T, E>(
    builder: SessionBuilder,
    body: F,
) -> std::result::Result<T, E>
where
    F: FnOnce(SandboxSession) -> Fut,
    Fut: Future<Output = std::result::Result<T, E>>,
    E: From<Error>,
{
    let session = builder.open().await?;
    let result = body(session.clone()).await;
    let closed = session.close().await;
    match (result, closed) {
        (Ok(v), Ok(())) => Ok(v),
        (Ok(_), Err(e)) => Err(e.into()),
        (Err(e), _) => Err(e),
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            session = %self.id,
            "session dropped without close(); removing container {} in the background fallback",
            self.container
        );
        let plan = crate::close::ClosePlan::of(self);
        let connection = self.engine.connection().clone();
        // A fresh thread with its own runtime and connection: blocking here cannot deadlock
        // a current-thread runtime, and nothing depends on the caller's runtime being alive.
        let worker = std::thread::Builder::new()
            .name("sandpit-drop".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        tracing::error!("cannot start a runtime to remove {}: {e}", plan.container);
                        return;
                    }
                };
                runtime.block_on(async move {
                    match connection.connect().await {
                        Ok(engine) => {
                            if let Err(e) = plan.execute(&engine).await {
                                tracing::error!("removing {} on drop failed: {e}", plan.container);
                            }
                        }
                        Err(e) => {
                            tracing::error!("removing {} on drop failed: {e}", plan.container)
                        }
                    }
                });
            });
        if let Ok(handle) = worker {
            let _ = handle.join();
        }
    }
}
