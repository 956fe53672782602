//! The raw engine floor the benchmarks compare Sandpit with: the same engine calls Sandpit
//! makes, through the same engine trait, with none of its settings or checks.

use std::collections::HashMap;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use sandpit::engine::{ContainerSpec, ExecRequest};
use sandpit::Engine;

/// Label on raw containers (value: this process's id), for cleanup after a crash.
pub const RAW_LABEL: &str = "sandpit.bench-raw";

/// PID 1 of raw containers: a keep-alive loop.
const KEEPALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

/// Creates and starts a container that only sleeps.
pub async fn create_start(
    engine: &Engine,
    image: &str,
    name: &str,
    network: &str,
    runtime: Option<&str>,
) -> Result<()> {
    let spec = ContainerSpec {
        name: name.to_string(),
        image: image.to_string(),
        entrypoint: Some(Vec::new()),
        cmd: vec!["/bin/sh".into(), "-c".into(), KEEPALIVE.into()],
        network: network.to_string(),
        labels: HashMap::from([(RAW_LABEL.to_string(), std::process::id().to_string())]),
        runtime: runtime.map(String::from),
        ..Default::default()
    };
    engine
        .create_container(&spec)
        .await
        .with_context(|| format!("creating {name}"))?;
    engine
        .start_container(name)
        .await
        .with_context(|| format!("starting {name}"))?;
    Ok(())
}

/// One exec as the sandbox user in /sandbox, its output collected.
pub async fn run(engine: &Engine, container: &str, cmd: &[&str]) -> Result<String> {
    let request = ExecRequest {
        cmd: cmd.iter().map(|s| s.to_string()).collect(),
        user: "1000:1000".into(),
        working_dir: Some("/sandbox".into()),
        ..Default::default()
    };
    let mut exec = engine.start_exec(container, &request).await?;
    let mut out = Vec::new();
    while let Some(chunk) = exec.output.next().await {
        out.extend_from_slice(&chunk?.data);
    }
    let status = engine.inspect_exec(&exec.id).await?;
    if status.exit_code != Some(0) {
        bail!(
            "the raw exec {cmd:?} exited with {:?}: {}",
            status.exit_code,
            String::from_utf8_lossy(&out)
        );
    }
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Removes a container at once.
pub async fn remove(engine: &Engine, name: &str) -> Result<()> {
    engine
        .remove_container(name)
        .await
        .with_context(|| format!("removing {name}"))
}
