//! Routing by `Host: {port}-{sandbox id}.{domain}` (`[e2b] domain`): what E2B's SDKs use
//! when no `E2B_SANDBOX_URL` is set (wildcard DNS and TLS in front of Sandpit). Such a request
//! becomes the data-plane request the headers would make: its path goes under `/compat/e2b`,
//! and `E2b-Sandbox-Id` and `E2b-Sandbox-Port` are set from the host. It runs before routing.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Uri};
use axum::middleware::Next;
use axum::response::Response;

use super::dataplane::Refusal;
use super::{ENVD_PORT, INTERPRETER_PORT, PORT_HEADER, PREFIX, SANDBOX_HEADER};
use crate::state::AppState;

/// The port and sandbox of a host named `{port}-{id}.{rest}` (any `:port` after it ignored);
/// `None` for any other host.
pub fn sandbox_host(host: &str) -> Option<(u16, String)> {
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let (first, _) = name.split_once('.')?;
    let (port, id) = first.split_once('-')?;
    let port = port.parse::<u16>().ok()?;
    let id_ok = !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric());
    id_ok.then(|| (port, id.to_string()))
}

/// The port and sandbox a host names under `domain`.
fn under_domain(host: &str, domain: &str) -> Option<(u16, String)> {
    let name = host.rsplit_once(':').map(|(h, _)| h).unwrap_or(host);
    let (_, rest) = name.split_once('.')?;
    if !rest.eq_ignore_ascii_case(domain) {
        return None;
    }
    sandbox_host(name)
}

/// Rewrites a request whose `Host` names a sandbox under the configured domain.
pub async fn route_by_host(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(domain) = state.manager.config().e2b.domain.clone() else {
        return next.run(req).await;
    };
    // A request another node of a cluster forwarded was rewritten there already.
    if req.headers().contains_key(crate::forward::FORWARDED) {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_string)
        .or_else(|| req.uri().host().map(str::to_string));
    let Some((port, id)) = host.as_deref().and_then(|h| under_domain(h, &domain)) else {
        return next.run(req).await;
    };
    if port != ENVD_PORT && port != INTERPRETER_PORT {
        return Refusal::PortNotOpen(id, port).response();
    }
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let Ok(uri) = format!("{PREFIX}{path_and_query}").parse::<Uri>() else {
        return next.run(req).await;
    };
    *req.uri_mut() = uri;
    if let (Ok(id), Ok(port)) = (
        HeaderValue::from_str(&id),
        HeaderValue::from_str(&port.to_string()),
    ) {
        req.headers_mut().insert(SANDBOX_HEADER, id);
        req.headers_mut().insert(PORT_HEADER, port);
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_name_a_port_and_a_sandbox() {
        assert_eq!(
            sandbox_host("49983-abc123.sb.example.com"),
            Some((49983, "abc123".to_string()))
        );
        assert_eq!(
            sandbox_host("49999-abc123.sb.example.com:443"),
            Some((49999, "abc123".to_string()))
        );
        assert_eq!(sandbox_host("api.example.com"), None);
        assert_eq!(sandbox_host("127.0.0.1:9501"), None);
        assert_eq!(sandbox_host("x-abc.example.com"), None);
        assert_eq!(sandbox_host("80-a_b.example.com"), None);
        assert_eq!(
            under_domain("49983-abc.SB.example.com", "sb.example.com"),
            Some((49983, "abc".to_string()))
        );
        assert_eq!(under_domain("49983-abc.other.com", "sb.example.com"), None);
    }
}
