//! Sandpit as tools for language models: one set of definitions (name, description, JSON
//! Schema of the arguments) rendered for OpenAI and Anthropic function calling and served by
//! the MCP server, and a dispatcher that runs a tool call by name against a [`Toolbox`].
//!
//! The argument types below are the single source of truth: their JSON Schemas are derived
//! from them (schemars), and a call's arguments are parsed into them. Two toolboxes implement
//! the operations: [`LocalTools`] here (sessions opened with this library, on an engine you
//! hold) and the server's, over its session manager (`sandpit_mcp::ServerTools`).
//!
//! ```no_run
//! use sandpit::tools::{self, Format, LocalTools};
//!
//! # async fn demo() {
//! let definitions = tools::render(Format::OpenAi); // hand these to the model
//! let toolbox = LocalTools::new();
//! // ...the model answers with a tool call...
//! let output = tools::call(&toolbox, "run_code", serde_json::json!({
//!     "language": "python", "code": "print(6 * 7)"
//! })).await;
//! assert_eq!(output.text.trim_end(), "exit code: 0\nstdout:\n42");
//! toolbox.close_all().await;
//! # }
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::{
    CreateSession, ExecuteResponse, FileEntry, Installed, OneShotRequest, RunResponse, SessionInfo,
    StepResponse,
};
use crate::{
    CommandOptions, Engine, ExecuteOptions, Language, LanguageExt, ListOptions, PackageSpec,
    RunOptions, SandboxSession, SessionBuilder,
};

/// `run_code`: one program in a fresh sandbox.
pub const RUN_CODE: &str = "run_code";
/// `create_session`: a sandbox that keeps state.
pub const CREATE_SESSION: &str = "create_session";
/// `execute`: code in a session's interpreter.
pub const EXECUTE: &str = "execute";
/// `run_command`: a shell command in a session.
pub const RUN_COMMAND: &str = "run_command";
/// `write_file`: a file into a session.
pub const WRITE_FILE: &str = "write_file";
/// `read_file`: a file out of a session.
pub const READ_FILE: &str = "read_file";
/// `list_files`: a session's files.
pub const LIST_FILES: &str = "list_files";
/// `install_packages`: libraries into a session.
pub const INSTALL_PACKAGES: &str = "install_packages";
/// `list_sessions`: the sessions held.
pub const LIST_SESSIONS: &str = "list_sessions";
/// `close_session`: the end of a session.
pub const CLOSE_SESSION: &str = "close_session";
/// The name of the tool that saves a session's files.
pub const SNAPSHOT_SESSION: &str = "snapshot_session";
/// The name of the tool that lists saved snapshots.
pub const LIST_SNAPSHOTS: &str = "list_snapshots";

/// Characters of one output stream shown to the model; the middle of longer output is cut.
pub const TEXT_LIMIT: usize = 20_000;
/// Text files up to this size come back as text from `read_file`.
pub const INLINE_TEXT_LIMIT: u64 = 64 << 10;
/// Images up to this size come back as images from `read_file`.
pub const INLINE_IMAGE_LIMIT: u64 = 5 << 20;
/// Files up to this size may be attached whole when no download link can be made.
pub const EMBED_LIMIT: u64 = 16 << 20;

// ------------------------------------------------------------------ arguments

/// Arguments of `run_code`: the HTTP API's one-shot request.
pub type RunCodeArgs = OneShotRequest;

/// Arguments of `create_session`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSessionArgs {
    /// python, javascript or ruby (stateful interpreters), or java, cpp or go; may be left
    /// out with from_snapshot (the snapshot's language).
    #[serde(default)]
    pub language: String,
    /// Libraries installed before any code runs, e.g. ["requests", "six==1.17.0"] for python.
    #[serde(default)]
    pub libraries: Vec<String>,
    /// Seconds the session lives before it is closed (default: 6 hours, unless the server
    /// sets otherwise).
    #[serde(default)]
    pub lifetime: Option<u64>,
    /// Open the session from this snapshot (from snapshot_session or list_snapshots): its
    /// files, libraries and environment come back; interpreter memory does not.
    #[serde(default)]
    pub from_snapshot: Option<String>,
}

impl CreateSessionArgs {
    /// The HTTP API's request for the same session.
    pub fn to_request(&self) -> CreateSession {
        CreateSession {
            language: self.language.clone(),
            libraries: self.libraries.clone(),
            timeout: self.lifetime,
            from_snapshot: self.from_snapshot.clone(),
            ..Default::default()
        }
    }
}

/// Arguments of `execute`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExecuteArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// The code to run.
    pub code: String,
    /// Seconds before the code is interrupted (default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
}

