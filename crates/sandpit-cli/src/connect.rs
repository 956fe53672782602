//! Connection flags shared by every subcommand, read the way the docker CLI reads them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sandpit::{Connection, Engine, TlsFiles};

/// Where the engine is.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Engine address: unix:///path/docker.sock or tcp://HOST:PORT [env: DOCKER_HOST]
    #[arg(long, short = 'H', global = true)]
    pub host: Option<String>,
    /// Use TLS and verify the engine [env: DOCKER_TLS_VERIFY]
    #[arg(long, global = true)]
    pub tlsverify: bool,
    /// CA certificate that signed the engine's certificate [default: $DOCKER_CERT_PATH/ca.pem]
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate [default: $DOCKER_CERT_PATH/cert.pem]
    #[arg(long, global = true, value_name = "PATH")]
    pub tlscert: Option<PathBuf>,
    /// Client key [default: $DOCKER_CERT_PATH/key.pem]
    #[arg(long, global = true, value_name = "PATH")]
    pub tlskey: Option<PathBuf>,
}

impl ConnectionArgs {
    /// The connection the flags and environment describe.
    pub fn connection(&self) -> Result<Connection> {
        let env_host = std::env::var("DOCKER_HOST").ok().filter(|h| !h.is_empty());
        let host = self.host.clone().or(env_host);
        let tls_flags = self.tlscacert.is_some() || self.tlscert.is_some() || self.tlskey.is_some();
        let verify = self.tlsverify
            || tls_flags
            || std::env::var("DOCKER_TLS_VERIFY").is_ok_and(|v| !v.is_empty());
        let cert_dir = sandpit::docker_cert_path();
        let conn = Connection::from_parts(host.as_deref(), verify, cert_dir.as_deref())?;
        if !tls_flags {
            return Ok(conn);
        }
        let defaults = cert_dir
            .map(TlsFiles::from_dir)
            .unwrap_or_else(|| TlsFiles::from_dir("."));
        Ok(conn.with_tls_files(TlsFiles {
            ca: self.tlscacert.clone().unwrap_or(defaults.ca),
            cert: self.tlscert.clone().unwrap_or(defaults.cert),
            key: self.tlskey.clone().unwrap_or(defaults.key),
        }))
    }

    /// Connects, failing within a few seconds when the engine does not answer.
    pub async fn engine(&self) -> Result<Engine> {
        Ok(sandpit::connect(&self.connection()?).await?)
    }
}
