//! The operations behind the tools ([`Toolbox`]) and the dispatcher that runs a call by name.

use std::future::Future;

use serde_json::Value;

use super::rendering::{
    render_created, render_execute, render_files, render_run, render_sessions, render_step,
};
use super::{
    definition, definitions, CloseSessionArgs, CreateSessionArgs, ExecuteArgs, Executed, FileBody,
    FileOutput, ImageOutput, InstallPackagesArgs, ListFilesArgs, ListSessionsArgs,
    ListSnapshotsArgs, ReadFileArgs, RunCodeArgs, RunCommandArgs, SnapshotSessionArgs,
    SnapshotSummary, ToolError, ToolOutput, ToolResult, WriteFileArgs, CLOSE_SESSION,
    CREATE_SESSION, EMBED_LIMIT, EXECUTE, INLINE_IMAGE_LIMIT, INLINE_TEXT_LIMIT, INSTALL_PACKAGES,
    LIST_FILES, LIST_SESSIONS, LIST_SNAPSHOTS, READ_FILE, RUN_CODE, RUN_COMMAND, SNAPSHOT_SESSION,
    WRITE_FILE,
};
use crate::api::{Installed, RunResponse, SessionInfo, StepResponse};
use crate::{FileInfo, FileKind};

/// The operations behind the tools. [`call`] parses a tool call's arguments, runs the
/// operation and renders its result for the model, the same way for every implementation.
pub trait Toolbox: Send + Sync {
    /// One program in a fresh sandbox, figures captured.
    fn run_code(&self, args: RunCodeArgs) -> impl Future<Output = ToolResult<RunResponse>> + Send;
    /// A new session.
    fn create_session(
        &self,
        args: CreateSessionArgs,
    ) -> impl Future<Output = ToolResult<SessionInfo>> + Send;
    /// Code in a session's kernel (or as a program where the language has none).
    fn execute(&self, args: ExecuteArgs) -> impl Future<Output = ToolResult<Executed>> + Send;
    /// A shell command in a session.
    fn run_command(
        &self,
        args: RunCommandArgs,
    ) -> impl Future<Output = ToolResult<StepResponse>> + Send;
    /// Writes `data` to `path` in a session.
    fn write_file(
        &self,
        session_id: &str,
        path: &str,
        data: Vec<u8>,
    ) -> impl Future<Output = ToolResult<FileInfo>> + Send;
    /// What is at `path` in a session (without reading it).
    fn file_info(
        &self,
        session_id: &str,
        path: &str,
    ) -> impl Future<Output = ToolResult<FileInfo>> + Send;
    /// The bytes at `path` in a session.
    fn read_file(
        &self,
        session_id: &str,
        path: &str,
    ) -> impl Future<Output = ToolResult<Vec<u8>>> + Send;
    /// A session's files.
    fn list_files(
        &self,
        args: ListFilesArgs,
    ) -> impl Future<Output = ToolResult<Vec<FileInfo>>> + Send;
    /// Packages into a session.
    fn install_packages(
        &self,
        args: InstallPackagesArgs,
    ) -> impl Future<Output = ToolResult<Installed>> + Send;
    /// The sessions held.
    fn list_sessions(&self) -> impl Future<Output = ToolResult<Vec<SessionInfo>>> + Send;
    /// Closes a session.
    fn close_session(&self, session_id: &str) -> impl Future<Output = ToolResult<()>> + Send;
    /// Saves a session's files as a snapshot, where the toolbox has a snapshot store.
    fn snapshot_session(
        &self,
        _session_id: &str,
        _name: Option<&str>,
    ) -> impl Future<Output = ToolResult<SnapshotSummary>> + Send {
        async { Err(no_snapshots()) }
    }
    /// The snapshots saved, where the toolbox has a snapshot store.
    fn list_snapshots(&self) -> impl Future<Output = ToolResult<Vec<SnapshotSummary>>> + Send {
        async { Err(no_snapshots()) }
    }
    /// A time-limited URL that downloads `path` of a session, where the toolbox can make one
    /// (the server can; a local toolbox cannot, and attaches the bytes instead).
    fn download_link(&self, _session_id: &str, _path: &str) -> Option<(String, String)> {
        None
    }
}

fn no_snapshots() -> ToolError {
    ToolError::new(
        "unsupported",
        "snapshots need a snapshot store: start the server with --snapshots URL (file:///path or s3://bucket/prefix)",
    )
}

