//! envd's `process.Process` service over Connect, onto the session's background processes:
//! `Start` (and `Connect` to one already running) stream a start event with the pid, the
//! output as it comes (base64, as protobuf's JSON writes bytes), then the end; `List`,
//! `SendSignal`, `SendInput`, `StreamInput`, `CloseStdin` and `Update` act on them. A stream's
//! `Connect-Timeout-Ms` bounds it; for `Start` it is the command's timeout (the process is
//! killed then, as E2B's `commands.run(timeout=…)` does). A client that goes away detaches: the
//! process goes on and `Connect` finds it again.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use futures_util::StreamExt;
use sandpit::{ProcessEvent, ProcessExit, Signal, SpawnOptions, StreamKind};
use serde::Deserialize;
use serde_json::{json, Value};

use super::dataplane::{self, Sandbox};
use super::filesystem::{open_call, Call};
use super::rpc::{self, Code, Protocol, RpcError};
use super::{HOME, USER};
use crate::compat::failed;
use crate::state::AppState;

/// `ProcessConfig`.
#[derive(Debug, Default, Deserialize)]
struct ProcessConfig {
    #[serde(default)]
    cmd: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    envs: BTreeMap<String, String>,
    #[serde(default)]
    cwd: Option<String>,
}

/// `StartRequest`.
#[derive(Debug, Deserialize)]
struct StartRequest {
    #[serde(default)]
    process: ProcessConfig,
    #[serde(default)]
    pty: Option<Value>,
    #[serde(default)]
    tag: Option<String>,
    /// Optional for older SDKs, which always had stdin open.
    #[serde(default)]
    stdin: Option<bool>,
}

/// `ProcessSelector`: a pid or a tag.
#[derive(Debug, Default, Deserialize)]
struct Selector {
    #[serde(default)]
    pid: Option<u32>,
    #[serde(default)]
    tag: Option<String>,
}

/// A request that names a process (`Connect`, `CloseStdin`, `Update`).
#[derive(Debug, Deserialize)]
struct Selected {
    #[serde(default)]
    process: Selector,
    #[serde(default)]
    pty: Option<Value>,
}

/// `ProcessInput`: standard input or a terminal's.
#[derive(Debug, Default, Deserialize)]
struct ProcessInput {
    #[serde(default)]
    stdin: Option<String>,
    #[serde(default)]
    pty: Option<String>,
}

/// `SendInputRequest`.
#[derive(Debug, Deserialize)]
struct SendInput {
    #[serde(default)]
    process: Selector,
    #[serde(default)]
    input: ProcessInput,
}

/// `SendSignalRequest`.
#[derive(Debug, Deserialize)]
struct SendSignal {
    #[serde(default)]
    process: Selector,
    #[serde(default)]
    signal: Value,
}

/// One message of `StreamInput`.
#[derive(Debug, Deserialize)]
struct StreamInputMessage {
    #[serde(default)]
    start: Option<Selected>,
    #[serde(default)]
    data: Option<StreamData>,
}

#[derive(Debug, Deserialize)]
struct StreamData {
    #[serde(default)]
    input: ProcessInput,
}

/// How often a stream says it is alive (E2B's `Keepalive-Ping-Interval`, capped).
fn keepalive(headers: &HeaderMap) -> Duration {
    let secs = headers
        .get("keepalive-ping-interval")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(50)
        .clamp(1, 300);
    Duration::from_secs(secs)
}

/// The stream's deadline (`Connect-Timeout-Ms`; none, or `0`: unbounded).
fn deadline(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get("connect-timeout-ms")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
}

/// `POST /process.Process/{method}`.
pub async fn call(
    State(state): State<AppState>,
    Path(method): Path<String>,
    req: Request,
) -> Response {
    let call = match open_call(&state, req).await {
        Ok(call) => call,
        Err(response) => return response,
    };
    let headers = call.parts.headers.clone();
    let streaming = matches!(method.as_str(), "Start" | "Connect" | "StreamInput");
    if streaming != (call.protocol == Protocol::Streaming) {
        return RpcError::new(
            Code::InvalidArgument,
            format!(
                "process.Process/{method} is a {} call: send it as {}",
                if streaming { "streaming" } else { "unary" },
                if streaming {
                    rpc::STREAMING
                } else {
                    rpc::UNARY
                }
            ),
        )
        .into_response_for(&headers);
    }
    let result = match method.as_str() {
        "Start" => return start(state, call).await,
        "Connect" => return connect(state, call).await,
        "StreamInput" => stream_input(&state, &call).await,
        "List" => list(&state, &call).await,
        "SendSignal" => send_signal(&state, &call).await,
        "SendInput" => send_input(&state, &call).await,
        "CloseStdin" => close_stdin(&state, &call).await,
        "Update" => update(&call),
        other => Err(RpcError::new(
            Code::Unimplemented,
            format!("process.Process has no method {other}"),
        )),
    };
    match (result, call.protocol) {
        (Ok(value), Protocol::Unary) => rpc::unary(Ok(value)),
        // A client stream's answer: its one message, then the end.
        (Ok(value), Protocol::Streaming) => rpc::streaming(futures_util::stream::iter([
            rpc::frame(&value),
            rpc::end(None),
        ])),
        (Err(e), _) => e.into_response_for(&headers),
    }
}

