//! `/v1/sessions`: open, list, show, change, close, pause, resume.

use std::collections::BTreeMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use sandpit_service::types::{CreateSession, SessionInfo, SessionList, UpdateSession};
use sandpit_service::ServiceError;

use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::ApiResult;
use crate::forward::FORWARDED;
use crate::state::AppState;

/// `POST /v1/sessions`: 201 with the new session, 200 with the named one the key holds.
pub async fn create(
    State(state): State<AppState>,
    Auth(owner): Auth,
    JsonBody(req): JsonBody<CreateSession>,
) -> ApiResult<(StatusCode, Json<SessionInfo>)> {
    let (info, made) = if req.from_snapshot.is_some() {
        crate::routes::snapshots::restore(&state, &owner, req).await?
    } else {
        state.manager.create(&owner, req).await?
    };
    let status = if made {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)))
}

/// `GET /v1/sessions?language=&name=&metadata.KEY=VALUE`: on a cluster node, the key's
/// sessions on every live node.
pub async fn list(
    State(state): State<AppState>,
    Auth(owner): Auth,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Json<SessionList>> {
    let pairs: Vec<(String, String)> = serde_urlencoded_pairs(query.as_deref().unwrap_or_default());
    let mut language = None;
    let mut name = None;
    let mut metadata = BTreeMap::new();
    for (k, v) in pairs {
        if k == "language" {
            language = Some(v);
        } else if k == "name" {
            name = Some(v);
        } else if let Some(key) = k.strip_prefix("metadata.") {
            metadata.insert(key.to_string(), v);
        } else {
            return Err(ServiceError::invalid(format!(
                "unknown filter {k:?}: use language, name or metadata.KEY"
            ))
            .into());
        }
    }
    let mut sessions = state
        .manager
        .list(&owner, language.as_deref(), name.as_deref(), &metadata)
        .await?;
    if let Some(cluster) = state
        .cluster
        .as_ref()
        .filter(|_| !headers.contains_key(FORWARDED))
    {
        let path = match &query {
            Some(q) => format!("/v1/sessions?{q}"),
            None => "/v1/sessions".to_string(),
        };
        let asks = cluster.peers().into_iter().map(|peer| {
            let (forwarder, path, headers) = (&state.forwarder, &path, &headers);
            async move {
                let got = forwarder
                    .get_json::<SessionList>(&peer.advertise, path, headers)
                    .await;
                (peer.name, got)
            }
        });
        for (node, got) in futures_util::future::join_all(asks).await {
            match got {
                Ok(list) => sessions.extend(list.sessions),
                Err(e) => tracing::warn!("listing the sessions of node {node}: {}", e.0),
            }
        }
        sessions.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    }
    Ok(Json(SessionList { sessions }))
}

/// Splits a query string into decoded pairs.
pub fn serde_urlencoded_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` and `+` in a query component.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let decoded = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], decoded) {
            (_, Some(b)) => {
                out.push(b);
                i += 3;
                continue;
            }
            (b'+', None) => out.push(b' '),
            (b, None) => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `GET /v1/sessions/{id}`: the session and what it uses now.
pub async fn show(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    // A look does not resume a paused session (nor count as a call on it); a paused
    // sandbox cannot be measured from inside, so it shows no usage.
    let entry = state.manager.get(&owner, &id)?;
    let paused = entry.record().paused_since.is_some();
    Ok(Json(state.manager.info(&entry, !paused).await?))
}

/// `PATCH /v1/sessions/{id}`: lifetime, idle timeout, metadata.
pub async fn update(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<UpdateSession>,
) -> ApiResult<Json<SessionInfo>> {
    Ok(Json(state.manager.update(&owner, &id, req).await?))
}

/// `DELETE /v1/sessions/{id}`.
pub async fn destroy(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.manager.destroy(&owner, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/pause`.
pub async fn pause(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    Ok(Json(state.manager.pause(&owner, &id).await?))
}

/// `POST /v1/sessions/{id}/resume`.
pub async fn resume(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<SessionInfo>> {
    Ok(Json(state.manager.resume(&owner, &id).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            serde_urlencoded_pairs("language=py&metadata.user=al%20ice&name=a+b"),
            vec![
                ("language".to_string(), "py".to_string()),
                ("metadata.user".to_string(), "al ice".to_string()),
                ("name".to_string(), "a b".to_string())
            ]
        );
        assert_eq!(percent_decode("%2E%2E/x%"), "../x%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%+1"), "% 1");
    }
}
