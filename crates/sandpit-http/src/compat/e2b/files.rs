//! envd's plain file routes: `GET /files?path=` (the file's bytes) and `POST /files`
//! (multipart `file` parts, or the raw body with `application/octet-stream`, gzip allowed),
//! answering `[{name, type, path}]`. Paths are absolute or relative to `/home/user`, and stay
//! inside it. A presigned URL (`signature`, `signature_expiration`) stands in for the token.

use std::io::Read;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use sandpit_service::{now, ErrorKind, Owner, ServiceError};
use serde_json::{json, Value};

use super::dataplane::{self, file_user_refusal, Refusal, Sandbox};
use super::tokens::{self, Operation, Purpose};
use super::ENVD_PORT;
use crate::compat::{failed, json_response};
use crate::state::AppState;

/// The query of both routes.
#[derive(Debug, Default)]
struct FileQuery {
    path: Option<String>,
    username: Option<String>,
    signature: Option<String>,
    expiration: Option<String>,
}

fn query(parts: &Parts) -> FileQuery {
    let mut q = FileQuery::default();
    for (k, v) in crate::routes::sessions::serde_urlencoded_pairs(parts.uri.query().unwrap_or("")) {
        match k.as_str() {
            "path" => q.path = Some(v),
            "username" => q.username = Some(v),
            "signature" => q.signature = Some(v),
            "signature_expiration" => q.expiration = Some(v),
            _ => {}
        }
    }
    q
}

/// An error in envd's shape: `{"code": status, "message": …}`.
#[derive(Debug)]
pub struct EnvdError(StatusCode, ErrorKind, String);

impl IntoResponse for EnvdError {
    fn into_response(self) -> Response {
        let mut response = json_response(
            self.0,
            json!({ "code": self.0.as_u16(), "message": self.2 }),
        );
        response.extensions_mut().insert(self.1);
        response
    }
}

impl From<Refusal> for EnvdError {
    fn from(r: Refusal) -> Self {
        let (status, kind, message) = r.parts();
        EnvdError(status, kind, message)
    }
}

fn error(status: StatusCode, kind: ErrorKind, message: impl Into<String>) -> EnvdError {
    EnvdError(status, kind, message.into())
}

/// A session failure as envd answers it.
fn failure(e: &ServiceError, path: &str) -> EnvdError {
    match e.kind {
        ErrorKind::NotFound => error(
            StatusCode::NOT_FOUND,
            e.kind,
            format!("path '{path}' does not exist: {}", e.message),
        ),
        ErrorKind::InvalidInput | ErrorKind::Conflict => {
            error(StatusCode::BAD_REQUEST, e.kind, e.message.clone())
        }
        ErrorKind::Exhausted => error(StatusCode::INSUFFICIENT_STORAGE, e.kind, e.message.clone()),
        kind => error(crate::error::status(kind), kind, e.message.clone()),
    }
}

/// The sandbox and owner a presigned URL names, when its signature holds for `operation`.
fn signed_owner(
    state: &AppState,
    parts: &Parts,
    q: &FileQuery,
    operation: Operation,
) -> Result<Option<(String, Owner)>, EnvdError> {
    let Some(signature) = &q.signature else {
        return Ok(None);
    };
    let id = match dataplane::target(parts) {
        Ok((id, _)) => id,
        // With `E2B_SANDBOX_URL` set, the SDKs make presigned URLs at `/files` of its origin,
        // naming no sandbox: the signature says whose it is.
        Err(Refusal::NoSandbox) => signed_sandbox(state, q, operation)?,
        Err(refusal) => return Err(refusal.into()),
    };
    let expiration = match &q.expiration {
        Some(e) => Some(e.parse::<u64>().map_err(|_| {
            error(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                "signature_expiration is not a Unix time in seconds",
            )
        })?),
        None => None,
    };
    let unauthorized =
        |message: &str| error(StatusCode::UNAUTHORIZED, ErrorKind::Unauthorized, message);
    if expiration.is_some_and(|e| e < now()) {
        return Err(unauthorized("the signature has expired"));
    }
    let Some(owner) = state.manager.owner_of(&id) else {
        return Err(Refusal::NotFound(id).into());
    };
    let token = tokens::token(state, Purpose::Envd, &id, &owner).map_err(|e| failure(&e, ""))?;
    let path = q.path.as_deref().unwrap_or("");
    let user = q.username.as_deref().unwrap_or("");
    let expected = tokens::file_signature(path, operation, user, &token, expiration);
    if !tokens::same(&expected, signature) {
        return Err(unauthorized(
            "the signature does not match this file and operation",
        ));
    }
    Ok(Some((id, owner)))
}

