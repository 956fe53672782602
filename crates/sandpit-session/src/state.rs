//! What the engine says of a session's container, asked when a call into it failed: a call
//! into a sandbox that died under it fails in the engine's (or the agent's) words before the
//! engine reports the container stopped.

use std::time::Duration;

use sandpit_engine::{Engine, EngineError};

use crate::error::{Error, Result};

/// True while the container runs; false once it stopped or is gone.
pub(crate) async fn container_runs(engine: &Engine, container: &str) -> Result<bool> {
    match engine.inspect_container(container).await {
        Ok(state) => Ok(state.running),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(engine_error(container, e)),
    }
}

/// True when the container stops within `patience` (checked at once, then every 100 ms).
pub(crate) async fn stops_within(
    engine: &Engine,
    container: &str,
    patience: Duration,
) -> Result<bool> {
    let until = tokio::time::Instant::now() + patience;
    loop {
        if !container_runs(engine, container).await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `e`, or [`Error::SessionGone`] when the container stops within `patience`.
pub(crate) async fn gone_or(
    engine: &Engine,
    container: &str,
    e: Error,
    patience: Duration,
) -> Error {
    if matches!(e, Error::SessionGone { .. }) {
        return e;
    }
    match stops_within(engine, container, patience).await {
        Ok(true) => Error::SessionGone {
            container: container.to_string(),
        },
        _ => e,
    }
}

/// An engine error about a session's container: a missing or stopped container means the
/// session is gone.
pub(crate) fn engine_error(container: &str, e: EngineError) -> Error {
    if e.is_not_found() || e.is_conflict() {
        return Error::SessionGone {
            container: container.to_string(),
        };
    }
    Error::engine(e, |cause| Error::Exec {
        container: container.to_string(),
        cause,
    })
}
