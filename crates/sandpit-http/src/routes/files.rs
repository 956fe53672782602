//! Files in a session's workdir: raw bytes in and out, multipart upload, listings, copy, move,
//! folders. Paths are checked by the session (no `..`, nothing outside the workdir).

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use sandpit::ListOptions;
use sandpit_service::types::{FileEntry, FileList, FileOp, FileOpKind, ListFiles};
use sandpit_service::{ErrorKind, ServiceError};
use serde::Deserialize;

use crate::auth::Auth;
use crate::body::RawBody;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// `?mode=755` on a write.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WriteQuery {
    /// Permission bits, octal.
    #[serde(default)]
    pub mode: Option<String>,
}

fn mode(q: &WriteQuery) -> Result<Option<u32>, ServiceError> {
    q.mode
        .as_deref()
        .map(|m| {
            u32::from_str_radix(m.trim(), 8)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "mode {m:?} is not octal permission bits such as 644"
                    ))
                })
        })
        .transpose()
}

/// `PUT /v1/sessions/{id}/files/{path}`: the body becomes the file.
pub async fn write(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, path)): Path<(String, String)>,
    Query(q): Query<WriteQuery>,
    RawBody(bytes): RawBody,
) -> ApiResult<(StatusCode, Json<FileEntry>)> {
    let mode = mode(&q)?;
    let busy = state.manager.hold(&owner, &id).await?;
    let written = busy.session().files().write(&path, &bytes, mode).await;
    Ok((
        StatusCode::CREATED,
        Json(done(&state, &owner, &id, written).await?.into()),
    ))
}

/// `GET /v1/sessions/{id}/files/{path}`: the file's bytes.
pub async fn read(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, path)): Path<(String, String)>,
) -> ApiResult<Response> {
    let busy = state.manager.hold(&owner, &id).await?;
    let bytes = busy.session().files().read(&path).await;
    let bytes = done(&state, &owner, &id, bytes).await?;
    let name = path.rsplit('/').next().unwrap_or("file");
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_DISPOSITION, attachment(name)),
        ],
        bytes,
    )
        .into_response())
}

/// `Content-Disposition` for a file named `name`, whatever bytes the name holds: a printable
/// ASCII fallback, and the exact name percent-encoded (RFC 6266 and 5987).
fn attachment(name: &str) -> String {
    let fallback: String = name
        .chars()
        .map(|c| match c {
            ' '..='~' if c != '"' && c != '\\' => c,
            _ => '_',
        })
        .collect();
    let exact: String = name
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{exact}")
}

/// `DELETE /v1/sessions/{id}/files/{path}`.
pub async fn delete(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path((id, path)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let busy = state.manager.hold(&owner, &id).await?;
    let deleted = busy.session().files().delete(&path).await;
    done(&state, &owner, &id, deleted).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/sessions/{id}/files?path=&recursive=&pattern=`.
pub async fn list(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    Query(q): Query<ListFiles>,
) -> ApiResult<Json<FileList>> {
    let busy = state.manager.hold(&owner, &id).await?;
    let options = ListOptions {
        recursive: q.recursive.unwrap_or(false),
        pattern: q.pattern.clone(),
        ..Default::default()
    };
    let listed = busy
        .session()
        .files()
        .list(q.path.as_deref().unwrap_or("."), &options)
        .await;
    let files = done(&state, &owner, &id, listed).await?;
    Ok(Json(FileList {
        files: files.into_iter().map(FileEntry::from).collect(),
    }))
}

/// `POST /v1/sessions/{id}/files`: multipart upload of `file` parts into the folder `path`.
pub async fn upload(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    mut form: Multipart,
) -> ApiResult<(StatusCode, Json<FileList>)> {
    let busy = state.manager.hold(&owner, &id).await?;
    let mut folder = String::new();
    let mut parts: Vec<(String, bytes::Bytes)> = Vec::new();
    while let Some(field) = form.next_field().await.map_err(multipart_error)? {
        match field.name() {
            Some("path") => folder = field.text().await.map_err(multipart_error)?,
            _ => {
                let name = field
                    .file_name()
                    .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).to_string())
                    .filter(|n| !n.is_empty() && n != "." && n != "..")
                    .ok_or_else(|| {
                        ServiceError::invalid(
                            "each uploaded part needs a file name (multipart `filename`)",
                        )
                    })?;
                parts.push((name, field.bytes().await.map_err(multipart_error)?));
            }
        }
    }
    if parts.is_empty() {
        return Err(ServiceError::invalid("the upload holds no file part").into());
    }
    let mut files = Vec::new();
    for (name, data) in parts {
        let target = if folder.trim().is_empty() || folder.trim() == "." {
            name
        } else {
            format!("{}/{name}", folder.trim().trim_end_matches('/'))
        };
        let written = busy.session().files().write(&target, &data, None).await;
        files.push(done(&state, &owner, &id, written).await?.into());
    }
    Ok((StatusCode::CREATED, Json(FileList { files })))
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    let text = e.body_text();
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorKind::TooLarge,
            format!("the upload is too large: {text}"),
        )
    } else {
        ApiError::new(
            ErrorKind::InvalidInput,
            format!("the multipart upload is malformed: {text}"),
        )
    }
}

/// `POST /v1/sessions/{id}/files/ops`: copy, move, mkdir, info.
pub async fn op(
    State(state): State<AppState>,
    Auth(owner): Auth,
    Path(id): Path<String>,
    crate::body::JsonBody(req): crate::body::JsonBody<FileOp>,
) -> ApiResult<Json<FileEntry>> {
    let busy = state.manager.hold(&owner, &id).await?;
    let files = busy.session().files();
    let to = || {
        req.to
            .as_deref()
            .ok_or_else(|| ServiceError::invalid(format!("{} needs `to`", req.op.name())))
    };
    let result = match req.op {
        FileOpKind::Copy => files.copy(&req.path, to()?).await,
        FileOpKind::Move => files.rename(&req.path, to()?).await,
        FileOpKind::Mkdir => files.mkdir(&req.path).await,
        FileOpKind::Info => files.info(&req.path).await,
    };
    Ok(Json(done(&state, &owner, &id, result).await?.into()))
}

/// A session operation's result, with a session that is gone forgotten.
pub async fn done<T>(
    state: &AppState,
    owner: &sandpit_service::Owner,
    id: &str,
    result: sandpit::Result<T>,
) -> Result<T, ApiError> {
    match result {
        Ok(v) => Ok(v),
        Err(e) => {
            let entry = state.manager.get(owner, id)?;
            Err(state.manager.failed(&entry, e).await.into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::attachment;

    #[test]
    fn any_file_name_makes_a_valid_header() {
        for name in ["plain.txt", "quo\"te", "\u{1b}[31m\u{9f}é✓", "a b\\c"] {
            let value = attachment(name);
            assert!(axum::http::HeaderValue::from_str(&value).is_ok(), "{value}");
        }
        assert_eq!(
            attachment("é.txt"),
            "attachment; filename=\"_.txt\"; filename*=UTF-8''%C3%A9.txt"
        );
    }
}
