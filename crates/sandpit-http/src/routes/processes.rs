//! Background processes of a session: started, listed, followed as server-sent events,
//! written to and signalled. A process outlives the request that started it; a client that
//! stops following it only stops following. None of these calls takes a run slot.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::Stream;
use sandpit::{ProcessEvent, ProcessHandle, SpawnOptions, StreamKind};
use sandpit_service::types::{
    ProcessEnd, ProcessEntry, ProcessInput, ProcessList, ProcessSignal, StartProcess,
};
use sandpit_service::{seconds, ServiceError};

use crate::auth::Auth;
use crate::body::JsonBody;
use crate::error::{body as error_body, ApiResult};
use crate::state::AppState;

use super::files::done;

/// `POST /v1/sessions/{id}/processes`: 201 with the started process.
pub async fn start(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    JsonBody(req): JsonBody<StartProcess>,
) -> ApiResult<(StatusCode, Json<ProcessEntry>)> {
    let argv =
        match (req.command, req.argv.is_empty()) {
            (Some(command), true) => vec!["/bin/sh".to_string(), "-c".into(), command],
            (None, false) => req.argv,
            _ => return Err(ServiceError::invalid(
                "give either argv (a program and its arguments) or command (a shell command line)",
            )
            .into()),
        };
    if argv.iter().any(|a| a.contains('\0')) {
        return Err(ServiceError::invalid("an argument holds a NUL byte").into());
    }
    super::run::check_env(&req.env)?;
    let mut options = SpawnOptions::new(argv.clone());
    for (k, v) in req.env {
        options = options.env(k, v);
    }
    if let Some(cwd) = req.cwd.clone() {
        options = options.cwd(cwd);
    }
    if req.stdin {
        options = options.stdin();
    }
    if let Some(tag) = req.tag.clone() {
        options = options.tag(tag);
    }
    if let Some(t) = req.timeout {
        options = options.timeout(seconds("timeout", t)?);
    }
    let busy = state.manager.hold(&owner, &id).await?;
    // Not followed here: its output waits, from the first byte, for the first `output`.
    let started = busy.session().start_process(options).await;
    let pid = done(&state, &owner, &id, started).await?;
    let entry = ProcessEntry {
        pid,
        argv,
        cwd: req
            .cwd
            .unwrap_or_else(|| busy.session().workdir().to_string()),
        tag: req.tag,
        running: true,
        stdin_open: req.stdin,
    };
    Ok((StatusCode::CREATED, Json(entry)))
}

/// `GET /v1/sessions/{id}/processes`.
pub async fn list(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
) -> ApiResult<Json<ProcessList>> {
    let busy = state.manager.hold(&owner, &id).await?;
    let listed = busy.session().processes().await;
    let processes = done(&state, &owner, &id, listed).await?;
    Ok(Json(ProcessList {
        processes: processes.into_iter().map(ProcessEntry::from).collect(),
    }))
}

/// `GET /v1/sessions/{id}/processes/{pid}/output`: server-sent events, `output` (what it wrote
/// while nobody followed it, then what it writes) and a last `exit`.
pub async fn output(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, pid)): Path<(String, u32)>,
) -> ApiResult<Response> {
    let busy = state.manager.hold(&owner, &id).await?;
    let attached = busy.session().attach_process(pid).await;
    let handle = done(&state, &owner, &id, attached).await?;
    // The stream holds the session (the sweeper leaves it open while someone follows).
    Ok(Sse::new(events(handle, busy))
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}

fn events(
    handle: ProcessHandle,
    busy: sandpit_service::Busy,
) -> impl Stream<Item = Result<Event, Infallible>> {
    futures_util::stream::unfold(Some((handle, busy)), |state| async move {
        let (mut handle, busy) = state?;
        let event = match handle.next_event().await {
            Ok(Some(ProcessEvent::Output(chunk))) => {
                let stream = match chunk.stream {
                    StreamKind::Stdout => "stdout",
                    StreamKind::Stderr => "stderr",
                };
                Event::default()
                    .event("output")
                    .json_data(serde_json::json!({ "stream": stream, "text": chunk.text() }))
            }
            Ok(Some(ProcessEvent::Exited(exit))) => {
                let end = Event::default()
                    .event("exit")
                    .json_data(ProcessEnd::from(exit))
                    .unwrap_or_default();
                return Some((Ok(end), None));
            }
            Ok(None) => return None,
            Err(e) => {
                let e = ServiceError::from(e);
                let error = Event::default()
                    .event("error")
                    .json_data(error_body(&e))
                    .unwrap_or_default();
                return Some((Ok(error), None));
            }
        };
        Some((Ok(event.unwrap_or_default()), Some((handle, busy))))
    })
}

/// `POST /v1/sessions/{id}/processes/{pid}/stdin`: 204.
pub async fn stdin(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, pid)): Path<(String, u32)>,
    JsonBody(req): JsonBody<ProcessInput>,
) -> ApiResult<StatusCode> {
    let busy = state.manager.hold(&owner, &id).await?;
    let session = busy.session();
    let mut written = Ok(());
    if !req.data.is_empty() {
        written = session.write_stdin(pid, req.data.as_bytes()).await;
    }
    if written.is_ok() && req.eof {
        written = session.close_stdin(pid).await;
    }
    done(&state, &owner, &id, written).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/sessions/{id}/processes/{pid}/signal`: 204.
pub async fn signal(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, pid)): Path<(String, u32)>,
    JsonBody(req): JsonBody<ProcessSignal>,
) -> ApiResult<StatusCode> {
    let busy = state.manager.hold(&owner, &id).await?;
    let sent = busy.session().signal_process(pid, req.signal).await;
    done(&state, &owner, &id, sent).await?;
    Ok(StatusCode::NO_CONTENT)
}
