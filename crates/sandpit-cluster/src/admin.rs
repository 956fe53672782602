//! What `sandpit cluster status|drain|undrain` and `sandpit keys ... --cluster` do: direct
//! calls to etcd, no node needed.

use std::collections::BTreeMap;

use etcd_client::{Client, GetOptions};
use sandpit_service::{etcd_endpoints, ErrorKind, KeyFormat, KeyInfo, ServiceError, ServiceResult};
use serde::Serialize;

use crate::cache::View;
use crate::etcd::{connect, within};
use crate::layout::{NodeInfo, DRAIN, ROOT};

/// A connection to a cluster's registry for its operator.
#[derive(Clone)]
pub struct Admin {
    client: Client,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Admin")
    }
}

/// One node as `cluster status` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    /// Its name.
    pub name: String,
    /// `live`, `draining`, `lost` or `away` (lease lapsed, not declared lost).
    pub state: String,
    /// Its address.
    pub advertise: String,
    /// The epoch of its process.
    pub epoch: i64,
    /// Seconds left on its lease (live nodes).
    pub lease_ttl: Option<i64>,
    /// Session records naming it.
    pub sessions: usize,
    /// Open sessions it announced.
    pub open: usize,
    /// Sessions it takes at most.
    pub max_sessions: usize,
    /// Memory promised to its sessions, against the machine's.
    pub memory_reserved: u64,
    /// The machine's memory.
    pub memory_bytes: u64,
    /// Its engine.
    pub engine: String,
}

impl Admin {
    /// Connects to `etcd://HOST:PORT[,...]`.
    pub async fn connect(url: &str) -> ServiceResult<Admin> {
        let endpoints = etcd_endpoints(url)?;
        Ok(Admin {
            client: connect(&endpoints).await?,
        })
    }

    /// The nodes, their leases, sessions and load.
    pub async fn status(&self) -> ServiceResult<Vec<NodeStatus>> {
        let mut client = self.client.clone();
        let got = within(
            "reading the registry",
            client.get(ROOT, Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let kvs: Vec<(Vec<u8>, Vec<u8>)> = got
            .kvs()
            .iter()
            .map(|kv| (kv.key().to_vec(), kv.value().to_vec()))
            .collect();
        let view = View::default().reloaded(&kvs);
        let mut per_node: BTreeMap<&str, usize> = BTreeMap::new();
        for r in view.sessions.values() {
            *per_node.entry(r.node.as_str()).or_default() += 1;
        }
        let mut names: Vec<String> = view.live.keys().cloned().collect();
        for (name, _) in per_node.iter() {
            names.push(name.to_string());
        }
        names.extend(view.lost.keys().cloned());
        names.sort();
        names.dedup();
        let mut out = Vec::new();
        for name in names {
            let node: Option<&NodeInfo> = view.live.get(&name);
            let lease_ttl = match node {
                Some(n) => within("reading a lease", client.lease_time_to_live(n.lease, None))
                    .await
                    .ok()
                    .map(|r| r.ttl()),
                None => None,
            };
            let state = if node.is_some() && view.draining.contains(&name) {
                "draining"
            } else if node.is_some() {
                "live"
            } else if view.lost.contains_key(&name) {
                "lost"
            } else {
                "away"
            };
            out.push(NodeStatus {
                name: name.clone(),
                state: state.into(),
                advertise: node.map(|n| n.advertise.clone()).unwrap_or_default(),
                epoch: node
                    .map(|n| n.epoch)
                    .or_else(|| view.lost.get(&name).map(|l| l.epoch))
                    .unwrap_or_default(),
                lease_ttl,
                sessions: per_node.get(name.as_str()).copied().unwrap_or(0),
                open: node.map(|n| n.sessions).unwrap_or(0),
                max_sessions: node.map(|n| n.max_sessions).unwrap_or(0),
                memory_reserved: node.map(|n| n.memory_reserved).unwrap_or(0),
                memory_bytes: node.map(|n| n.memory_bytes).unwrap_or(0),
                engine: node.map(|n| n.engine.clone()).unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// Stops new placements on `node` (its sessions stay).
    pub async fn drain(&self, node: &str) -> ServiceResult<()> {
        self.known(node).await?;
        let mut client = self.client.clone();
        within("draining", client.put(format!("{DRAIN}{node}"), "1", None)).await?;
        Ok(())
    }

    /// Lets placements reach `node` again.
    pub async fn undrain(&self, node: &str) -> ServiceResult<()> {
        self.known(node).await?;
        let mut client = self.client.clone();
        within("undraining", client.delete(format!("{DRAIN}{node}"), None)).await?;
        Ok(())
    }

    async fn known(&self, node: &str) -> ServiceResult<()> {
        let status = self.status().await?;
        if status.iter().any(|n| n.name == node) {
            return Ok(());
        }
        let names: Vec<&str> = status.iter().map(|n| n.name.as_str()).collect();
        Err(ServiceError::new(
            ErrorKind::NotFound,
            format!(
                "no node {node} in the cluster (nodes: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            ),
        ))
    }

    /// Makes a key every node accepts; returns its listing and the key (shown once).
    pub async fn add_key(&self, name: &str, format: KeyFormat) -> ServiceResult<(KeyInfo, String)> {
        crate::keys::add_key(&mut self.client.clone(), name, format).await
    }

    /// The cluster's keys.
    pub async fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>> {
        crate::keys::list_keys(&mut self.client.clone()).await
    }

    /// Revokes a key on every node.
    pub async fn revoke_key(&self, id: &str) -> ServiceResult<KeyInfo> {
        crate::keys::revoke_key(&mut self.client.clone(), id).await
    }
}