/// Arguments of `run_command`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCommandArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// The command line, run by `sh -c` in /sandbox.
    pub command: String,
    /// Seconds before the command is killed (default 60).
    #[serde(default)]
    pub timeout: Option<f64>,
    /// Text fed to the command's standard input.
    #[serde(default)]
    pub stdin: Option<String>,
}

/// How `write_file`'s content is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    /// The content is the file's text (UTF-8).
    #[default]
    Text,
    /// The content is base64 of the file's bytes.
    Base64,
}

/// Arguments of `write_file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WriteFileArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// Where to write, relative to /sandbox, e.g. "data/input.csv".
    pub path: String,
    /// The file's content.
    pub content: String,
    /// "text" (default) or "base64" for binary content.
    #[serde(default)]
    pub encoding: Option<Encoding>,
}

impl WriteFileArgs {
    /// The bytes to write, decoded.
    pub fn bytes(&self) -> Result<Vec<u8>, ToolError> {
        match self.encoding.unwrap_or_default() {
            Encoding::Text => Ok(self.content.clone().into_bytes()),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD
                .decode(self.content.trim())
                .map_err(|e| {
                    ToolError::invalid(format!(
                        "content is not valid base64 ({e}); send plain text with encoding \"text\""
                    ))
                }),
        }
    }
}

/// Arguments of `read_file`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadFileArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// The file, relative to /sandbox.
    pub path: String,
}

/// Arguments of `list_files`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListFilesArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// The folder, relative to /sandbox (default: /sandbox itself).
    #[serde(default)]
    pub path: Option<String>,
    /// List everything below the folder, not just its own entries.
    #[serde(default)]
    pub recursive: Option<bool>,
    /// A glob the names must match, e.g. "*.csv".
    #[serde(default)]
    pub pattern: Option<String>,
}

/// Arguments of `install_packages`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InstallPackagesArgs {
    /// The session, from create_session.
    pub session_id: String,
    /// Packages, optionally pinned: "requests", "six==1.17.0" (pip), "lodash@4.17.21" (npm).
    pub packages: Vec<String>,
}

/// Arguments of `list_sessions` (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSessionsArgs {}

/// Arguments of `close_session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloseSessionArgs {
    /// The session to close.
    pub session_id: String,
}

/// Arguments of `snapshot_session`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotSessionArgs {
    /// The session whose files to save.
    pub session_id: String,
    /// A name for the snapshot (letters, digits, `-`, `_`, `.`); one is made up when left out.
    #[serde(default)]
    pub name: Option<String>,
}

/// Arguments of `list_snapshots` (none).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSnapshotsArgs {}

/// A saved snapshot, as the tools show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotSummary {
    /// Its name, for create_session's from_snapshot.
    pub name: String,
    /// The language of the session it came from.
    pub language: String,
    /// Files in it.
    pub files: u64,
    /// Compressed bytes.
    pub size_bytes: u64,
    /// The libraries it reinstalls.
    pub libraries: Vec<String>,
    /// When it was taken (RFC 3339).
    pub created_at: String,
}

// ------------------------------------------------------------------ definitions

/// One tool: its name, what it tells the model, and the JSON Schema of its arguments.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDef {
    /// The tool's name (`run_code`, ...).
    pub name: &'static str,
    /// What it does, written for a model.
    pub description: &'static str,
    /// The JSON Schema of its arguments (an object schema, subschemas inlined).
    pub parameters: Value,
    /// It changes nothing (MCP's `readOnlyHint`).
    #[serde(skip)]
    pub read_only: bool,
    /// It destroys state (MCP's `destructiveHint`).
    #[serde(skip)]
    pub destructive: bool,
}

const RUN_CODE_DESCRIPTION: &str = "Run a complete program in a fresh, isolated sandbox that is thrown away afterwards; nothing is kept between calls. Languages: python (3.11, with numpy, pandas and matplotlib), javascript (Node 18), ruby (3.1), java (17), cpp (g++ 12, C++17), go (1.23, package main). The sandbox has no network (packages listed in `libraries` are installed before the code runs), 512 MiB of memory and 1 CPU; the program is killed after `timeout` seconds (default 60). Returns the exit code, stdout and stderr (long output is shortened in the middle) and every matplotlib figure left open, as PNG images. To keep variables or files between calls, use create_session and execute instead.";

const CREATE_SESSION_DESCRIPTION: &str = "Open a sandbox session that keeps state between calls and return its session_id, for execute, run_command, write_file, read_file, list_files, install_packages and close_session. In python, javascript and ruby sessions, execute runs code in a live interpreter, like notebook cells: variables, imports, functions and open files persist between calls. In java, cpp and go sessions, execute compiles and runs each snippet as a whole program. Files in the working folder /sandbox persist in every language. A session has no network, 512 MiB of memory, 1 CPU and 1 GiB of disk. It closes by itself after `lifetime` seconds (default 6 hours) or after 30 minutes without a call; call close_session when you are done.";

