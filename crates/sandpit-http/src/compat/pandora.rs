//! Pandora Box (`pbox s`, version 1.2.0, plus the route name of its document) under
//! `/compat/pandora/`: one Python kernel per "sandbox", keys in the `API-KEY` header (or
//! `Authorization`, or `/k/{key}`; never anonymous), FastAPI's error shapes.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use sandpit::ExecuteOptions;
use sandpit_service::types::{CreateSession, ExecuteResponse};
use sandpit_service::{ErrorKind, Owner, ServiceError};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    detail, j, json_response, missing, not_a_string, obj, request_key, unprocessable, Api, Json,
};
use crate::state::AppState;

/// A sandbox's lifetime and idle timeout, as the original's 6 h timer (capped at the server's
/// maximum).
const LIFETIME: u64 = 6 * 3600;
/// Seconds one `/execute` may run (the original waits up to an hour per kernel message).
const RUN_TIMEOUT: f64 = 3600.0;
const NO_SANDBOX: &str = "No sandbox found, Please create a sandbox first.";
const INVALID_KERNEL: &str = "Invalid KERNEL_ID";

/// Pandora Box: a FastAPI app, errors `{"detail": …}`; a key is always needed, and its own
/// checks say what is missing.
pub(crate) struct Pandora;

impl Api for Pandora {
    const NO_KEY: &'static str = "Missing API_KEY.";

    fn error_body(status: StatusCode, message: &str) -> Response {
        detail(status, message)
    }
}

/// A Sandpit failure in Pandora Box's shape, `prefix` (the original's message for the step)
/// before Sandpit's.
fn failure_as(e: &ServiceError, prefix: &str) -> Response {
    Pandora::error(
        e.kind,
        crate::error::status(e.kind),
        &format!("{prefix} {}", e.message),
    )
}

/// What a Pandora Box request names: the session in its `KERNEL-ID` header, a new one for
/// `/create`.
pub(crate) fn target(parts: &Parts) -> Option<crate::forward::Target> {
    use crate::forward::{header, strip_key_prefix, Placement, Target};
    let path = strip_key_prefix(parts.uri.path()).strip_prefix("/compat/pandora")?;
    if path == "/create" {
        return Some(Target::NewSession(Placement::default()));
    }
    Some(match header(parts, "kernel-id") {
        Some(id) => Target::Session(id),
        None => Target::Here,
    })
}

/// Pandora Box's routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/compat/pandora/health",
            get(health).fallback(method_not_allowed),
        )
        .route(
            "/compat/pandora/create",
            get(create).fallback(method_not_allowed),
        )
        .route(
            "/compat/pandora/kernels",
            get(list).fallback(method_not_allowed),
        )
        .route(
            "/compat/pandora/sandbox",
            get(list).fallback(method_not_allowed),
        )
        .route(
            "/compat/pandora/execute",
            post(execute).fallback(method_not_allowed),
        )
        .route(
            "/compat/pandora/close",
            get(close).fallback(method_not_allowed),
        )
        .route("/compat/pandora", any(not_found))
        .route("/compat/pandora/", any(not_found))
        .route("/compat/pandora/{*rest}", any(not_found))
}

async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// `GET /compat/pandora/health`: `"success"` while the engine answers.
pub async fn health(State(state): State<AppState>) -> Response {
    match state.manager.engine().ping().await {
        Ok(()) => json_response(StatusCode::OK, "success"),
        Err(e) => detail(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("the container engine does not answer: {e}"),
        ),
    }
}

/// The headers every keyed route reads, before FastAPI's checks.
struct Headers {
    key: Option<String>,
    kernel: Option<String>,
}

async fn headers(parts: &mut Parts, state: &AppState) -> Headers {
    Headers {
        key: request_key(parts, state).await,
        kernel: super::header(parts, "kernel-id"),
    }
}

/// The original's checks after validation: an empty header, then the key itself.
fn owner_of(state: &AppState, key: &str) -> Result<Owner, Box<Response>> {
    if key.is_empty() {
        return Err(Box::new(bad_request("Missing API_KEY.")));
    }
    match super::verify(state, key) {
        Ok(Some(owner)) => Ok(owner),
        Ok(None) => Err(Box::new(bad_request("Invalid API_KEY."))),
        Err(e) => Err(Box::new(Pandora::failure(&e))),
    }
}

