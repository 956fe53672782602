//! Where the engine is and how to reach it: local socket, plain TCP, or TCP + TLS.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// A connection setting that cannot work (bad `DOCKER_HOST`, TLS without certificates).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid connection settings: {0}")]
pub struct ConnectionError(pub String);

type Result<T> = std::result::Result<T, ConnectionError>;

/// The default local socket.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Files for a mutually authenticated TLS connection, as `docker --tlsverify` uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// CA certificate that signed the engine's certificate (`ca.pem`).
    pub ca: PathBuf,
    /// Client certificate (`cert.pem`).
    pub cert: PathBuf,
    /// Client private key (`key.pem`).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The three files in a folder laid out as `DOCKER_CERT_PATH` is: `ca.pem`, `cert.pem`, `key.pem`.
    pub fn from_dir(dir: impl AsRef<Path>) -> Self {
        let dir = dir.as_ref();
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }
}

/// Where the engine listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket path.
    Unix(PathBuf),
    /// A TCP address (`host:port`), with TLS files when the engine requires TLS.
    Tcp {
        /// `host:port`.
        addr: String,
        /// TLS settings; `None` means plain HTTP.
        tls: Option<TlsFiles>,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix://{}", p.display()),
            Endpoint::Tcp { addr, tls: Some(_) } => write!(f, "tcp://{addr} (TLS)"),
            Endpoint::Tcp { addr, tls: None } => write!(f, "tcp://{addr}"),
        }
    }
}

/// How to reach an engine: an endpoint plus timeouts. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    endpoint: Endpoint,
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Default for Connection {
    fn default() -> Self {
        Connection::unix(DEFAULT_SOCKET)
    }
}

impl Connection {
    /// The local engine's default socket.
    pub fn local() -> Self {
        Self::default()
    }