const EXECUTE_DESCRIPTION: &str = "Run code in a session's interpreter and keep its state, like a notebook cell: what earlier calls defined (variables, imports, functions) is still there. Python runs in IPython, JavaScript in Node (let/const persist, top-level await works), Ruby in one binding. Returns the value of the last expression, stdout, stderr, and an exception with its traceback; every matplotlib figure created or changed comes back as a PNG image (no plt.show() or savefig() needed). Code running past `timeout` seconds (default 60) is interrupted and the state survives. In java, cpp and go sessions the code is compiled and run as a whole program in /sandbox (only files persist).";

const RUN_COMMAND_DESCRIPTION: &str = "Run a shell command (sh -c) in a session's working folder /sandbox as an unprivileged user, for example `ls -la`, `python3 script.py`, `g++ -O2 main.cpp -o main && ./main`, `head -n 20 data.csv`. Returns the exit code, stdout and stderr (long output is shortened in the middle). No network; killed after `timeout` seconds (default 60).";

const WRITE_FILE_DESCRIPTION: &str = "Write a file into a session's working folder /sandbox; folders are made as needed and an existing file is replaced. The path is relative to /sandbox (an absolute path must lie inside it). Give the text in `content`, or base64 with `encoding: \"base64\"` for binary data. Code run later in the session (execute, run_command) sees the file.";

const READ_FILE_DESCRIPTION: &str = "Read a file from a session's working folder /sandbox. Text files up to 64 KiB come back as text and PNG, JPEG, GIF or WebP images as images. Larger or binary files come back as a download link or an attached resource instead of their content, so they do not fill the conversation: look inside big files with run_command (head, tail, wc -l, grep) or execute.";

const LIST_FILES_DESCRIPTION: &str = "List files and folders in a session's working folder /sandbox: kind, size, permissions and path of each. `path` picks a subfolder, `recursive` lists everything below it, `pattern` keeps names matching a glob such as `*.csv`.";

const INSTALL_PACKAGES_DESCRIPTION: &str = "Install packages into a session: pip requirements for python (`requests`, `six==1.17.0`), npm packages for javascript (`lodash@4.17.21`), gems or `apt:ruby-NAME` for ruby, Maven `group:artifact:version` for java, module paths for go, Debian `-dev` packages for cpp. The network is on only while they install; a running interpreter keeps its state.";

const LIST_SESSIONS_DESCRIPTION: &str = "List the sessions you hold: id, language, installed libraries and when each closes. Use it to find a session_id again.";

const SNAPSHOT_SESSION_DESCRIPTION: &str = "Save a session's files in /sandbox, its installed libraries and its environment as a snapshot that outlives the session; create_session with from_snapshot opens a new session from it later. Interpreter memory (variables) is not saved: keep what matters in files. Returns the snapshot's name.";

const LIST_SNAPSHOTS_DESCRIPTION: &str = "List the snapshots you saved with snapshot_session: name, language, files, size and when each was taken.";

const CLOSE_SESSION_DESCRIPTION: &str = "Close a session and delete its sandbox with all its files and state. Call it when you are done; sessions also close by themselves when their lifetime ends or after 30 minutes without a call.";

/// Every tool, in a stable order.
pub fn definitions() -> Vec<ToolDef> {
    fn def<T: JsonSchema>(
        name: &'static str,
        description: &'static str,
        read_only: bool,
        destructive: bool,
    ) -> ToolDef {
        ToolDef {
            name,
            description,
            parameters: schema_of::<T>(),
            read_only,
            destructive,
        }
    }
    vec![
        def::<RunCodeArgs>(RUN_CODE, RUN_CODE_DESCRIPTION, false, false),
        def::<CreateSessionArgs>(CREATE_SESSION, CREATE_SESSION_DESCRIPTION, false, false),
        def::<ExecuteArgs>(EXECUTE, EXECUTE_DESCRIPTION, false, false),
        def::<RunCommandArgs>(RUN_COMMAND, RUN_COMMAND_DESCRIPTION, false, false),
        def::<WriteFileArgs>(WRITE_FILE, WRITE_FILE_DESCRIPTION, false, false),
        def::<ReadFileArgs>(READ_FILE, READ_FILE_DESCRIPTION, true, false),
        def::<ListFilesArgs>(LIST_FILES, LIST_FILES_DESCRIPTION, true, false),
        def::<InstallPackagesArgs>(INSTALL_PACKAGES, INSTALL_PACKAGES_DESCRIPTION, false, false),
        def::<ListSessionsArgs>(LIST_SESSIONS, LIST_SESSIONS_DESCRIPTION, true, false),
        def::<CloseSessionArgs>(CLOSE_SESSION, CLOSE_SESSION_DESCRIPTION, false, true),
        def::<SnapshotSessionArgs>(SNAPSHOT_SESSION, SNAPSHOT_SESSION_DESCRIPTION, false, false),
        def::<ListSnapshotsArgs>(LIST_SNAPSHOTS, LIST_SNAPSHOTS_DESCRIPTION, true, false),
    ]
}

