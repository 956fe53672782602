//! The service's error: a kind every transport maps (HTTP status, MCP tool error, exit code)
//! and a message a person or a model can act on.

use serde::Serialize;

/// What kind of failure a request met.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// Malformed or impossible input.
    InvalidInput,
    /// No key, or an unknown or revoked one.
    Unauthorized,
    /// The session's policy forbids it.
    Refused,
    /// No such session (for this key), file, package.
    NotFound,
    /// It exists already, or its state forbids the call.
    Conflict,
    /// The session's container was removed or killed from outside.
    Gone,
    /// The request body passes the server's limit.
    TooLarge,
    /// A limit was reached: sessions or runs per key, a sandbox's process limit.
    Exhausted,
    /// A failure inside Sandpit or the engine.
    Internal,
    /// The engine or runtime cannot do this.
    Unsupported,
    /// The container engine is out of reach.
    EngineUnavailable,
    /// An engine operation took too long.
    Timeout,
}

impl ErrorKind {
    /// The kind's name in JSON bodies and metrics (`not_found`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Refused => "refused",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Gone => "gone",
            ErrorKind::TooLarge => "too_large",
            ErrorKind::Exhausted => "exhausted",
            ErrorKind::Internal => "internal",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::EngineUnavailable => "engine_unavailable",
            ErrorKind::Timeout => "timeout",
        }
    }

    /// Every kind, for metrics.
    pub const ALL: &'static [ErrorKind] = &[
        ErrorKind::InvalidInput,
        ErrorKind::Unauthorized,
        ErrorKind::Refused,
        ErrorKind::NotFound,
        ErrorKind::Conflict,
        ErrorKind::Gone,
        ErrorKind::TooLarge,
        ErrorKind::Exhausted,
        ErrorKind::Internal,
        ErrorKind::Unsupported,
        ErrorKind::EngineUnavailable,
        ErrorKind::Timeout,
    ];
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<sandpit::ErrorKind> for ErrorKind {
    fn from(kind: sandpit::ErrorKind) -> Self {
        use sandpit::ErrorKind as K;
        match kind {
            K::InvalidInput => ErrorKind::InvalidInput,
            K::NotFound => ErrorKind::NotFound,
            K::Conflict => ErrorKind::Conflict,
            K::Gone => ErrorKind::Gone,
            K::Timeout => ErrorKind::Timeout,
            K::Exhausted => ErrorKind::Exhausted,
            K::Refused => ErrorKind::Refused,
            K::Unsupported => ErrorKind::Unsupported,
            K::EngineUnavailable => ErrorKind::EngineUnavailable,
            _ => ErrorKind::Internal,
        }
    }
}

/// A failed request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ServiceError {
    /// What kind of failure.
    pub kind: ErrorKind,
    /// What went wrong and what to do.
    pub message: String,
    /// When trying again makes sense: a full run queue says how long to wait.
    pub retry_after: Option<std::time::Duration>,
    /// What the error is about, where a caller's advice depends on it.
    pub subject: Option<Subject>,
}

/// What a [`ServiceError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject {
    /// A session (unknown to the key, closed, gone).
    Session,
}

impl ServiceError {
    /// An error of `kind`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        ServiceError {
            kind,
            message: message.into(),
            retry_after: None,
            subject: None,
        }
    }

    /// The same error, with a wait after which trying again makes sense.
    pub fn retry_after(mut self, wait: std::time::Duration) -> Self {
        self.retry_after = Some(wait);
        self
    }

    /// Bad input.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// No such session for this key (also for other keys' sessions: they do not exist here).
    pub fn no_session(id: &str) -> Self {
        let mut e = Self::new(
            ErrorKind::NotFound,
            format!(
                "session {id} does not exist (it expired, was closed, or belongs to another key)"
            ),
        );
        e.subject = Some(Subject::Session);
        e
    }

    /// Something inside went wrong.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }
}

impl From<sandpit::Error> for ServiceError {
    fn from(e: sandpit::Error) -> Self {
        ServiceError::new(e.kind().into(), sandpit::one_line(&e))
    }
}

impl From<rusqlite::Error> for ServiceError {
    fn from(e: rusqlite::Error) -> Self {
        ServiceError::internal(format!("the server's store failed: {e}"))
    }
}

/// Result of a service call.
pub type ServiceResult<T> = Result<T, ServiceError>;
