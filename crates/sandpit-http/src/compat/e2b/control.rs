//! E2B's control plane: create, connect, info, kill, timeout, pause and resume, list, metrics.
//! Each route takes the key from `X-API-KEY`, finds the owner's session, calls the manager, and
//! answers in E2B's shape (`{"code", "message"}` on failure).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sandpit_service::types::{CreateSession, UpdateSession};
use sandpit_service::{now, Entry, ErrorKind, Owner, ServiceError};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::shapes::{self, TAG_KEY, TEMPLATE_KEY};
use super::templates::template;
use super::{E2b, HOME, PREFIX, USER};
use crate::compat::{caller, json_response, Api};
use crate::state::AppState;

/// A create's timeout when it names none (E2B's API default).
const DEFAULT_TIMEOUT: u64 = 15;

/// `POST /sandboxes` and `/v2/sandboxes`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewSandbox {
    /// The template's name or id.
    #[serde(rename = "templateID")]
    pub template_id: Option<String>,
    /// Seconds the sandbox lives.
    pub timeout: Option<u64>,
    /// The user's metadata.
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// Environment variables of every process.
    #[serde(default)]
    pub env_vars: BTreeMap<String, String>,
    /// Whether the sandbox may reach the internet (E2B's default: yes).
    #[serde(rename = "allow_internet_access")]
    pub allow_internet_access: Option<bool>,
    /// E2B's network rules; only a deny of everything is read.
    pub network: Option<NetworkRules>,
    /// Pause rather than kill when the timeout ends.
    pub auto_pause: Option<bool>,
    /// An MCP gateway to start.
    pub mcp: Option<Value>,
    /// Volumes to mount.
    #[serde(default)]
    pub volume_mounts: Vec<Value>,
}

/// The part of E2B's network rules Sandpit reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkRules {
    /// Destinations denied; `0.0.0.0/0` denies the internet.
    #[serde(default)]
    pub deny_out: Vec<String>,
}

fn bad_request(message: impl AsRef<str>) -> Response {
    E2b::error(
        ErrorKind::InvalidInput,
        StatusCode::BAD_REQUEST,
        message.as_ref(),
    )
}

fn not_found(id: &str) -> Response {
    E2b::error(
        ErrorKind::NotFound,
        StatusCode::NOT_FOUND,
        &format!("sandbox \"{id}\" doesn't exist or you don't have access to it"),
    )
}

/// A manager failure in E2B's shape, an unknown sandbox as E2B's 404.
fn failure(id: &str, e: &ServiceError) -> Response {
    if e.kind == ErrorKind::NotFound {
        return not_found(id);
    }
    E2b::failure(e)
}

/// The caller and the request's JSON body (`{}` when empty).
async fn keyed<T: DeserializeOwned>(
    state: &AppState,
    req: Request,
) -> Result<(Owner, T, Parts), Response> {
    let (mut parts, body) = req.into_parts();
    let owner = caller::<E2b>(&mut parts, state).await?;
    let bytes = crate::compat::body_bytes(body, state)
        .await
        .map_err(|e| E2b::failure(&e))?;
    let bytes = if bytes.iter().all(u8::is_ascii_whitespace) {
        bytes::Bytes::from_static(b"{}")
    } else {
        bytes
    };
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        bad_request(format!(
            "the request body is not the JSON this route takes: {e}"
        ))
    })?;
    Ok((owner, value, parts))
}

/// The owner's E2B sandbox `id` (a session made elsewhere is "not found").
fn entry(state: &AppState, owner: &Owner, id: &str) -> Result<Arc<Entry>, ServiceError> {
    let entry = state.manager.get(owner, id)?;
    let ours = entry.record().metadata.get(TAG_KEY).map(String::as_str) == Some("e2b");
    if !ours {
        return Err(ServiceError::no_session(id));
    }
    Ok(entry)
}

