//! The session guard: one container, closed explicitly or, as a safety net, on drop.

use std::collections::{BTreeMap, HashSet};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use sandpit_engine::{Engine, EngineInfo};

use crate::builder::SessionBuilder;
use crate::error::{Error, Result};
use crate::policy::SecurityPolicy;
use crate::runner::Runner;

/// One sandbox: a running container and the language runner that drives it.
///
/// Cloning gives another handle to the same container. Close with [`SandboxSession::close`];
/// when the last handle drops without a close, the one drop worker removes the container in
/// the background (and before the process exits).
#[derive(Clone, Debug)]
pub struct SandboxSession {
    pub(crate) inner: Arc<Inner>,
}

/// How far a close got; a close that failed is retried from where it stopped.
#[derive(Debug, Default)]
pub(crate) struct CloseProgress {
    pub committed: bool,
}

pub(crate) struct Inner {
    pub engine: Engine,
    pub info: EngineInfo,
    pub id: String,
    pub container: String,
    pub runner: Arc<dyn Runner>,
    pub image: String,
    pub built_image: bool,
    pub keep_template: bool,
    pub template_tag: Option<String>,
    pub workdir: String,
    pub env: RwLock<Vec<(String, String)>>,
    /// The environment the session opened with (a reset goes back to it).
    pub opening_env: Vec<(String, String)>,
    pub timeout: Duration,
    pub install_timeout: Duration,
    pub output_limit: usize,
    pub policy: SecurityPolicy,
    /// The OCI runtime the container runs under (`None`: the engine's default).
    pub runtime: Option<String>,
    /// The runtime is gVisor: it counts processes itself (the agent gives user processes the
    /// session's limit), and a sandbox it stopped as a whole is started again.
    pub gvisor: bool,
    /// Built to be reset and reused: read-only root filesystem, memory folders only.
    pub recyclable: bool,
    /// Networks can be attached while it runs (false under gVisor).
    pub network_hotplug: bool,
    pub late_installs: bool,
    pub created: SystemTime,
    pub labels: BTreeMap<String, String>,
    pub volume: Option<String>,
    pub disk: Option<crate::disk::LoopDisk>,
    /// The connection to the sandbox's agent.
    pub agent: RwLock<Option<crate::agent::Agent>>,
    /// Held while the connection is made again.
    pub reconnecting: tokio::sync::Mutex<()>,
    /// Kernels by context id.
    pub contexts: Mutex<BTreeMap<String, Arc<crate::kernel::Context>>>,
    pub closed: AtomicBool,
    /// Frozen by [`SandboxSession::pause`].
    pub paused: AtomicBool,
    pub close_progress: tokio::sync::Mutex<CloseProgress>,
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
            .field("runtime", &self.runtime)
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

    /// What the engine said about itself when the session opened.
    pub fn engine_info(&self) -> &EngineInfo {
        &self.inner.info
    }

    /// The OCI runtime the container runs under (`None`: the engine's default).
    pub fn runtime(&self) -> Option<&str> {
        self.inner.runtime.as_deref()
    }

    /// The runner.
    pub fn runner(&self) -> &Arc<dyn Runner> {
        &self.inner.runner
    }

    /// The security policy the session runs under.
    pub fn policy(&self) -> &SecurityPolicy {
        &self.inner.policy
    }

    /// The labels on the session's container.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.inner.labels
    }

    /// When the session opened.
    pub fn created(&self) -> SystemTime {
        self.inner.created
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
        } else if self.inner.paused.load(Ordering::SeqCst) {
            Err(Error::Refused(format!(
                "session {} is paused; resume it first",
                self.inner.id
            )))
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