/// The tools a toolbox offers: every tool, less the snapshot tools where there is no
/// snapshot store (a model should not be shown a tool that can only fail).
pub fn offered(snapshots: bool) -> Vec<ToolDef> {
    definitions()
        .into_iter()
        .filter(|d| snapshots || !matches!(d.name, SNAPSHOT_SESSION | LIST_SNAPSHOTS))
        .collect()
}

/// The tool named `name`.
pub fn definition(name: &str) -> Option<ToolDef> {
    definitions().into_iter().find(|d| d.name == name)
}

/// The JSON Schema of `T` as a tool's parameters: draft 2020-12, subschemas inlined, without
/// `$schema`, titles, the type's own description or the integer formats schemars adds
/// (`uint64`, ...), and with `properties` always present.
pub fn schema_of<T: JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.inline_subschemas = true)
        .into_generator();
    let mut value = generator.into_root_schema_for::<T>().to_value();
    if let Some(obj) = value.as_object_mut() {
        obj.remove("$schema");
        obj.remove("description");
        obj.entry("properties")
            .or_insert_with(|| Value::Object(Default::default()));
    }
    tidy(&mut value);
    value
}

fn tidy(value: &mut Value) {
    match value {
        Value::Object(obj) => {
            obj.remove("title");
            let standard = [
                "date-time",
                "date",
                "time",
                "duration",
                "email",
                "hostname",
                "ipv4",
                "ipv6",
                "uri",
                "uuid",
                "regex",
            ];
            if obj
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(|f| !standard.contains(&f))
            {
                obj.remove("format");
            }
            for (key, v) in obj.iter_mut() {
                // Property names are data, not keywords: only their schemas are tidied.
                if key == "properties" {
                    if let Value::Object(props) = v {
                        for p in props.values_mut() {
                            tidy(p);
                        }
                    }
                } else {
                    tidy(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(tidy),
        _ => {}
    }
}

/// The function-calling dialects [`render`] speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `{"type": "function", "function": {name, description, parameters}}`.
    OpenAi,
    /// `{name, description, input_schema}`.
    Anthropic,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "openai" | "open-ai" | "open_ai" => Ok(Format::OpenAi),
            "anthropic" | "claude" => Ok(Format::Anthropic),
            other => Err(format!(
                "unknown tool format {other:?}: use openai or anthropic"
            )),
        }
    }
}

impl ToolDef {
    /// This tool in `format`.
    pub fn render(&self, format: Format) -> Value {
        match format {
            Format::OpenAi => serde_json::json!({
                "type": "function",
                "function": {
                    "name": self.name,
                    "description": self.description,
                    "parameters": self.parameters,
                }
            }),
            Format::Anthropic => serde_json::json!({
                "name": self.name,
                "description": self.description,
                "input_schema": self.parameters,
            }),
        }
    }
}

/// Every tool in `format`, as a JSON array to hand to the model's API.
pub fn render(format: Format) -> Value {
    render_all(&definitions(), format)
}

/// `tools` in `format`, as a JSON array to hand to the model's API.
pub fn render_all(tools: &[ToolDef], format: Format) -> Value {
    Value::Array(tools.iter().map(|d| d.render(format)).collect())
}

// ------------------------------------------------------------------ results

/// A failed tool call: a kind (`invalid_input`, `not_found`, ... as in the HTTP API) and a
/// message a model can act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolError {
    /// The kind, as the HTTP API names it.
    pub kind: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl ToolError {
    /// An error of `kind`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        ToolError {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// Bad arguments.
    pub fn invalid(message: impl Into<String>) -> Self {
        ToolError::new("invalid_input", message)
    }
}

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ToolError {}

impl From<crate::Error> for ToolError {
    fn from(e: crate::Error) -> Self {
        ToolError::new(e.kind().as_str(), crate::one_line(&e))
    }
}

/// The result of a toolbox operation.
pub type ToolResult<T> = Result<T, ToolError>;

/// What `execute` ran: the session's kernel, or (languages without one) a whole program.
#[derive(Debug, Clone, PartialEq)]
pub enum Executed {
    /// A kernel call.
    Kernel(ExecuteResponse),
    /// A program, for java, cpp and go.
    Program(RunResponse),
}

/// A file `read_file` returns.
#[derive(Debug, Clone, PartialEq)]
pub struct FileOutput {
    /// A URI naming it: `sandpit://SESSION/PATH`.
    pub uri: String,
    /// Its path relative to the workdir.
    pub path: String,
    /// Its name.
    pub name: String,
    /// Its mime type, guessed from the name and content.
    pub mime: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its bytes, or a link to them.
    pub body: FileBody,
}

/// A file's content, or where to fetch it.
#[derive(Debug, Clone, PartialEq)]
pub enum FileBody {
    /// The bytes themselves.
    Bytes(Vec<u8>),
    /// A time-limited download URL.
    Link {
        /// The URL (no key needed: it carries its own signature).
        url: String,
        /// When it stops working (RFC 3339).
        expires_at: String,
    },
}

/// An image a call produced (a figure, or an image file read).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageOutput {
    /// A name for it, e.g. `figure-1.png`.
    pub name: String,
    /// `image/png`, ...
    pub mime: String,
    /// The bytes.
    pub data: Vec<u8>,
}