/// `POST /sandboxes` and `POST /v2/sandboxes`: a session of the template's language, its
/// workdir `/home/user`, living `timeout` seconds; `201` with the sandbox and its tokens.
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let (owner, body, _) = match keyed::<NewSandbox>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let Some(name) = body.template_id.as_deref().filter(|t| !t.trim().is_empty()) else {
        return bad_request("templateID is required");
    };
    let config = &state.manager.config().e2b;
    let Some(template) = template(config, name) else {
        return E2b::error(
            ErrorKind::NotFound,
            StatusCode::NOT_FOUND,
            &format!(
                "template '{name}' not found: this server offers base, code-interpreter-v1 and the templates of its [e2b.templates]"
            ),
        );
    };
    if body.auto_pause == Some(true) {
        return bad_request("autoPause is not offered: a Sandpit sandbox is killed when its timeout ends (pause it yourself with pause())");
    }
    if body.mcp.as_ref().is_some_and(|m| !m.is_null()) {
        return bad_request("MCP gateways are not offered by Sandpit's E2B layer");
    }
    if !body.volume_mounts.is_empty() {
        return bad_request("volume mounts are not offered by Sandpit's E2B layer");
    }
    for key in body.metadata.keys() {
        if key == TAG_KEY || key.starts_with("e2b.") {
            return bad_request(format!(
                "metadata key {key:?} is reserved by Sandpit (it tags E2B sandboxes)"
            ));
        }
    }
    let asked = body.allow_internet_access.unwrap_or(true)
        && !body
            .network
            .as_ref()
            .is_some_and(|n| n.deny_out.iter().any(|d| d == "0.0.0.0/0"));
    let internet = asked && config.allow_internet_access;
    let timeout = body.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut metadata = body.metadata.clone();
    metadata.insert(TAG_KEY.into(), "e2b".into());
    metadata.insert(TEMPLATE_KEY.into(), template.name.clone());
    let mut env = body.env_vars.clone();
    env.entry("HOME".into()).or_insert_with(|| HOME.into());
    env.entry("USER".into()).or_insert_with(|| USER.into());
    let request = CreateSession {
        language: template.language.name().to_string(),
        image: template.image.clone(),
        env,
        network: Some(if internet { "bridge" } else { "none" }.into()),
        timeout: Some(timeout),
        idle_timeout: Some(timeout),
        run_timeout: Some(timeout.clamp(1, 86_400) as f64),
        metadata,
        workdir: Some(HOME.into()),
        ..Default::default()
    };
    let id = match state.manager.create(&owner, request).await {
        Ok((info, _)) => info.id,
        Err(e) => return E2b::failure(&e),
    };
    let entry = match entry(&state, &owner, &id) {
        Ok(entry) => entry,
        Err(e) => return failure(&id, &e),
    };
    if sandpit::runner(template.language).kernel().is_some() {
        warm_kernel(&state, &owner, &id).await;
    }
    match shapes::sandbox(&state, &owner, &entry) {
        Ok(sandbox) => json_response(StatusCode::CREATED, sandbox),
        Err(e) => E2b::failure(&e),
    }
}

/// Starts the sandbox's default kernel in the background (E2B's template starts its code
/// interpreter at boot), so the first `run_code` finds it running; the create does not wait.
async fn warm_kernel(state: &AppState, owner: &Owner, id: &str) {
    let Ok(hold) = state.manager.hold(owner, id).await else {
        return;
    };
    tokio::spawn(async move {
        if let Err(e) = hold.session().start_kernel().await {
            tracing::warn!(
                "the kernel of E2B sandbox {} did not start: {e}",
                hold.session().id()
            );
        }
    });
}

/// `GET /sandboxes/{id}`: the sandbox's detail.
pub async fn info(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (owner, _, _) = match keyed::<Value>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let entry = match entry(&state, &owner, &id) {
        Ok(entry) => entry,
        Err(e) => return failure(&id, &e),
    };
    match shapes::detail(&state, &owner, &entry) {
        Ok(detail) => json_response(StatusCode::OK, detail),
        Err(e) => E2b::failure(&e),
    }
}

