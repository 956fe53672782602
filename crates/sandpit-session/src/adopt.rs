//! Adopting a session another process opened (a server before its restart): everything a
//! session needs is in its container's labels, so a new process can carry on with it, talking
//! to the same agent inside. Files and background processes survive; a kernel's memory does not
//! (its call belonged to the old connection, and the agent stops it when a new one says hello).
//! A session opened by a Sandpit without the agent cannot be served: adopting it says so.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_engine::{Engine, RuntimeKind};
use serde::{Deserialize, Serialize};

use crate::disk::LoopDisk;
use crate::error::{Error, Result};
use crate::labels;
use crate::language::Language;
use crate::policy::SecurityPolicy;
use crate::runner::Runner;
use crate::session::{CloseProgress, Inner, SandboxSession};

/// A session's settings as its `sandpit.config` label keeps them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SavedConfig {
    pub image: String,
    pub built_image: bool,
    pub keep_template: bool,
    pub template_tag: Option<String>,
    pub workdir: String,
    pub env: Vec<(String, String)>,
    pub timeout_ms: u64,
    pub install_timeout_ms: u64,
    pub output_limit: usize,
    pub policy: SecurityPolicy,
    pub late_installs: bool,
    pub libraries: Vec<String>,
    pub created: u64,
    #[serde(default)]
    pub recyclable: bool,
}

impl SandboxSession {
    /// Carries on with session `id`, opened by another process on `engine` (its container
    /// found by the `sandpit.session` label), driven by the runner `runner_for` gives for the
    /// language in its `sandpit.language` label. A container that stopped (the engine
    /// restarted) is started again; its workdir is kept.
    pub async fn adopt(
        engine: &Engine,
        id: &str,
        runner_for: &dyn Fn(Language) -> Arc<dyn Runner>,
    ) -> Result<SandboxSession> {
        let found = engine
            .list_containers(&format!("{}={id}", labels::SESSION))
            .await
            .map_err(|e| Error::engine(e, Error::ListContainers))?;
        let Some(summary) = found
            .into_iter()
            .find(|c| c.labels.contains_key(labels::CONFIG))
        else {
            return Err(Error::PathNotFound {
                path: format!("session {id}"),
                in_sandbox: false,
            });
        };
        let language: Language = summary
            .labels
            .get(labels::LANGUAGE)
            .and_then(|l| l.parse().ok())
            .ok_or_else(|| {
                Error::InvalidInput(format!("session {id} names no language Sandpit knows"))
            })?;
        if !summary.labels.contains_key(labels::AGENT) {
            return Err(Error::Incompatible {
                session: id.to_string(),
                reason: "it was opened by an older Sandpit, which ran no agent inside its sandboxes; this one cannot reach into it. Close it and open a new session".into(),
            });
        }
        let runner = runner_for(language);
        let saved: SavedConfig = serde_json::from_str(&summary.labels[labels::CONFIG])
            .map_err(|e| Error::InvalidInput(format!(
                "session {id} was opened by a Sandpit whose settings this one cannot read ({e}); close it and open a new one"
            )))?;
        let state = engine
            .inspect_container(&summary.name)
            .await
            .map_err(|e| crate::state::engine_error(&summary.name, e))?;
        if !state.running {
            engine.start_container(&summary.name).await.map_err(|e| {
                Error::engine(e, |cause| Error::StartContainer {
                    container: summary.name.clone(),
                    cause,
                })
            })?;
        } else if state.paused {
            // Adopted as it was: the caller decides whether to resume.
            tracing::debug!("adopting {} paused", summary.name);
        }
        let info = engine
            .info()
            .await
            .map_err(|e| Error::engine(e, Error::Info))?;
        let runtime = state
            .runtime
            .filter(|r| *r != info.default_runtime && !r.is_empty());
        let gvisor = info
            .runtime(runtime.as_deref().unwrap_or(&info.default_runtime))
            .is_some_and(|r| r.kind == RuntimeKind::Gvisor);
        let hotplug = info.capabilities.network_hotplug && !gvisor;
        let volume_name = format!("sandpit-disk-{id}");
        let volume = engine
            .list_volumes(&format!("{}={id}", labels::SESSION))
            .await
            .map_err(|e| {
                Error::engine(e, |cause| Error::Volume {
                    volume: volume_name.clone(),
                    cause,
                })
            })?
            .into_iter()
            .any(|v| v.name == volume_name)
            .then_some(volume_name);
        let disk = volume
            .as_ref()
            .map(|_| LoopDisk::paths(&crate::disk::area(&info), id))
            .filter(|d| d.image.exists());
        let session = SandboxSession {
            inner: Arc::new(Inner {
                engine: engine.clone(),
                info,
                id: id.to_string(),
                container: summary.name,
                runner,
                image: saved.image,
                built_image: saved.built_image,
                keep_template: saved.keep_template,
                template_tag: saved.template_tag,
                workdir: saved.workdir,
                env: RwLock::new(saved.env.clone()),
                opening_env: saved.env,
                timeout: Duration::from_millis(saved.timeout_ms),
                install_timeout: Duration::from_millis(saved.install_timeout_ms),
                output_limit: saved.output_limit,
                policy: saved.policy,
                runtime,
                gvisor,
                recyclable: saved.recyclable,
                network_hotplug: hotplug,
                late_installs: saved.late_installs,
                created: UNIX_EPOCH + Duration::from_secs(saved.created),
                labels: summary.labels.into_iter().collect(),
                volume,
                disk,
                // Connected on first use: a paused sandbox's agent cannot answer yet.
                agent: RwLock::new(None),
                reconnecting: tokio::sync::Mutex::new(()),
                contexts: crate::kernel::no_contexts(),
                closed: AtomicBool::new(false),
                paused: AtomicBool::new(state.paused),
                close_progress: tokio::sync::Mutex::new(CloseProgress::default()),
                installed: Mutex::new(saved.libraries.into_iter().collect::<HashSet<_>>()),
                install_lock: tokio::sync::RwLock::new(()),
            }),
        };
        Ok(session)
    }
}

/// Unix seconds now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs()
}