/// What a tool call returns to the model: text, images, files; or an error.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ToolOutput {
    /// The result as text (or the error's message).
    pub text: String,
    /// Images the call produced, every one of them.
    pub images: Vec<ImageOutput>,
    /// Files handed back (read_file of a large or binary file).
    pub files: Vec<FileOutput>,
    /// The call failed: `text` says why and what to do.
    pub is_error: bool,
    /// The error's kind, when it failed.
    pub error_kind: Option<String>,
}

impl ToolOutput {
    fn text(text: impl Into<String>) -> Self {
        ToolOutput {
            text: text.into(),
            ..Default::default()
        }
    }

    /// A failed call.
    pub fn error(e: ToolError) -> Self {
        ToolOutput {
            text: e.message,
            is_error: true,
            error_kind: Some(e.kind),
            ..Default::default()
        }
    }

    /// Everything as one string, for APIs whose tool results are text (OpenAI's): the text,
    /// then a line per image and file (links included; attached bytes are not).
    pub fn to_text(&self) -> String {
        let mut out = if self.is_error {
            format!("error: {}", self.text.trim_end())
        } else {
            self.text.trim_end().to_string()
        };
        for image in &self.images {
            out.push_str(&format!(
                "\n[image {}: {}, {} bytes]",
                image.name,
                image.mime,
                image.data.len()
            ));
        }
        for file in &self.files {
            match &file.body {
                FileBody::Link { url, expires_at } => out.push_str(&format!(
                    "\n[file {} ({}, {} bytes): download {url} until {expires_at}]",
                    file.path, file.mime, file.size
                )),
                FileBody::Bytes(_) => out.push_str(&format!(
                    "\n[file {} ({}, {} bytes) attached]",
                    file.path, file.mime, file.size
                )),
            }
        }
        out
    }

    /// The content of an Anthropic `tool_result` block: text, then the images as base64
    /// image blocks.
    pub fn anthropic_content(&self) -> Value {
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut blocks = vec![serde_json::json!({"type": "text", "text": self.to_text()})];
        for image in &self.images {
            blocks.push(serde_json::json!({
                "type": "image",
                "source": {"type": "base64", "media_type": image.mime, "data": b64.encode(&image.data)}
            }));
        }
        Value::Array(blocks)
    }
}

// ------------------------------------------------------------------ the toolbox

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
    ) -> impl Future<Output = ToolResult<FileEntry>> + Send;
    /// What is at `path` in a session (without reading it).
    fn file_info(
        &self,
        session_id: &str,
        path: &str,
    ) -> impl Future<Output = ToolResult<FileEntry>> + Send;
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
    ) -> impl Future<Output = ToolResult<Vec<FileEntry>>> + Send;
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
    if info.kind == "dir" {
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
    info: &FileEntry,
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

// ------------------------------------------------------------------ rendering

/// `text` cut to `limit` characters, keeping its start and end.
pub fn clip(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_string();
    }
    let head: String = text.chars().take(limit * 3 / 5).collect();
    let tail: String = text.chars().skip(count - limit * 2 / 5).collect();
    format!(
        "{head}\n[... {} characters cut; write long output to a file and read parts of it ...]\n{tail}",
        count - head.chars().count() - tail.chars().count()
    )
}