/// `DELETE /sandboxes/{id}`: `204`, or `404` for an unknown sandbox (the SDK's `False`).
pub async fn kill(State(state): State<AppState>, Path(id): Path<String>, req: Request) -> Response {
    let (owner, _, _) = match keyed::<Value>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if let Err(e) = entry(&state, &owner, &id) {
        return failure(&id, &e);
    }
    match state.manager.destroy(&owner, &id).await {
        Ok(()) => {
            super::interpreter::forget(&id);
            super::contexts::forget(&id);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => failure(&id, &e),
    }
}

/// `{"timeout": seconds}`.
#[derive(Debug, Deserialize)]
pub struct TimeoutRequest {
    /// Seconds from now.
    pub timeout: Option<u64>,
    /// Seconds from now (`/refreshes` names it so).
    pub duration: Option<u64>,
}

/// Moves the sandbox's end to `secs` from now (its idle timeout with it).
async fn expire_in(state: &AppState, owner: &Owner, id: &str, secs: u64) -> Result<(), Response> {
    if secs == 0 {
        return Err(bad_request("timeout must be at least 1 second"));
    }
    let update = UpdateSession {
        timeout: Some(secs),
        idle_timeout: Some(secs),
        metadata: None,
    };
    state
        .manager
        .update(owner, id, update)
        .await
        .map(|_| ())
        .map_err(|e| failure(id, &e))
}

/// `POST /sandboxes/{id}/timeout`: the sandbox ends `timeout` seconds from now; `204`.
pub async fn set_timeout(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, body, _) = match keyed::<TimeoutRequest>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    if let Err(e) = entry(&state, &owner, &id) {
        return failure(&id, &e);
    }
    let Some(secs) = body.timeout else {
        return bad_request("timeout is required (seconds from now)");
    };
    match expire_in(&state, &owner, &id, secs).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// `POST /sandboxes/{id}/refreshes`: the sandbox lives at least `duration` more seconds
/// (default 60); `204`.
pub async fn refresh(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, body, _) = match keyed::<TimeoutRequest>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let entry = match entry(&state, &owner, &id) {
        Ok(entry) => entry,
        Err(e) => return failure(&id, &e),
    };
    let secs = body.duration.unwrap_or(60);
    if entry.record().expires_at >= now() + secs {
        return StatusCode::NO_CONTENT.into_response();
    }
    match expire_in(&state, &owner, &id, secs).await {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(response) => response,
    }
}

/// `POST /sandboxes/{id}/pause`: the sandbox's processes freeze (Sandpit's pause); `204`,
/// `409` when it is paused already.
pub async fn pause(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, _, _) = match keyed::<Value>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let entry = match entry(&state, &owner, &id) {
        Ok(entry) => entry,
        Err(e) => return failure(&id, &e),
    };
    if entry.record().paused_since.is_some() {
        return E2b::error(
            ErrorKind::Conflict,
            StatusCode::CONFLICT,
            &format!("sandbox \"{id}\" is already paused"),
        );
    }
    match state.manager.pause(&owner, &id).await {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => failure(&id, &e),
    }
}

/// Resumes the sandbox when it is paused (true when it was), then makes it live at least
/// `timeout` more seconds.
async fn wake(
    state: &AppState,
    owner: &Owner,
    id: &str,
    timeout: Option<u64>,
) -> Result<bool, Response> {
    let entry = entry(state, owner, id).map_err(|e| failure(id, &e))?;
    let paused = entry.record().paused_since.is_some();
    if paused {
        state
            .manager
            .resume(owner, id)
            .await
            .map_err(|e| failure(id, &e))?;
    }
    if let Some(secs) = timeout {
        if entry.record().expires_at < now() + secs {
            expire_in(state, owner, id, secs).await?;
        }
    }
    Ok(paused)
}

/// The sandbox with its tokens, with `status`.
fn answer(state: &AppState, owner: &Owner, id: &str, status: StatusCode) -> Response {
    let entry = match entry(state, owner, id) {
        Ok(entry) => entry,
        Err(e) => return failure(id, &e),
    };
    match shapes::sandbox(state, owner, &entry) {
        Ok(sandbox) => json_response(status, sandbox),
        Err(e) => E2b::failure(&e),
    }
}

