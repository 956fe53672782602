//! Connecting: the bollard client for an endpoint, with the API version negotiated.

use bollard::{Docker, API_DEFAULT_VERSION};
use sandpit_engine::{one_line, Connection, Endpoint, EngineError, EngineErrorKind};

use crate::errors::classify;

/// A client for `connection`, its API version negotiated within the connect timeout.
pub(crate) async fn connect(connection: &Connection) -> Result<Docker, EngineError> {
    let docker = client(connection)?;
    let endpoint = connection.endpoint();
    let timeout = connection.connect_timeout_value();
    match tokio::time::timeout(timeout, docker.negotiate_version()).await {
        Err(_) => Err(EngineError::new(
            EngineErrorKind::Unreachable,
            format!("{endpoint}: no answer within {timeout:?}"),
        )),
        Ok(Err(e)) => Err(classify(endpoint, e)),
        Ok(Ok(docker)) => Ok(docker),
    }
}

fn client(connection: &Connection) -> Result<Docker, EngineError> {
    let secs = connection.request_timeout_value().as_secs().max(1);
    let endpoint = connection.endpoint();
    let invalid = |m: String| EngineError::new(EngineErrorKind::InvalidRequest, m);
    match endpoint {
        Endpoint::Unix(path) => {
            if !path.exists() {
                return Err(EngineError::new(
                    EngineErrorKind::Unreachable,
                    format!("{endpoint}: socket {} does not exist", path.display()),
                ));
            }
            Docker::connect_with_unix(&path.to_string_lossy(), secs, API_DEFAULT_VERSION).map_err(
                |e| {
                    EngineError::new(
                        EngineErrorKind::Unreachable,
                        format!("{endpoint}: {}", one_line(&e)),
                    )
                },
            )
        }
        Endpoint::Tcp { addr, tls: None } => {
            Docker::connect_with_http(&format!("tcp://{addr}"), secs, API_DEFAULT_VERSION)
                .map_err(|e| invalid(one_line(&e)))
        }
        Endpoint::Tcp {
            addr,
            tls: Some(files),
        } => {
            for (what, path) in [
                ("CA certificate", &files.ca),
                ("client certificate", &files.cert),
                ("client key", &files.key),
            ] {
                if !path.is_file() {
                    return Err(invalid(format!(
                        "{what} {} does not exist: give the TLS files' paths or set DOCKER_CERT_PATH to the folder holding ca.pem, cert.pem and key.pem",
                        path.display()
                    )));
                }
            }
            Docker::connect_with_ssl(
                &format!("tcp://{addr}"),
                &files.key,
                &files.cert,
                &files.ca,
                secs,
                API_DEFAULT_VERSION,
            )
            .map_err(|e| {
                EngineError::new(
                    EngineErrorKind::Tls,
                    format!("{endpoint}: {}", one_line(&e)),
                )
            })
        }
    }
}
