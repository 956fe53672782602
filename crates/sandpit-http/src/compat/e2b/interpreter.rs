//! The code interpreter (port 49999): `POST /execute` streams newline-delimited JSON as the
//! code runs (`number_of_executions`, `stdout` and `stderr` as produced, `result` mapped from
//! the kernel's mime bundles and figures, `error`, `end_of_execution`) in the context the
//! request names ([`super::contexts`]). A client that goes away interrupts the code: the
//! execution lives inside the response, and dropping it stops the kernel's request.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use sandpit::{ExecuteOptions, ExecuteResult, StreamKind};
use sandpit_service::{now, ErrorKind};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::contexts::{self, plain, Interpreter};
use super::dataplane::Refusal;
use super::env_cells::env_cells;
use crate::compat::failed;
use crate::state::AppState;

/// `POST /execute`'s body.
#[derive(Debug, Deserialize)]
pub struct ExecutionRequest {
    /// The code.
    pub code: String,
    /// The context to run it in.
    #[serde(default)]
    pub context_id: Option<String>,
    /// The language whose default context runs it.
    #[serde(default)]
    pub language: Option<String>,
    /// Environment variables while it runs.
    #[serde(default)]
    pub env_vars: Option<BTreeMap<String, String>>,
}

/// The executions each context has run (E2B's `execution_count`), by sandbox and context.
fn counts() -> &'static Mutex<HashMap<String, u64>> {
    static COUNTS: OnceLock<Mutex<HashMap<String, u64>>> = OnceLock::new();
    COUNTS.get_or_init(Default::default)
}

fn next_count(sandbox: &str, context: &str) -> u64 {
    let mut counts = counts().lock().unwrap_or_else(|e| e.into_inner());
    let n = counts.entry(format!("{sandbox}/{context}")).or_default();
    *n += 1;
    *n
}

/// Forgets a sandbox's execution counts (it was killed).
pub fn forget(sandbox: &str) {
    let prefix = format!("{sandbox}/");
    counts()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|k, _| !k.starts_with(&prefix));
}

/// One line of the answer.
fn line(value: Value) -> Bytes {
    let mut text = serde_json::to_vec(&value).unwrap_or_default();
    text.push(b'\n');
    Bytes::from(text)
}

fn timestamp() -> String {
    sandpit::time::rfc3339(std::time::SystemTime::now())
}

/// Text from output bytes as they come: a character split between two chunks waits for its
/// end.
#[derive(Debug, Default)]
pub struct Utf8Joiner {
    pending: Vec<u8>,
}

impl Utf8Joiner {
    /// The complete text so far.
    pub fn push(&mut self, data: &[u8]) -> String {
        self.pending.extend_from_slice(data);
        match std::str::from_utf8(&self.pending) {
            Ok(text) => {
                let text = text.to_string();
                self.pending.clear();
                text
            }
            Err(e) if e.error_len().is_none() => {
                let valid = e.valid_up_to();
                let text = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                text
            }
            Err(_) => String::from_utf8_lossy(&std::mem::take(&mut self.pending)).into_owned(),
        }
    }
}

/// E2B's `Result` from one mime bundle.
pub fn result(bundle: &BTreeMap<String, Value>, is_main: bool) -> Value {
    let mut data = bundle.clone();
    let mut out = Map::new();
    out.insert("type".into(), json!("result"));
    if let Some(Value::String(mut text)) = data.remove("text/plain") {
        // The code interpreter strips the quotes of a string's repr.
        let quoted = text.len() >= 2
            && ((text.starts_with('\'') && text.ends_with('\''))
                || (text.starts_with('"') && text.ends_with('"')));
        if quoted {
            text = text[1..text.len() - 1].to_string();
        }
        out.insert("text".into(), json!(text));
    }
    for (mime, field) in [
        ("text/html", "html"),
        ("text/markdown", "markdown"),
        ("image/svg+xml", "svg"),
        ("image/png", "png"),
        ("image/jpeg", "jpeg"),
        ("application/pdf", "pdf"),
        ("text/latex", "latex"),
        ("application/json", "json"),
        ("application/javascript", "javascript"),
        ("e2b/data", "data"),
        ("e2b/chart", "chart"),
    ] {
        if let Some(v) = data.remove(mime) {
            out.insert(field.into(), v);
        }
    }
    if !data.is_empty() {
        out.insert("extra".into(), json!(data));
    }
    out.insert("is_main_result".into(), json!(is_main));
    Value::Object(out)
}