/// The E2B sandbox whose token signs `q` for `operation`.
fn signed_sandbox(
    state: &AppState,
    q: &FileQuery,
    operation: Operation,
) -> Result<String, EnvdError> {
    let (Some(signature), Some(path)) = (&q.signature, &q.path) else {
        return Err(Refusal::NoSandbox.into());
    };
    let expiration = q.expiration.as_deref().and_then(|e| e.parse::<u64>().ok());
    let user = q.username.as_deref().unwrap_or("");
    for (id, owner) in state.manager.owners() {
        let Ok(token) = tokens::token(state, Purpose::Envd, &id, &owner) else {
            continue;
        };
        let expected = tokens::file_signature(path, operation, user, &token, expiration);
        if tokens::same(&expected, signature) {
            return Ok(id);
        }
    }
    Err(error(
        StatusCode::UNAUTHORIZED,
        ErrorKind::Unauthorized,
        "the signature does not match any sandbox's file and operation",
    ))
}

/// The sandbox of a `/files` call, opened by its token or signature, and its user checked.
fn sandbox(
    state: &AppState,
    parts: &Parts,
    q: &FileQuery,
    operation: Operation,
) -> Result<Sandbox, EnvdError> {
    let sandbox = match signed_owner(state, parts, q, operation)? {
        Some((id, owner)) => dataplane::open_signed(state, &id, owner)?,
        None => dataplane::open(state, parts, ENVD_PORT)?,
    };
    let user = dataplane::user(parts, q.username.as_deref());
    if let Some(message) = file_user_refusal(&user) {
        let status = if user == "root" {
            StatusCode::FORBIDDEN
        } else {
            StatusCode::UNAUTHORIZED
        };
        return Err(error(status, ErrorKind::Refused, message));
    }
    Ok(sandbox)
}

/// A path inside the workdir as an absolute path.
pub fn absolute(workdir: &str, relative: &str) -> String {
    if relative.is_empty() || relative == "." {
        workdir.to_string()
    } else {
        format!("{}/{relative}", workdir.trim_end_matches('/'))
    }
}

