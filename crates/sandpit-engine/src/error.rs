//! What an engine call can fail with, classified so that callers never read message text.

/// How an engine call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EngineErrorKind {
    /// The object (container, image, exec, volume, network) does not exist.
    NotFound,
    /// The object is in a state that forbids the call (in use, not running, already there).
    Conflict,
    /// The engine refused the request as malformed or unsupported by its API.
    InvalidRequest,
    /// The engine did not answer: socket missing, connection refused or reset, no reply in time.
    Unreachable,
    /// The TLS handshake with the engine failed.
    Tls,
    /// The engine cannot do this at all (a feature it lacks).
    Unsupported,
    /// The engine answered with a server error.
    Server,
}

/// An engine call that failed: its kind, the engine's HTTP status when it answered, and
/// the engine's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EngineError {
    /// The classification.
    pub kind: EngineErrorKind,
    /// The engine's HTTP status, when it answered.
    pub status: Option<u16>,
    /// The engine's message (or the transport's), without wrapping.
    pub message: String,
}

impl EngineError {
    /// An error of `kind` with `message`.
    pub fn new(kind: EngineErrorKind, message: impl Into<String>) -> Self {
        EngineError {
            kind,
            status: None,
            message: message.into(),
        }
    }

    /// The engine answered `status` with `message`; the kind follows from the status.
    pub fn from_status(status: u16, message: impl Into<String>) -> Self {
        let kind = match status {
            404 => EngineErrorKind::NotFound,
            409 | 304 => EngineErrorKind::Conflict,
            400 | 405 | 406 | 422 => EngineErrorKind::InvalidRequest,
            501 => EngineErrorKind::Unsupported,
            _ => EngineErrorKind::Server,
        };
        EngineError {
            kind,
            status: Some(status),
            message: message.into(),
        }
    }

    /// True for [`EngineErrorKind::NotFound`].
    pub fn is_not_found(&self) -> bool {
        self.kind == EngineErrorKind::NotFound
    }

    /// True for [`EngineErrorKind::Conflict`].
    pub fn is_conflict(&self) -> bool {
        self.kind == EngineErrorKind::Conflict
    }

    /// True when the engine could not be reached at all (or TLS failed).
    pub fn is_unreachable(&self) -> bool {
        matches!(
            self.kind,
            EngineErrorKind::Unreachable | EngineErrorKind::Tls
        )
    }
}

/// An error and its causes on one line, each cause once: a cause whose text the line already
/// holds is skipped. The one printer for error chains in Sandpit.
pub fn one_line(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = String::new();
    let mut cur = Some(err);
    while let Some(e) = cur {
        let s = e.to_string();
        if !s.is_empty() && !out.contains(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
        cur = e.source();
    }
    out.replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: inner failed")]
    struct Outer(#[source] EngineError);

    #[test]
    fn statuses_map_to_kinds() {
        assert_eq!(
            EngineError::from_status(404, "x").kind,
            EngineErrorKind::NotFound
        );
        assert_eq!(
            EngineError::from_status(409, "x").kind,
            EngineErrorKind::Conflict
        );
        assert_eq!(
            EngineError::from_status(400, "x").kind,
            EngineErrorKind::InvalidRequest
        );
        assert_eq!(
            EngineError::from_status(500, "x").kind,
            EngineErrorKind::Server
        );
    }

    #[test]
    fn one_line_prints_each_cause_once() {
        let e = Outer(EngineError::new(EngineErrorKind::Server, "inner failed"));
        assert_eq!(one_line(&e), "outer: inner failed");
        let e = Outer(EngineError::new(EngineErrorKind::Server, "disk full"));
        assert_eq!(one_line(&e), "outer: inner failed: disk full");
    }
}
