//! LLM Python Code Sandbox (`DSXiangLi/simple_sandbox` and its fork, as their document
//! describes it) under `/compat/code-sandbox/`: sandboxes with a Python kernel, files and
//! packages. Its clients send no key: one in a header or in `/k/{key}`, else anonymous access
//! where the server allows it.

use axum::extract::{FromRequest, FromRequestParts, Multipart, RawPathParams, Request, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::Router;
use sandpit::{ExecuteOptions, FileKind, ListOptions, PackageSpec};
use sandpit_service::types::{CreateSession, ExecuteResponse};
use sandpit_service::{Busy, ErrorKind, Owner};
use serde::Serialize;
use serde_json::{json, Value};

use super::{
    caller, detail, failed, j, json_response, missing, not_a_string, obj, unprocessable, Api, Json,
};
use crate::state::AppState;

/// A sandbox's lifetime and idle timeout, as the original's 24 h sweep (capped at the
/// server's maximum).
const LIFETIME: u64 = 24 * 3600;
const PREFIX: &str = "/compat/code-sandbox";

/// What an LLM Python Code Sandbox request names: `/sandbox/{id}/...` its session, a new one
/// for `/sandbox/create`.
pub(crate) fn target(parts: &axum::http::request::Parts) -> Option<crate::forward::Target> {
    use crate::forward::{strip_key_prefix, Placement, Target};
    let path = strip_key_prefix(parts.uri.path()).strip_prefix("/compat/code-sandbox")?;
    let Some(rest) = path.strip_prefix("/sandbox/") else {
        return Some(Target::Here);
    };
    let id = rest.split('/').next().unwrap_or_default();
    Some(if id == "create" {
        Target::NewSession(Placement::default())
    } else {
        Target::Session(id.to_string())
    })
}

/// The Code Sandbox's routes.
pub fn routes() -> Router<AppState> {
    let at = |p: &str| format!("{PREFIX}{p}");
    Router::new()
        .route(&at("/health"), get(health).fallback(method_not_allowed))
        .route(
            &at("/sandbox/create"),
            post(create).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/execute"),
            post(execute).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/install"),
            post(install).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/upload"),
            post(upload).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/files"),
            get(files).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/download/{*file_path}"),
            get(download).fallback(method_not_allowed),
        )
        .route(
            &at("/sandbox/{sandbox_id}/close"),
            post(close).fallback(method_not_allowed),
        )
        .route(
            &at("/sandboxes"),
            get(sandboxes).fallback(method_not_allowed),
        )
        .route(PREFIX, any(not_found))
        .route(&at("/"), any(not_found))
        .route(&at("/{*rest}"), any(not_found))
}

async fn not_found() -> Response {
    detail(StatusCode::NOT_FOUND, "Not Found")
}

async fn method_not_allowed() -> Response {
    detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed")
}

/// The Code Sandbox: a FastAPI app, errors `{"detail": …}`.
pub(crate) struct CodeSandbox;

impl Api for CodeSandbox {
    const NO_KEY: &'static str = "a Sandpit key is required: send Authorization: Bearer sp_…, or put /k/<key> in front of /compat/code-sandbox in the base URL (or start the server with --allow-anonymous)";

    fn error_body(status: StatusCode, message: &str) -> Response {
        detail(status, message)
    }
}

/// A path parameter of the route.
async fn param(parts: &mut Parts, state: &AppState, name: &str) -> String {
    match RawPathParams::from_request_parts(parts, state).await {
        Ok(params) => params
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
            .unwrap_or_default(),
        Err(_) => String::new(),
    }
}

fn sandbox_not_found() -> Response {
    CodeSandbox::error(
        ErrorKind::NotFound,
        StatusCode::NOT_FOUND,
        "Sandbox not found",
    )
}

/// The sandbox, held for one operation.
async fn sandbox(state: &AppState, owner: &Owner, id: &str) -> Result<Busy, Response> {
    match state.manager.busy(owner, id).await {
        Ok(busy) => Ok(busy),
        Err(e) if e.kind == ErrorKind::NotFound => Err(sandbox_not_found()),
        Err(e) => Err(CodeSandbox::failure(&e)),
    }
}

/// `GET /compat/code-sandbox/health`.
pub async fn health(State(state): State<AppState>) -> Response {
    match state.manager.engine().ping().await {
        Ok(()) => json_response(StatusCode::OK, json!({"status": "healthy"})),
        Err(_) => json_response(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "unhealthy"}),
        ),
    }
}