    /// A Unix socket at `path`.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        Self::with_endpoint(Endpoint::Unix(path.into()))
    }

    /// Plain TCP (no TLS) to `addr` (`host:port`, `tcp://` prefix allowed).
    pub fn tcp(addr: impl AsRef<str>) -> Self {
        Self::with_endpoint(Endpoint::Tcp {
            addr: strip_scheme(addr.as_ref()),
            tls: None,
        })
    }

    /// TCP + TLS to `addr`, verifying the engine with `ca` and presenting `cert`/`key`.
    pub fn tls(
        addr: impl AsRef<str>,
        ca: impl Into<PathBuf>,
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
    ) -> Self {
        Self::with_endpoint(Endpoint::Tcp {
            addr: strip_scheme(addr.as_ref()),
            tls: Some(TlsFiles {
                ca: ca.into(),
                cert: cert.into(),
                key: key.into(),
            }),
        })
    }

    fn with_endpoint(endpoint: Endpoint) -> Self {
        Connection {
            endpoint,
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(300),
        }
    }

    /// Reads `DOCKER_HOST`, `DOCKER_TLS_VERIFY` and `DOCKER_CERT_PATH` as the docker CLI does.
    ///
    /// Without `DOCKER_HOST` this is the local socket. `DOCKER_TLS_VERIFY` set to any
    /// non-empty value turns TLS on, with the files in `DOCKER_CERT_PATH` (default `~/.docker`).
    pub fn from_env() -> Result<Self> {
        let host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let verify = std::env::var("DOCKER_TLS_VERIFY")
            .map(|v| !v.is_empty())
            .unwrap_or(false);
        Self::from_parts(host.as_deref(), verify, docker_cert_path().as_deref())
    }

    /// Builds a connection from a host string and TLS choice, as `--host` and `--tlsverify` give them.
    pub fn from_parts(
        host: Option<&str>,
        tls_verify: bool,
        cert_dir: Option<&Path>,
    ) -> Result<Self> {
        let Some(host) = host else {
            if tls_verify {
                return Err(ConnectionError(
                    "TLS verification was asked for but no TCP host was given: set DOCKER_HOST=tcp://HOST:2376".into(),
                ));
            }
            return Ok(Self::local());
        };
        if let Some(path) = host.strip_prefix("unix://") {
            return Ok(Self::unix(path));
        }
        let addr = if let Some(a) = host.strip_prefix("tcp://") {
            a
        } else if let Some(a) = host.strip_prefix("https://") {
            a
        } else if host.contains("://") {
            return Err(ConnectionError(format!(
                "unsupported DOCKER_HOST {host:?}: use unix:///path/to/docker.sock or tcp://HOST:PORT"
            )));
        } else {
            host
        };
        if addr.is_empty() {
            return Err(ConnectionError(format!(
                "DOCKER_HOST {host:?} has no address: use tcp://HOST:PORT"
            )));
        }
        let addr = if addr.contains(':') {
            addr.to_string()
        } else {
            format!("{addr}:{}", if tls_verify { 2376 } else { 2375 })
        };
        if tls_verify {
            let dir = cert_dir.ok_or_else(|| {
                ConnectionError(
                    "TLS verification needs certificates: set DOCKER_CERT_PATH to a folder with ca.pem, cert.pem and key.pem".into(),
                )
            })?;
            let files = TlsFiles::from_dir(dir);
            Ok(Self::tls(addr, files.ca, files.cert, files.key))
        } else {
            Ok(Self::tcp(addr))
        }
    }

    /// How long connecting and negotiating may take before the engine counts as unreachable (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The per-request timeout for engine calls that return at once (default 300 s).
    pub fn request_timeout(mut self, timeout: Duration) -> Self {
        self.request_timeout = timeout;
        self
    }

    /// Replaces the TLS files of a TCP endpoint (no effect on a Unix socket).
    pub fn with_tls_files(mut self, files: TlsFiles) -> Self {
        if let Endpoint::Tcp { tls, .. } = &mut self.endpoint {
            *tls = Some(files);
        }
        self
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// How long connecting may take before the engine counts as unreachable.
    pub fn connect_timeout_value(&self) -> Duration {
        self.connect_timeout
    }

    /// The per-request timeout for engine calls that return at once.
    pub fn request_timeout_value(&self) -> Duration {
        self.request_timeout
    }
}

/// The folder `DOCKER_CERT_PATH` names, else `~/.docker`, as the docker CLI reads it.
pub fn docker_cert_path() -> Option<PathBuf> {
    std::env::var("DOCKER_CERT_PATH")
        .ok()
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .map(|h| Path::new(&h).join(".docker"))
        })
}

fn strip_scheme(addr: &str) -> String {
    addr.trim_start_matches("tcp://")
        .trim_start_matches("https://")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hosts_like_the_docker_cli() {
        assert_eq!(
            Connection::from_parts(None, false, None).unwrap(),
            Connection::local()
        );
        assert_eq!(
            Connection::from_parts(Some("unix:///tmp/d.sock"), false, None)
                .unwrap()
                .endpoint,
            Endpoint::Unix("/tmp/d.sock".into())
        );
        assert_eq!(
            Connection::from_parts(Some("tcp://10.0.0.1"), false, None)
                .unwrap()
                .endpoint,
            Endpoint::Tcp {
                addr: "10.0.0.1:2375".into(),
                tls: None
            }
        );
        let tls =
            Connection::from_parts(Some("tcp://h:1234"), true, Some(Path::new("/c"))).unwrap();
        assert_eq!(
            tls.endpoint,
            Endpoint::Tcp {
                addr: "h:1234".into(),
                tls: Some(TlsFiles::from_dir("/c"))
            }
        );
        assert!(Connection::from_parts(Some("ssh://h"), false, None).is_err());
        assert!(Connection::from_parts(None, true, None).is_err());
        assert!(Connection::from_parts(Some("tcp://h"), true, None).is_err());
    }
}