fn section(out: &mut String, label: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(label);
    out.push_str(":\n");
    out.push_str(&clip(text, TEXT_LIMIT));
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

fn notes(out: &mut String, timed_out: bool, truncated: bool, oom_killed: bool) {
    if timed_out {
        out.push_str("note: it ran past its timeout and was stopped\n");
    }
    if oom_killed {
        out.push_str("note: it was killed for using more memory than the sandbox allows (512 MiB unless set otherwise)\n");
    }
    if truncated {
        out.push_str("note: the output passed the sandbox's limit (1 MiB per stream) and the rest was dropped\n");
    }
}

fn figures(artifacts: &[crate::api::ArtifactInfo]) -> Vec<ImageOutput> {
    artifacts
        .iter()
        .filter(|a| a.mime.starts_with("image/"))
        .filter_map(|a| {
            base64::engine::general_purpose::STANDARD
                .decode(&a.data_base64)
                .ok()
                .map(|data| ImageOutput {
                    name: a.name.clone(),
                    mime: a.mime.clone(),
                    data,
                })
        })
        .collect()
}

fn render_run(r: RunResponse) -> ToolOutput {
    let mut out = String::new();
    if let Some(c) = &r.compile {
        if c.exit_code != 0 || c.timed_out {
            out.push_str(&format!("compile failed: exit code {}\n", c.exit_code));
            section(
                &mut out,
                "compiler output",
                &format!("{}{}", c.stdout, c.stderr),
            );
            notes(&mut out, c.timed_out, c.truncated, c.oom_killed);
            return ToolOutput::text(out);
        }
    }
    out.push_str(&format!("exit code: {}\n", r.exit_code));
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    notes(&mut out, r.timed_out, r.truncated, r.oom_killed);
    let images = figures(&r.artifacts);
    if !images.is_empty() {
        out.push_str(&format!("figures: {} (PNG images)\n", images.len()));
    }
    ToolOutput {
        text: out,
        images,
        ..Default::default()
    }
}

fn render_step(r: StepResponse) -> ToolOutput {
    let mut out = format!("exit code: {}\n", r.exit_code);
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    notes(&mut out, r.timed_out, r.truncated, r.oom_killed);
    ToolOutput::text(out)
}

fn render_execute(r: ExecuteResponse) -> ToolOutput {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let mut images = Vec::new();
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    for bundle in &r.results {
        if let Some(png) = bundle.get("image/png").and_then(Value::as_str) {
            if let Ok(data) = b64.decode(png.trim()) {
                images.push(ImageOutput {
                    name: format!("figure-{}.png", images.len() + 1),
                    mime: "image/png".into(),
                    data,
                });
                continue;
            }
        }
        let text = bundle
            .get("text/plain")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| bundle.get("application/json").map(|j| j.to_string()))
            .or_else(|| {
                bundle
                    .get("text/html")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                bundle
                    .get("text/markdown")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        if let Some(text) = text {
            section(&mut out, "result", &text);
        }
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {}: {}\n", e.name, e.value));
        if !e.traceback.is_empty() {
            section(&mut out, "traceback", &e.traceback.join("\n"));
        }
    }
    if r.timed_out {
        out.push_str(if r.state_lost {
            "note: it ran past its timeout; the interpreter did not stop and was restarted, so earlier variables are gone\n"
        } else {
            "note: it ran past its timeout and was interrupted; earlier variables are kept\n"
        });
    } else if r.state_lost {
        out.push_str(
            "note: the interpreter was restarted: variables from earlier calls are gone\n",
        );
    }
    if r.truncated {
        out.push_str("note: the output passed the sandbox's limit (1 MiB per stream) and the rest was dropped\n");
    }
    if !images.is_empty() {
        out.push_str(&format!("figures: {} (PNG images)\n", images.len()));
    }
    if out.is_empty() {
        out.push_str("(no output)\n");
    }
    ToolOutput {
        text: out,
        images,
        ..Default::default()
    }
}

fn render_created(s: &SessionInfo) -> ToolOutput {
    let kind = match s.language.parse::<Language>() {
        Ok(l) if crate::runner(l).kernel().is_some() => "execute keeps variables between calls",
        _ => "execute compiles and runs each snippet as a program; files persist",
    };
    let libs = if s.libraries.is_empty() {
        String::new()
    } else {
        format!(" with {}", s.libraries.join(", "))
    };
    ToolOutput::text(format!(
        "session_id: {}\nlanguage: {}{libs} ({kind})\nworking folder: /sandbox\ncloses at {} or after {} s without a call\n",
        s.id, s.language, s.expires_at, s.idle_timeout
    ))
}

fn render_sessions(sessions: &[SessionInfo]) -> ToolOutput {
    if sessions.is_empty() {
        return ToolOutput::text("no sessions are open; create_session opens one");
    }
    let mut out = String::new();
    for s in sessions {
        out.push_str(&format!(
            "{} {}{}{} (closes at {})\n",
            s.id,
            s.language,
            s.name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default(),
            if s.libraries.is_empty() {
                String::new()
            } else {
                format!(" with {}", s.libraries.join(", "))
            },
            s.expires_at
        ));
    }
    ToolOutput::text(out)
}

fn render_files(folder: &str, files: &[FileEntry]) -> ToolOutput {
    if files.is_empty() {
        return ToolOutput::text(format!("{folder} holds no files"));
    }
    let mut out = String::new();
    for f in files {
        out.push_str(&format!(
            "{:<7} {:>4} {:>10}  {}\n",
            f.kind, f.mode, f.size, f.path
        ));
    }
    ToolOutput::text(clip(&out, TEXT_LIMIT))
}

// ------------------------------------------------------------------ local toolbox

struct Held {
    session: SandboxSession,
    language: Language,
    expires: SystemTime,
    last_used: SystemTime,
}

/// The tools over sessions this process opens itself on an engine (no server): the
/// session-level toolbox. Sessions close when their lifetime ends or after
/// [`LocalTools::idle_timeout`] without a call (both checked on every call), with
/// [`LocalTools::close_all`], or when the last handle of the toolbox is dropped.
#[derive(Clone)]
pub struct LocalTools {
    engine: Option<Engine>,
    configure: Arc<dyn Fn(SessionBuilder) -> SessionBuilder + Send + Sync>,
    lifetime: Duration,
    idle: Duration,
    sessions: Arc<Mutex<HashMap<String, Held>>>,
}

impl std::fmt::Debug for LocalTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTools")
            .field("sessions", &self.held().len())
            .finish()
    }
}