/// `GET /files?path=`: the file's bytes.
pub async fn download(State(state): State<AppState>, req: Request) -> Response {
    let (parts, _) = req.into_parts();
    let q = query(&parts);
    let sandbox = match sandbox(&state, &parts, &q, Operation::Read) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let Some(path) = q.path.as_deref().filter(|p| !p.is_empty()) else {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidInput,
            "path is required",
        )
        .into_response();
    };
    let busy = match state.manager.hold(&sandbox.owner, &sandbox.id).await {
        Ok(b) => b,
        Err(_) => return Refusal::NotFound(sandbox.id).response(),
    };
    let read = busy.session().files().read(path).await;
    drop(busy);
    match read {
        Ok(bytes) => {
            let name = path.rsplit('/').next().unwrap_or(path).replace('"', "");
            (
                [
                    (header::CONTENT_TYPE, "application/octet-stream".to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                bytes,
            )
                .into_response()
        }
        Err(e) => {
            failure(&failed(&state, &sandbox.owner, &sandbox.id, e).await, path).into_response()
        }
    }
}

/// The files of an upload: (target path, bytes).
async fn uploaded(
    state: &AppState,
    parts: Parts,
    body: axum::body::Body,
    path: Option<&str>,
) -> Result<Vec<(String, Vec<u8>)>, EnvdError> {
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let gzip = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    if !content_type.starts_with("multipart/form-data") {
        let Some(path) = path.filter(|p| !p.is_empty()) else {
            return Err(error(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                "path is required for an application/octet-stream upload",
            ));
        };
        let bytes = crate::compat::body_bytes(body, state)
            .await
            .map_err(|e| failure(&e, path))?;
        let data = if gzip {
            gunzip(&bytes, state.manager.config().max_body_bytes)?
        } else {
            bytes.to_vec()
        };
        return Ok(vec![(path.to_string(), data)]);
    }
    let mut form = Multipart::from_request(Request::from_parts(parts, body), state)
        .await
        .map_err(|e| error(e.status(), ErrorKind::InvalidInput, e.body_text()))?;
    let mut files = Vec::new();
    loop {
        let field = match form.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let kind = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ErrorKind::TooLarge
                } else {
                    ErrorKind::InvalidInput
                };
                return Err(error(e.status(), kind, e.body_text()));
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(str::to_string);
        let data = field
            .bytes()
            .await
            .map_err(|e| error(e.status(), ErrorKind::InvalidInput, e.body_text()))?;
        // envd: the `path` query names the first file; each other file goes to its name.
        let target = match (files.is_empty(), path) {
            (true, Some(p)) if !p.is_empty() => p.to_string(),
            _ => name.unwrap_or_default(),
        };
        if target.is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                "each file part needs a path: the path query or the part's file name",
            ));
        }
        files.push((target, data.to_vec()));
    }
    if files.is_empty() {
        return Err(error(
            StatusCode::BAD_REQUEST,
            ErrorKind::InvalidInput,
            "the upload holds no `file` part",
        ));
    }
    Ok(files)
}

/// Inflates a gzip body, refusing one that grows past `limit` bytes.
fn gunzip(bytes: &[u8], limit: usize) -> Result<Vec<u8>, EnvdError> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                ErrorKind::InvalidInput,
                format!("the body is not valid gzip: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorKind::TooLarge,
            format!("the upload passes the server's limit of {limit} bytes once inflated"),
        ));
    }
    Ok(out)
}

/// `POST /files`: writes each file (folders made as needed, an existing file replaced);
/// answers `[{name, type: "file", path}]`.
pub async fn upload(State(state): State<AppState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let q = query(&parts);
    let sandbox = match sandbox(&state, &parts, &q, Operation::Write) {
        Ok(s) => s,
        Err(e) => return e.into_response(),
    };
    let files = match uploaded(&state, parts, body, q.path.as_deref()).await {
        Ok(files) => files,
        Err(e) => return e.into_response(),
    };
    let busy = match state.manager.hold(&sandbox.owner, &sandbox.id).await {
        Ok(b) => b,
        Err(_) => return Refusal::NotFound(sandbox.id).response(),
    };
    let workdir = busy.session().workdir().to_string();
    let mut written: Vec<Value> = Vec::new();
    for (path, data) in files {
        match busy.session().files().write(&path, &data, None).await {
            Ok(info) => written.push(json!({
                "name": info.name,
                "type": "file",
                "path": absolute(&workdir, &info.path),
            })),
            Err(e) => {
                drop(busy);
                return failure(&failed(&state, &sandbox.owner, &sandbox.id, e).await, &path)
                    .into_response();
            }
        }
    }
    json_response(StatusCode::OK, written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_absolute() {
        assert_eq!(absolute("/home/user", "a/b.txt"), "/home/user/a/b.txt");
        assert_eq!(absolute("/home/user/", "x"), "/home/user/x");
        assert_eq!(absolute("/home/user", ""), "/home/user");
    }

    #[test]
    fn gzip_bodies_inflate_within_the_limit() {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        z.write_all(&[b'a'; 4096]).unwrap();
        let packed = z.finish().unwrap();
        assert_eq!(gunzip(&packed, 1 << 20).unwrap().len(), 4096);
        assert!(
            gunzip(&packed, 100).is_err(),
            "a bomb past the limit is refused"
        );
        assert!(gunzip(b"plain", 100).is_err());
    }
}
