//! Forwarding, on a cluster node: any node takes any request and sends it, whole, to the node
//! that owns the session it names, or for a new session to the node placement picks. Each
//! API layer says what a request names ([`Target`]); this layer asks them in order, looks the
//! session up in the watched copy of the registry, and answers 410 for a session whose node
//! was lost. A single server never runs it (no cluster in its state).

mod proxy;
mod runs;
mod target;
pub mod tls;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sandpit_cluster::Route;
use sandpit_service::{ErrorKind, Owner};

pub use proxy::{Forwarder, Unreachable, FORWARDED, PLACED};
pub use runs::MEMBER;
pub use target::{header, placement_in, strip_key_prefix, Placement, RunKind, Target, TargetOf};

use crate::error::ApiError;
use crate::state::AppState;

/// Sends the request where it must be answered (see the module's documentation).
pub async fn route(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let Some(cluster) = state.cluster.clone() else {
        return next.run(req).await;
    };
    if req.headers().contains_key(FORWARDED) {
        if cluster.peer_tls().is_some() && req.extensions().get::<tls::FromPeer>().is_none() {
            return ApiError::new(
                ErrorKind::Refused,
                "a forwarded request comes only from another node, over mTLS on its peer address",
            )
            .into_response();
        }
        let (parts, body) = req.into_parts();
        runs::take_claimed_member(&state, &parts).await;
        return next.run(Request::from_parts(parts, body)).await;
    }
    let (mut parts, body) = req.into_parts();
    // Only a node names a claimed member.
    parts.headers.remove(MEMBER);
    let mut target = crate::TARGETS
        .iter()
        .find_map(|of| of(&parts))
        .unwrap_or(Target::Here);
    let mut body = body;
    let mut read_body = None;
    if let Target::InBody(read) = target {
        let limit = state.manager.config().max_body_bytes;
        match axum::body::to_bytes(body, limit).await {
            Ok(bytes) => {
                target = read(&bytes);
                body = Body::from(bytes.clone());
                read_body = Some(bytes);
            }
            Err(_) => {
                return ApiError::new(
                    ErrorKind::TooLarge,
                    format!("the request body passes the server's limit of {limit} bytes"),
                )
                .into_response()
            }
        }
    }
    let caller = caller_key(&parts);
    let req = Request::from_parts(parts, body);
    match target {
        Target::Here | Target::InBody(_) => next.run(req).await,
        Target::Run(kind) => {
            runs::serve(
                &state,
                &cluster,
                kind,
                caller.as_deref(),
                read_body,
                req,
                next,
            )
            .await
        }
        Target::NewSession(placement) => match cluster.place(&placement) {
            Ok(node) if node.name == cluster.name() => next.run(req).await,
            Ok(node) => {
                match state
                    .forwarder
                    .send(&node.advertise, req, &[(PLACED, node.name.clone())])
                    .await
                {
                    Ok(response) => response,
                    Err(e) => ApiError::new(
                        ErrorKind::EngineUnavailable,
                        format!(
                            "node {} was chosen for the new session but does not answer ({}); try again",
                            node.name, e.0
                        ),
                    )
                    .into_response(),
                }
            }
            Err(e) => ApiError::from(e).into_response(),
        },
        Target::Session(id) => {
            if state.manager.holds(&id) {
                return next.run(req).await;
            }
            match cluster.lookup(&id).await {
                Route::Here | Route::Unknown => next.run(req).await,
                Route::Lost { node, at, owner } => {
                    if !caller_is(&state, caller.as_deref(), &owner) {
                        return next.run(req).await;
                    }
                    let snapshot = last_snapshot(&state, &owner, &id).await;
                    lost(&id, &node, at, snapshot.as_deref()).into_response()
                }
                Route::Node {
                    name, advertise, ..
                } => match state.forwarder.send(&advertise, req, &[]).await {
                    Ok(response) => response,
                    Err(e) => {
                        cluster.unreachable(&name).await;
                        match cluster.route(&id) {
                            Route::Lost { node, at, owner } => {
                                let snapshot = last_snapshot(&state, &owner, &id).await;
                                lost(&id, &node, at, snapshot.as_deref()).into_response()
                            }
                            _ => ApiError::new(
                                ErrorKind::EngineUnavailable,
                                format!(
                                    "session {id} is on node {name}, which does not answer now ({}); try again",
                                    e.0
                                ),
                            )
                            .into_response(),
                        }
                    }
                },
            }
        }
    }
}

/// Whether the request's key is the one that made the session (only its owner learns that
/// the session existed).
fn caller_is(state: &AppState, key: Option<&str>, owner: &str) -> bool {
    if Owner(owner.to_string()).is_anonymous() {
        return true;
    }
    key.and_then(|key| state.manager.keys().verify(key).ok().flatten())
        .is_some_and(|k| k.id == owner)
}

/// The key a request presents: a header, or a `/k/{key}/...` path.
fn caller_key(parts: &axum::http::request::Parts) -> Option<String> {
    crate::auth::presented_key(parts).or_else(|| key_in_path(parts.uri.path()))
}

/// The key of a `/k/{key}/...` path.
fn key_in_path(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/k/")?;
    Some(rest.split('/').next()?.to_string())
}

/// The name of the newest snapshot taken of session `id`, where snapshots are configured.
async fn last_snapshot(state: &AppState, owner: &str, id: &str) -> Option<String> {
    let owner = Owner(owner.to_string());
    let listing = state.manager.snapshots(&owner);
    let snapshots = tokio::time::timeout(std::time::Duration::from_secs(3), listing)
        .await
        .ok()?
        .ok()?;
    snapshots
        .into_iter()
        .filter(|s| s.source_session == id)
        .max_by(|a, b| a.created_at.cmp(&b.created_at))
        .map(|s| s.name)
}

/// The answer for a session whose node was lost (with its last snapshot, when it has one).
fn lost(id: &str, node: &str, at: u64, snapshot: Option<&str>) -> ApiError {
    let when = sandpit::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(at));
    let next = match snapshot {
        Some(name) => format!(
            "its last snapshot is {name:?}: open a new session from it with \"from_snapshot\": \"{name}\""
        ),
        None => "open a new one".to_string(),
    };
    ApiError::new(
        ErrorKind::Gone,
        format!(
            "session {id} was on node {node}, which was lost at {when} (its lease expired and it stopped answering); a session is never recreated empty on another node: {next}"
        ),
    )
}