/// `POST /compat/code-sandbox/sandbox/create`: a new sandbox with its kernel started.
pub async fn create(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let lifetime = LIFETIME.min(state.manager.config().max_lifetime);
    let request = CreateSession {
        language: "python".into(),
        timeout: Some(lifetime),
        idle_timeout: Some(lifetime),
        metadata: super::tag("code-sandbox"),
        ..Default::default()
    };
    let id = match state.manager.create(&owner, request).await {
        Ok((info, _)) => info.id,
        Err(e) => return CodeSandbox::failure(&e),
    };
    if let Err(e) = super::pandora::start_kernel(&state, &owner, &id).await {
        let _ = state.manager.destroy(&owner, &id).await;
        return CodeSandbox::failure(&e);
    }
    json_response(StatusCode::OK, json!({ "sandbox_id": id }))
}

/// True for `application/json` and `…+json` content types.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let mime = v.split(';').next().unwrap_or_default().trim();
            mime.eq_ignore_ascii_case("application/json")
                || mime.to_ascii_lowercase().ends_with("+json")
        })
        .unwrap_or(false)
}

/// FastAPI's answer to a JSON body that does not parse.
fn json_invalid(body: &[u8], e: &serde_json::Error) -> Json {
    let text = String::from_utf8_lossy(body);
    let offset: usize = text
        .split('\n')
        .take(e.line().saturating_sub(1))
        .map(|l| l.chars().count() + 1)
        .sum::<usize>()
        + e.column().saturating_sub(1);
    let reason = e.to_string();
    let reason = reason
        .rsplit_once(" at line ")
        .map(|(r, _)| r.to_string())
        .unwrap_or(reason);
    obj([
        ("type", j("json_invalid")),
        ("loc", j(json!(["body", offset]))),
        ("msg", j("JSON decode error")),
        ("input", j(json!({}))),
        ("ctx", j(json!({ "error": reason }))),
    ])
}

/// The code of an `/execute` request: `{"code": …}` as JSON, or the raw body (the document's
/// request) unless the body is declared JSON.
fn code_of(headers: &HeaderMap, body: &[u8]) -> Result<String, Json> {
    if body.is_empty() {
        return Err(missing(&["body", "code"]));
    }
    let parsed = serde_json::from_slice::<Value>(body);
    if is_json(headers) {
        let value = parsed.map_err(|e| json_invalid(body, &e))?;
        return match value.get("code") {
            Some(Value::String(code)) => Ok(code.clone()),
            Some(other) => Err(not_a_string(&["body", "code"], other)),
            None => Err(missing(&["body", "code"])),
        };
    }
    match parsed {
        Ok(Value::Object(object)) => match object.get("code") {
            Some(Value::String(code)) => Ok(code.clone()),
            _ => Ok(String::from_utf8_lossy(body).into_owned()),
        },
        _ => Ok(String::from_utf8_lossy(body).into_owned()),
    }
}

/// The answer of `/execute`: the document's shape plus the server's `results`.
#[derive(Debug, Serialize)]
pub struct Executed {
    /// Standard output, ANSI sequences removed.
    pub stdout: String,
    /// Standard error, ANSI sequences removed, with Sandpit's notes after it.
    pub stderr: String,
    /// The exception's type, e.g. `ZeroDivisionError`.
    pub error: Option<String>,
    /// The traceback as one text, ANSI sequences removed.
    pub traceback: Option<String>,
    /// `{"type": mime, "data": value}` per entry of each mime bundle.
    pub results: Vec<Json>,
}

