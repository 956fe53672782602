//! Request bodies: JSON whatever the `Content-Type` says (Piston's clients send it as
//! `text/plain`), within the server's size limit (413 past it), with errors that say what is
//! wrong with the JSON.

use axum::extract::{FromRequest, Request};
use sandpit_service::ErrorKind;
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::state::AppState;

/// A JSON body.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

/// The raw body, within the limit.
#[derive(Debug)]
pub struct RawBody(pub bytes::Bytes);

/// Reads the whole body, refusing one past the server's limit.
pub async fn read_body(req: Request, state: &AppState) -> Result<bytes::Bytes, ApiError> {
    let limit = state.manager.config().max_body_bytes;
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_large {
                ApiError::new(
                    ErrorKind::TooLarge,
                    format!("the request body passes the server's limit of {limit} bytes"),
                )
            } else {
                ApiError::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read the request body: {e}"),
                )
            }
        })
}

/// Parses JSON, telling malformed JSON from JSON of the wrong shape.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::new(
            ErrorKind::InvalidInput,
            "the request has no body; send a JSON object",
        ));
    }
    let value: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("the body is not valid JSON: {e}"),
        )
    })?;
    serde_json::from_value(value).map_err(|e| {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("the JSON does not have the expected shape: {e}"),
        )
    })
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let bytes = read_body(req, state).await?;
        // Every native request is an object: serde would also fill a struct from an array,
        // field by field (`[1, 2]` as a PATCH would set the lifetime and the idle timeout).
        let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
        if first.is_some_and(|b| *b != b'{') {
            let value: Result<serde_json::Value, _> = serde_json::from_slice(&bytes);
            return Err(ApiError::new(
                ErrorKind::InvalidInput,
                match value {
                    Ok(_) => "the body must be a JSON object ({...})".to_string(),
                    Err(e) => format!("the body is not valid JSON: {e}"),
                },
            ));
        }
        parse_json(&bytes).map(JsonBody)
    }
}

impl FromRequest<AppState> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        read_body(req, state).await.map(RawBody)
    }
}