/// The lines after the output: results (the one the kernel marks as the cell's own value is
/// the main result), the error, Sandpit's notes.
pub fn closing_lines(r: &ExecuteResult, timeout: Duration) -> Vec<Value> {
    let mut lines: Vec<Value> = r
        .results
        .iter()
        .enumerate()
        .map(|(i, b)| result(&b.0, Some(i) == r.main_result))
        .collect();
    if r.timed_out {
        lines.push(json!({
            "type": "error",
            "name": "TimeoutError",
            "value": format!("the execution ran past {} s and was interrupted", timeout.as_secs()),
            "traceback": "",
        }));
    } else if let Some(e) = &r.error {
        lines.push(json!({
            "type": "error",
            "name": e.name,
            "value": e.value,
            "traceback": e.traceback.join("\n"),
        }));
    }
    for note in crate::compat::sandpit_notes(r.truncated, r.state_lost) {
        lines
            .push(json!({"type": "stderr", "text": format!("{note}\n"), "timestamp": timestamp()}));
    }
    lines
}

/// `POST /execute`.
pub async fn execute(
    State(state): State<AppState>,
    Interpreter(sandbox): Interpreter,
    body: Body,
) -> Response {
    let bytes = match crate::compat::body_bytes(body, &state).await {
        Ok(b) => b,
        Err(e) => return plain(crate::error::status(e.kind), e.kind, e.message),
    };
    let request: ExecutionRequest = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return plain(
                StatusCode::UNPROCESSABLE_ENTITY,
                ErrorKind::InvalidInput,
                format!("the body is not an execution request ({{code, context_id, language, env_vars}}): {e}"),
            )
        }
    };
    if request.context_id.is_some() && request.language.is_some() {
        return plain(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidInput,
            "Only one of context_id or language can be provided",
        );
    }
    let (context, language) = match contexts::resolve(
        &state,
        &sandbox,
        request.context_id.as_deref(),
        request.language.as_deref(),
    )
    .await
    {
        Ok(c) => c,
        Err(response) => return response,
    };
    let env = request.env_vars.unwrap_or_default();
    let env = if env.is_empty() {
        None
    } else {
        match env_cells(language, &env) {
            Some(cells) => Some(cells),
            None => {
                return plain(
                    StatusCode::BAD_REQUEST,
                    ErrorKind::Unsupported,
                    format!(
                        "envs for one execution are not offered in {} contexts; set them as the sandbox's envs at its create",
                        contexts::language_name(language)
                    ),
                )
            }
        }
    };
    let busy = match state.manager.busy(&sandbox.owner, &sandbox.id).await {
        Ok(b) => b,
        Err(e) if e.kind == ErrorKind::NotFound => return Refusal::NotFound(sandbox.id).response(),
        Err(e) => return plain(crate::error::status(e.kind), e.kind, e.message),
    };
    let remaining = sandbox
        .entry
        .record()
        .expires_at
        .saturating_sub(now())
        .clamp(1, 86_400);
    let timeout = Duration::from_secs(remaining);
    let count = next_count(&sandbox.id, &context);
    let context = context.clone();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let _ = tx.send(line(
        json!({"type": "number_of_executions", "execution_count": count}),
    ));
    let sink = tx.clone();
    let joiners: Mutex<[Utf8Joiner; 2]> = Mutex::default();
    let options = ExecuteOptions::new()
        .timeout(timeout)
        .on_output(move |chunk| {
            let (index, kind) = match chunk.stream {
                StreamKind::Stdout => (0, "stdout"),
                StreamKind::Stderr => (1, "stderr"),
            };
            let text = joiners
                .lock()
                .map(|mut j| j[index].push(&chunk.data))
                .unwrap_or_default();
            if !text.is_empty() {
                let _ = sink.send(line(
                    json!({"type": kind, "text": text, "timestamp": timestamp()}),
                ));
            }
        });
    let code = request.code;
    let state2 = state.clone();
    let run = async move {
        let session = busy.session();
        let quiet = || ExecuteOptions::new().timeout(timeout);
        if let Some(env) = &env {
            let _ = session.execute_in(&context, &env.set, quiet()).await;
        }
        let result = session.execute_in(&context, &code, options).await;
        if let Some(env) = &env {
            let _ = session.execute_in(&context, env.restore, quiet()).await;
        }
        drop(busy);
        match result {
            Ok(r) => {
                for value in closing_lines(&r, timeout) {
                    let _ = tx.send(line(value));
                }
            }
            Err(e) => {
                let e = failed(&state2, &sandbox.owner, &sandbox.id, e).await;
                let _ = tx.send(line(json!({
                    "type": "error",
                    "name": "SandpitError",
                    "value": e.message,
                    "traceback": "",
                })));
            }
        }
        let _ = tx.send(line(json!({"type": "end_of_execution"})));
    };
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|line| (line, rx))
    });
    // The execution is polled with the lines: when the client goes away, both are dropped,
    // and dropping the execution interrupts the kernel's request.
    let finished = futures_util::stream::once(run).filter_map(|()| async { None::<Bytes> });
    let body =
        futures_util::stream::select(lines, finished).map(Ok::<Bytes, std::convert::Infallible>);
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(body),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use sandpit::{ExecutionError, MimeBundle};

    use super::*;

    #[test]
    fn text_waits_for_a_split_character() {
        let mut j = Utf8Joiner::default();
        let e = "é".as_bytes();
        assert_eq!(j.push(b"a"), "a");
        assert_eq!(j.push(&e[..1]), "");
        assert_eq!(j.push(&e[1..]), "é");
        assert_eq!(j.push(&[0xff, b'b']), "\u{fffd}b");
    }

    #[test]
    fn bundles_become_results() {
        let bundle: BTreeMap<String, Value> = [
            ("text/plain".to_string(), json!("'hi'")),
            ("text/html".to_string(), json!("<b>hi</b>")),
            ("application/x-custom".to_string(), json!(1)),
        ]
        .into();
        let r = result(&bundle, true);
        assert_eq!(r["text"], "hi");
        assert_eq!(r["html"], "<b>hi</b>");
        assert_eq!(r["extra"]["application/x-custom"], 1);
        assert_eq!(r["is_main_result"], true);
    }

    #[test]
    fn the_cells_value_is_main_and_figures_are_not() {
        let value = MimeBundle([("text/plain".to_string(), json!("42"))].into());
        let figure = MimeBundle(
            [
                (
                    "text/plain".to_string(),
                    json!("<Figure size 640x480 with 1 Axes>"),
                ),
                ("image/png".to_string(), json!("iVBO")),
            ]
            .into(),
        );
        let r = ExecuteResult {
            results: vec![value, figure],
            main_result: Some(0),
            stdout: String::new(),
            stderr: String::new(),
            error: Some(ExecutionError {
                name: "ValueError".into(),
                value: "x".into(),
                traceback: vec!["Traceback".into(), "ValueError: x".into()],
            }),
            timed_out: false,
            truncated: false,
            state_lost: false,
            kernel_started: false,
            duration: Duration::from_millis(1),
        };
        let lines = closing_lines(&r, Duration::from_secs(5));
        assert_eq!(lines[0]["is_main_result"], true);
        assert_eq!(lines[1]["is_main_result"], false);
        assert_eq!(lines[1]["png"], "iVBO");
        assert_eq!(lines[2]["type"], "error");
        assert_eq!(lines[2]["traceback"], "Traceback\nValueError: x");
    }
}
