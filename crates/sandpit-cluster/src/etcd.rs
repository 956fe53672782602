//! The connection to etcd: short timeouts everywhere (a create fails fast when the registry
//! is out of reach; the data path never calls it), and its errors as the service's.

use std::future::Future;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions};
use sandpit_service::{ErrorKind, ServiceError, ServiceResult};

/// How long one call to etcd may take.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Connects to the members `endpoints` (`http://HOST:PORT`): those that take a connection
/// now (a stopped member would fail the calls sent its way), else all of them.
pub async fn connect(endpoints: &[String]) -> ServiceResult<Client> {
    let probes = endpoints.iter().map(|e| async move {
        let authority = e.trim_start_matches("http://").to_string();
        let open = tokio::time::timeout(
            Duration::from_millis(500),
            tokio::net::TcpStream::connect(authority),
        )
        .await;
        matches!(open, Ok(Ok(_))).then(|| e.clone())
    });
    let up: Vec<String> = futures_util::future::join_all(probes)
        .await
        .into_iter()
        .flatten()
        .collect();
    let endpoints = if up.is_empty() { endpoints } else { &up[..] };
    let options = ConnectOptions::new()
        .with_connect_timeout(CALL_TIMEOUT)
        .with_timeout(CALL_TIMEOUT)
        .with_keep_alive(Duration::from_secs(2), Duration::from_secs(2))
        .with_keep_alive_while_idle(true)
        // A member cut from the others answers nothing rather than stale data.
        .with_require_leader(true);
    let connecting = Client::connect(endpoints, Some(options));
    match tokio::time::timeout(CALL_TIMEOUT * 2, connecting).await {
        Ok(Ok(client)) => Ok(client),
        Ok(Err(e)) => Err(unreachable(endpoints, e)),
        Err(_) => Err(ServiceError::new(
            ErrorKind::EngineUnavailable,
            format!(
                "the cluster's registry (etcd at {}) did not answer within {} s",
                endpoints.join(", "),
                (CALL_TIMEOUT * 2).as_secs()
            ),
        )),
    }
}

/// `call`, failing with `EngineUnavailable` past [`CALL_TIMEOUT`].
pub async fn within<T>(
    what: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> ServiceResult<T> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(ServiceError::new(
            ErrorKind::EngineUnavailable,
            format!("the cluster's registry (etcd) is unreachable ({what}: {e}); try again when it has a quorum"),
        )),
        Err(_) => Err(ServiceError::new(
            ErrorKind::EngineUnavailable,
            format!(
                "the cluster's registry (etcd) is unreachable ({what} took more than {} s); try again when it has a quorum",
                CALL_TIMEOUT.as_secs()
            ),
        )),
    }
}

fn unreachable(endpoints: &[String], e: etcd_client::Error) -> ServiceError {
    ServiceError::new(
        ErrorKind::EngineUnavailable,
        format!(
            "the cluster's registry (etcd at {}) is unreachable: {e}",
            endpoints.join(", ")
        ),
    )
}
