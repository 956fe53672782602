//! Sandpit's HTTP API: a thin axum mapping onto the session manager. Errors become statuses
//! here and nowhere else; compatibility APIs (Pandora Box, LLM Python Code Sandbox, Piston)
//! are modules of their own over the same operations.
#![deny(missing_docs)]

mod auth;
mod body;
pub mod compat;
mod error;
pub mod forward;
mod mcp;
pub mod openapi;
mod routes;
mod state;

use std::future::Future;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post, put};
use axum::Router;
use sandpit_cluster::Cluster;
use sandpit_service::{ErrorKind, Manager};

pub use auth::{presented_key, Auth, MaybeAnonymous};
pub use body::{parse_json, read_body, JsonBody, RawBody};
pub use error::{status, ApiError, ApiResult};
pub use state::AppState;

/// What each API layer says a request names, asked in order (the first `Some` wins). A layer
/// added to the server adds its reading here.
pub(crate) const TARGETS: &[forward::TargetOf] = &[
    compat::e2b::target,
    routes::target,
    mcp::target,
    compat::pandora::target,
    compat::code_sandbox::target,
    compat::piston::target,
];

/// Every route of the server.
pub fn router(state: AppState) -> Router {
    use routes::*;
    let limit = state.manager.config().max_body_bytes;
    let routes = Router::new()
        .route("/health", get(system::health))
        .route("/metrics", get(system::metrics))
        .route("/openapi.json", get(system::openapi))
        .route("/docs", get(system::docs))
        .route("/v1/sessions", post(sessions::create).get(sessions::list))
        .route(
            "/v1/sessions/{id}",
            get(sessions::show)
                .patch(sessions::update)
                .delete(sessions::destroy),
        )
        .route("/v1/sessions/{id}/pause", post(sessions::pause))
        .route("/v1/sessions/{id}/resume", post(sessions::resume))
        .route("/v1/sessions/{id}/snapshots", post(snapshots::create))
        .route("/v1/snapshots", get(snapshots::list))
        .route(
            "/v1/snapshots/{name}",
            get(snapshots::show).delete(snapshots::destroy),
        )
        .route("/v1/sessions/{id}/execute", post(run::execute))
        .route("/v1/sessions/{id}/run", post(run::run))
        .route("/v1/sessions/{id}/commands", post(run::command))
        .route(
            "/v1/sessions/{id}/processes",
            post(processes::start).get(processes::list),
        )
        .route(
            "/v1/sessions/{id}/processes/{pid}/output",
            get(processes::output),
        )
        .route(
            "/v1/sessions/{id}/processes/{pid}/stdin",
            post(processes::stdin),
        )
        .route(
            "/v1/sessions/{id}/processes/{pid}/signal",
            post(processes::signal),
        )
        .route(
            "/v1/sessions/{id}/files",
            get(files::list).post(files::upload),
        )
        .route("/v1/sessions/{id}/files/ops", post(files::op))
        .route(
            "/v1/sessions/{id}/files/{*path}",
            put(files::write).get(files::read).delete(files::delete),
        )
        .route(
            "/v1/sessions/{id}/packages",
            post(packages::install).get(packages::list),
        )
        .route(
            "/v1/sessions/{id}/packages/{name}",
            axum::routing::delete(packages::uninstall),
        )
        .route(
            "/v1/sessions/{id}/env",
            get(packages::get_env).put(packages::put_env),
        )
        .route("/v1/run", post(run::one_shot))
        .merge(mcp::router(&state))
        .merge(compat::router())
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forward::route,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_errors,
        ))
        .with_state(state.clone());
    // E2B's sandbox hosts are rewritten before routing: a layer around the whole router.
    Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn_with_state(
            state,
            compat::e2b::route_by_host,
        ))
}

async fn not_found() -> ApiError {
    ApiError::new(
        ErrorKind::NotFound,
        "no such route: see GET /docs for the API",
    )
}

/// Counts every error answer by kind (handlers attach it; other 4xx/5xx are guessed from the
/// status). On the native routes, an error axum itself answered (a query string, a path or a
/// multipart body it could not read, a method the route does not take: plain text or nothing)
/// becomes the JSON error body every native error has, its status kept.
async fn count_errors(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let native = req.uri().path().starts_with("/v1/");
    let response = next.run(req).await;
    let status = response.status();
    if status.is_client_error() || status.is_server_error() {
        let attached = response.extensions().get::<ErrorKind>().copied();
        let kind = attached.unwrap_or(match status {
            StatusCode::UNAUTHORIZED => ErrorKind::Unauthorized,
            StatusCode::NOT_FOUND => ErrorKind::NotFound,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorKind::TooLarge,
            s if s.is_server_error() => ErrorKind::Internal,
            _ => ErrorKind::InvalidInput,
        });
        state.manager.metrics().error(kind);
        let json = response
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if native && attached.is_none() && !json {
            let (_, body) = response.into_parts();
            let text = axum::body::to_bytes(body, 64 << 10)
                .await
                .unwrap_or_default();
            let text = String::from_utf8_lossy(&text).trim().to_string();
            let message = match (status, text.is_empty()) {
                (StatusCode::METHOD_NOT_ALLOWED, _) => {
                    "this route does not take that method: see GET /docs for the API".to_string()
                }
                (_, true) => status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_string(),
                (_, false) => text,
            };
            let body = sandpit_service::types::ErrorBody {
                error: kind.as_str().to_string(),
                message,
            };
            let mut response = (status, axum::Json(body)).into_response();
            response.extensions_mut().insert(kind);
            return response;
        }
    }
    response
}

/// Serves `manager` on `listener` until `shutdown` resolves; then closes the warm pools (the
/// sessions stay for the next server process to adopt). On a cluster node, `cluster` is the
/// cluster: requests for sessions of other nodes are forwarded there.
pub async fn serve(
    listener: tokio::net::TcpListener,
    manager: Manager,
    cluster: Option<Cluster>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let base_url = format!("http://{}", listener.local_addr()?);
    let node = cluster
        .as_ref()
        .map(|c| c.name().to_string())
        .unwrap_or_default();
    let peer_tls = cluster.as_ref().and_then(|c| c.peer_tls().cloned());
    let client_tls = peer_tls
        .as_ref()
        .map(forward::tls::client_config)
        .transpose()
        .map_err(std::io::Error::other)?;
    let state = AppState {
        manager: manager.clone(),
        base_url: Arc::new(base_url),
        cluster,
        forwarder: forward::Forwarder::new(&node, client_tls),
    };
    // The other nodes' port (mTLS): the same API, its requests marked as a peer's.
    let (stop_peers, peers_stop) = tokio::sync::watch::channel(false);
    let peers = match &peer_tls {
        Some(tls) => {
            let listener = forward::tls::PeerListener::bind(tls).await?;
            let app = router(state.clone()).layer(axum::Extension(forward::tls::FromPeer));
            let mut stop = peers_stop;
            Some(tokio::spawn(async move {
                axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|stop| *stop).await;
                    })
                    .await
            }))
        }
        None => None,
    };
    let app = router(state);
    // Streamed answers (server-sent events, NDJSON, Connect frames) are many small writes:
    // with Nagle's algorithm each waits for the client's delayed ACK (40 ms here).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!("TCP_NODELAY on a connection: {e}");
        }
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_peers.send(true);
        })
        .await?;
    if let Some(peers) = peers {
        let _ = peers.await;
    }
    manager.shutdown().await;
    Ok(())
}