fn parse<T: serde::de::DeserializeOwned>(name: &str, arguments: Value) -> ToolResult<T> {
    let arguments = match arguments {
        Value::Null => Value::Object(Default::default()),
        Value::String(s) => serde_json::from_str(&s).map_err(|e| {
            ToolError::invalid(format!(
                "the arguments of {name} are not a JSON object ({e})"
            ))
        })?,
        other => other,
    };
    serde_json::from_value(arguments).map_err(|e| {
        let expected = definition(name)
            .map(|d| {
                let props = d.parameters["properties"]
                    .as_object()
                    .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
                    .unwrap_or_default();
                let required = d.parameters["required"]
                    .as_array()
                    .map(|r| {
                        r.iter()
                            .filter_map(Value::as_str)
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .unwrap_or_default();
                format!(" ({name} takes: {props}; required: {required})")
            })
            .unwrap_or_default();
        ToolError::invalid(format!("invalid arguments for {name}: {e}{expected}"))
    })
}

/// Runs the tool `name` with `arguments` (a JSON object, or a string holding one, as OpenAI
/// sends them) on `toolbox`. Never fails: a failure is a [`ToolOutput`] with `is_error` and a
/// message a model can act on.
pub async fn call<T: Toolbox>(toolbox: &T, name: &str, arguments: Value) -> ToolOutput {
    match call_inner(toolbox, name, arguments).await {
        Ok(out) => out,
        Err(e) => ToolOutput::error(e),
    }
}

async fn call_inner<T: Toolbox>(
    toolbox: &T,
    name: &str,
    arguments: Value,
) -> ToolResult<ToolOutput> {
    match name {
        RUN_CODE => {
            let args: RunCodeArgs = parse(name, arguments)?;
            Ok(render_run(toolbox.run_code(args).await?))
        }
        CREATE_SESSION => {
            let args: CreateSessionArgs = parse(name, arguments)?;
            Ok(render_created(&toolbox.create_session(args).await?))
        }
        EXECUTE => {
            let args: ExecuteArgs = parse(name, arguments)?;
            Ok(match toolbox.execute(args).await? {
                Executed::Kernel(r) => render_execute(r),
                Executed::Program(r) => render_run(r),
            })
        }
        RUN_COMMAND => {
            let args: RunCommandArgs = parse(name, arguments)?;
            Ok(render_step(toolbox.run_command(args).await?))
        }
        WRITE_FILE => {
            let args: WriteFileArgs = parse(name, arguments)?;
            let data = args.bytes()?;
            let f = toolbox
                .write_file(&args.session_id, &args.path, data)
                .await?;
            Ok(ToolOutput::text(format!(
                "wrote {} ({} bytes) in session {}",
                f.path, f.size, args.session_id
            )))
        }
        READ_FILE => {
            let args: ReadFileArgs = parse(name, arguments)?;
            read_file(toolbox, &args).await
        }
        LIST_FILES => {
            let args: ListFilesArgs = parse(name, arguments)?;
            let folder = args.path.clone().unwrap_or_else(|| ".".into());
            let files = toolbox.list_files(args).await?;
            Ok(render_files(&folder, &files))
        }
        INSTALL_PACKAGES => {
            let args: InstallPackagesArgs = parse(name, arguments)?;
            if args.packages.is_empty() {
                return Err(ToolError::invalid(
                    "name at least one package in `packages`",
                ));
            }
            let done = toolbox.install_packages(args).await?;
            Ok(ToolOutput::text(format!(
                "installed: {}",
                done.installed.join(", ")
            )))
        }
        LIST_SESSIONS => {
            let _: ListSessionsArgs = parse(name, arguments)?;
            Ok(render_sessions(&toolbox.list_sessions().await?))
        }
        CLOSE_SESSION => {
            let args: CloseSessionArgs = parse(name, arguments)?;
            toolbox.close_session(&args.session_id).await?;
            Ok(ToolOutput::text(format!(
                "session {} is closed; its files and state are gone",
                args.session_id
            )))
        }
        SNAPSHOT_SESSION => {
            let args: SnapshotSessionArgs = parse(name, arguments)?;
            let snap = toolbox
                .snapshot_session(&args.session_id, args.name.as_deref())
                .await?;
            Ok(ToolOutput::text(format!(
                "saved snapshot {} of session {} ({} files, {} bytes compressed{}); open it again with create_session and from_snapshot: \"{}\" (interpreter variables are not in it)",
                snap.name,
                args.session_id,
                snap.files,
                snap.size_bytes,
                if snap.libraries.is_empty() {
                    String::new()
                } else {
                    format!(", libraries {}", snap.libraries.join(", "))
                },
                snap.name
            )))
        }
        LIST_SNAPSHOTS => {
            let _: ListSnapshotsArgs = parse(name, arguments)?;
            let snaps = toolbox.list_snapshots().await?;
            if snaps.is_empty() {
                return Ok(ToolOutput::text(
                    "no snapshots yet; snapshot_session saves one",
                ));
            }
            let mut out = String::new();
            for s in snaps {
                out.push_str(&format!(
                    "{} {} ({} files, {} bytes, taken {})\n",
                    s.name, s.language, s.files, s.size_bytes, s.created_at
                ));
            }
            Ok(ToolOutput::text(out))
        }
        other => Err(ToolError::new(
            "not_found",
            format!(
                "there is no tool {other:?}; the tools are {}",
                definitions()
                    .iter()
                    .map(|d| d.name)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )),
    }
}

async fn read_file<T: Toolbox>(toolbox: &T, args: &ReadFileArgs) -> ToolResult<ToolOutput> {
    let info = toolbox.file_info(&args.session_id, &args.path).await?;
    if info.kind == FileKind::Dir {
        return Err(ToolError::invalid(format!(
            "{} is a folder: list it with list_files",
            info.path
        )));
    }
    let by_name = mime_from_name(&info.name);
    let small_image = by_name.starts_with("image/") && info.size <= INLINE_IMAGE_LIMIT;
    if info.size <= INLINE_TEXT_LIMIT || small_image {
        let data = toolbox.read_file(&args.session_id, &args.path).await?;
        if let Some(mime) = image_mime(&data) {
            return Ok(ToolOutput {
                text: format!("{} ({mime}, {} bytes)", info.path, data.len()),
                images: vec![ImageOutput {
                    name: info.name.clone(),
                    mime: mime.into(),
                    data,
                }],
                ..Default::default()
            });
        }
        if data.len() as u64 <= INLINE_TEXT_LIMIT && !data.contains(&0) {
            if let Ok(text) = String::from_utf8(data.clone()) {
                if text.is_empty() {
                    return Ok(ToolOutput::text(format!("{} is empty", info.path)));
                }
                return Ok(ToolOutput::text(text));
            }
        }
        let link = toolbox.download_link(&args.session_id, &info.path);
        return Ok(file_output(args, &info, Some(data), link));
    }
    let link = toolbox.download_link(&args.session_id, &info.path);
    if link.is_none() && info.size > EMBED_LIMIT {
        return Err(ToolError::new(
            "too_large",
            format!(
                "{} has {} bytes, too many to return: look inside it with run_command (head, tail, grep, wc -l) or execute",
                info.path, info.size
            ),
        ));
    }
    let data = match link {
        Some(_) => None,
        None => Some(toolbox.read_file(&args.session_id, &args.path).await?),
    };
    Ok(file_output(args, &info, data, link))
}

/// A file handed back whole: linked when there is a link, else attached.
fn file_output(
    args: &ReadFileArgs,
    info: &FileInfo,
    data: Option<Vec<u8>>,
    link: Option<(String, String)>,
) -> ToolOutput {
    let mime = match &data {
        Some(d) if mime_from_name(&info.name) == "application/octet-stream" => {
            if std::str::from_utf8(d).is_ok() {
                "text/plain".to_string()
            } else {
                "application/octet-stream".to_string()
            }
        }
        _ => mime_from_name(&info.name).to_string(),
    };
    let (body, how) = match link {
        Some((url, expires_at)) => {
            let how = format!("download it from {url} (the link works until {expires_at})");
            (FileBody::Link { url, expires_at }, how)
        }
        None => (
            FileBody::Bytes(data.unwrap_or_default()),
            "it is attached".to_string(),
        ),
    };
    let why = if info.size > INLINE_TEXT_LIMIT {
        "too large to show"
    } else {
        "not text"
    };
    ToolOutput {
        text: format!(
            "{} ({mime}, {} bytes) is {why}: {how}; look inside it with run_command (head, tail, grep, wc -l) or execute",
            info.path, info.size
        ),
        files: vec![FileOutput {
            uri: format!("sandpit://{}/{}", args.session_id, info.path),
            path: info.path.clone(),
            name: info.name.clone(),
            mime,
            size: info.size,
            body,
        }],
        ..Default::default()
    }
}

/// The image type of `data`, from its first bytes.
pub fn image_mime(data: &[u8]) -> Option<&'static str> {
    if data.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if data.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if data.starts_with(b"GIF87a") || data.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if data.len() > 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// A mime type from a file name's extension (`application/octet-stream` when unknown).
pub fn mime_from_name(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "pdf" => "application/pdf",
        "zip" => "application/zip",
        "gz" | "tgz" => "application/gzip",
        "tar" => "application/x-tar",
        "json" => "application/json",
        "csv" => "text/csv",
        "html" | "htm" => "text/html",
        "md" => "text/markdown",
        "txt" | "log" | "py" | "js" | "rb" | "go" | "java" | "cpp" | "cc" | "h" | "hpp" | "c"
        | "sh" | "toml" | "yaml" | "yml" | "xml" | "ini" | "cfg" => "text/plain",
        _ => "application/octet-stream",
    }
}