/// `POST /sandboxes/{id}/connect` and `/v2/...`: `200` when it ran, `201` when it was paused
/// and is resumed; its end moves out to `timeout` seconds from now, never in.
pub async fn connect(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, body, _) = match keyed::<TimeoutRequest>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    match wake(&state, &owner, &id, body.timeout).await {
        Ok(true) => answer(&state, &owner, &id, StatusCode::CREATED),
        Ok(false) => answer(&state, &owner, &id, StatusCode::OK),
        Err(response) => response,
    }
}

/// `POST /sandboxes/{id}/resume` (older SDKs): `201` with the sandbox, `409` when it runs.
pub async fn resume(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, body, _) = match keyed::<TimeoutRequest>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    match entry(&state, &owner, &id) {
        Ok(e) if e.record().paused_since.is_none() => {
            return E2b::error(
                ErrorKind::Conflict,
                StatusCode::CONFLICT,
                &format!("sandbox \"{id}\" is already running"),
            )
        }
        Ok(_) => {}
        Err(e) => return failure(&id, &e),
    }
    match wake(&state, &owner, &id, body.timeout).await {
        Ok(_) => answer(&state, &owner, &id, StatusCode::CREATED),
        Err(response) => response,
    }
}

/// `GET /sandboxes/{id}/metrics`: one sample of what the sandbox uses now.
pub async fn metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
    req: Request,
) -> Response {
    let (owner, _, _) = match keyed::<Value>(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let entry = match entry(&state, &owner, &id) {
        Ok(entry) => entry,
        Err(e) => return failure(&id, &e),
    };
    let info = match state.manager.info(&entry, true).await {
        Ok(info) => info,
        Err(e) => return failure(&id, &e),
    };
    let Some(usage) = info.usage else {
        return json_response(StatusCode::OK, json!([]));
    };
    let policy = entry.session.policy();
    let t = now();
    json_response(
        StatusCode::OK,
        json!([{
            "timestamp": sandpit::time::rfc3339(std::time::SystemTime::now()),
            "timestampUnix": t,
            "cpuCount": policy.cpus.ceil().max(1.0) as u64,
            // Over the sandbox's life: Sandpit keeps no samples between calls.
            "cpuUsedPct": 100.0 * usage.cpu_seconds / (t.saturating_sub(entry.record().created).max(1) as f64) / policy.cpus.max(0.01),
            "memUsed": usage.memory_bytes,
            "memTotal": usage.memory_limit_bytes,
            "memCache": 0,
            "diskUsed": usage.disk_used_bytes,
            "diskTotal": usage.disk_limit_bytes.unwrap_or(policy.disk),
        }]),
    )
}

/// The query of a list.
#[derive(Debug, Default)]
struct ListQuery {
    metadata: BTreeMap<String, String>,
    states: Option<Vec<String>>,
    ascending: bool,
    limit: usize,
    next: Option<(u64, String)>,
    started_after: Option<i64>,
    template: Option<String>,
}

fn list_query(parts: &Parts, v2: bool) -> Result<ListQuery, String> {
    let pairs = crate::routes::sessions::serde_urlencoded_pairs(parts.uri.query().unwrap_or(""));
    let mut q = ListQuery {
        limit: if v2 { 100 } else { usize::MAX },
        states: if v2 {
            None
        } else {
            Some(vec!["running".into()])
        },
        ..Default::default()
    };
    for (key, value) in pairs {
        match key.as_str() {
            // `user=abc&app=prod`, each part URL-encoded once more.
            "metadata" => {
                for (k, v) in crate::routes::sessions::serde_urlencoded_pairs(&value) {
                    q.metadata.insert(k, v);
                }
            }
            "state" if v2 => {
                let mut states = Vec::new();
                for s in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    if s != "running" && s != "paused" {
                        return Err(format!("state {s:?}: use running or paused"));
                    }
                    states.push(s.to_string());
                }
                q.states = Some(states);
            }
            "order" if v2 => match value.as_str() {
                "asc" => q.ascending = true,
                "desc" => q.ascending = false,
                other => return Err(format!("order {other:?}: use asc or desc")),
            },
            "limit" if v2 => {
                q.limit = value
                    .parse::<usize>()
                    .ok()
                    .filter(|n| (1..=1000).contains(n))
                    .ok_or_else(|| format!("limit {value:?}: give a number from 1 to 1000"))?;
            }
            "startedAfter" if v2 => {
                q.started_after =
                    Some(unix_seconds(&value).ok_or_else(|| {
                        format!("startedAfter {value:?} is not an RFC 3339 time")
                    })?);
            }
            "template" if v2 && !value.is_empty() => q.template = Some(value),
            "nextToken" if v2 => {
                let (t, id) = value
                    .split_once('-')
                    .and_then(|(t, id)| Some((t.parse::<u64>().ok()?, id.to_string())))
                    .ok_or_else(|| format!("nextToken {value:?} is not one this server gave"))?;
                q.next = Some((t, id));
            }
            _ => {}
        }
    }
    Ok(q)
}

