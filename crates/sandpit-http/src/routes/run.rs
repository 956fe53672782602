//! Running code: `execute` (the kernel), `run` (a program), `commands` (a shell command), each
//! as one JSON answer or, with `Accept: text/event-stream`, as server-sent events; and the
//! one-shot `POST /v1/run`. A client that goes away stops the work: the work is part of the
//! response, so dropping the response drops (and kills) it.

use std::convert::Infallible;
use std::future::Future;
use std::time::Instant;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use sandpit::{CommandOptions, ExecuteOptions, OutputChunk, RunOptions, StreamKind};
use sandpit_service::types::{
    CommandRequest, ExecuteRequest, ExecuteResponse, OneShotRequest, RunRequest, RunResponse,
    StepResponse,
};
use sandpit_service::{seconds, Busy, ServiceError};
use serde::Serialize;
use tokio::sync::mpsc;

use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::{body as error_body, ApiResult};
use crate::state::AppState;

/// True when the client asked for server-sent events.
fn wants_events(headers: &HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Answers `work` as JSON, or as events: `output` while it runs, then `result` (or `error`).
async fn answer<T, F>(events: bool, rx: mpsc::UnboundedReceiver<OutputChunk>, work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ServiceError>> + Send + 'static,
{
    if !events {
        return match work.await {
            Ok(v) => Json(v).into_response(),
            Err(e) => crate::error::ApiError(e).into_response(),
        };
    }
    Sse::new(event_stream(rx, work))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn event_stream<T, F>(
    rx: mpsc::UnboundedReceiver<OutputChunk>,
    work: F,
) -> impl Stream<Item = Result<Event, Infallible>>
where
    T: Serialize + Send + 'static,
    F: Future<Output = Result<T, ServiceError>> + Send + 'static,
{
    struct St<F> {
        rx: mpsc::UnboundedReceiver<OutputChunk>,
        work: Option<std::pin::Pin<Box<F>>>,
        last: Option<Event>,
        finished: bool,
    }
    fn output(chunk: OutputChunk) -> Event {
        let stream = match chunk.stream {
            StreamKind::Stdout => "stdout",
            StreamKind::Stderr => "stderr",
        };
        Event::default()
            .event("output")
            .json_data(serde_json::json!({ "stream": stream, "text": chunk.text() }))
            .unwrap_or_default()
    }
    futures_util::stream::unfold(
        St {
            rx,
            work: Some(Box::pin(work)),
            last: None,
            finished: false,
        },
        |mut st| async move {
            if st.finished {
                return None;
            }
            if let Some(work) = st.work.as_mut() {
                tokio::select! {
                    biased;
                    Some(chunk) = st.rx.recv() => return Some((Ok(output(chunk)), st)),
                    done = work => {
                        st.work = None;
                        st.last = Some(match done {
                            Ok(v) => Event::default().event("result").json_data(&v),
                            Err(e) => Event::default().event("error").json_data(error_body(&e)),
                        }.unwrap_or_default());
                    }
                }
            }
            // The work ended: what output is left goes out first, then the result.
            if let Ok(chunk) = st.rx.try_recv() {
                return Some((Ok(output(chunk)), st));
            }
            st.finished = true;
            let last = st.last.take()?;
            Some((Ok(last), st))
        },
    )
}

/// A sink that sends chunks into a channel (dropped chunks are fine: no one listens).
fn sink() -> (
    mpsc::UnboundedSender<OutputChunk>,
    mpsc::UnboundedReceiver<OutputChunk>,
) {
    mpsc::unbounded_channel()
}

fn timeout_of(t: Option<f64>) -> Result<Option<std::time::Duration>, ServiceError> {
    t.map(|s| seconds("timeout", s)).transpose()
}

/// Refuses a NUL byte where the sandbox cannot take one (an argument, a command line, a
/// kernel's code): checked here so it is bad input, not a failed process or a dead kernel.
fn no_nul(what: &str, text: &str) -> Result<(), ServiceError> {
    if text.contains('\0') {
        return Err(ServiceError::invalid(format!(
            "{what} holds a NUL byte, which a process cannot be given"
        )));
    }
    Ok(())
}

/// Checks extra environment variables: names non-empty without `=` or NUL, values without NUL.
pub(crate) fn check_env(
    env: &std::collections::BTreeMap<String, String>,
) -> Result<(), ServiceError> {
    for (key, value) in env {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(ServiceError::invalid(format!(
                "{key:?} is not an environment variable name (it must be non-empty, without = or NUL)"
            )));
        }
        no_nul(&format!("the value of {key}"), value)?;
    }
    Ok(())
}

/// `POST /v1/sessions/{id}/execute`.
pub async fn execute(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<ExecuteRequest>,
) -> ApiResult<Response> {
    no_nul("the code", &req.code)?;
    let busy: Busy = state.manager.busy(&owner, &id).await?;
    let timeout = timeout_of(req.timeout)?;
    let (tx, rx) = sink();
    let manager = state.manager.clone();
    let entry = state.manager.get(&owner, &id)?;
    let work = async move {
        let started = Instant::now();
        let mut options = ExecuteOptions::new().on_output(move |c| {
            let _ = tx.send(c);
        });
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        let result = busy.session().execute_with(&req.code, options).await;
        manager.metrics().run("execute", started.elapsed());
        match result {
            Ok(r) => Ok(ExecuteResponse::from(r)),
            Err(e) => Err(manager.failed(&entry, e).await),
        }
    };
    Ok(answer(wants_events(&headers), rx, work).await)
}

/// `POST /v1/sessions/{id}/run`.
pub async fn run(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<RunRequest>,
) -> ApiResult<Response> {
    check_env(&req.env)?;
    for arg in &req.args {
        no_nul("an argument", arg)?;
    }
    let busy = state.manager.busy(&owner, &id).await?;
    let timeout = timeout_of(req.timeout)?;
    let (tx, rx) = sink();
    let manager = state.manager.clone();
    let entry = state.manager.get(&owner, &id)?;
    let work = async move {
        let started = Instant::now();
        let mut options = RunOptions::new()
            .libraries(req.libraries)
            .args(req.args)
            .on_output(move |c| {
                let _ = tx.send(c);
            });
        for (k, v) in req.env {
            options = options.env(k, v);
        }
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        if let Some(stdin) = req.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = busy.session().run_with(&req.code, options).await;
        manager.metrics().run("run", started.elapsed());
        match result {
            Ok(r) => Ok(RunResponse::from(r)),
            Err(e) => Err(manager.failed(&entry, e).await),
        }
    };
    Ok(answer(wants_events(&headers), rx, work).await)
}

/// `POST /v1/sessions/{id}/commands`.
pub async fn command(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    headers: HeaderMap,
    JsonBody(req): JsonBody<CommandRequest>,
) -> ApiResult<Response> {
    check_env(&req.env)?;
    no_nul("the command", &req.command)?;
    let busy = state.manager.busy(&owner, &id).await?;
    let timeout = timeout_of(req.timeout)?;
    let (tx, rx) = sink();
    let manager = state.manager.clone();
    let entry = state.manager.get(&owner, &id)?;
    let work = async move {
        let started = Instant::now();
        let mut options = CommandOptions::new().on_output(move |c| {
            let _ = tx.send(c);
        });
        for (k, v) in req.env {
            options = options.env(k, v);
        }
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        if let Some(stdin) = req.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = busy
            .session()
            .execute_command_with(&req.command, options)
            .await;
        manager.metrics().run("command", started.elapsed());
        match result {
            Ok(r) => Ok(StepResponse::from(r)),
            Err(e) => Err(manager.failed(&entry, e).await),
        }
    };
    Ok(answer(wants_events(&headers), rx, work).await)
}

/// `POST /v1/run`: a program in a fresh sandbox.
pub async fn one_shot(
    State(state): State<AppState>,
    Auth(owner): Auth,
    JsonBody(req): JsonBody<OneShotRequest>,
) -> ApiResult<Json<RunResponse>> {
    for arg in &req.args {
        no_nul("an argument", arg)?;
    }
    Ok(Json(state.manager.run_once(&owner, req).await?))
}
