//! The native routes, one file per family.

pub mod files;
pub mod packages;
pub mod processes;
pub mod run;
pub mod sessions;
pub mod snapshots;
pub mod system;

use axum::http::request::Parts;
use axum::http::Method;

use crate::forward::{placement_in, RunKind, Target};

/// What a native request names: `/v1/sessions/{id}/...` its session, `POST /v1/sessions` a new
/// one (placed by the body's `node` and `node_labels`), a download link its session, `POST
/// /v1/run` a one-shot run.
pub(crate) fn target(parts: &Parts) -> Option<Target> {
    let path = parts.uri.path().strip_prefix("/v1/")?;
    if path == "sessions" {
        return Some(if parts.method == Method::POST {
            Target::InBody(|body| Target::NewSession(placement_in(body)))
        } else {
            Target::Here
        });
    }
    if let Some(rest) = path.strip_prefix("sessions/") {
        let id = rest.split('/').next().unwrap_or_default();
        return Some(Target::Session(id.to_string()));
    }
    if path == "run" && parts.method == Method::POST {
        return Some(Target::InBody(|body| {
            serde_json::from_slice(body)
                .map(|v| RunKind::of(&v))
                .unwrap_or(Target::Here)
        }));
    }
    if let Some(token) = path.strip_prefix("downloads/") {
        return Some(
            sandpit_mcp::Signer::session_named(token)
                .map(Target::Session)
                .unwrap_or(Target::Here),
        );
    }
    Some(Target::Here)
}
