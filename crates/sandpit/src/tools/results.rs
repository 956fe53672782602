//! What a tool call gives back: text, images and files for the model, or an error it can act
//! on.

use base64::Engine as _;
use serde_json::Value;

use crate::api::{ExecuteResponse, RunResponse};

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
    /// Text only.
    pub(super) fn text(text: impl Into<String>) -> Self {
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