fn pty_refused() -> RpcError {
    RpcError::new(
        Code::Unimplemented,
        "terminals (PTY) are not offered by Sandpit's E2B layer: run the command without one",
    )
}

/// Whether the call's user runs as root (`root`), or as the sandbox's user (`user`).
fn as_root(call: &Call) -> Result<bool, RpcError> {
    match dataplane::user(&call.parts, None).as_str() {
        USER => Ok(false),
        "root" => Ok(true),
        other => Err(RpcError::new(
            Code::InvalidArgument,
            format!("error looking up user '{other}': this sandbox has the users user and root"),
        )),
    }
}

/// A session failure of a process call, a process that is not there as `not_found`.
async fn fail(state: &AppState, sandbox: &Sandbox, e: sandpit::Error) -> RpcError {
    if let sandpit::Error::ProcessNotFound { pid } = &e {
        return RpcError::new(Code::NotFound, format!("process with pid {pid} not found"));
    }
    failed(state, &sandbox.owner, &sandbox.id, e).await.into()
}

/// The pid a selector names (a tag is looked up among the running processes).
async fn pid_of(state: &AppState, call: &Call, selector: &Selector) -> Result<u32, RpcError> {
    if let Some(pid) = selector.pid {
        return Ok(pid);
    }
    let Some(tag) = &selector.tag else {
        return Err(RpcError::new(
            Code::InvalidArgument,
            "name the process: process.pid or process.tag",
        ));
    };
    let session = &call.sandbox.entry.session;
    let processes = match session.processes().await {
        Ok(p) => p,
        Err(e) => return Err(fail(state, &call.sandbox, e).await),
    };
    processes
        .into_iter()
        .find(|p| p.running && p.tag.as_deref() == Some(tag.as_str()))
        .map(|p| p.pid)
        .ok_or_else(|| RpcError::new(Code::NotFound, format!("process with tag {tag} not found")))
}

/// `{"event": {"start": {"pid": …}}}` and its siblings.
fn event(name: &str, body: Value) -> Bytes {
    rpc::frame(&json!({ "event": { name: body } }))
}

/// The end event of an exit, as envd writes it (Go's `ProcessState.String()`).
fn end_event(exit: &ProcessExit) -> Value {
    match exit.signal {
        Some(signal) => {
            let name = crate::compat::piston::signal_name(signal as i64)
                .map(|n| n.trim_start_matches("SIG").to_ascii_lowercase())
                .unwrap_or_else(|| signal.to_string());
            let status = format!("signal: {name}");
            json!({ "exitCode": -1, "exited": false, "status": status, "error": status })
        }
        None => {
            let status = format!("exit status {}", exit.exit_code);
            let mut end = json!({ "exitCode": exit.exit_code, "exited": true, "status": status });
            if exit.exit_code != 0 {
                end["error"] = json!(status);
            }
            end
        }
    }
}

