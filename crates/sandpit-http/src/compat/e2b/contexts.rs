//! The code interpreter's contexts: each its own kernel in the sandbox. The sandbox's own
//! language runs in its default context (`default`); `/execute` with another `language` uses
//! (and makes, the first time) that language's default context; `POST /contexts` makes one of
//! its own. Languages: `python`, `javascript` (`js`), `typescript` (`ts`, run as JavaScript:
//! code without type annotations), `ruby`.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use axum::body::Body;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sandpit::{Language, DEFAULT_CONTEXT};
use sandpit_service::ErrorKind;
use serde::Deserialize;
use serde_json::{json, Value};

use super::dataplane::{self, Refusal, Sandbox};
use super::{HOME, INTERPRETER_PORT};
use crate::compat::failed;
use crate::state::AppState;

/// The code interpreter's plain-text errors (FastAPI's `PlainTextResponse`).
pub fn plain(status: StatusCode, kind: ErrorKind, text: impl Into<String>) -> Response {
    let mut response = (status, text.into()).into_response();
    response.extensions_mut().insert(kind);
    response
}

/// The sandbox of a code-interpreter request, opened by its token; a refusal answers in
/// the interpreter's own shape.
pub struct Interpreter(pub Sandbox);

impl FromRequestParts<AppState> for Interpreter {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        dataplane::open(state, parts, INTERPRETER_PORT)
            .map(Interpreter)
            .map_err(|refusal| refusal.response())
    }
}

/// E2B's name for a language, as its `normalize_language` reads one.
pub fn normalize_language(language: Option<&str>) -> String {
    match language.map(|l| l.trim().to_ascii_lowercase()) {
        None => "python".into(),
        Some(l) if l.is_empty() => "python".into(),
        Some(l) if l == "js" => "javascript".into(),
        Some(l) if l == "ts" => "typescript".into(),
        Some(l) => l,
    }
}

/// The kernel that runs an E2B language.
pub fn kernel_language(name: &str) -> Option<Language> {
    match name {
        "python" => Some(Language::Python),
        "javascript" | "typescript" => Some(Language::JavaScript),
        "ruby" => Some(Language::Ruby),
        _ => None,
    }
}

/// E2B's name of a kernel's language.
pub fn language_name(language: Language) -> &'static str {
    match language {
        Language::JavaScript => "javascript",
        other => other.name(),
    }
}

fn unknown_language(name: &str) -> Response {
    plain(
        StatusCode::BAD_REQUEST,
        ErrorKind::InvalidInput,
        format!(
            "language {name:?} has no kernel here: python, javascript (js), typescript (ts, run as JavaScript) and ruby do"
        ),
    )
}

/// Per sandbox: the E2B language of each context made here, and each language's default
/// context.
#[derive(Debug, Default)]
struct Known {
    labels: HashMap<String, String>,
    defaults: HashMap<String, String>,
}

fn known() -> &'static Mutex<HashMap<String, Known>> {
    static KNOWN: OnceLock<Mutex<HashMap<String, Known>>> = OnceLock::new();
    KNOWN.get_or_init(Default::default)
}

fn with_known<T>(sandbox: &str, f: impl FnOnce(&mut Known) -> T) -> T {
    let mut all = known().lock().unwrap_or_else(|e| e.into_inner());
    f(all.entry(sandbox.to_string()).or_default())
}

/// Forgets what was known of a sandbox (it was killed).
pub fn forget(sandbox: &str) {
    known()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(sandbox);
}

/// Makes a context of `language` (an E2B name) in `cwd`; its id.
async fn make(
    state: &AppState,
    sandbox: &Sandbox,
    language: &str,
    cwd: Option<String>,
) -> Result<String, Response> {
    let Some(kernel) = kernel_language(language) else {
        return Err(unknown_language(language));
    };
    let busy = state
        .manager
        .hold(&sandbox.owner, &sandbox.id)
        .await
        .map_err(|_| Refusal::NotFound(sandbox.id.clone()).response())?;
    let made = busy
        .session()
        .create_context(
            sandpit::runner(kernel),
            Some(cwd.unwrap_or_else(|| HOME.into())),
        )
        .await;
    drop(busy);
    match made {
        Ok(id) => {
            with_known(&sandbox.id, |k| {
                k.labels.insert(id.clone(), language.into())
            });
            Ok(id)
        }
        Err(e) => {
            let e = failed(state, &sandbox.owner, &sandbox.id, e).await;
            Err(plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                e.kind,
                format!("Failed to create context: {}", e.message),
            ))
        }
    }
}

/// The context a request names: `context_id`, or the default context of `language` (made the
/// first time), or the sandbox's own; with its kernel's language.
pub async fn resolve(
    state: &AppState,
    sandbox: &Sandbox,
    context_id: Option<&str>,
    language: Option<&str>,
) -> Result<(String, Language), Response> {
    let session = &sandbox.entry.session;
    let own = sandbox.entry.language;
    if let Some(id) = context_id {
        if id == DEFAULT_CONTEXT {
            return Ok((id.to_string(), own));
        }
        return session
            .contexts()
            .into_iter()
            .find(|c| c.id == id)
            .map(|c| (c.id, c.language))
            .ok_or_else(|| {
                plain(
                    StatusCode::NOT_FOUND,
                    ErrorKind::NotFound,
                    format!("Context {id} not found"),
                )
            });
    }
    let name = normalize_language(language);
    let Some(kernel) = kernel_language(&name) else {
        return Err(unknown_language(&name));
    };
    if kernel == own && name != "typescript" {
        return Ok((DEFAULT_CONTEXT.to_string(), own));
    }
    let listed: Vec<String> = session.contexts().into_iter().map(|c| c.id).collect();
    let known_default = with_known(&sandbox.id, |k| k.defaults.get(&name).cloned())
        .filter(|id| listed.contains(id));
    if let Some(id) = known_default {
        return Ok((id, kernel));
    }
    // Two first calls at once may both make one; the later one is kept as the default.
    let id = make(state, sandbox, &name, None).await?;
    with_known(&sandbox.id, |k| k.defaults.insert(name, id.clone()));
    Ok((id, kernel))
}