/// Maps a kernel answer to the Code Sandbox's shape (`timeout`: the seconds it was given).
pub fn answer(r: ExecuteResponse, timeout: f64) -> Executed {
    let mut stderr = super::strip_ansi(&r.stderr);
    for note in super::sandpit_notes(r.truncated, r.state_lost) {
        if !stderr.is_empty() && !stderr.ends_with('\n') {
            stderr.push('\n');
        }
        stderr.push_str(note);
        stderr.push('\n');
    }
    let (error, traceback) = if r.timed_out {
        (
            Some("TimeoutError".to_string()),
            Some(format!("TimeoutError: {}", super::timeout_text(timeout))),
        )
    } else {
        match r.error {
            Some(e) => (
                Some(e.name),
                Some(super::strip_ansi(&e.traceback.join("\n"))),
            ),
            None => (None, None),
        }
    };
    Executed {
        stdout: super::strip_ansi(&r.stdout),
        stderr,
        error,
        traceback,
        results: super::result_entries(&r.results)
            .map(|(mime, data)| super::result_entry(mime, data))
            .collect(),
    }
}

/// `POST /compat/code-sandbox/sandbox/{sandbox_id}/execute`.
pub async fn execute(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    let body = match super::body_bytes(body, &state).await {
        Ok(b) => b,
        Err(e) => return CodeSandbox::failure(&e),
    };
    let code = match code_of(&parts.headers, &body) {
        Ok(code) => code,
        Err(problem) => return unprocessable(vec![problem]),
    };
    let busy = match sandbox(&state, &owner, &id).await {
        Ok(busy) => busy,
        Err(response) => return response,
    };
    let entry = match state.manager.get(&owner, &id) {
        Ok(entry) => entry,
        Err(_) => return sandbox_not_found(),
    };
    let timeout = entry.record().run_timeout_ms as f64 / 1000.0;
    let result = busy
        .session()
        .execute_with(&code, ExecuteOptions::new())
        .await;
    drop(busy);
    match result {
        Ok(r) => json_response(StatusCode::OK, answer(ExecuteResponse::from(r), timeout)),
        Err(e) => CodeSandbox::failure(&state.manager.failed(&entry, e).await),
    }
}

/// `POST /compat/code-sandbox/sandbox/{sandbox_id}/install`: `{"package_name": …}`; a failed
/// install is a `200` with `success: false`, as the original's.
pub async fn install(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    let body = match super::body_bytes(body, &state).await {
        Ok(b) => b,
        Err(e) => return CodeSandbox::failure(&e),
    };
    let value = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v,
        Err(_) if body.iter().all(u8::is_ascii_whitespace) => {
            return unprocessable(vec![missing(&["body"])])
        }
        Err(e) => return unprocessable(vec![json_invalid(&body, &e)]),
    };
    let name = match value.get("package_name") {
        Some(Value::String(name)) => name.clone(),
        Some(other) => return unprocessable(vec![not_a_string(&["body", "package_name"], other)]),
        None => return unprocessable(vec![missing(&["body", "package_name"])]),
    };
    let busy = match sandbox(&state, &owner, &id).await {
        Ok(busy) => busy,
        Err(response) => return response,
    };
    let installed = busy
        .session()
        .install_packages(&[PackageSpec::new(name.clone())], false)
        .await;
    drop(busy);
    match installed {
        Ok(specs) => json_response(
            StatusCode::OK,
            obj([
                ("success", j(true)),
                ("stdout", j(format!("installed: {}\n", specs.join(" ")))),
                ("stderr", j("")),
                ("message", j(format!("Installed {name}"))),
            ]),
        ),
        Err(e) => {
            let e = failed(&state, &owner, &id, e).await;
            // Failures that only Sandpit has keep their status; the installer's own failure
            // (or a name it refuses) is the original's `success: false`.
            if e.kind == ErrorKind::NotFound {
                return sandbox_not_found();
            }
            if matches!(
                e.kind,
                ErrorKind::Gone | ErrorKind::EngineUnavailable | ErrorKind::Exhausted
            ) {
                return CodeSandbox::failure(&e);
            }
            json_response(
                StatusCode::OK,
                obj([
                    ("success", j(false)),
                    ("stdout", j("")),
                    ("stderr", j(e.message)),
                    ("message", j(format!("Failed to install {name}"))),
                ]),
            )
        }
    }
}

