//! Where sandboxes find the agent: one read-only volume per engine and agent build, filled once
//! and mounted at [`AGENT_DIR`] in every sandbox. A volume serves read-only root filesystems
//! (the engine's archive API refuses to write into those) and costs an open nothing.
//!
//! Filling is published atomically: the binary goes in under a name of its own, then a hard link
//! gives it its final name, so a sandbox never starts a half-written agent. A sandbox that starts
//! before any agent is there (another process is filling, or the volume was removed and the
//! engine made it anew, empty) fails at start; the opener then fills and starts again
//! ([`missing_agent`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use sandpit_engine::{ContainerSpec, Engine, VolumeMount, VolumeSpec};

use crate::agent_binary::{AGENT, AGENT_SHA256};
use crate::archive::{ArchiveBuilder, ROOT_OWNER};
use crate::error::{Error, Result};

/// Where the agent's volume is mounted in a sandbox.
pub(crate) const AGENT_DIR: &str = "/.sandpit";
/// The agent's path in a sandbox: its PID 1.
pub(crate) const AGENT_PATH: &str = "/.sandpit/sandpit-agent";
/// The label naming an agent volume's build (its SHA-256).
pub(crate) const AGENT_LABEL: &str = "sandpit.agent";

/// The volume holding this build of the agent.
pub(crate) fn volume_name() -> String {
    format!("sandpit-agent-{}", &AGENT_SHA256[..16])
}

/// The mount every sandbox gets.
pub(crate) fn mount() -> VolumeMount {
    VolumeMount {
        source: volume_name(),
        target: AGENT_DIR.to_string(),
        read_only: true,
    }
}

/// Engines whose volume this process filled or found, by endpoint.
fn known() -> &'static Mutex<HashSet<String>> {
    static KNOWN: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    KNOWN.get_or_init(Default::default)
}

/// One filler per engine at a time in this process.
fn filling(endpoint: &str) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: OnceLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> = OnceLock::new();
    LOCKS
        .get_or_init(Default::default)
        .lock()
        .expect("agent volume locks")
        .entry(endpoint.to_string())
        .or_default()
        .clone()
}

/// Makes sure `engine` has the agent's volume, filling it with the help of a container of
/// `image` (created, never started) when it does not.
pub(crate) async fn ensure(engine: &Engine, image: &str) -> Result<()> {
    let endpoint = engine.endpoint().to_string();
    if known().lock().expect("agent volumes").contains(&endpoint) {
        return Ok(());
    }
    let lock = filling(&endpoint);
    let _filling = lock.lock().await;
    if known().lock().expect("agent volumes").contains(&endpoint) {
        return Ok(());
    }
    let label = format!("{AGENT_LABEL}={AGENT_SHA256}");
    let present = engine
        .list_volumes(&label)
        .await
        .map_err(volume_error)?
        .iter()
        .any(|v| v.name == volume_name());
    if !present {
        fill(engine, image).await?;
    }
    known().lock().expect("agent volumes").insert(endpoint);
    Ok(())
}

/// Forgets what this process knew of `engine`'s volume and fills it again: a sandbox found no
/// agent in it.
pub(crate) async fn refill(engine: &Engine, image: &str) -> Result<()> {
    let endpoint = engine.endpoint().to_string();
    known().lock().expect("agent volumes").remove(&endpoint);
    let lock = filling(&endpoint);
    let _filling = lock.lock().await;
    fill(engine, image).await?;
    known().lock().expect("agent volumes").insert(endpoint);
    Ok(())
}

/// True when a start failed because the agent was not in the volume.
pub(crate) fn missing_agent(e: &Error) -> bool {
    matches!(e, Error::StartContainer { cause, .. } if cause.message.contains(AGENT_PATH))
}

async fn fill(engine: &Engine, image: &str) -> Result<()> {
    let volume = volume_name();
    engine
        .create_volume(&VolumeSpec {
            name: volume.clone(),
            driver_opts: HashMap::new(),
            labels: HashMap::from([(AGENT_LABEL.to_string(), AGENT_SHA256.to_string())]),
        })
        .await
        .map_err(volume_error)?;
    let helper = format!("sandpit-agent-fill-{}", crate::ids::random_hex(8));
    let spec = ContainerSpec {
        name: helper.clone(),
        image: image.to_string(),
        entrypoint: Some(vec![AGENT_PATH.to_string()]),
        network: "none".into(),
        volumes: vec![VolumeMount {
            source: volume.clone(),
            target: AGENT_DIR.to_string(),
            read_only: false,
        }],
        labels: HashMap::from([(crate::labels::MANAGED.to_string(), "true".to_string())]),
        ..Default::default()
    };
    engine.create_container(&spec).await.map_err(|e| {
        Error::engine(e, |cause| Error::CreateContainer {
            image: image.to_string(),
            cause,
        })
    })?;
    let filled = upload(engine, &helper).await;
    let removed = engine.remove_container(&helper).await;
    filled?;
    removed.map_err(|e| {
        Error::engine(e, |cause| Error::RemoveContainer {
            container: helper,
            cause,
        })
    })
}

/// The binary under a name of its own, then the hard link that publishes it.
async fn upload(engine: &Engine, helper: &str) -> Result<()> {
    let staged = format!("sandpit-agent.{}", crate::ids::random_hex(8));
    let mut binary = ArchiveBuilder::new();
    binary.file(&staged, AGENT, ROOT_OWNER, 0o755)?;
    let mut link = ArchiveBuilder::new();
    link.hard_link("sandpit-agent", &staged)?;
    for archive in [binary.finish()?, link.finish()?] {
        engine
            .upload_bytes(helper, AGENT_DIR, archive)
            .await
            .map_err(|e| {
                Error::engine(e, |cause| Error::Upload {
                    container: helper.to_string(),
                    path: AGENT_DIR.to_string(),
                    cause,
                })
            })?;
    }
    Ok(())
}

fn volume_error(e: sandpit_engine::EngineError) -> Error {
    Error::engine(e, |cause| Error::Volume {
        volume: volume_name(),
        cause,
    })
}
