//! Keys: `Authorization: Bearer KEY` or Pandora Box's `API-KEY: KEY`; 401 without a valid one.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use sandpit_service::{ErrorKind, Owner};

use crate::error::ApiError;
use crate::state::AppState;

/// The owner a request speaks for: the key's id.
#[derive(Debug, Clone)]
pub struct Auth(pub Owner);

/// The key a request presents, if any.
pub fn presented_key(parts: &Parts) -> Option<String> {
    let headers = &parts.headers;
    if let Some(v) = headers.get(axum::http::header::AUTHORIZATION) {
        let v = v.to_str().ok()?.trim();
        let key = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v);
        return Some(key.trim().to_string());
    }
    headers
        .get("api-key")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Checks a presented key; `None` for an invalid one.
pub fn verify(state: &AppState, key: &str) -> Result<Option<Owner>, ApiError> {
    Ok(state.manager.keys().verify(key)?.map(|k| Owner(k.id)))
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(ErrorKind::Unauthorized, message)
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(key) = presented_key(parts) else {
            return Err(unauthorized(
                "this route needs a key: send `Authorization: Bearer KEY` (make one with `sandpit keys add`)",
            ));
        };
        match verify(state, &key)? {
            Some(owner) => Ok(Auth(owner)),
            None => Err(unauthorized("the key is unknown or was revoked")),
        }
    }
}

/// A key when one was sent, else the anonymous owner where the server allows it (the
/// compatibility routes whose clients send no key).
#[derive(Debug, Clone)]
pub struct MaybeAnonymous(pub Owner);

impl FromRequestParts<AppState> for MaybeAnonymous {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if let Some(key) = presented_key(parts) {
            return match verify(state, &key)? {
                Some(owner) => Ok(MaybeAnonymous(owner)),
                None => Err(unauthorized("the key is unknown or was revoked")),
            };
        }
        if state.manager.config().allow_anonymous {
            return Ok(MaybeAnonymous(Owner::anonymous()));
        }
        Err(unauthorized(
            "this route needs a key (send `Authorization: Bearer KEY`), or a server started with --allow-anonymous",
        ))
    }
}
