//! Piston's v2 API (`engineer-man/piston`) at `/api/v2/…` and under `/compat/piston/`, with
//! the public instance's paths (`/api/v2/piston/…`) and emkc's v1 routes that `aio-piston`
//! calls (`/api/v1/piston/…`). Each execute is one one-shot run in a fresh sandbox; its
//! clients send no key (one in a header or in `/k/{key}`, else anonymous access where the
//! server allows it) and post JSON as `text/plain`.

mod requests;
mod routes;
mod running;
mod runtimes;

pub use requests::{parse_v1, parse_v2, Job, Limits, V1Error};
pub use routes::{execute, execute_v1, flat, Executed, ExecutedV1};
pub use running::{outcome, run_job, signal_name, split_output, stage, Outcome, Stage};
pub use runtimes::{
    lookup, packages, piston_name, runtime, runtime_list, runtimes, runtimes_v1, strict_version,
    versions_v1, Runtime,
};

use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use sandpit_service::ErrorKind;
use serde_json::json;

use super::{json_response, Api};
use crate::state::AppState;

/// Piston's requests name no session (each run is one-shot): the node that takes one runs it.
pub(crate) fn target(parts: &axum::http::request::Parts) -> Option<crate::forward::Target> {
    let path = crate::forward::strip_key_prefix(parts.uri.path());
    (path.starts_with("/api/") || path.starts_with("/compat/piston"))
        .then_some(crate::forward::Target::Here)
}

/// Piston: errors are `{"message": …}`.
pub(crate) struct Piston;

impl Api for Piston {
    const NO_KEY: &'static str = "a Sandpit key is required: send Authorization: Bearer sp_…, or put /k/<key> in front of /api/v2 in the server URL";

    fn error_body(status: StatusCode, message: &str) -> Response {
        json_response(status, json!({ "message": message }))
    }
}

/// Piston's routes, at the root and under `/compat/piston`.
pub fn routes() -> Router<AppState> {
    routes_at("")
        .merge(routes_at("/compat/piston"))
        .route("/api/{*rest}", any(not_found))
        .route("/compat/piston", any(not_found))
        .route("/compat/piston/", any(not_found))
        .route("/compat/piston/{*rest}", any(not_found))
}

fn routes_at(prefix: &str) -> Router<AppState> {
    let at = |p: &str| format!("{prefix}{p}");
    Router::new()
        .route(&at("/api/v2/runtimes"), get(runtimes).fallback(not_found))
        .route(
            &at("/api/v2/piston/runtimes"),
            get(runtimes).fallback(not_found),
        )
        .route(
            &at("/api/v2/packages"),
            get(packages)
                .post(packages_not_offered)
                .delete(packages_not_offered)
                .fallback(not_found),
        )
        .route(&at("/api/v2/execute"), post(execute).fallback(not_found))
        .route(
            &at("/api/v2/piston/execute"),
            post(execute).fallback(not_found),
        )
        .route(&at("/api/v2/connect"), any(connect_not_offered))
        .route(
            &at("/api/v1/piston/execute"),
            post(execute_v1).fallback(not_found),
        )
        .route(
            &at("/api/v1/piston/runtimes"),
            get(runtimes_v1).fallback(not_found),
        )
        .route(
            &at("/api/v1/piston/versions"),
            get(versions_v1).fallback(not_found),
        )
}

async fn not_found() -> Response {
    Piston::error_body(StatusCode::NOT_FOUND, "Not Found")
}

async fn packages_not_offered() -> Response {
    Piston::error(
        ErrorKind::Unsupported,
        StatusCode::NOT_IMPLEMENTED,
        "package management is not offered: Sandpit's runtimes are built into its images",
    )
}

async fn connect_not_offered() -> Response {
    Piston::error(
        ErrorKind::Unsupported,
        StatusCode::NOT_IMPLEMENTED,
        "interactive execution is not offered",
    )
}
