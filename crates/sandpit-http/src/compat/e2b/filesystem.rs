//! envd's `filesystem.Filesystem` service over Connect: `Stat`, `ListDir` (with `depth`),
//! `MakeDir`, `Move` and `Remove` onto the session's files, confined to `/home/user`.
//! Watching (`WatchDir` and the watcher calls) answers Connect's `unimplemented`.

use axum::extract::{Path, Request, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use sandpit::{FileInfo, FileKind, ListOptions};
use sandpit_service::Busy;
use serde::Deserialize;
use serde_json::{json, Value};

use super::dataplane::{self, file_user_refusal, Sandbox};
use super::files::absolute;
use super::rpc::{self, Code, Protocol, RpcError};
use super::ENVD_PORT;
use crate::compat::failed;
use crate::state::AppState;

/// `path`, the request of `Stat`, `MakeDir`, `Remove`.
#[derive(Debug, Deserialize)]
struct PathRequest {
    #[serde(default)]
    path: String,
}

/// `ListDir`'s request.
#[derive(Debug, Deserialize)]
struct ListRequest {
    #[serde(default)]
    path: String,
    #[serde(default)]
    depth: u32,
}

/// `Move`'s request.
#[derive(Debug, Deserialize)]
struct MoveRequest {
    #[serde(default)]
    source: String,
    #[serde(default)]
    destination: String,
}

/// The protocol, the request's messages and the opened sandbox of a call.
pub(crate) struct Call {
    pub protocol: Protocol,
    /// The request message (a stream's first).
    pub message: bytes::Bytes,
    /// Every message of a client stream (one for the other calls).
    pub messages: Vec<bytes::Bytes>,
    pub sandbox: Sandbox,
    pub parts: Parts,
}

/// Reads a call to envd's port: its protocol, its messages, and its sandbox, opened by its
/// token. A refusal is the answer to send.
pub(crate) async fn open_call(state: &AppState, req: Request) -> Result<Call, Response> {
    let (parts, body) = req.into_parts();
    let protocol = rpc::protocol(&parts.headers).map_err(IntoResponse::into_response)?;
    let sandbox =
        dataplane::open(state, &parts, ENVD_PORT).map_err(|r| r.rpc_response(&parts.headers))?;
    let bytes = crate::compat::body_bytes(body, state)
        .await
        .map_err(|e| RpcError::from(e).into_response_for(&parts.headers))?;
    let messages = match protocol {
        Protocol::Unary => vec![bytes],
        Protocol::Streaming => {
            rpc::envelopes(&bytes).map_err(|e| e.into_response_for(&parts.headers))?
        }
    };
    Ok(Call {
        protocol,
        message: messages.first().cloned().unwrap_or_default(),
        messages,
        sandbox,
        parts,
    })
}

/// `POST /filesystem.Filesystem/{method}`.
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
    let user = dataplane::user(&call.parts, None);
    if let Some(message) = file_user_refusal(&user) {
        let code = if user == "root" {
            Code::PermissionDenied
        } else {
            Code::Unauthenticated
        };
        return RpcError::new(code, message).into_response_for(&headers);
    }
    let streaming = matches!(method.as_str(), "WatchDir");
    if streaming != (call.protocol == Protocol::Streaming) {
        return RpcError::new(
            Code::InvalidArgument,
            format!(
                "filesystem.Filesystem/{method} is a {} call: send it as {}",
                if streaming {
                    "server-streaming"
                } else {
                    "unary"
                },
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
        "Stat" => stat(&state, &call).await,
        "ListDir" => list_dir(&state, &call).await,
        "MakeDir" => make_dir(&state, &call).await,
        "Move" => move_entry(&state, &call).await,
        "Remove" => remove(&state, &call).await,
        "WatchDir" | "CreateWatcher" | "GetWatcherEvents" | "RemoveWatcher" => Err(RpcError::new(
            Code::Unimplemented,
            "watching folders is not offered by Sandpit's E2B layer (docs/compat.md): list the folder again instead",
        )),
        other => Err(RpcError::new(
            Code::Unimplemented,
            format!("filesystem.Filesystem has no method {other}"),
        )),
    };
    match result {
        Ok(value) => rpc::unary(Ok(value)),
        Err(e) => e.into_response_for(&headers),
    }
}

/// A path as the session's files take it: relative to the workdir, the workdir itself `.`.
pub fn session_path(workdir: &str, path: &str) -> String {
    let workdir = workdir.trim_end_matches('/');
    let path = path.trim();
    if path.is_empty() || path == workdir || path == format!("{workdir}/") {
        return ".".into();
    }
    match path.strip_prefix(&format!("{workdir}/")) {
        Some(rest) => rest.to_string(),
        None => path.to_string(),
    }
}

/// Go's `FileMode.String()` of a kind and permission bits: `drwxr-xr-x`.
pub fn permissions(kind: FileKind, mode: u32) -> String {
    let mut out = String::with_capacity(10);
    out.push(match kind {
        FileKind::Dir => 'd',
        FileKind::Symlink => 'L',
        _ => '-',
    });
    for shift in [6, 3, 0] {
        let bits = (mode >> shift) & 7;
        out.push(if bits & 4 != 0 { 'r' } else { '-' });
        out.push(if bits & 2 != 0 { 'w' } else { '-' });
        out.push(if bits & 1 != 0 { 'x' } else { '-' });
    }
    out
}

/// `EntryInfo` in protobuf's JSON mapping (64-bit sizes as strings, enums by name).
pub fn entry_info(workdir: &str, f: &FileInfo) -> Value {
    let kind = match f.kind {
        FileKind::File => "FILE_TYPE_FILE",
        FileKind::Dir => "FILE_TYPE_DIRECTORY",
        FileKind::Symlink => "FILE_TYPE_SYMLINK",
        FileKind::Other => "FILE_TYPE_UNSPECIFIED",
    };
    json!({
        "name": f.name,
        "type": kind,
        "path": absolute(workdir, &f.path),
        "size": f.size.to_string(),
        "mode": f.mode & 0o7777,
        "permissions": permissions(f.kind, f.mode),
        "owner": super::USER,
        "group": super::USER,
        "modifiedTime": sandpit::time::rfc3339(f.modified),
    })
}

/// The workdir's own entry (the session's files describe what is in it, not itself).
fn workdir_entry(workdir: &str) -> Value {
    let name = workdir.rsplit('/').next().unwrap_or(workdir);
    json!({
        "name": name,
        "type": "FILE_TYPE_DIRECTORY",
        "path": workdir,
        "size": "0",
        "mode": 0o755,
        "permissions": permissions(FileKind::Dir, 0o755),
        "owner": super::USER,
        "group": super::USER,
        "modifiedTime": sandpit::time::rfc3339(std::time::SystemTime::now()),
    })
}

async fn hold(state: &AppState, sandbox: &Sandbox) -> Result<Busy, RpcError> {
    state
        .manager
        .hold(&sandbox.owner, &sandbox.id)
        .await
        .map_err(|_| {
            RpcError::new(
                Code::Unavailable,
                format!("The sandbox {} was not found", sandbox.id),
            )
        })
}

async fn fail(state: &AppState, sandbox: &Sandbox, e: sandpit::Error) -> RpcError {
    failed(state, &sandbox.owner, &sandbox.id, e).await.into()
}

async fn stat(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let req: PathRequest = rpc::message(&call.message)?;
    let busy = hold(state, &call.sandbox).await?;
    let workdir = busy.session().workdir().to_string();
    let path = session_path(&workdir, &req.path);
    if path == "." {
        return Ok(json!({ "entry": workdir_entry(&workdir) }));
    }
    let info = busy.session().files().info(&path).await;
    drop(busy);
    match info {
        Ok(f) => Ok(json!({ "entry": entry_info(&workdir, &f) })),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

async fn list_dir(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let req: ListRequest = rpc::message(&call.message)?;
    let depth = req.depth.max(1);
    let busy = hold(state, &call.sandbox).await?;
    let workdir = busy.session().workdir().to_string();
    let folder = session_path(&workdir, &req.path);
    let listed = list_in(&busy, &folder, depth).await;
    drop(busy);
    match listed {
        Ok(Ok(entries)) => Ok(json!({
            "entries": entries.iter().map(|f| entry_info(&workdir, f)).collect::<Vec<_>>()
        })),
        Ok(Err(e)) => Err(e),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

/// The entries under `folder` down to `depth` levels (1: its own entries).
async fn list_in(
    busy: &Busy,
    folder: &str,
    depth: u32,
) -> sandpit::Result<Result<Vec<FileInfo>, RpcError>> {
    let files = busy.session().files();
    // The workdir itself is no entry of the session's files; anything else must be a folder.
    if folder != "." && files.info(folder).await?.kind != FileKind::Dir {
        return Ok(Err(RpcError::new(
            Code::InvalidArgument,
            format!("path {folder} is not a directory"),
        )));
    }
    let options = ListOptions {
        recursive: depth > 1,
        pattern: None,
        depth: Some(depth.max(1)),
    };
    let entries = files.list(folder, &options).await?;
    Ok(Ok(entries
        .into_iter()
        .filter(|f| depth_below(folder, &f.path) <= depth)
        .collect()))
}

/// How many levels below `folder` (both relative to the workdir) `path` lies.
pub fn depth_below(folder: &str, path: &str) -> u32 {
    let inside = if folder == "." {
        path
    } else {
        path.strip_prefix(folder.trim_end_matches('/'))
            .map(|p| p.trim_start_matches('/'))
            .unwrap_or(path)
    };
    inside.split('/').filter(|p| !p.is_empty()).count() as u32
}

async fn make_dir(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let req: PathRequest = rpc::message(&call.message)?;
    let busy = hold(state, &call.sandbox).await?;
    let workdir = busy.session().workdir().to_string();
    let path = session_path(&workdir, &req.path);
    let files = busy.session().files();
    if files.info(&path).await.is_ok() {
        return Err(RpcError::new(
            Code::AlreadyExists,
            format!("path {} already exists", req.path),
        ));
    }
    let made = files.mkdir(&path).await;
    drop(busy);
    match made {
        Ok(f) => Ok(json!({ "entry": entry_info(&workdir, &f) })),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

async fn move_entry(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let req: MoveRequest = rpc::message(&call.message)?;
    let busy = hold(state, &call.sandbox).await?;
    let workdir = busy.session().workdir().to_string();
    let moved = busy
        .session()
        .files()
        .rename(
            &session_path(&workdir, &req.source),
            &session_path(&workdir, &req.destination),
        )
        .await;
    drop(busy);
    match moved {
        Ok(f) => Ok(json!({ "entry": entry_info(&workdir, &f) })),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

async fn remove(state: &AppState, call: &Call) -> Result<Value, RpcError> {
    let req: PathRequest = rpc::message(&call.message)?;
    let busy = hold(state, &call.sandbox).await?;
    let workdir = busy.session().workdir().to_string();
    let removed = busy
        .session()
        .files()
        .delete(&session_path(&workdir, &req.path))
        .await;
    drop(busy);
    match removed {
        Ok(()) => Ok(json!({})),
        Err(e) => Err(fail(state, &call.sandbox, e).await),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_taken_relative_to_the_workdir() {
        assert_eq!(session_path("/home/user", "/home/user"), ".");
        assert_eq!(session_path("/home/user", "/home/user/"), ".");
        assert_eq!(session_path("/home/user", ""), ".");
        assert_eq!(session_path("/home/user", "/home/user/a/b"), "a/b");
        assert_eq!(session_path("/home/user", "a/b"), "a/b");
        assert_eq!(session_path("/home/user", "/etc/passwd"), "/etc/passwd");
    }

    #[test]
    fn depth_counts_levels_below_the_folder() {
        assert_eq!(depth_below(".", "a"), 1);
        assert_eq!(depth_below(".", "a/b"), 2);
        assert_eq!(depth_below("sub", "sub/a"), 1);
        assert_eq!(depth_below("sub/", "sub/a/b"), 2);
    }

    #[test]
    fn permissions_read_as_go_prints_them() {
        assert_eq!(permissions(FileKind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(permissions(FileKind::File, 0o644), "-rw-r--r--");
    }
}
