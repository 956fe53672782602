//! E2B (`e2b` and `e2b-code-interpreter` on PyPI, `e2b` and `@e2b/code-interpreter` on npm)
//! under `/compat/e2b`: the SDKs, unchanged, with `E2B_API_URL` and `E2B_SANDBOX_URL` set to
//! `http://HOST:PORT/compat/e2b` and `E2B_API_KEY` set to a Sandpit key.
//!
//! - The control plane (`/sandboxes`, `/v2/sandboxes`): an E2B sandbox is a Sandpit session of
//!   the key in `X-API-KEY`, its workdir `/home/user`; errors are `{"code", "message"}`.
//! - The data plane: requests carrying `E2b-Sandbox-Id` and `E2b-Sandbox-Port` (or a `Host` of
//!   `{port}-{id}.{domain}`) reach the sandbox's process and file service (port 49983, Connect
//!   RPC in JSON, `/files`, `/health`) or its code interpreter (port 49999, `/execute`,
//!   `/contexts`), each checked against the sandbox's tokens.
//!
//! `docs/compat.md` lists every SDK call and what differs.

mod contexts;
mod control;
mod dataplane;
mod env_cells;
mod files;
mod filesystem;
mod host;
mod interpreter;
mod process;
mod rpc;
mod shapes;
mod templates;
mod tokens;

pub use host::route_by_host;

use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, delete, get, post};
use axum::Router;
use sandpit_service::ErrorKind;
use serde_json::json;

use super::{json_response, Api};
use crate::state::AppState;

/// Where the routes live.
pub const PREFIX: &str = "/compat/e2b";
/// The port of the process and file service (E2B's envd).
pub const ENVD_PORT: u16 = 49983;
/// The port of the code interpreter.
pub const INTERPRETER_PORT: u16 = 49999;
/// The envd version Sandpit answers as: octet-stream uploads and closing stdin are served;
/// file metadata (0.6.2) and watch entry info (0.6.3) are not, and the SDKs refuse them
/// before sending anything.
pub const ENVD_VERSION: &str = "0.5.7";
/// E2B's user, the one SDK code runs as.
pub const USER: &str = "user";
/// That user's home: an E2B sandbox's workdir.
pub const HOME: &str = "/home/user";
/// The header naming the sandbox of a data-plane request.
pub const SANDBOX_HEADER: &str = "e2b-sandbox-id";
/// The header naming the port of a data-plane request.
pub const PORT_HEADER: &str = "e2b-sandbox-port";

/// E2B's control plane: errors are `{"code": status, "message": …}`, keys come in
/// `X-API-KEY`, and there is no keyless access.
pub(crate) struct E2b;

impl Api for E2b {
    const NO_KEY: &'static str = "an API key is required: set E2B_API_KEY to a Sandpit key (make one with `sandpit keys add --e2b`); the SDK sends it as X-API-KEY";
    const ANONYMOUS: bool = false;

    fn error_body(status: StatusCode, message: &str) -> Response {
        json_response(
            status,
            json!({ "code": status.as_u16(), "message": message }),
        )
    }

    fn presented_key(parts: &Parts) -> Option<String> {
        super::header(parts, "x-api-key").or_else(|| crate::auth::presented_key(parts))
    }
}

/// E2B's routes, under [`PREFIX`].
pub fn routes() -> Router<AppState> {
    let at = |p: &str| format!("{PREFIX}{p}");
    Router::new()
        // Both planes: the API's health without sandbox headers, envd's or the
        // interpreter's with them.
        .route(&at("/health"), get(dataplane::health))
        .route(
            &at("/sandboxes"),
            post(control::create).get(control::list_v1),
        )
        .route(
            &at("/v2/sandboxes"),
            post(control::create).get(control::list_v2),
        )
        .route(
            &at("/sandboxes/{id}"),
            get(control::info).delete(control::kill),
        )
        .route(&at("/sandboxes/{id}/timeout"), post(control::set_timeout))
        .route(&at("/sandboxes/{id}/refreshes"), post(control::refresh))
        .route(&at("/sandboxes/{id}/pause"), post(control::pause))
        .route(&at("/sandboxes/{id}/resume"), post(control::resume))
        .route(&at("/sandboxes/{id}/connect"), post(control::connect))
        .route(&at("/v2/sandboxes/{id}/connect"), post(control::connect))
        .route(&at("/sandboxes/{id}/metrics"), get(control::metrics))
        .route(&at("/files"), get(files::download).post(files::upload))
        // Presigned URLs, made at the origin of `E2B_SANDBOX_URL` without its path.
        .route("/files", get(files::download).post(files::upload))
        .route(
            &at("/filesystem.Filesystem/{method}"),
            post(filesystem::call),
        )
        .route(&at("/process.Process/{method}"), post(process::call))
        .route(&at("/execute"), post(interpreter::execute))
        .route(
            &at("/contexts"),
            post(contexts::create_context).get(contexts::list_contexts),
        )
        .route(&at("/contexts/{context}"), delete(contexts::remove_context))
        .route(
            &at("/contexts/{context}/restart"),
            post(contexts::restart_context),
        )
        .route(PREFIX, any(not_found))
        .route(&at("/"), any(not_found))
        .route(&at("/{*rest}"), any(not_found))
}

