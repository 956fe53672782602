//! MCP over streamable HTTP at `/mcp` (the HTTP API's keys, 401 without one), the tool
//! definitions for function calling at `GET /v1/tools`, and the signed, expiring download
//! links MCP hands out for files at `GET /v1/downloads/{token}`.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use sandpit::tools::{self, Format};
use sandpit_mcp::Signer;
use sandpit_service::{ErrorKind, Owner, ServiceError};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::{ApiError, ApiResult};
use crate::routes::files::done;
use crate::state::AppState;

/// `/mcp`, `/v1/tools` and `/v1/downloads/{token}`.
pub fn router(state: &AppState) -> Router<AppState> {
    let data_dir = &state.manager.config().data_dir;
    let signer = match Signer::load_or_create(data_dir) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{e}; download links will stop working when the server restarts");
            match Signer::random() {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("{e}; /mcp and downloads are off");
                    return Router::new();
                }
            }
        }
    };
    let signer = Arc::new(signer);
    let service = sandpit_mcp::http_service(
        state.manager.clone(),
        signer.clone(),
        state.base_url.clone(),
    );
    let mcp = Router::new()
        .nest_service("/mcp", service)
        .layer(axum::middleware::from_fn_with_state(state.clone(), mcp_key));
    Router::new()
        .route("/v1/tools", get(tool_definitions))
        .route("/v1/downloads/{token}", get(download))
        .layer(Extension(signer))
        .merge(mcp)
}

/// What an MCP request names: a tool call's `session_id`, a new session for `create_session`,
/// a one-shot run for `run_code` (read from the JSON-RPC body; every request is complete in
/// itself).
pub(crate) fn target(parts: &axum::http::request::Parts) -> Option<crate::forward::Target> {
    use crate::forward::{Placement, Target};
    if parts.uri.path().trim_end_matches('/') != "/mcp" {
        return None;
    }
    if parts.method != axum::http::Method::POST {
        return Some(Target::Here);
    }
    Some(Target::InBody(|body| {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(body) else {
            return Target::Here;
        };
        if message["method"] != "tools/call" {
            return Target::Here;
        }
        let params = &message["params"];
        if params["name"] == "create_session" {
            return Target::NewSession(Placement::default());
        }
        if params["name"] == "run_code" {
            return crate::forward::RunKind::of(&params["arguments"]);
        }
        match params["arguments"]["session_id"].as_str() {
            Some(id) => Target::Session(id.to_string()),
            None => Target::Here,
        }
    }))
}

/// Lets an MCP request through only with a valid key, whose owner it carries on.
async fn mcp_key(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let (mut parts, body) = req.into_parts();
    match Auth::from_request_parts(&mut parts, &state).await {
        Ok(Auth(owner)) => {
            parts.extensions.insert::<Owner>(owner);
            next.run(Request::from_parts(parts, body)).await
        }
        Err(e) => {
            let mut response = e.into_response();
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"sandpit\""),
            );
            response
        }
    }
}

/// `?format=openai|anthropic`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ToolsQuery {
    /// `openai` (default) or `anthropic`.
    #[serde(default)]
    pub format: Option<String>,
}

/// `GET /v1/tools?format=openai|anthropic`: `{"format": ..., "tools": [...]}`, ready for the
/// model API's `tools` parameter.
pub async fn tool_definitions(
    State(state): State<AppState>,
    Auth(_): Auth,
    Query(q): Query<ToolsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let format: Format = q
        .format
        .as_deref()
        .unwrap_or("openai")
        .parse()
        .map_err(ServiceError::invalid)?;
    let name = match format {
        Format::OpenAi => "openai",
        Format::Anthropic => "anthropic",
    };
    Ok(Json(serde_json::json!({
        "format": name,
        "tools": tools::render_all(&tools::offered(state.manager.snapshot_store().is_ok()), format),
    })))
}

/// `GET /v1/downloads/{token}`: the file a signed link names, while the link has not expired,
/// the key that asked for it is not revoked and its session is open. No key header: the
/// token is the credential.
pub async fn download(
    State(state): State<AppState>,
    Extension(signer): Extension<Arc<Signer>>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let grant = signer.verify(&token)?;
    let key_alive = state
        .manager
        .keys()
        .list_keys()?
        .iter()
        .any(|k| k.id == grant.key);
    if !key_alive {
        return Err(ApiError::new(
            ErrorKind::Unauthorized,
            "the key this link was made for has been revoked",
        ));
    }
    let owner = Owner(grant.key.clone());
    let busy = state.manager.busy(&owner, &grant.session).await?;
    let bytes = busy.session().files().read(&grant.path).await;
    let bytes = done(&state, &owner, &grant.session, bytes).await?;
    let name = grant
        .path
        .rsplit('/')
        .next()
        .unwrap_or("file")
        .replace(['"', '\\', '\r', '\n'], "");
    Ok((
        [
            (
                header::CONTENT_TYPE,
                tools::mime_from_name(&name).to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}
