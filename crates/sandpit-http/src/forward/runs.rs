//! One-shot runs on a cluster node: served here when this node has a sandbox for the run at
//! once (an idle pool member, or one the key's earlier runs used); else on another node whose
//! warm pool has a member idle, claimed through the registry and named in [`MEMBER`]; else
//! here all the same (the pool opens a sandbox).

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sandpit_cluster::Cluster;
use sandpit_service::{pool_name, ErrorKind, Owner};

use super::target::RunKind;
use crate::error::ApiError;
use crate::state::AppState;

/// The header of a run forwarded with a claimed pool member: the member's id.
pub const MEMBER: &str = "sandpit-member";

/// Serves run `kind` here or on the node whose pool member it claims. `body` is the request's
/// body, read whole (the run is served here after all when that node cannot be reached).
pub(super) async fn serve(
    state: &AppState,
    cluster: &Cluster,
    kind: RunKind,
    caller: Option<&str>,
    body: Option<Bytes>,
    req: Request,
    next: Next,
) -> Response {
    // A caller the handler will refuse claims nothing.
    let (Some(owner), Some(body)) = (owner_of(state, caller), body) else {
        return next.run(req).await;
    };
    let manager = &state.manager;
    if manager
        .runs_at_once(&owner, &kind.language, &kind.libraries, kind.fresh)
        .await
    {
        return next.run(req).await;
    }
    let Ok(language) = kind.language.parse() else {
        return next.run(req).await;
    };
    let Some(member) = cluster
        .claim_member(&pool_name(language, &kind.libraries))
        .await
    else {
        return next.run(req).await;
    };
    let (parts, _) = req.into_parts();
    let again = parts.clone();
    let forwarded = Request::from_parts(parts, Body::from(body.clone()));
    match state
        .forwarder
        .send(&member.advertise, forwarded, &[(MEMBER, member.id.clone())])
        .await
    {
        Ok(response) => response,
        // Nothing reached that node: the run is served here.
        Err(e) if e.before_sending() => {
            tracing::info!(
                "node {} did not take a run for its pool member {} ({}): served here",
                member.node,
                member.id,
                e.0
            );
            next.run(Request::from_parts(again, Body::from(body))).await
        }
        Err(e) => ApiError::new(
            ErrorKind::EngineUnavailable,
            format!(
                "the run went to node {}, which stopped answering ({}); try again",
                member.node, e.0
            ),
        )
        .into_response(),
    }
}

/// On the member's node: takes the claimed member named in [`MEMBER`] out of its pool for
/// the run the request carries.
pub(super) async fn take_claimed_member(state: &AppState, parts: &Parts) {
    let Some(id) = parts.headers.get(MEMBER).and_then(|v| v.to_str().ok()) else {
        return;
    };
    if let Some(owner) = owner_of(state, super::caller_key(parts).as_deref()) {
        state.manager.hold_claimed(&owner, id).await;
    }
}

/// The owner a request's key speaks for (the anonymous owner without a key where the server
/// allows it); `None` when its handler will refuse it.
fn owner_of(state: &AppState, key: Option<&str>) -> Option<Owner> {
    match key {
        Some(key) => state
            .manager
            .keys()
            .verify(key)
            .ok()
            .flatten()
            .map(|k| Owner(k.id)),
        None => state
            .manager
            .config()
            .allow_anonymous
            .then(Owner::anonymous),
    }
}