/// The events of a process: its start, its output, keep-alives, its end; bounded by `limit`
/// (then `deadline_exceeded`). Dropping the stream detaches from the process.
fn events(
    mut handle: sandpit::ProcessHandle,
    limit: Option<Duration>,
    every: Duration,
    timed_out_is_deadline: bool,
) -> impl futures_util::Stream<Item = Bytes> + Send {
    let pid = handle.pid();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let pump = async move {
        if tx
            .send(event("start", json!({ "pid": pid })))
            .await
            .is_err()
        {
            return;
        }
        let until = limit.map(|l| tokio::time::Instant::now() + l);
        let mut tick = tokio::time::interval(every);
        tick.tick().await;
        loop {
            let next = tokio::select! {
                e = handle.next_event() => e,
                _ = tick.tick() => {
                    if tx.send(event("keepalive", json!({}))).await.is_err() {
                        return;
                    }
                    continue;
                }
                _ = async {
                    match until {
                        Some(t) => tokio::time::sleep_until(t).await,
                        None => std::future::pending().await,
                    }
                } => {
                    let _ = tx.send(rpc::end(Some(&RpcError::new(
                        Code::DeadlineExceeded,
                        "the command's timeout passed",
                    )))).await;
                    return;
                }
            };
            let frame = match next {
                Ok(Some(ProcessEvent::Output(chunk))) => {
                    let field = match chunk.stream {
                        StreamKind::Stdout => "stdout",
                        StreamKind::Stderr => "stderr",
                    };
                    event("data", json!({ field: rpc::base64(&chunk.data) }))
                }
                Ok(Some(ProcessEvent::Exited(exit))) => {
                    if exit.timed_out && timed_out_is_deadline {
                        let _ = tx
                            .send(rpc::end(Some(&RpcError::new(
                                Code::DeadlineExceeded,
                                "the command ran past its timeout and was killed",
                            ))))
                            .await;
                        return;
                    }
                    let _ = tx.send(event("end", end_event(&exit))).await;
                    let _ = tx.send(rpc::end(None)).await;
                    return;
                }
                Ok(None) => {
                    let _ = tx.send(rpc::end(None)).await;
                    return;
                }
                Err(e) => {
                    let code = if matches!(e, sandpit::Error::ProcessNotFound { .. }) {
                        Code::NotFound
                    } else {
                        Code::Unavailable
                    };
                    let _ = tx
                        .send(rpc::end(Some(&RpcError::new(code, sandpit::one_line(&e)))))
                        .await;
                    return;
                }
            };
            if tx.send(frame).await.is_err() {
                return;
            }
        }
    };
    let frames =
        futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|f| (f, rx)) });
    // The pump lives inside the answer: a client that goes away drops both, and dropping the
    // handle detaches.
    let pumped = futures_util::stream::once(pump).filter_map(|()| async { None::<Bytes> });
    futures_util::stream::select(frames, pumped)
}

async fn start(state: AppState, call: Call) -> Response {
    let headers = call.parts.headers.clone();
    let request: StartRequest = match rpc::message(&call.message) {
        Ok(r) => r,
        Err(e) => return e.into_response_for(&headers),
    };
    if request.pty.is_some() {
        return pty_refused().into_response_for(&headers);
    }
    let root = match as_root(&call) {
        Ok(root) => root,
        Err(e) => return e.into_response_for(&headers),
    };
    if request.process.cmd.is_empty() {
        return RpcError::new(Code::InvalidArgument, "process.cmd is required")
            .into_response_for(&headers);
    }
    let cwd = match request.process.cwd.filter(|c| !c.is_empty()) {
        Some(c) if c.starts_with('/') => c,
        Some(c) => format!("{HOME}/{c}"),
        None => HOME.to_string(),
    };
    let mut argv = vec![request.process.cmd];
    argv.extend(request.process.args);
    let mut options = SpawnOptions::new(argv).cwd(cwd);
    for (k, v) in request.process.envs {
        options = options.env(k, v);
    }
    if root {
        options = options.as_root();
    }
    if request.stdin.unwrap_or(true) {
        options = options.stdin();
    }
    if let Some(tag) = request.tag {
        options = options.tag(tag);
    }
    let limit = deadline(&headers);
    if let Some(limit) = limit {
        options = options.timeout(limit);
    }
    let busy = match state
        .manager
        .hold(&call.sandbox.owner, &call.sandbox.id)
        .await
    {
        Ok(b) => b,
        Err(e) => return RpcError::from(e).into_response_for(&headers),
    };
    let spawned = busy.session().spawn(options).await;
    drop(busy);
    match spawned {
        Ok(handle) => rpc::streaming(events(handle, None, keepalive(&headers), true)),
        Err(sandpit::Error::Refused(reason)) => {
            RpcError::new(Code::PermissionDenied, reason).into_response_for(&headers)
        }
        Err(e) => fail(&state, &call.sandbox, e)
            .await
            .into_response_for(&headers),
    }
}

async fn connect(state: AppState, call: Call) -> Response {
    let headers = call.parts.headers.clone();
    let request: Selected = match rpc::message(&call.message) {
        Ok(r) => r,
        Err(e) => return e.into_response_for(&headers),
    };
    let pid = match pid_of(&state, &call, &request.process).await {
        Ok(pid) => pid,
        Err(e) => return e.into_response_for(&headers),
    };
    match call.sandbox.entry.session.attach_process(pid).await {
        Ok(handle) => rpc::streaming(events(
            handle,
            deadline(&headers),
            keepalive(&headers),
            false,
        )),
        Err(e) => fail(&state, &call.sandbox, e)
            .await
            .into_response_for(&headers),
    }
}

