//! Snapshots: take one of a session (`POST /v1/sessions/{id}/snapshots`), list, show and
//! remove the key's own (`/v1/snapshots`), and open a session from one (`POST /v1/sessions`
//! with `from_snapshot`). The store is the server's `snapshots` setting; without one these
//! answer 501.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use sandpit_service::snapshots::{CreateSnapshot, SnapshotInfo, SnapshotList};
use sandpit_service::types::{CreateSession, SessionInfo};
use sandpit_service::Owner;

use crate::auth::Auth;
use crate::body::{parse_json, RawBody};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `POST /v1/sessions` with `from_snapshot`: a new session with the snapshot's files,
/// libraries and environment (its `restored` says what came back).
pub async fn restore(
    state: &AppState,
    owner: &Owner,
    req: CreateSession,
) -> Result<(SessionInfo, bool), ApiError> {
    Ok(state.manager.restore(owner, req).await?)
}

/// `POST /v1/sessions/{id}/snapshots` → 201 with the snapshot.
pub async fn create(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    RawBody(body): RawBody,
) -> ApiResult<(StatusCode, Json<SnapshotInfo>)> {
    // The body is optional: no body takes the default name.
    let req: CreateSnapshot = if body.iter().all(u8::is_ascii_whitespace) {
        CreateSnapshot::default()
    } else {
        parse_json(&body)?
    };
    let info = state
        .manager
        .snapshot(&owner, &id, req.name.as_deref())
        .await?;
    Ok((StatusCode::CREATED, Json(info)))
}

/// `GET /v1/snapshots`: the key's snapshots.
pub async fn list(
    State(state): State<AppState>,
    Auth(owner): Auth,
) -> ApiResult<Json<SnapshotList>> {
    let snapshots = state.manager.snapshots(&owner).await?;
    Ok(Json(SnapshotList { snapshots }))
}

/// `GET /v1/snapshots/{name}`: one snapshot, with a download URL for its archive.
pub async fn show(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(name): Path<String>,
) -> ApiResult<Json<SnapshotInfo>> {
    Ok(Json(state.manager.snapshot_info(&owner, &name).await?))
}

/// `DELETE /v1/snapshots/{name}` → 204.
pub async fn destroy(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.manager.delete_snapshot(&owner, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
