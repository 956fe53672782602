//! `[cluster]`: the node's name and address and the etcd members of its cluster.

use serde::Deserialize;

use crate::error::{ServiceError, ServiceResult};

/// `[cluster]`: this node, and the etcd members that hold the cluster's registry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// The registry: `etcd://HOST:2379[,HOST:2379...]`.
    pub etcd: String,
    /// This node's name, unique in the cluster (letters, digits, `-`, `_`, `.`).
    pub node_name: String,
    /// The URL other nodes reach this node's API at (`http://198.18.0.11:9501`).
    pub advertise: String,
    /// Labels a create may ask for (`node_labels`), such as `gpu = "no"`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Sessions this node takes at most before placement skips it.
    #[serde(default = "default_max_sessions")]
    pub max_sessions: usize,
    /// Seconds the node's lease lives without a renewal: a node silent this long is lost.
    #[serde(default = "default_lease_ttl")]
    pub lease_ttl: u64,
    /// `[cluster.tls]`: mTLS between nodes. Without it nodes forward in plain HTTP (and take
    /// forwarded requests from anyone: keep them on a private network).
    #[serde(default)]
    pub tls: Option<PeerTls>,
}

/// `[cluster.tls]`: the nodes talk to each other over mTLS on a port of their own (`addr`,
/// which `advertise` then names as `https://`), each presenting its certificate; a node takes
/// a forwarded request only there, from a peer whose certificate `ca` signed.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerTls {
    /// Where this node listens for the other nodes (`10.0.0.5:9502`).
    pub addr: String,
    /// PEM: the CA that signs the nodes' certificates.
    pub ca: std::path::PathBuf,
    /// PEM: this node's certificate (for its advertise address; client and server use).
    pub cert: std::path::PathBuf,
    /// PEM: this node's private key.
    pub key: std::path::PathBuf,
}

fn default_max_sessions() -> usize {
    200
}

fn default_lease_ttl() -> u64 {
    5
}

impl ClusterConfig {
    /// The etcd endpoints (`http://HOST:PORT`) of `etcd://HOST:PORT[,HOST:PORT...]`.
    pub fn endpoints(&self) -> ServiceResult<Vec<String>> {
        etcd_endpoints(&self.etcd)
    }

    /// Checks the names and URLs.
    pub fn validate(&self) -> ServiceResult<()> {
        self.endpoints()?;
        let name = &self.node_name;
        if name.is_empty()
            || name.len() > 63
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        {
            return Err(ServiceError::invalid(format!(
                "node name {name:?}: 1 to 63 letters, digits, -, _ and ."
            )));
        }
        let a = self.advertise.trim_end_matches('/');
        let rest = a
            .strip_prefix("http://")
            .or_else(|| a.strip_prefix("https://"));
        if rest.is_none_or(|r| r.is_empty() || r.contains('/')) {
            return Err(ServiceError::invalid(format!(
                "advertise {:?}: give the URL other nodes reach this one at, such as http://10.0.0.5:9501",
                self.advertise
            )));
        }
        if self.lease_ttl < 2 || self.lease_ttl > 60 {
            return Err(ServiceError::invalid(
                "cluster.lease_ttl: between 2 and 60 seconds",
            ));
        }
        if self.max_sessions == 0 {
            return Err(ServiceError::invalid("cluster.max_sessions: at least 1"));
        }
        if let Some(tls) = &self.tls {
            if !a.starts_with("https://") {
                return Err(ServiceError::invalid(format!(
                    "advertise {:?}: with mTLS between nodes, give the https:// URL of the peer address {}",
                    self.advertise, tls.addr
                )));
            }
            for (what, path) in [("ca", &tls.ca), ("cert", &tls.cert), ("key", &tls.key)] {
                if !path.is_file() {
                    return Err(ServiceError::invalid(format!(
                        "cluster.tls.{what} {}: no such file (a PEM file)",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The etcd endpoints of `etcd://HOST:PORT[,HOST:PORT...]` (`http://` and bare `HOST:PORT`
/// are taken too), as `http://HOST:PORT`.
pub fn etcd_endpoints(url: &str) -> ServiceResult<Vec<String>> {
    let rest = url
        .trim()
        .strip_prefix("etcd://")
        .or_else(|| url.trim().strip_prefix("http://"))
        .unwrap_or(url.trim());
    let hosts: Vec<String> = rest
        .split(',')
        .map(|h| h.trim().trim_end_matches('/'))
        .filter(|h| !h.is_empty())
        .map(|h| format!("http://{h}"))
        .collect();
    let bad = |h: &String| {
        let hp = &h["http://".len()..];
        match hp.rsplit_once(':') {
            Some((host, port)) => {
                host.is_empty() || port.parse::<u16>().is_err() || hp.contains('/')
            }
            None => true,
        }
    };
    if hosts.is_empty() || hosts.iter().any(bad) {
        return Err(ServiceError::invalid(format!(
            "cluster {url:?}: give etcd://HOST:PORT[,HOST:PORT...], such as etcd://10.0.0.2:2379"
        )));
    }
    Ok(hosts)
}