fn access_denied() -> Response {
    CodeSandbox::error(
        ErrorKind::Refused,
        StatusCode::FORBIDDEN,
        "File access denied",
    )
}

fn file_not_found() -> Response {
    CodeSandbox::error(ErrorKind::NotFound, StatusCode::NOT_FOUND, "File not found")
}

/// `POST /compat/code-sandbox/sandbox/{sandbox_id}/upload`: the `file` part goes to the
/// form field `file_path`, else the query parameter `file_path`, else the part's file name.
pub async fn upload(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, body) = req.into_parts();
    let query_path =
        crate::routes::sessions::serde_urlencoded_pairs(parts.uri.query().unwrap_or_default())
            .into_iter()
            .find(|(k, _)| k == "file_path")
            .map(|(_, v)| v);
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    let Ok(mut form) = Multipart::from_request(Request::from_parts(parts, body), &state).await
    else {
        return unprocessable(vec![missing(&["body", "file"])]);
    };
    let mut file: Option<(Option<String>, bytes::Bytes)> = None;
    let mut form_path: Option<String> = None;
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return multipart_error(e),
        };
        match field.name() {
            Some("file") if file.is_none() => {
                let name = field.file_name().map(str::to_string);
                match field.bytes().await {
                    Ok(data) => file = Some((name, data)),
                    Err(e) => return multipart_error(e),
                }
            }
            Some("file_path") => match field.text().await {
                Ok(text) => form_path = Some(text),
                Err(e) => return multipart_error(e),
            },
            _ => {}
        }
    }
    let Some((file_name, data)) = file else {
        return unprocessable(vec![missing(&["body", "file"])]);
    };
    let target = form_path
        .filter(|p| !p.trim().is_empty())
        .or_else(|| query_path.filter(|p| !p.trim().is_empty()))
        .or_else(|| file_name.map(|n| n.rsplit(['/', '\\']).next().unwrap_or_default().to_string()))
        .filter(|p| !p.trim().is_empty());
    let Some(target) = target else {
        return unprocessable(vec![missing(&["body", "file"])]);
    };
    let busy = match sandbox(&state, &owner, &id).await {
        Ok(busy) => busy,
        Err(response) => return response,
    };
    let Some(relative) = super::inside_workdir(&target, busy.session().workdir()) else {
        return access_denied();
    };
    let written = busy.session().files().write(&relative, &data, None).await;
    drop(busy);
    match written {
        Ok(info) => json_response(StatusCode::OK, json!({ "file_path": info.path })),
        Err(sandpit::Error::InvalidPath { .. }) => access_denied(),
        Err(e) => CodeSandbox::failure(&failed(&state, &owner, &id, e).await),
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> Response {
    let text = e.body_text();
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return CodeSandbox::error(
            ErrorKind::TooLarge,
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the upload is too large: {text}"),
        );
    }
    CodeSandbox::error(
        ErrorKind::InvalidInput,
        StatusCode::BAD_REQUEST,
        &format!("There was an error parsing the body: {text}"),
    )
}

