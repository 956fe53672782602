//! The tools' arguments: the single source of truth for their JSON Schemas, and what a call's
//! arguments are parsed into.

use base64::Engine as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ToolError;
use crate::api::{CreateSession, OneShotRequest};

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