async fn list(state: AppState, req: Request, v2: bool) -> Response {
    let (mut parts, body) = req.into_parts();
    let key = match E2b::presented_key(&parts) {
        Some(key) => Some(key),
        None => crate::compat::path_key(&mut parts, &state).await,
    };
    let (owner, _, parts) = match keyed::<Value>(&state, Request::from_parts(parts, body)).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let query = match list_query(&parts, v2) {
        Ok(q) => q,
        Err(message) => return bad_request(message),
    };
    let mut filter = query.metadata.clone();
    filter.insert(TAG_KEY.into(), "e2b".into());
    let sessions = match state.manager.list(&owner, None, None, &filter).await {
        Ok(s) => s,
        Err(e) => return E2b::failure(&e),
    };
    // (start, id, item): the local sandboxes, then, in a cluster, the other nodes'.
    let mut items: Vec<(u64, String, Value)> = sessions
        .iter()
        .filter_map(|s| state.manager.get(&owner, &s.id).ok())
        .filter(|e| {
            let record = e.record();
            let s = if record.paused_since.is_some() {
                "paused"
            } else {
                "running"
            };
            query
                .states
                .as_ref()
                .is_none_or(|states| states.iter().any(|x| x == s))
                && query
                    .started_after
                    .is_none_or(|t| record.created as i64 >= t)
                && query
                    .template
                    .as_ref()
                    .is_none_or(|t| record.metadata.get(TEMPLATE_KEY) == Some(t))
        })
        .map(|e| {
            let r = e.record();
            (r.created, r.id.clone(), shapes::listed(&state, &e))
        })
        .collect();
    if let (Some(cluster), Some(key)) = (
        state
            .cluster
            .as_ref()
            .filter(|_| !parts.headers.contains_key(crate::forward::FORWARDED)),
        key,
    ) {
        items.extend(peer_items(&state, cluster, &parts, &key, v2).await);
    }
    items.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
    if !query.ascending {
        items.reverse();
    }
    if let Some(after) = &query.next {
        items.retain(|(t, id, _)| {
            let p = (*t, id);
            let after = (after.0, &after.1);
            if query.ascending {
                p > after
            } else {
                p < after
            }
        });
    }
    let more = items.len() > query.limit;
    items.truncate(query.limit);
    let next = items.last().map(|(t, id, _)| format!("{t}-{id}"));
    let mut response = json_response(
        StatusCode::OK,
        items.into_iter().map(|(_, _, v)| v).collect::<Vec<_>>(),
    );
    if let (true, Some(next)) = (more, next) {
        if let Ok(v) = HeaderValue::from_str(&next) {
            response.headers_mut().insert("x-next-token", v);
        }
    }
    response
}

