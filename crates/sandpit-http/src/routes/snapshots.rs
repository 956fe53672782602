//! Snapshots of a session's workdir (see the snapshot store).

use sandpit_service::types::{CreateSession, SessionInfo};
use sandpit_service::{ErrorKind, Owner, ServiceError};

use crate::error::ApiError;
use crate::state::AppState;

/// `POST /v1/sessions` with `from_snapshot`.
pub async fn restore(
    _state: &AppState,
    _owner: &Owner,
    _req: CreateSession,
) -> Result<(SessionInfo, bool), ApiError> {
    Err(ServiceError::new(
        ErrorKind::Unsupported,
        "snapshots are not configured on this server",
    )
    .into())
}
