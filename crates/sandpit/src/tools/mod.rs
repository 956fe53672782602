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

mod args;
mod definitions;
mod local;
mod rendering;
mod results;
mod toolbox;

pub use args::*;
pub use definitions::*;
pub use local::LocalTools;
pub use rendering::clip;
pub use results::*;
pub use toolbox::{call, image_mime, mime_from_name, Toolbox};

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
