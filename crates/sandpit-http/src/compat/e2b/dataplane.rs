//! The data plane's doorway: which sandbox and port a request names (`E2b-Sandbox-Id` and
//! `E2b-Sandbox-Port`, set from `Host` by [`super::route_by_host`]), whether its token opens
//! that sandbox, and as which user it acts. A sandbox that does not exist, or is not the
//! token's owner's, answers as E2B's proxy answers for one that is gone: `502` "... was not
//! found", which the SDKs read as "not running".

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use sandpit_service::{Entry, ErrorKind, Owner};
use serde_json::json;

use super::shapes::TAG_KEY;
use super::tokens::{self, Purpose};
use super::{E2b, ENVD_PORT, INTERPRETER_PORT, PORT_HEADER, SANDBOX_HEADER, USER};
use crate::compat::{header, json_response, Api};
use crate::state::AppState;

/// A data-plane request's sandbox, its token checked.
#[derive(Debug, Clone)]
pub struct Sandbox {
    /// The sandbox's owner (the token's).
    pub owner: Owner,
    /// The sandbox.
    pub id: String,
    /// The session behind it.
    pub entry: Arc<Entry>,
}

/// Why a data-plane request cannot go on, answered as E2B's proxy or envd would.
#[derive(Debug)]
pub enum Refusal {
    /// No sandbox header: not a data-plane request.
    NoSandbox,
    /// The port is not one Sandpit serves.
    PortNotOpen(String, u16),
    /// The sandbox does not exist for this token.
    NotFound(String),
    /// No token, or not this sandbox's.
    Unauthenticated(&'static str),
    /// The store failed.
    Failed(sandpit_service::ServiceError),
}

impl Refusal {
    /// The plain HTTP answer (`/files`, `/health`, the code interpreter).
    pub fn response(self) -> Response {
        let (status, kind, message) = self.parts();
        let mut response = json_response(
            status,
            json!({ "code": status.as_u16(), "message": message }),
        );
        response.extensions_mut().insert(kind);
        response
    }

    /// The answer of a Connect call: the proxy's plain answers stay plain (the SDKs map their
    /// status), a token's refusal is Connect's `unauthenticated`.
    pub fn rpc_response(self, headers: &HeaderMap) -> Response {
        match self {
            Refusal::Unauthenticated(message) => {
                super::rpc::RpcError::new(super::rpc::Code::Unauthenticated, message)
                    .into_response_for(headers)
            }
            other => other.response(),
        }
    }

