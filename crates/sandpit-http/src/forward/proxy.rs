//! The request sent on, whole, to another node: headers kept (but hop-by-hop ones), the body
//! streamed both ways (uploads, SSE, MCP's streams), and a client that goes away drops the
//! connection to the other node, whose handler then stops the work as it would for a client
//! of its own.

use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Uri};
use axum::response::Response;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// The header a forwarded request carries: the node that forwarded it (a node never
/// forwards a request twice).
pub const FORWARDED: &str = "sandpit-forwarded";

/// The header of a create sent to the node placement chose.
pub const PLACED: &str = "sandpit-placed";

/// The HTTP client between nodes.
#[derive(Clone, Debug)]
pub struct Forwarder {
    client: Client<HttpsConnector<HttpConnector>, Body>,
    node: String,
}

/// Why a request could not be sent on; the second field is true when no connection was made
/// (nothing reached the node: the request may be served elsewhere).
#[derive(Debug)]
pub struct Unreachable(pub String, bool);

impl Unreachable {
    fn other(message: String) -> Unreachable {
        Unreachable(message, false)
    }

    /// Whether the node was never reached (no connection), so nothing of the request ran.
    pub fn before_sending(&self) -> bool {
        self.1
    }
}

impl Forwarder {
    /// A client for node `node` (the name it puts in [`FORWARDED`]): with `tls` (mTLS
    /// between nodes) it speaks only `https://` and presents the node's certificate; without,
    /// only plain `http://`.
    pub fn new(node: &str, tls: Option<rustls::ClientConfig>) -> Forwarder {
        let mut http = HttpConnector::new();
        http.set_connect_timeout(Some(Duration::from_secs(1)));
        http.set_nodelay(true);
        let connector = match tls {
            Some(config) => {
                http.enforce_http(false);
                hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config)
                    .https_only()
                    .enable_http1()
                    .wrap_connector(http)
            }
            // Plain http only: the inner connector refuses https:// (and no CA is trusted).
            None => HttpsConnector::from((http, super::tls::no_tls())),
        };
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Forwarder {
            client,
            node: node.to_string(),
        }
    }

    /// Sends `req` to the node at `base` (`http://host:port`) and hands back its answer.
    pub async fn send(
        &self,
        base: &str,
        req: Request,
        extra: &[(&'static str, String)],
    ) -> Result<Response, Unreachable> {
        let (mut parts, body) = req.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let uri: Uri = format!("{}{path}", base.trim_end_matches('/'))
            .parse()
            .map_err(|e| Unreachable::other(format!("bad address {base}: {e}")))?;
        parts.uri = uri;
        parts.version = axum::http::Version::HTTP_11;
        strip_hop_by_hop(&mut parts.headers);
        if let Ok(v) = HeaderValue::from_str(&self.node) {
            parts.headers.insert(FORWARDED, v);
        }
        for (name, value) in extra {
            if let Ok(v) = HeaderValue::from_str(value) {
                parts.headers.insert(*name, v);
            }
        }
        let response = self
            .client
            .request(Request::from_parts(parts, body))
            .await
            .map_err(|e| Unreachable(format!("{base}: {e}"), e.is_connect()))?;
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

impl Forwarder {
    /// `GET base + path` with the headers of `like` (its key), answered as JSON `T`.
    pub async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        base: &str,
        path: &str,
        like: &HeaderMap,
    ) -> Result<T, Unreachable> {
        let mut req = Request::new(Body::empty());
        *req.uri_mut() = path
            .parse()
            .map_err(|e| Unreachable::other(format!("bad path {path}: {e}")))?;
        for name in [header::AUTHORIZATION, header::HOST] {
            if let Some(v) = like.get(&name) {
                req.headers_mut().insert(name, v.clone());
            }
        }
        if let Some(v) = like.get("api-key") {
            req.headers_mut().insert("api-key", v.clone());
        }
        let response = self.send(base, req, &[]).await?;
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 64 << 20)
            .await
            .map_err(|e| Unreachable::other(format!("{base}: {e}")))?;
        if !status.is_success() {
            return Err(Unreachable::other(format!(
                "{base} answered {status}: {}",
                String::from_utf8_lossy(&bytes)
            )));
        }
        serde_json::from_slice(&bytes).map_err(|e| Unreachable::other(format!("{base}: {e}")))
    }
}

/// Headers that belong to one connection, not to the request.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
}