/// Anything else: the API's 404, or Connect's `unimplemented` for a service Sandpit does not
/// offer (PTYs, volumes).
async fn not_found(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let service = path
        .rsplit('/')
        .nth(1)
        .filter(|s| s.contains('.') && s.chars().next().is_some_and(char::is_lowercase));
    if let Some(service) = service {
        return rpc::RpcError::new(
            rpc::Code::Unimplemented,
            format!(
                "{service} is not served by Sandpit's E2B layer (docs/compat.md lists what is)"
            ),
        )
        .into_response_for(req.headers());
    }
    E2b::error(
        ErrorKind::NotFound,
        StatusCode::NOT_FOUND,
        &format!("no such E2B route: {path} (docs/compat.md lists the routes)"),
    )
}

/// The session a request names, for forwarding in a cluster: the sandbox of a data-plane
/// request (its headers or its `Host`), or the sandbox in a control-plane path.
pub fn session_of(parts: &Parts) -> Option<String> {
    if let Some(id) = super::header(parts, SANDBOX_HEADER) {
        return Some(id);
    }
    if let Some((_, id)) = parts
        .headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host::sandbox_host)
    {
        return Some(id);
    }
    let path = parts.uri.path();
    let rest = path.find(PREFIX).map(|at| &path[at + PREFIX.len()..])?;
    let rest = rest.strip_prefix("/v2").unwrap_or(rest);
    let id = rest.strip_prefix("/sandboxes/")?.split('/').next()?;
    (!id.is_empty()).then(|| id.to_string())
}

/// What an E2B request names, for a cluster's forwarding ([`crate::forward`]): the sandbox
/// [`session_of`] finds, a new one for a create, else nothing (this node answers).
pub(crate) fn target(parts: &Parts) -> Option<crate::forward::Target> {
    use crate::forward::{strip_key_prefix, Placement, Target};
    if let Some(id) = session_of(parts) {
        return Some(Target::Session(id));
    }
    let rest = strip_key_prefix(parts.uri.path()).strip_prefix(PREFIX)?;
    let rest = rest.strip_prefix("/v2").unwrap_or(rest);
    let create =
        parts.method == axum::http::Method::POST && rest.trim_end_matches('/') == "/sandboxes";
    Some(if create {
        Target::NewSession(Placement::default())
    } else {
        Target::Here
    })
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut req = Request::builder().uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn requests_name_their_sandbox() {
        assert_eq!(
            session_of(&parts("/compat/e2b/files", &[("E2b-Sandbox-Id", "abc")])).as_deref(),
            Some("abc")
        );
        assert_eq!(
            session_of(&parts(
                "/files",
                &[("Host", "49983-0a1b2c3d4e5f.sb.example.com")]
            ))
            .as_deref(),
            Some("0a1b2c3d4e5f")
        );
        assert_eq!(
            session_of(&parts("/compat/e2b/sandboxes/xyz/pause", &[])).as_deref(),
            Some("xyz")
        );
        assert_eq!(
            session_of(&parts("/k/e2b_1/compat/e2b/v2/sandboxes/xyz/connect", &[])).as_deref(),
            Some("xyz")
        );
        assert_eq!(session_of(&parts("/compat/e2b/v2/sandboxes", &[])), None);
        assert_eq!(session_of(&parts("/compat/e2b/sandboxes", &[])), None);
    }
}
