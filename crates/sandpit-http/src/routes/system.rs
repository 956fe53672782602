//! The server itself: health, metrics, its API description and a page that renders it.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::Json;
use sandpit_service::types::{EngineHealth, Health};

use crate::state::AppState;

/// `GET /health`: no key needed; 503 while the engine is out of reach.
pub async fn health(State(state): State<AppState>) -> Response {
    let manager = &state.manager;
    let engine = manager.engine();
    let sessions = manager.open_count();
    let version = env!("CARGO_PKG_VERSION").to_string();
    let answer = match engine.ping().await {
        Ok(()) => engine.info().await.map(|info| EngineHealth {
            kind: info.kind.to_string().to_ascii_lowercase(),
            version: info.version,
            api_version: info.negotiated_api_version,
        }),
        Err(e) => Err(e),
    };
    match answer {
        Ok(engine) => Json(Health {
            status: "ok".into(),
            engine: Some(engine),
            version,
            sessions,
            error: None,
        })
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Health {
                status: "unavailable".into(),
                engine: None,
                version,
                sessions,
                error: Some(format!("the container engine does not answer: {e}")),
            }),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text (with a key, like every route but health).
pub async fn metrics(State(state): State<AppState>, _auth: crate::auth::Auth) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.manager.metrics().render(state.manager.open_count()),
    )
        .into_response()
}

/// `GET /openapi.json`.
pub async fn openapi() -> Response {
    Json(crate::openapi::document()).into_response()
}

/// `GET /docs`: the API rendered in the browser from `/openapi.json`, nothing fetched from
/// elsewhere.
pub async fn docs() -> Html<&'static str> {
    Html(include_str!("docs.html"))
}
