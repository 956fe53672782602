//! Drop-in APIs of other systems, each a thin mapping onto the same operations
//! (`docs/compat.md` is their contract):
//!
//! - [`pandora`]: Pandora Box under `/compat/pandora/`;
//! - [`code_sandbox`]: LLM Python Code Sandbox under `/compat/code-sandbox/`;
//! - [`piston`]: Piston's v2 API at `/api/v2/…` (also under `/compat/piston/`), with emkc's
//!   aliases and the v1 routes `aio-piston` calls;
//! - [`e2b`]: E2B's control plane, process and file service and code interpreter under
//!   `/compat/e2b/`, for E2B's own SDKs.
//!
//! Every route may also be reached with `/k/{key}` in front of its full path, for clients that
//! can change only their base URL. Answers are JSON (but file downloads), errors in each API's
//! own shape; request bodies are parsed as JSON whatever their `Content-Type`.
//!
//! Each API has one shape: a route takes the key ([`caller`]), finds the owner's session, calls
//! the operation, and answers a failure in the API's own error shape ([`Api::failure`]); the
//! layers differ only in what they map.

pub mod code_sandbox;
pub mod e2b;
pub mod pandora;
pub mod piston;

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Router;
use sandpit_service::{ErrorKind, Owner, ServiceError};
use serde_json::{json, Value};

use crate::state::AppState;

/// The compatibility routes, at their own paths and again behind `/k/{key}`.
pub fn router() -> Router<AppState> {
    let routes = Router::new()
        .merge(pandora::routes())
        .merge(code_sandbox::routes())
        .merge(piston::routes())
        .merge(e2b::routes());
    Router::new().merge(routes.clone()).nest("/k/{key}", routes)
}

/// The metadata tag of sessions made through a compatibility API.
pub(crate) fn tag(api: &str) -> std::collections::BTreeMap<String, String> {
    [("compat".to_string(), api.to_string())].into()
}

/// What sets one compatibility API apart, beside its routes and mappings: the shape of its
/// errors and what it tells a caller without a key.
pub(crate) trait Api {
    /// What a caller that sent no key (where the server wants one) is told.
    const NO_KEY: &'static str;
    /// Whether a caller without a key is the anonymous owner where the server allows that
    /// (the APIs whose clients send no key).
    const ANONYMOUS: bool = true;

    /// The key a request presents in a header: `Authorization: Bearer`, `API-KEY`.
    fn presented_key(parts: &Parts) -> Option<String> {
        crate::auth::presented_key(parts)
    }

    /// The API's error body for `message`, with `status`.
    fn error_body(status: StatusCode, message: &str) -> Response;

    /// An error in the API's shape, its kind attached for the metrics.
    fn error(kind: ErrorKind, status: StatusCode, message: &str) -> Response {
        with_kind(Self::error_body(status, message), kind)
    }

    /// A Sandpit failure in the API's shape, with its native status.
    fn failure(e: &ServiceError) -> Response {
        let response = Self::error(e.kind, crate::error::status(e.kind), &e.message);
        crate::error::with_retry_after(response, e)
    }
}

/// The key in `/k/{key}`, when the request came that way.
pub(crate) async fn path_key(parts: &mut Parts, state: &AppState) -> Option<String> {
    let params = RawPathParams::from_request_parts(parts, state).await.ok()?;
    let key = params
        .iter()
        .find(|(name, _)| *name == "key")
        .map(|(_, value)| value.trim().to_string());
    key
}

/// The key a compatibility request presents: a header (`Authorization: Bearer`, `API-KEY`),
/// else the `/k/{key}` segment. `Some("")` for a header sent empty.
pub(crate) async fn request_key(parts: &mut Parts, state: &AppState) -> Option<String> {
    match crate::auth::presented_key(parts) {
        Some(key) => Some(key),
        None => path_key(parts, state).await,
    }
}

/// Checks a key against the store.
pub(crate) fn verify(state: &AppState, key: &str) -> Result<Option<Owner>, ServiceError> {
    crate::auth::verify(state, key).map_err(|e| e.0)
}

/// The caller of an API whose clients may send no key: the key's owner, or the anonymous
/// owner where the server allows it; else `401` in the API's shape.
pub(crate) async fn caller<A: Api>(parts: &mut Parts, state: &AppState) -> Result<Owner, Response> {
    let key = match A::presented_key(parts) {
        Some(key) => Some(key),
        None => path_key(parts, state).await,
    };
    let key = key.filter(|k| !k.is_empty());
    owner_of::<A>(state, key.as_deref()).await
}