/// `GET /compat/code-sandbox/sandbox/{sandbox_id}/files`: every regular file under the
/// workdir, recursively, sorted by path.
pub async fn files(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    let busy = match sandbox(&state, &owner, &id).await {
        Ok(busy) => busy,
        Err(response) => return response,
    };
    let options = ListOptions {
        recursive: true,
        pattern: None,
        ..Default::default()
    };
    let listed = busy.session().files().list(".", &options).await;
    drop(busy);
    match listed {
        Ok(entries) => json_response(
            StatusCode::OK,
            entries
                .into_iter()
                .filter(|e| e.kind == FileKind::File)
                .map(|e| obj([("path", j(e.path)), ("size", j(e.size))]))
                .collect::<Vec<_>>(),
        ),
        Err(e) => CodeSandbox::failure(&failed(&state, &owner, &id, e).await),
    }
}

/// `GET /compat/code-sandbox/sandbox/{sandbox_id}/download/{file_path}`: the file's bytes.
pub async fn download(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    let path = param(&mut parts, &state, "file_path").await;
    let busy = match sandbox(&state, &owner, &id).await {
        Ok(busy) => busy,
        Err(response) => return response,
    };
    let Some(relative) = super::inside_workdir(&path, busy.session().workdir()) else {
        return access_denied();
    };
    let files = busy.session().files();
    let read = files.read(&relative).await;
    let read = match read {
        Ok(bytes) => Ok(bytes),
        Err(sandpit::Error::PathNotFound { .. }) => return file_not_found(),
        // A folder is "not found" as the original's `os.path.isfile`; anything else that the
        // sandbox refuses leads out of the workdir (a symlink).
        Err(sandpit::Error::InvalidPath { .. }) => {
            return match files.info(&relative).await {
                Ok(info) if info.kind == FileKind::Dir => file_not_found(),
                _ => access_denied(),
            }
        }
        Err(e) => Err(e),
    };
    drop(busy);
    match read {
        Ok(bytes) => {
            let name = relative.rsplit('/').next().unwrap_or(&relative).to_string();
            (
                [
                    (header::CONTENT_TYPE, mime_of(&name).to_string()),
                    (header::CONTENT_DISPOSITION, disposition(&name)),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => CodeSandbox::failure(&failed(&state, &owner, &id, e).await),
    }
}

/// `attachment; filename="…"`, or RFC 5987's `filename*=` when the name needs quoting (as
/// Starlette's `FileResponse`).
pub fn disposition(name: &str) -> String {
    let mut quoted = String::new();
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            quoted.push(b as char);
        } else {
            quoted.push_str(&format!("%{b:02X}"));
        }
    }
    if quoted == name {
        format!("attachment; filename=\"{name}\"")
    } else {
        format!("attachment; filename*=utf-8''{quoted}")
    }
}

/// A content type from a file name's extension (`application/octet-stream` when unknown).
pub fn mime_of(name: &str) -> &'static str {
    let extension = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match extension.as_str() {
        "txt" | "log" | "md" | "py" | "rb" | "go" | "java" | "c" | "cpp" | "h" => {
            "text/plain; charset=utf-8"
        }
        "csv" => "text/csv; charset=utf-8",
        "tsv" => "text/tab-separated-values; charset=utf-8",
        "html" | "htm" => "text/html; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "json" => "application/json",
        "xml" => "application/xml",
        "yaml" | "yml" => "application/yaml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "webp" => "image/webp",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" => "application/gzip",
        "tar" => "application/x-tar",
        "xlsx" => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "parquet" => "application/vnd.apache.parquet",
        _ => "application/octet-stream",
    }
}

/// `POST /compat/code-sandbox/sandbox/{sandbox_id}/close`.
pub async fn close(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let id = param(&mut parts, &state, "sandbox_id").await;
    match state.manager.destroy(&owner, &id).await {
        Ok(()) => json_response(
            StatusCode::OK,
            obj([("status", j("success")), ("message", j("Sandbox closed"))]),
        ),
        Err(e) if e.kind == ErrorKind::NotFound => sandbox_not_found(),
        Err(e) => CodeSandbox::failure(&e),
    }
}