async fn list(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let processes = match call.sandbox.entry.session.processes().await {
        Ok(p) => p,
        Err(e) => return Err(fail(state, &call.sandbox, e).await),
    };
    let listed: Vec<Value> = processes
        .into_iter()
        .filter(|p| p.running)
        .map(|p| {
            let (cmd, args) = p
                .argv
                .split_first()
                .map(|(c, a)| (c.clone(), a.to_vec()))
                .unwrap_or_default();
            let envs: BTreeMap<String, String> = p.env.into_iter().collect();
            let mut info = json!({
                "config": { "cmd": cmd, "args": args, "envs": envs, "cwd": p.cwd },
                "pid": p.pid,
            });
            if let Some(tag) = p.tag {
                info["tag"] = json!(tag);
            }
            info
        })
        .collect();
    Ok(json!({ "processes": listed }))
}

/// E2B's signals (`SIGNAL_SIGKILL`, `SIGNAL_SIGTERM`, by name or number).
fn signal(value: &Value) -> Result<Signal, RpcError> {
    match value {
        Value::String(s) if s == "SIGNAL_SIGKILL" => Ok(Signal::Kill),
        Value::String(s) if s == "SIGNAL_SIGTERM" => Ok(Signal::Term),
        Value::Number(n) if n.as_u64() == Some(9) => Ok(Signal::Kill),
        Value::Number(n) if n.as_u64() == Some(15) => Ok(Signal::Term),
        other => Err(RpcError::new(
            Code::InvalidArgument,
            format!("signal {other}: send SIGNAL_SIGKILL or SIGNAL_SIGTERM"),
        )),
    }
}

async fn send_signal(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let request: SendSignal = rpc::message(&call.message)?;
    let signal = signal(&request.signal)?;
    let pid = pid_of(state, call, &request.process).await?;
    match call.sandbox.entry.session.signal_process(pid, signal).await {
        Ok(()) => Ok(json!({})),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

/// Writes input to a process's standard input.
async fn write_input(
    state: &AppState,
    call: &Call,
    pid: u32,
    input: &ProcessInput,
) -> Result<(), RpcError> {
    if input.pty.is_some() {
        return Err(pty_refused());
    }
    let Some(data) = &input.stdin else {
        return Ok(());
    };
    let bytes = rpc::from_base64(data)?;
    match call.sandbox.entry.session.write_stdin(pid, &bytes).await {
        Ok(()) => Ok(()),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

async fn send_input(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let request: SendInput = rpc::message(&call.message)?;
    let pid = pid_of(state, call, &request.process).await?;
    write_input(state, call, pid, &request.input).await?;
    Ok(json!({}))
}

async fn close_stdin(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let request: Selected = rpc::message(&call.message)?;
    let pid = pid_of(state, call, &request.process).await?;
    match call.sandbox.entry.session.close_stdin(pid).await {
        Ok(()) => Ok(json!({})),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

/// `StreamInput`: a start naming the process, then its input, in order.
async fn stream_input(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let mut pid = None;
    for message in &call.messages {
        let m: StreamInputMessage = rpc::message(message)?;
        if let Some(start) = m.start {
            pid = Some(pid_of(state, call, &start.process).await?);
        }
        if let Some(data) = m.data {
            let Some(pid) = pid else {
                return Err(RpcError::new(
                    Code::InvalidArgument,
                    "StreamInput: the first message must name the process (start)",
                ));
            };
            write_input(state, call, pid, &data.input).await?;
        }
    }
    Ok(json!({}))
}

/// `Update`: only a terminal's size changes, and there are no terminals.
fn update(call: &Call) -> Result<Value, RpcError> {
    let request: Selected = rpc::message(&call.message)?;
    if request.pty.is_some() {
        return Err(pty_refused());
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_read_as_envd_writes_them() {
        let exit = |code: i64, signal: Option<i32>| ProcessExit {
            exit_code: code,
            signal,
            timed_out: false,
            oom_killed: false,
            duration: Duration::from_millis(1),
        };
        assert_eq!(
            end_event(&exit(0, None)),
            json!({"exitCode": 0, "exited": true, "status": "exit status 0"})
        );
        assert_eq!(end_event(&exit(3, None))["error"], "exit status 3");
        let killed = end_event(&exit(137, Some(9)));
        assert_eq!(killed["status"], "signal: kill");
        assert_eq!(killed["exited"], false);
    }

    #[test]
    fn signals_by_name_or_number() {
        assert_eq!(signal(&json!("SIGNAL_SIGKILL")).unwrap(), Signal::Kill);
        assert_eq!(signal(&json!(15)).unwrap(), Signal::Term);
        assert!(signal(&json!("SIGNAL_UNSPECIFIED")).is_err());
    }
}