    /// Its status, kind and message.
    pub fn parts(self) -> (StatusCode, ErrorKind, String) {
        match self {
            Refusal::NoSandbox => (
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                "this route is the sandbox's: send E2b-Sandbox-Id and E2b-Sandbox-Port (the E2B SDKs do when E2B_SANDBOX_URL is set)".into(),
            ),
            Refusal::PortNotOpen(id, port) => (
                StatusCode::BAD_GATEWAY,
                ErrorKind::Unsupported,
                format!("The sandbox {id} is running but port is not open: Sandpit serves ports {ENVD_PORT} and {INTERPRETER_PORT} only, not {port}"),
            ),
            Refusal::NotFound(id) => (
                StatusCode::BAD_GATEWAY,
                ErrorKind::NotFound,
                format!("The sandbox {id} was not found"),
            ),
            Refusal::Unauthenticated(message) => (
                StatusCode::UNAUTHORIZED,
                ErrorKind::Unauthorized,
                message.to_string(),
            ),
            Refusal::Failed(e) => (
                crate::error::status(e.kind),
                e.kind,
                e.message,
            ),
        }
    }
}

/// The sandbox and port a request names.
pub fn target(parts: &Parts) -> Result<(String, u16), Refusal> {
    let id = header(parts, SANDBOX_HEADER)
        .filter(|id| !id.is_empty())
        .ok_or(Refusal::NoSandbox)?;
    let port = match header(parts, PORT_HEADER) {
        Some(p) => p
            .parse::<u16>()
            .map_err(|_| Refusal::PortNotOpen(id.clone(), 0))?,
        None => ENVD_PORT,
    };
    Ok((id, port))
}

/// The sandbox of a request to `port`, opened by its token: `X-Access-Token` (the envd token;
/// on the interpreter's port also `E2B-Traffic-Access-Token`).
pub fn open(state: &AppState, parts: &Parts, port: u16) -> Result<Sandbox, Refusal> {
    let (id, asked) = target(parts)?;
    if asked != port {
        return Err(Refusal::PortNotOpen(id, asked));
    }
    let owner = token_owner(state, parts, &id, port)?;
    open_signed(state, &id, owner)
}

/// Sandbox `id` of `owner`, whose credential (a token, a presigned URL's signature) the
/// caller checked.
pub fn open_signed(state: &AppState, id: &str, owner: Owner) -> Result<Sandbox, Refusal> {
    let id = id.to_string();
    let entry = state
        .manager
        .get(&owner, &id)
        .map_err(|_| Refusal::NotFound(id.clone()))?;
    if entry.record().metadata.get(TAG_KEY).map(String::as_str) != Some("e2b") {
        return Err(Refusal::NotFound(id));
    }
    Ok(Sandbox { owner, id, entry })
}

/// The owner a request's token names for sandbox `id`.
pub fn token_owner(state: &AppState, parts: &Parts, id: &str, port: u16) -> Result<Owner, Refusal> {
    let mut presented = Vec::new();
    if let Some(t) = header(parts, "x-access-token") {
        presented.push((Purpose::Envd, t));
    }
    if port == INTERPRETER_PORT {
        if let Some(t) = header(parts, "e2b-traffic-access-token") {
            presented.push((Purpose::Traffic, t));
        }
    }
    if presented.is_empty() {
        return Err(Refusal::Unauthenticated(
            "this sandbox needs its access token: X-Access-Token (the envdAccessToken its create answered)",
        ));
    }
    for (purpose, token) in presented {
        match tokens::verify(state, purpose, id, &token) {
            Ok(Some(owner)) => return Ok(owner),
            Ok(None) => {}
            Err(e) => return Err(Refusal::Failed(e)),
        }
    }
    Err(Refusal::Unauthenticated(
        "the access token is not this sandbox's",
    ))
}

/// The user a call acts as: `Authorization: Basic base64(user:)` (the envd RPCs) or the
/// `username` query parameter (`/files`); E2B's `user` when none is named.
pub fn user(parts: &Parts, query_user: Option<&str>) -> String {
    if let Some(user) = query_user.filter(|u| !u.is_empty()) {
        return user.to_string();
    }
    header(parts, "authorization")
        .and_then(|v| v.strip_prefix("Basic ").map(str::to_string))
        .and_then(|b| {
            base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
        })
        .and_then(|raw| String::from_utf8(raw).ok())
        .and_then(|pair| pair.split(':').next().map(str::to_string))
        .filter(|u| !u.is_empty())
        .unwrap_or_else(|| USER.to_string())
}

/// Why a user cannot act, when it cannot: only `user` runs file operations (as the
/// sandbox's unprivileged user); `root` is refused with a clear message.
pub fn file_user_refusal(user: &str) -> Option<String> {
    match user {
        USER => None,
        "root" => Some(
            "file operations as root are not offered: Sandpit reads and writes the sandbox's files as its unprivileged user, inside /home/user; leave user unset".into(),
        ),
        other => Some(format!(
            "error looking up user '{other}': this sandbox has the users user and root"
        )),
    }
}

/// `GET /health`: with sandbox headers, the sandbox's service (`204` on envd's port,
/// `"OK"` on the interpreter's, the proxy's `502` for a sandbox that is gone); without them,
/// the API's (`200`). A token is not needed, as on E2B.
pub async fn health(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let (id, port) = match target(&parts) {
        Ok(t) => t,
        Err(Refusal::NoSandbox) => {
            return match state.manager.engine().ping().await {
                Ok(()) => (StatusCode::OK, "Health check successful").into_response(),
                Err(e) => E2b::error(
                    ErrorKind::EngineUnavailable,
                    StatusCode::SERVICE_UNAVAILABLE,
                    &format!("the container engine does not answer: {e}"),
                ),
            };
        }
        Err(refusal) => return refusal.response(),
    };
    // The health probe carries the token where the SDK has one; a sandbox is "there" only
    // for its owner's token.
    let there = token_owner(&state, &parts, &id, port)
        .ok()
        .and_then(|owner| state.manager.get(&owner, &id).ok())
        .is_some_and(|e| e.record().metadata.get(TAG_KEY).map(String::as_str) == Some("e2b"));
    if !there {
        return Refusal::NotFound(id).response();
    }
    match port {
        ENVD_PORT => StatusCode::NO_CONTENT.into_response(),
        INTERPRETER_PORT => json_response(StatusCode::OK, "OK"),
        other => Refusal::PortNotOpen(id, other).response(),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(headers: &[(&str, &str)], uri: &str) -> Parts {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn users_come_from_basic_auth_or_the_query() {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("root:")
        );
        assert_eq!(
            user(&parts(&[("Authorization", &basic)], "/"), None),
            "root"
        );
        assert_eq!(user(&parts(&[], "/"), Some("user")), "user");
        assert_eq!(user(&parts(&[], "/"), None), "user");
        assert!(file_user_refusal("user").is_none());
        assert!(file_user_refusal("root").unwrap().contains("root"));
        assert!(file_user_refusal("bob").unwrap().contains("bob"));
    }

    #[test]
    fn targets_come_from_the_headers() {
        let p = parts(
            &[("E2b-Sandbox-Id", "abc"), ("E2b-Sandbox-Port", "49999")],
            "/",
        );
        assert_eq!(target(&p).unwrap(), ("abc".to_string(), 49999));
        assert!(matches!(target(&parts(&[], "/")), Err(Refusal::NoSandbox)));
        let bad = parts(&[("E2b-Sandbox-Id", "abc"), ("E2b-Sandbox-Port", "x")], "/");
        assert!(matches!(target(&bad), Err(Refusal::PortNotOpen(..))));
    }
}