fn bad_request(text: &str) -> Response {
    Pandora::error(ErrorKind::InvalidInput, StatusCode::BAD_REQUEST, text)
}

/// The original's `500` for a missing sandbox or kernel.
fn server_error(text: &str) -> Response {
    Pandora::error(ErrorKind::NotFound, StatusCode::INTERNAL_SERVER_ERROR, text)
}

/// The key's sessions made through Pandora Box, oldest first.
async fn kernel_ids(state: &AppState, owner: &Owner) -> Result<Vec<String>, ServiceError> {
    let sessions = state
        .manager
        .list(owner, None, None, &super::tag("pandora"))
        .await?;
    Ok(sessions.into_iter().map(|s| s.id).collect())
}

/// `GET /compat/pandora/create`: a new sandbox with its kernel started.
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let Some(key) = request_key(&mut parts, &state).await else {
        return unprocessable(vec![missing(&["header", "api-key"])]);
    };
    let owner = match owner_of(&state, &key) {
        Ok(owner) => owner,
        Err(response) => return *response,
    };
    let lifetime = LIFETIME.min(state.manager.config().max_lifetime);
    let request = CreateSession {
        language: "python".into(),
        timeout: Some(lifetime),
        idle_timeout: Some(lifetime),
        run_timeout: Some(RUN_TIMEOUT),
        metadata: super::tag("pandora"),
        ..Default::default()
    };
    const FAILED: &str = "Failed to create a new sandbox.";
    let id = match state.manager.create(&owner, request).await {
        Ok((info, _)) => info.id,
        Err(e) => return failure_as(&e, FAILED),
    };
    // As the original's `wait_for_ready()`: the first `/execute` finds the kernel running.
    if let Err(e) = start_kernel(&state, &owner, &id).await {
        let _ = state.manager.destroy(&owner, &id).await;
        return failure_as(&e, FAILED);
    }
    json_response(StatusCode::OK, json!({ "kernel_id": id }))
}

/// Starts the session's kernel.
pub(crate) async fn start_kernel(
    state: &AppState,
    owner: &Owner,
    id: &str,
) -> Result<(), ServiceError> {
    let busy = state.manager.busy(owner, id).await?;
    let started = busy.session().start_kernel().await;
    drop(busy);
    if let Err(e) = started {
        let entry = state.manager.get(owner, id)?;
        return Err(state.manager.failed(&entry, e).await);
    }
    Ok(())
}

/// `GET /compat/pandora/kernels` and `GET /compat/pandora/sandbox`: the key's sandboxes.
pub async fn list(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let Some(key) = request_key(&mut parts, &state).await else {
        return unprocessable(vec![missing(&["header", "api-key"])]);
    };
    let owner = match owner_of(&state, &key) {
        Ok(owner) => owner,
        Err(response) => return *response,
    };
    match kernel_ids(&state, &owner).await {
        Ok(ids) if ids.is_empty() => server_error(NO_SANDBOX),
        Ok(ids) => json_response(StatusCode::OK, json!({ "kernel_ids": ids })),
        Err(e) => Pandora::failure(&e),
    }
}

/// The code of an `/execute` body, or the validation entry that says what is wrong.
fn code_of(body: &[u8]) -> Result<String, Json> {
    let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) else {
        return Err(missing(&["body"]));
    };
    match object.get("code") {
        None => Err(missing(&["body", "code"])),
        Some(Value::String(code)) if code.trim().is_empty() => Err(obj([
            ("type", j("value_error")),
            ("loc", j(["body", "code"].to_vec())),
            ("msg", j("Value error, Invalid code")),
            ("input", j(code.clone())),
            ("ctx", j(json!({"error": {}}))),
        ])),
        Some(Value::String(code)) => Ok(code.clone()),
        Some(other) => Err(not_a_string(&["body", "code"], other)),
    }
}