impl Default for LocalTools {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTools {
    /// A toolbox that connects as the CLI does (`DOCKER_HOST`, ...), with sessions of the
    /// standard policy living at most 6 hours, and 30 minutes without a call.
    pub fn new() -> Self {
        LocalTools {
            engine: None,
            configure: Arc::new(|b| b),
            lifetime: Duration::from_secs(6 * 3600),
            idle: Duration::from_secs(30 * 60),
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Opens sessions on `engine`.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Adjusts every builder before it opens (policy, CA certificates, image, ...).
    pub fn configure(
        mut self,
        f: impl Fn(SessionBuilder) -> SessionBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Arc::new(f);
        self
    }

    /// The default (and longest) lifetime of a session made by `create_session`.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long a session may go without a call before it is closed.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Hands an open session to the toolbox (the model reaches it by its id); it is closed
    /// with the others.
    pub fn adopt(&self, session: SandboxSession) -> String {
        let id = session.id().to_string();
        let language = session.runner().language();
        let now = SystemTime::now();
        self.held().insert(
            id.clone(),
            Held {
                session,
                language,
                expires: now + self.lifetime,
                last_used: now,
            },
        );
        id
    }

    /// Closes every session the toolbox holds.
    pub async fn close_all(&self) {
        let all: Vec<SandboxSession> = self.held().drain().map(|(_, h)| h.session).collect();
        for s in all {
            let _ = s.close().await;
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding the lock cannot leave the map half-changed: recover it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn builder(&self, language: Language) -> SessionBuilder {
        let mut b = SandboxSession::builder().language(language);
        if let Some(e) = &self.engine {
            b = b.engine(e.clone());
        }
        (self.configure)(b)
    }

    /// Closes the sessions whose lifetime ended or that went too long without a call.
    async fn sweep(&self) {
        let now = SystemTime::now();
        let expired: Vec<SandboxSession> = {
            let mut held = self.held();
            let ids: Vec<String> = held
                .iter()
                .filter(|(_, h)| h.expires <= now || h.last_used + self.idle <= now)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter()
                .filter_map(|k| held.remove(k).map(|h| h.session))
                .collect()
        };
        for s in expired {
            let _ = s.close().await;
        }
    }

    /// The session `id` (after a sweep), its idle clock restarted.
    async fn session(&self, id: &str) -> ToolResult<(SandboxSession, Language)> {
        self.sweep().await;
        let now = SystemTime::now();
        let mut held = self.held();
        let h = held.get_mut(id).ok_or_else(|| {
            ToolError::new(
                "not_found",
                format!("session {id} does not exist (it expired, idled out or was closed): list_sessions shows the open ones, create_session opens a new one"),
            )
        })?;
        h.last_used = now;
        Ok((h.session.clone(), h.language))
    }

    fn info(&self, id: &str, h: &Held) -> SessionInfo {
        let s = &h.session;
        SessionInfo {
            id: id.to_string(),
            name: None,
            language: h.language.name().to_string(),
            image: s.image().to_string(),
            state: "running".into(),
            runtime: s.runtime().map(String::from),
            network: s.policy().network.mode(),
            created_at: crate::time::rfc3339(s.created()),
            expires_at: crate::time::rfc3339(h.expires),
            idle_timeout: self.idle.as_secs(),
            run_timeout: 60.0,
            last_used_at: crate::time::rfc3339(h.last_used),
            metadata: Default::default(),
            libraries: s.installed_libraries(),
            usage: None,
            restored: None,
        }
    }
}

fn language(name: &str) -> ToolResult<Language> {
    name.parse()
        .map_err(|e: crate::UnknownLanguage| ToolError::invalid(e.to_string()))
}

fn seconds(what: &str, secs: Option<f64>) -> ToolResult<Option<Duration>> {
    secs.map(|s| {
        if s > 0.0 && s.is_finite() && s <= 86_400.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(ToolError::invalid(format!(
                "{what} {s}: give seconds between 0 and 86400"
            )))
        }
    })
    .transpose()
}

impl Toolbox for LocalTools {
    async fn run_code(&self, args: RunCodeArgs) -> ToolResult<RunResponse> {
        let lang = language(&args.language)?;
        let timeout = seconds("timeout", args.timeout)?;
        let session = self.builder(lang).late_installs(false).open().await?;
        let mut options = RunOptions::new()
            .libraries(args.libraries)
            .args(args.args)
            .capture_plots(true);
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        if let Some(stdin) = args.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = session.run_with(&args.code, options).await;
        let _ = session.close().await;
        Ok(result?.into())
    }

    async fn create_session(&self, args: CreateSessionArgs) -> ToolResult<SessionInfo> {
        let lang = language(&args.language)?;
        let lifetime = match args.lifetime {
            Some(0) => return Err(ToolError::invalid("lifetime must be at least 1 second")),
            Some(s) => Duration::from_secs(s).min(self.lifetime),
            None => self.lifetime,
        };
        let session = self
            .builder(lang)
            .libraries(args.libraries)
            .lifetime(lifetime)
            .open()
            .await?;
        let id = session.id().to_string();
        let now = SystemTime::now();
        let held = Held {
            session,
            language: lang,
            expires: now + lifetime,
            last_used: now,
        };
        let info = self.info(&id, &held);
        self.held().insert(id, held);
        Ok(info)
    }

    async fn execute(&self, args: ExecuteArgs) -> ToolResult<Executed> {
        let (session, lang) = self.session(&args.session_id).await?;
        let timeout = seconds("timeout", args.timeout)?;
        if crate::runner(lang).kernel().is_none() {
            let mut options = RunOptions::new();
            if let Some(t) = timeout {
                options = options.timeout(t);
            }
            return Ok(Executed::Program(
                session.run_with(&args.code, options).await?.into(),
            ));
        }
        let mut options = ExecuteOptions::new();
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        Ok(Executed::Kernel(
            session.execute_with(&args.code, options).await?.into(),
        ))
    }

    async fn run_command(&self, args: RunCommandArgs) -> ToolResult<StepResponse> {
        let (session, _) = self.session(&args.session_id).await?;
        let mut options = CommandOptions::new();
        if let Some(t) = seconds("timeout", args.timeout)? {
            options = options.timeout(t);
        }
        if let Some(stdin) = args.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        Ok(session
            .execute_command_with(&args.command, options)
            .await?
            .into())
    }

    async fn write_file(
        &self,
        session_id: &str,
        path: &str,
        data: Vec<u8>,
    ) -> ToolResult<FileEntry> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().write(path, &data, None).await?.into())
    }

    async fn file_info(&self, session_id: &str, path: &str) -> ToolResult<FileEntry> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().info(path).await?.into())
    }