/// The owner of `key` (`None`: no key came), or `401` in the API's shape.
pub(crate) async fn owner_of<A: Api>(
    state: &AppState,
    key: Option<&str>,
) -> Result<Owner, Response> {
    match key {
        Some(key) => match verify(state, key) {
            Ok(Some(owner)) => Ok(owner),
            Ok(None) => Err(A::error(
                ErrorKind::Unauthorized,
                StatusCode::UNAUTHORIZED,
                "the key is unknown or was revoked",
            )),
            Err(e) => Err(A::failure(&e)),
        },
        None if A::ANONYMOUS && state.manager.config().allow_anonymous => Ok(Owner::anonymous()),
        None => Err(A::error(
            ErrorKind::Unauthorized,
            StatusCode::UNAUTHORIZED,
            A::NO_KEY,
        )),
    }
}

/// A session operation's failure as a service error; a session found gone is forgotten.
pub(crate) async fn failed(
    state: &AppState,
    owner: &Owner,
    id: &str,
    e: sandpit::Error,
) -> ServiceError {
    match state.manager.get(owner, id) {
        Ok(entry) => state.manager.failed(&entry, e).await,
        Err(gone) => gone,
    }
}

/// A JSON answer (`Content-Type: application/json`).
pub(crate) fn json_response(status: StatusCode, value: impl serde::Serialize) -> Response {
    (status, axum::Json(value)).into_response()
}

/// FastAPI's error shape: `{"detail": …}`.
pub(crate) fn detail(status: StatusCode, text: impl Into<String>) -> Response {
    json_response(status, json!({ "detail": text.into() }))
}

/// Tells the metrics layer what kind of error an answer is.
pub(crate) fn with_kind(mut response: Response, kind: ErrorKind) -> Response {
    response.extensions_mut().insert(kind);
    response
}

/// JSON whose objects keep their keys in the order given: the originals' order, which
/// clients that compare bytes or print dicts see (`serde_json`'s own map sorts keys).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// Any value (objects inside it sorted).
    Plain(Value),
    /// An object, its keys in order.
    Object(Vec<(String, Json)>),
    /// A list.
    List(Vec<Json>),
}

impl Json {
    /// The same JSON as a `serde_json` value (keys sorted).
    pub fn to_value(&self) -> Value {
        match self {
            Json::Plain(v) => v.clone(),
            Json::Object(pairs) => Value::Object(
                pairs
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Json::List(items) => Value::Array(items.iter().map(Json::to_value).collect()),
        }
    }
}

impl serde::Serialize for Json {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeSeq};
        match self {
            Json::Plain(v) => v.serialize(s),
            Json::Object(pairs) => {
                let mut map = s.serialize_map(Some(pairs.len()))?;
                for (k, v) in pairs {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Json::List(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
        }
    }
}

/// An object with its keys in this order.
pub fn obj<const N: usize>(pairs: [(&str, Json); N]) -> Json {
    Json::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
}

/// A plain JSON value.
pub fn j(value: impl Into<Value>) -> Json {
    Json::Plain(value.into())
}

/// One entry of a FastAPI validation error (`422 {"detail": [...]}`).
pub(crate) fn missing(loc: &[&str]) -> Json {
    obj([
        ("type", j("missing")),
        ("loc", j(loc.to_vec())),
        ("msg", j("Field required")),
        ("input", j(Value::Null)),
    ])
}

/// A FastAPI validation entry for a value that is not a string.
pub(crate) fn not_a_string(loc: &[&str], input: &Value) -> Json {
    obj([
        ("type", j("string_type")),
        ("loc", j(loc.to_vec())),
        ("msg", j("Input should be a valid string")),
        ("input", j(input.clone())),
    ])
}

/// `422 {"detail": entries}`.
pub(crate) fn unprocessable(entries: Vec<Json>) -> Response {
    with_kind(
        json_response(
            StatusCode::UNPROCESSABLE_ENTITY,
            obj([("detail", Json::List(entries))]),
        ),
        ErrorKind::InvalidInput,
    )
}

/// `{"type": mime, "data": value}` per entry of each mime bundle, bundle by bundle.
pub(crate) fn result_entry(mime: &str, data: &Value) -> Json {
    obj([("type", j(mime)), ("data", j(data.clone()))])
}

/// A request header as text (`None` when absent or not text).
pub(crate) fn header(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
}

/// Reads a request body within the server's limit.
pub(crate) async fn body_bytes(
    body: axum::body::Body,
    state: &AppState,
) -> Result<bytes::Bytes, ServiceError> {
    crate::body::read_body(axum::extract::Request::new(body), state)
        .await
        .map_err(|e| e.0)
}

/// Splits text into lines with Python's `str.splitlines()` rules: `\n`, `\r\n`, `\r`, `\v`,
/// `\f`, `\x1c`, `\x1d`, `\x1e`, `\x85`, `\u2028` and `\u2029` end a line; no trailing empty
/// line; `""` gives no line.
pub fn splitlines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                lines.push(std::mem::take(&mut line));
            }
            '\n' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}'
            | '\u{2029}' => lines.push(std::mem::take(&mut line)),
            c => line.push(c),
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Removes ANSI CSI sequences (`\x1b[` digits and `;`, then a letter), as the LLM Python Code
/// Sandbox's `ansi_escape` does.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("\x1b[") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let params = after
            .find(|c: char| !(c.is_ascii_digit() || c == ';'))
            .unwrap_or(after.len());
        match after[params..].chars().next() {
            Some(c) if c.is_ascii_alphabetic() => rest = &after[params + 1..],
            _ => {
                out.push_str("\x1b[");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Seconds for a message: `60`, `1.5`.
pub(crate) fn seconds_text(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        format!("{secs}")
    }
}

/// The lines Sandpit adds to a kernel answer's stderr for what only Sandpit reports.
pub(crate) fn sandpit_notes(truncated: bool, state_lost: bool) -> Vec<&'static str> {
    let mut notes = Vec::new();
    if truncated {
        notes.push("[sandpit] output truncated");
    }
    if state_lost {
        notes.push("[sandpit] the kernel was restarted: earlier state is lost");
    }
    notes
}