/// After validation: the empty headers, the key, then whether the key has sandboxes at all.
async fn kernel_owner(state: &AppState, key: &str, kernel: &str) -> Result<Owner, Response> {
    if !key.is_empty() && kernel.is_empty() {
        return Err(bad_request("Missing KERNEL_ID."));
    }
    let owner = owner_of(state, key).map_err(|r| *r)?;
    match kernel_ids(state, &owner).await {
        Ok(ids) if ids.is_empty() => Err(server_error(NO_SANDBOX)),
        Ok(_) => Ok(owner),
        Err(e) => Err(Pandora::failure(&e)),
    }
}

/// `POST /compat/pandora/execute`.
pub async fn execute(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let Headers { key, kernel } = headers(&mut parts, &state).await;
    let body = match super::body_bytes(body, &state).await {
        Ok(b) => b,
        Err(e) => return Pandora::failure(&e),
    };
    let mut problems = Vec::new();
    if key.is_none() {
        problems.push(missing(&["header", "api-key"]));
    }
    if kernel.is_none() {
        problems.push(missing(&["header", "kernel-id"]));
    }
    let code = code_of(&body).map_err(|p| problems.push(p)).ok();
    let (Some(key), Some(kernel), Some(code)) = (key, kernel, code) else {
        return unprocessable(problems);
    };
    let owner = match kernel_owner(&state, &key, &kernel).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    const FAILED: &str = "Failed to execute code.";
    let busy = match state.manager.busy(&owner, &kernel).await {
        Ok(busy) => busy,
        Err(e) if e.kind == ErrorKind::NotFound => return server_error(INVALID_KERNEL),
        Err(e) => return failure_as(&e, FAILED),
    };
    let entry = match state.manager.get(&owner, &kernel) {
        Ok(entry) => entry,
        Err(_) => return server_error(INVALID_KERNEL),
    };
    let timeout = entry.record().run_timeout_ms as f64 / 1000.0;
    let result = busy
        .session()
        .execute_with(&code, ExecuteOptions::new())
        .await;
    drop(busy);
    match result {
        Ok(r) => json_response(StatusCode::OK, answer(ExecuteResponse::from(r), timeout)),
        Err(e) => failure_as(&state.manager.failed(&entry, e).await, FAILED),
    }
}

/// The answer of `/execute`, keys in the original's order.
#[derive(Debug, Serialize)]
pub struct Executed {
    /// `{"type": mime, "data": value}` per entry of each mime bundle.
    pub results: Vec<Json>,
    /// Output as lines.
    pub logs: Logs,
    /// The exception, or the timeout.
    pub error: Option<ErrorInfo>,
}

/// `logs` of an answer.
#[derive(Debug, Serialize)]
pub struct Logs {
    /// Standard output, split into lines.
    pub stdout: Vec<String>,
    /// Standard error, split into lines, with Sandpit's notes after it.
    pub stderr: Vec<String>,
}

/// `error` of an answer.
#[derive(Debug, Serialize)]
pub struct ErrorInfo {
    /// The exception's type.
    pub name: String,
    /// Its message.
    pub value: String,
    /// The traceback, line by line.
    pub traceback: Vec<String>,
}

/// Maps a kernel answer to Pandora Box's shape (`timeout`: the seconds it was given).
pub fn answer(r: ExecuteResponse, timeout: f64) -> Executed {
    let results = super::result_entries(&r.results)
        // The original skips matplotlib's figure captions.
        .filter(|(mime, data)| {
            !(*mime == "text/plain" && data.as_str().is_some_and(|t| t.contains("<Figure size")))
        })
        .map(|(mime, data)| super::result_entry(mime, data))
        .collect();
    let mut stderr = super::splitlines(&r.stderr);
    stderr.extend(
        super::sandpit_notes(r.truncated, r.state_lost)
            .into_iter()
            .map(String::from),
    );
    let error = if r.timed_out {
        Some(ErrorInfo {
            name: "TimeoutError".into(),
            value: super::timeout_text(timeout),
            traceback: Vec::new(),
        })
    } else {
        r.error.map(|e| ErrorInfo {
            name: e.name,
            value: e.value,
            traceback: super::splitlines(&e.traceback.join("\n")),
        })
    };
    Executed {
        results,
        logs: Logs {
            stdout: super::splitlines(&r.stdout),
            stderr,
        },
        error,
    }
}