    async fn read_file(&self, session_id: &str, path: &str) -> ToolResult<Vec<u8>> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().read(path).await?)
    }

    async fn list_files(&self, args: ListFilesArgs) -> ToolResult<Vec<FileEntry>> {
        let (session, _) = self.session(&args.session_id).await?;
        let options = ListOptions {
            recursive: args.recursive.unwrap_or(false),
            pattern: args.pattern.clone(),
        };
        let files = session
            .files()
            .list(args.path.as_deref().unwrap_or("."), &options)
            .await?;
        Ok(files.into_iter().map(FileEntry::from).collect())
    }

    async fn install_packages(&self, args: InstallPackagesArgs) -> ToolResult<Installed> {
        let (session, _) = self.session(&args.session_id).await?;
        let specs: Vec<PackageSpec> = args.packages.iter().map(PackageSpec::new).collect();
        Ok(Installed {
            installed: session.install_packages(&specs, false).await?,
        })
    }

    async fn list_sessions(&self) -> ToolResult<Vec<SessionInfo>> {
        self.sweep().await;
        let held = self.held();
        let mut out: Vec<SessionInfo> = held.iter().map(|(id, h)| self.info(id, h)).collect();
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
    }

    async fn close_session(&self, session_id: &str) -> ToolResult<()> {
        let held = self.held().remove(session_id);
        match held {
            Some(h) => Ok(h.session.close().await?),
            None => Err(ToolError::new(
                "not_found",
                format!("session {session_id} does not exist (it expired or was closed already)"),
            )),
        }
    }
}
