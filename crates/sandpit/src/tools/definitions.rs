//! The tools' definitions (name, description, JSON Schema) and their renderings for OpenAI and
//! Anthropic function calling.

use schemars::JsonSchema;
use serde::Serialize;
use serde_json::Value;

use super::{
    CloseSessionArgs, CreateSessionArgs, ExecuteArgs, InstallPackagesArgs, ListFilesArgs,
    ListSessionsArgs, ListSnapshotsArgs, ReadFileArgs, RunCodeArgs, RunCommandArgs,
    SnapshotSessionArgs, WriteFileArgs, CLOSE_SESSION, CREATE_SESSION, EXECUTE, INSTALL_PACKAGES,
    LIST_FILES, LIST_SESSIONS, LIST_SNAPSHOTS, READ_FILE, RUN_CODE, RUN_COMMAND, SNAPSHOT_SESSION,
    WRITE_FILE,
};

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