/// `GET /compat/code-sandbox/sandboxes`: the caller's sandboxes, keyed by id, with their
/// creation time in Unix seconds.
pub async fn sandboxes(State(state): State<AppState>, req: Request) -> Response {
    let (mut parts, _) = req.into_parts();
    let owner = match caller::<CodeSandbox>(&mut parts, &state).await {
        Ok(owner) => owner,
        Err(response) => return response,
    };
    let listed = state
        .manager
        .list(&owner, None, None, &super::tag("code-sandbox"))
        .await;
    match listed {
        Ok(sessions) => {
            let mut map = serde_json::Map::new();
            for s in sessions {
                if let Ok(entry) = state.manager.get(&owner, &s.id) {
                    map.insert(s.id, json!({"created_at": entry.record().created as f64}));
                }
            }
            json_response(StatusCode::OK, Value::Object(map))
        }
        Err(e) => CodeSandbox::failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn typed(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn execute_bodies_raw_or_json() {
        let none = HeaderMap::new();
        assert_eq!(code_of(&none, b"print('hi')").unwrap(), "print('hi')");
        assert_eq!(code_of(&none, br#"{"code": "x = 1"}"#).unwrap(), "x = 1");
        assert_eq!(code_of(&none, b"[1, 2]").unwrap(), "[1, 2]");
        assert_eq!(code_of(&none, b"{\"a\": 1}").unwrap(), "{\"a\": 1}");
        let json_type = typed("application/json");
        assert_eq!(code_of(&json_type, br#"{"code": "x"}"#).unwrap(), "x");
        assert_eq!(
            code_of(&json_type, b"print(1)").unwrap_err().to_value()["type"],
            "json_invalid"
        );
        assert_eq!(
            code_of(&typed("application/vnd.x+json; charset=utf-8"), b"{}")
                .unwrap_err()
                .to_value()["loc"],
            json!(["body", "code"])
        );
        assert_eq!(
            code_of(&json_type, br#"{"code": 1}"#)
                .unwrap_err()
                .to_value()["type"],
            "string_type"
        );
        assert_eq!(
            code_of(&none, b"").unwrap_err().to_value()["loc"],
            json!(["body", "code"])
        );
    }

    #[test]
    fn invalid_json_says_where() {
        let e = serde_json::from_slice::<Value>(b"{\n  x").unwrap_err();
        let v = json_invalid(b"{\n  x", &e).to_value();
        assert_eq!(v["loc"], json!(["body", 4]));
        assert_eq!(v["msg"], "JSON decode error");
    }

    #[test]
    fn answers_take_the_document_shape() {
        let r = ExecuteResponse {
            results: vec![[("text/plain".to_string(), json!("42"))].into()],
            stdout: "\x1b[1mHello\x1b[0m\n".into(),
            stderr: "warn".into(),
            error: None,
            timed_out: false,
            truncated: true,
            state_lost: false,
            kernel_started: false,
            duration_ms: 1,
        };
        let text = serde_json::to_string(&answer(r, 60.0)).unwrap();
        assert_eq!(
            text,
            r#"{"stdout":"Hello\n","stderr":"warn\n[sandpit] output truncated\n","error":null,"traceback":null,"results":[{"type":"text/plain","data":"42"}]}"#
        );
    }

    #[test]
    fn downloads_name_their_file() {
        assert_eq!(
            disposition("processed_data.csv"),
            "attachment; filename=\"processed_data.csv\""
        );
        assert_eq!(
            disposition("données.csv"),
            "attachment; filename*=utf-8''donn%C3%A9es.csv"
        );
        assert_eq!(mime_of("a.PNG"), "image/png");
        assert_eq!(mime_of("noext"), "application/octet-stream");
    }
}