/// A context as E2B lists one.
fn shown(sandbox: &str, id: &str, language: Language, cwd: &str) -> Value {
    let label = with_known(sandbox, |k| k.labels.get(id).cloned())
        .unwrap_or_else(|| language_name(language).to_string());
    json!({ "id": id, "language": label, "cwd": cwd })
}

/// `GET /contexts`: the sandbox's contexts, its default one first.
pub async fn list_contexts(Interpreter(sandbox): Interpreter) -> Response {
    let mut listed = vec![shown(
        &sandbox.id,
        DEFAULT_CONTEXT,
        sandbox.entry.language,
        HOME,
    )];
    for c in sandbox.entry.session.contexts() {
        if c.id != DEFAULT_CONTEXT {
            listed.push(shown(&sandbox.id, &c.id, c.language, &c.cwd));
        }
    }
    (StatusCode::OK, axum::Json(listed)).into_response()
}

/// `POST /contexts`'s body.
#[derive(Debug, Default, Deserialize)]
struct CreateContext {
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    cwd: Option<String>,
}

/// `POST /contexts`: a new context (its own kernel), `{id, language, cwd}`.
pub async fn create_context(
    State(state): State<AppState>,
    Interpreter(sandbox): Interpreter,
    body: Body,
) -> Response {
    let bytes = match crate::compat::body_bytes(body, &state).await {
        Ok(b) => b,
        Err(e) => return plain(crate::error::status(e.kind), e.kind, e.message),
    };
    let request: CreateContext = if bytes.iter().all(u8::is_ascii_whitespace) {
        CreateContext::default()
    } else {
        match serde_json::from_slice(&bytes) {
            Ok(r) => r,
            Err(e) => {
                return plain(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    ErrorKind::InvalidInput,
                    format!("the body is not a context ({{language, cwd}}): {e}"),
                )
            }
        }
    };
    let language = normalize_language(request.language.as_deref());
    let cwd = request
        .cwd
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| HOME.into());
    match make(&state, &sandbox, &language, Some(cwd.clone())).await {
        Ok(id) => (
            StatusCode::OK,
            axum::Json(json!({ "id": id, "language": language, "cwd": cwd })),
        )
            .into_response(),
        Err(response) => response,
    }
}

fn not_found(context: &str) -> Response {
    plain(
        StatusCode::NOT_FOUND,
        ErrorKind::NotFound,
        format!("Context {context} not found"),
    )
}

/// `POST /contexts/{id}/restart`: a fresh kernel (its state is gone).
pub async fn restart_context(
    State(state): State<AppState>,
    Path(context): Path<String>,
    Interpreter(sandbox): Interpreter,
) -> Response {
    let busy = match state.manager.hold(&sandbox.owner, &sandbox.id).await {
        Ok(b) => b,
        Err(_) => return Refusal::NotFound(sandbox.id).response(),
    };
    let restarted = busy.session().restart_context(&context).await;
    drop(busy);
    match restarted {
        Ok(()) => StatusCode::OK.into_response(),
        Err(sandpit::Error::ContextNotFound { .. }) => not_found(&context),
        Err(e) => {
            let e = failed(&state, &sandbox.owner, &sandbox.id, e).await;
            plain(crate::error::status(e.kind), e.kind, e.message)
        }
    }
}

/// `DELETE /contexts/{id}`: its kernel stops and it is gone; the default context stays.
pub async fn remove_context(
    State(state): State<AppState>,
    Path(context): Path<String>,
    Interpreter(sandbox): Interpreter,
) -> Response {
    if context == DEFAULT_CONTEXT {
        return plain(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidInput,
            "the default context cannot be removed: restart it to clear its state",
        );
    }
    let busy = match state.manager.hold(&sandbox.owner, &sandbox.id).await {
        Ok(b) => b,
        Err(_) => return Refusal::NotFound(sandbox.id).response(),
    };
    let removed = busy.session().remove_context(&context).await;
    drop(busy);
    match removed {
        Ok(()) => {
            with_known(&sandbox.id, |k| {
                k.labels.remove(&context);
                k.defaults.retain(|_, id| *id != context);
            });
            StatusCode::OK.into_response()
        }
        Err(sandpit::Error::ContextNotFound { .. }) => not_found(&context),
        Err(e) => {
            let e = failed(&state, &sandbox.owner, &sandbox.id, e).await;
            plain(crate::error::status(e.kind), e.kind, e.message)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_normalize_as_e2b_does() {
        assert_eq!(normalize_language(None), "python");
        assert_eq!(normalize_language(Some("JS")), "javascript");
        assert_eq!(normalize_language(Some("ts")), "typescript");
        assert_eq!(normalize_language(Some(" Python ")), "python");
        assert_eq!(kernel_language("typescript"), Some(Language::JavaScript));
        assert_eq!(kernel_language("r"), None);
    }
}