/// The other nodes' sandboxes of the same query (all of them: the pages are cut here).
async fn peer_items(
    state: &AppState,
    cluster: &sandpit_cluster::Cluster,
    parts: &Parts,
    key: &str,
    v2: bool,
) -> Vec<(u64, String, Value)> {
    let kept: Vec<&str> = parts
        .uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| {
            let name = p.split('=').next().unwrap_or("");
            !p.is_empty() && name != "limit" && name != "nextToken"
        })
        .collect();
    let path = if v2 {
        let mut query = kept.join("&");
        if !query.is_empty() {
            query.push('&');
        }
        format!("{PREFIX}/v2/sandboxes?{query}limit=1000")
    } else {
        format!("{PREFIX}/sandboxes?{}", kept.join("&"))
    };
    let mut like = axum::http::HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer {key}")) {
        like.insert(axum::http::header::AUTHORIZATION, v);
    }
    let asks = cluster.peers().into_iter().map(|peer| {
        let (forwarder, path, like) = (&state.forwarder, &path, &like);
        async move {
            let got = forwarder
                .get_json::<Vec<Value>>(&peer.advertise, path, like)
                .await;
            (peer.name, got)
        }
    });
    let mut items = Vec::new();
    for (node, got) in futures_util::future::join_all(asks).await {
        match got {
            Ok(list) => items.extend(list.into_iter().filter_map(|v| {
                let started = unix_seconds(v["startedAt"].as_str()?)?;
                let id = v["sandboxID"].as_str()?.to_string();
                Some((started.max(0) as u64, id, v))
            })),
            Err(e) => tracing::warn!("listing the E2B sandboxes of node {node}: {}", e.0),
        }
    }
    items
}

/// `GET /sandboxes` (older SDKs): the running sandboxes, filtered by `metadata`.
pub async fn list_v1(State(state): State<AppState>, req: Request) -> Response {
    list(state, req, false).await
}

/// `GET /v2/sandboxes`: filtered by `metadata` and `state`, ordered by `order`, paged by
/// `limit` and `nextToken` (the next page's token in `x-next-token`).
pub async fn list_v2(State(state): State<AppState>, req: Request) -> Response {
    list(state, req, true).await
}

/// Unix seconds of an RFC 3339 time (`2024-05-01T10:00:00Z`, `…T12:00:00.5+02:00`).
pub fn unix_seconds(text: &str) -> Option<i64> {
    let text = text.trim();
    let num = |s: &str| s.parse::<i64>().ok();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut d = date.splitn(3, '-');
    let (y, m, day) = (num(d.next()?)?, num(d.next()?)?, num(d.next()?)?);
    let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(zone_at);
    let clock = clock.split('.').next()?;
    let mut c = clock.splitn(3, ':');
    let (h, min, sec) = (num(c.next()?)?, num(c.next()?)?, num(c.next()?)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || h > 23 || min > 59 || sec > 60 {
        return None;
    }
    let offset = match zone {
        "" | "Z" | "z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let (oh, om) = z[1..].split_once(':')?;
            sign * (num(oh)? * 3600 + num(om)? * 60)
        }
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + h * 3600 + min * 60 + sec - offset)
}

#[cfg(test)]
mod tests {
    use axum::http::Request;

    use super::*;

    fn parts(uri: &str) -> Parts {
        Request::builder().uri(uri).body(()).unwrap().into_parts().0
    }

    #[test]
    fn times_read_as_rfc_3339() {
        assert_eq!(unix_seconds("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(unix_seconds("2024-03-01T12:30:05Z"), Some(1_709_296_205));
        assert_eq!(
            unix_seconds("2024-03-01T14:30:05.123456+02:00"),
            Some(1_709_296_205)
        );
        assert_eq!(unix_seconds("2024-13-01T00:00:00Z"), None);
        assert_eq!(unix_seconds("yesterday"), None);
    }

    #[test]
    fn list_queries_read_as_the_sdk_writes_them() {
        let q = list_query(
            &parts("/v2/sandboxes?metadata=user%3Dab%2520c%26app%3Dprod&state=running,paused&limit=2&nextToken=17-abc&order=asc"),
            true,
        )
        .unwrap();
        assert_eq!(q.metadata["user"], "ab c");
        assert_eq!(q.metadata["app"], "prod");
        assert_eq!(q.states.unwrap(), ["running", "paused"]);
        assert_eq!(q.limit, 2);
        assert_eq!(q.next, Some((17, "abc".to_string())));
        assert!(q.ascending);
        assert!(list_query(&parts("/v2/sandboxes?state=dead"), true).is_err());
        assert!(list_query(&parts("/v2/sandboxes?nextToken=x"), true).is_err());
        assert!(list_query(&parts("/v2/sandboxes?limit=0"), true).is_err());
        let v1 = list_query(&parts("/sandboxes"), false).unwrap();
        assert_eq!(v1.states.unwrap(), ["running"]);
    }
}
