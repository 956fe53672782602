//! mTLS between cluster nodes (`[cluster.tls]`): each node presents its certificate, signed
//! by the cluster's CA, on both ends. A node listens for its peers on a port of its own; a
//! connection there whose handshake did not verify a certificate of that CA never reaches
//! the API, and a forwarded request is taken only there.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use sandpit_service::{PeerTls, ServiceError, ServiceResult};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a peer has to finish its handshake.
const HANDSHAKE: Duration = Duration::from_secs(5);

/// In a request's extensions: it came in on the peers' port (its sender's certificate was
/// verified against the cluster's CA).
#[derive(Debug, Clone, Copy)]
pub struct FromPeer;

/// The node's certificate and key, and the CA its peers' certificates must come from.
struct Identity {
    roots: Arc<RootCertStore>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path, what: &str) -> ServiceResult<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            ServiceError::invalid(format!("cluster.tls.{what} {}: {e}", path.display()))
        })?;
    if certs.is_empty() {
        return Err(ServiceError::invalid(format!(
            "cluster.tls.{what} {}: no PEM certificate in it",
            path.display()
        )));
    }
    Ok(certs)
}

fn load(tls: &PeerTls) -> ServiceResult<Identity> {
    let mut roots = RootCertStore::empty();
    for ca in certificates(&tls.ca, "ca")? {
        roots.add(ca).map_err(|e| {
            ServiceError::invalid(format!("cluster.tls.ca {}: {e}", tls.ca.display()))
        })?;
    }
    let chain = certificates(&tls.cert, "cert")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| {
        ServiceError::invalid(format!(
            "cluster.tls.key {}: {e} (a PEM private key)",
            tls.key.display()
        ))
    })?;
    Ok(Identity {
        roots: Arc::new(roots),
        chain,
        key,
    })
}

fn bad(e: rustls::Error) -> ServiceError {
    ServiceError::invalid(format!("cluster.tls: {e}"))
}

/// The client end: this node's certificate; the peer's verified against the CA (and its
/// advertise address).
pub fn client_config(tls: &PeerTls) -> ServiceResult<ClientConfig> {
    let id = load(tls)?;
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad)?
        .with_root_certificates(id.roots)
        .with_client_auth_cert(id.chain, id.key)
        .map_err(bad)
}

/// A client config that trusts no certificate, for a connector that speaks only plain HTTP.
pub(super) fn no_tls() -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring offers the default protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}

/// The server end: this node's certificate; a client must present one the CA signed.
fn server_config(tls: &PeerTls) -> ServiceResult<ServerConfig> {
    let id = load(tls)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(id.roots, provider())
        .build()
        .map_err(|e| ServiceError::invalid(format!("cluster.tls.ca: {e}")))?;
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(bad)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(id.chain, id.key)
        .map_err(bad)
}

/// The peers' port: the connections whose TLS handshake verified the peer's certificate.
/// Handshakes run apart, so a slow or silent one holds up no other.
pub struct PeerListener {
    connections: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl PeerListener {
    /// Listens on `tls.addr` for the other nodes.
    pub async fn bind(tls: &PeerTls) -> std::io::Result<PeerListener> {
        let config = server_config(tls).map_err(std::io::Error::other)?;
        let listener = TcpListener::bind(&tls.addr).await.map_err(|e| {
            std::io::Error::new(e.kind(), format!("cannot listen on {}: {e}", tls.addr))
        })?;
        let addr = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let (tx, connections) = mpsc::channel(64);
        tokio::spawn(async move {
            while !tx.is_closed() {
                let (tcp, remote) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::debug!("accepting a peer connection: {e}");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = tx.send((stream, remote)).await;
                        }
                        Ok(Err(e)) => tracing::warn!("refused a peer connection from {remote}: {e}"),
                        Err(_) => tracing::warn!(
                            "refused a peer connection from {remote}: no TLS handshake within {HANDSHAKE:?}"
                        ),
                    }
                });
            }
        });
        Ok(PeerListener { connections, addr })
    }
}

impl axum::serve::Listener for PeerListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.connections.recv().await {
            Some(connection) => connection,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}