/// The message of a kernel call that ran past its timeout.
pub(crate) fn timeout_text(secs: f64) -> String {
    format!(
        "execution timed out after {} s (the kernel keeps its state)",
        seconds_text(secs)
    )
}

/// `(type, data)` pairs of the kernel's mime bundles, bundle by bundle.
pub(crate) fn result_entries(
    bundles: &[std::collections::BTreeMap<String, Value>],
) -> impl Iterator<Item = (&str, &Value)> {
    bundles
        .iter()
        .flat_map(|b| b.iter().map(|(mime, data)| (mime.as_str(), data)))
}

/// A relative path that stays inside the workdir when read lexically (no `..` leading out,
/// not absolute outside it); `None` otherwise. Absolute paths inside the workdir become
/// relative.
pub(crate) fn inside_workdir(path: &str, workdir: &str) -> Option<String> {
    let workdir = workdir.trim_end_matches('/');
    let relative = if let Some(rest) = path.strip_prefix('/') {
        let rest = format!("/{rest}");
        rest.strip_prefix(workdir)?
            .strip_prefix('/')
            .map(str::to_string)
            .or_else(|| (rest == workdir).then(String::new))?
    } else {
        path.to_string()
    };
    let mut parts: Vec<&str> = Vec::new();
    for part in relative.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return None;
    }
    Some(parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_as_python_does() {
        assert_eq!(splitlines(""), Vec::<String>::new());
        assert_eq!(splitlines("a\nb"), ["a", "b"]);
        assert_eq!(splitlines("a\nb\n"), ["a", "b"]);
        assert_eq!(splitlines("a\r\nb\rc\x0bd\x0ce"), ["a", "b", "c", "d", "e"]);
        assert_eq!(splitlines("\n\n"), ["", ""]);
        assert_eq!(
            splitlines("x\u{2028}y\u{85}z\x1cw\x1dv\x1eu\u{2029}"),
            ["x", "y", "z", "w", "v", "u"]
        );
    }

    #[test]
    fn ansi_sequences_go() {
        assert_eq!(
            strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x"),
            "ZeroDivisionError: x"
        );
        assert_eq!(strip_ansi("plain"), "plain");
        assert_eq!(strip_ansi("\x1b[12"), "\x1b[12");
        assert_eq!(strip_ansi("a\x1b[?b"), "a\x1b[?b");
    }

    #[test]
    fn paths_stay_in_the_workdir() {
        assert_eq!(
            inside_workdir("a/b.txt", "/sandbox").as_deref(),
            Some("a/b.txt")
        );
        assert_eq!(inside_workdir("./a//b", "/sandbox").as_deref(), Some("a/b"));
        assert_eq!(inside_workdir("a/../b", "/sandbox").as_deref(), Some("b"));
        assert_eq!(
            inside_workdir("/sandbox/x", "/sandbox").as_deref(),
            Some("x")
        );
        assert_eq!(inside_workdir("../etc/passwd", "/sandbox"), None);
        assert_eq!(inside_workdir("/etc/passwd", "/sandbox"), None);
        assert_eq!(inside_workdir("/sandboxes/x", "/sandbox"), None);
        assert_eq!(inside_workdir("/sandbox", "/sandbox"), None);
        assert_eq!(inside_workdir("", "/sandbox"), None);
    }

    #[test]
    fn seconds_read_well() {
        assert_eq!(seconds_text(60.0), "60");
        assert_eq!(seconds_text(1.5), "1.5");
    }
}