/// `GET /compat/pandora/close`.
pub async fn close(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let Headers { key, kernel } = headers(&mut parts, &state).await;
    let (Some(key), Some(kernel)) = (&key, &kernel) else {
        let mut problems = Vec::new();
        if key.is_none() {
            problems.push(missing(&["header", "api-key"]));
        }
        if kernel.is_none() {
            problems.push(missing(&["header", "kernel-id"]));
        }
        return unprocessable(problems);
    };
    let owner = match kernel_owner(&state, key, kernel).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    match state.manager.destroy(&owner, kernel).await {
        Ok(()) => json_response(StatusCode::OK, json!({"message": "Sandbox Closed."})),
        Err(e) if e.kind == ErrorKind::NotFound => server_error(INVALID_KERNEL),
        Err(e) => failure_as(&e, "Failed to close Sandbox."),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use sandpit_service::types::ExecutionErrorInfo;

    use super::*;

    fn response() -> ExecuteResponse {
        ExecuteResponse {
            results: Vec::new(),
            stdout: String::new(),
            stderr: String::new(),
            error: None,
            timed_out: false,
            truncated: false,
            state_lost: false,
            kernel_started: false,
            duration_ms: 1,
        }
    }

    #[test]
    fn answers_take_the_original_shape() {
        let mut r = response();
        r.stdout = "Hello, Pandora Box!\n".into();
        let text = serde_json::to_string(&answer(r, 3600.0)).unwrap();
        assert_eq!(
            text,
            r#"{"results":[],"logs":{"stdout":["Hello, Pandora Box!"],"stderr":[]},"error":null}"#
        );
    }

    #[test]
    fn figures_lose_their_caption_and_bundles_flatten() {
        let mut r = response();
        let bundle: BTreeMap<String, Value> = [
            (
                "text/plain".to_string(),
                json!("<Figure size 640x480 with 1 Axes>"),
            ),
            ("image/png".to_string(), json!("iVBORw0KGgo=")),
        ]
        .into();
        let value: BTreeMap<String, Value> = [("text/plain".to_string(), json!("42"))].into();
        r.results = vec![bundle, value];
        let a = answer(r, 1.0);
        assert_eq!(
            serde_json::to_string(&a.results).unwrap(),
            r#"[{"type":"image/png","data":"iVBORw0KGgo="},{"type":"text/plain","data":"42"}]"#
        );
    }

    #[test]
    fn errors_timeouts_and_notes() {
        let mut r = response();
        r.error = Some(ExecutionErrorInfo {
            name: "ZeroDivisionError".into(),
            value: "division by zero".into(),
            traceback: vec!["Traceback\n  line".into(), "ZeroDivisionError: x".into()],
        });
        r.truncated = true;
        r.state_lost = true;
        let a = answer(r.clone(), 1.0);
        let e = a.error.unwrap();
        assert_eq!(e.traceback, ["Traceback", "  line", "ZeroDivisionError: x"]);
        assert_eq!(
            a.logs.stderr,
            [
                "[sandpit] output truncated",
                "[sandpit] the kernel was restarted: earlier state is lost"
            ]
        );
        r.timed_out = true;
        let e = answer(r, 2.5).error.unwrap();
        assert_eq!(e.name, "TimeoutError");
        assert_eq!(
            e.value,
            "execution timed out after 2.5 s (the kernel keeps its state)"
        );
        assert!(e.traceback.is_empty());
    }

    #[test]
    fn bodies_are_validated_as_fastapi_does() {
        assert_eq!(code_of(br#"{"code": "print(1)"}"#).unwrap(), "print(1)");
        assert_eq!(code_of(b"").unwrap_err().to_value()["loc"], json!(["body"]));
        assert_eq!(
            code_of(b"[1]").unwrap_err().to_value()["loc"],
            json!(["body"])
        );
        assert_eq!(
            code_of(b"{}").unwrap_err().to_value()["loc"],
            json!(["body", "code"])
        );
        let e = code_of(br#"{"code": 5}"#).unwrap_err().to_value();
        assert_eq!(e["type"], "string_type");
        assert_eq!(e["input"], 5);
        let e = code_of(br#"{"code": "  "}"#).unwrap_err().to_value();
        assert_eq!(e["msg"], "Value error, Invalid code");
        assert_eq!(e["input"], "  ");
    }
}
