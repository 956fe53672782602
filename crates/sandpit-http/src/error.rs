//! Errors at the edge: a service error becomes a status and a JSON body here, and only here.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandpit_service::types::ErrorBody;
use sandpit_service::{ErrorKind, ServiceError};

/// An error answered as `{"error": KIND, "message": ...}` with its kind's status.
#[derive(Debug)]
pub struct ApiError(pub ServiceError);

impl ApiError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ApiError(ServiceError::new(kind, message))
    }
}

impl<E: Into<ServiceError>> From<E> for ApiError {
    fn from(e: E) -> Self {
        ApiError(e.into())
    }
}

/// The HTTP status of a kind.
pub fn status(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidInput => StatusCode::BAD_REQUEST,
        ErrorKind::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorKind::Refused => StatusCode::FORBIDDEN,
        ErrorKind::NotFound => StatusCode::NOT_FOUND,
        ErrorKind::Conflict => StatusCode::CONFLICT,
        ErrorKind::Gone => StatusCode::GONE,
        ErrorKind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorKind::Exhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        ErrorKind::EngineUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout => StatusCode::GATEWAY_TIMEOUT,
    }
}

/// The JSON body of an error.
pub fn body(e: &ServiceError) -> ErrorBody {
    ErrorBody {
        error: e.kind.as_str().to_string(),
        message: e.message.clone(),
    }
}

/// Adds `Retry-After` (whole seconds) when the error says when to try again.
pub fn with_retry_after(mut response: Response, e: &ServiceError) -> Response {
    if let Some(wait) = e.retry_after {
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        if let Ok(value) = axum::http::HeaderValue::from_str(&secs.to_string()) {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, value);
        }
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let response = (status(self.0.kind), axum::Json(body(&self.0))).into_response();
        let mut response = with_retry_after(response, &self.0);
        // Counted by the metrics layer, which reads the kind back from here.
        response.extensions_mut().insert(self.0.kind);
        response
    }
}

/// A result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;
