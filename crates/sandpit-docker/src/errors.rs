//! bollard's errors as [`EngineError`]s.

use sandpit_engine::{one_line, Endpoint, EngineError, EngineErrorKind};

/// Classifies a bollard error: the engine's status when it answered, else transport trouble
/// (TLS when the endpoint uses it and the transport says so).
pub(crate) fn classify(endpoint: &Endpoint, err: bollard::errors::Error) -> EngineError {
    use bollard::errors::Error as B;
    match err {
        B::DockerResponseServerError {
            status_code,
            message,
        } => EngineError::from_status(status_code, message.trim()),
        B::DockerStreamError { error } => EngineError::new(EngineErrorKind::Server, error),
        B::JsonDataError { .. } | B::JsonSerdeError { .. } | B::APIVersionParseError { .. } => {
            EngineError::new(EngineErrorKind::Server, one_line(&err))
        }
        other if is_transport(&other) => {
            let reason = one_line(&other);
            let lower = reason.to_lowercase();
            let tls = matches!(endpoint, Endpoint::Tcp { tls: Some(_), .. })
                && ["certificate", "tls", "handshake", "unknownissuer", "alert"]
                    .iter()
                    .any(|w| lower.contains(w));
            let kind = if tls {
                EngineErrorKind::Tls
            } else {
                EngineErrorKind::Unreachable
            };
            EngineError::new(kind, format!("{endpoint}: {reason}"))
        }
        other => EngineError::new(EngineErrorKind::Server, one_line(&other)),
    }
}

/// True when bollard failed before the engine answered.
fn is_transport(err: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    matches!(
        err,
        B::HyperResponseError { .. }
            | B::HyperLegacyError { .. }
            | B::IOError { .. }
            | B::RequestTimeoutError
            | B::SocketNotFoundError(_)
    )
}
