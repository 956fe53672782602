//! Where things live in etcd, and what each value holds (JSON). Everything is under one
//! prefix; a session costs one transaction when it opens and one delete when it closes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The prefix of every key the cluster writes.
pub const ROOT: &str = "/sandpit/";
/// `nodes/{name}`: [`NodeInfo`], attached to the node's lease (gone when the lease expires).
pub const NODES: &str = "/sandpit/nodes/";
/// `epochs/{name}`: written when a node process registers; the revision of that write is the
/// process's epoch (cluster-wide, only ever grows).
pub const EPOCHS: &str = "/sandpit/epochs/";
/// `lost/{name}`: [`Lost`], the newest epoch of the node declared lost.
pub const LOST: &str = "/sandpit/lost/";
/// `drain/{name}`: present while the node takes no new sessions.
pub const DRAIN: &str = "/sandpit/drain/";
/// `sessions/{id}`: [`SessionRoute`], written with a transaction that fails if it exists.
pub const SESSIONS: &str = "/sandpit/sessions/";
/// `keys/{id}`: [`KeyRecord`] (hashed); a revoked key's entry is deleted.
pub const KEYS: &str = "/sandpit/keys/";
/// `idle/{node}/{member}`: [`IdleMember`], an idle member of the node's warm pools, on its
/// lease; a claim deletes it with a transaction that succeeds once.
pub const IDLE: &str = "/sandpit/idle/";

/// A node as it announces itself (renewed with its lease; load every few seconds).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// Its name.
    pub name: String,
    /// Where other nodes reach its API.
    pub advertise: String,
    /// The epoch of the process.
    pub epoch: i64,
    /// Its lease (for `cluster status`).
    pub lease: i64,
    /// The engine it owns (`docker 20.10.24`, `podman 4.3.1`).
    pub engine: String,
    /// OCI runtimes the engine offers.
    pub runtimes: Vec<String>,
    /// Labels a create may ask for.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Sessions it takes at most.
    pub max_sessions: usize,
    /// Memory of the machine, in bytes.
    pub memory_bytes: u64,
    /// Sessions open now.
    pub sessions: usize,
    /// The memory limits of its open sessions, added up.
    pub memory_reserved: u64,
    /// Idle members of its warm pools.
    #[serde(default)]
    pub pool_idle: usize,
}

/// A node declared lost: its sessions of this epoch or older answer 410.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lost {
    /// The newest epoch that was lost.
    pub epoch: i64,
    /// Unix seconds when it was declared lost.
    pub at: u64,
    /// The node that declared it.
    pub by: String,
}

/// Where a session lives.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionRoute {
    /// The node that owns it.
    pub node: String,
    /// The epoch of the node process that opened it.
    pub epoch: i64,
    /// The key that made it.
    pub owner: String,
    /// Its language.
    pub language: String,
    /// Unix seconds.
    pub created: u64,
    /// Unix seconds when it closes.
    pub expires_at: u64,
}

/// An idle warm-pool member, as its node publishes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMember {
    /// The pool it belongs to ([`sandpit_service::pool_name`]).
    pub pool: String,
}

/// A key of the cluster, hashed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Its id.
    pub id: String,
    /// A name for people.
    pub name: String,
    /// The key's first characters.
    pub prefix: String,
    /// SHA-256 of the key, hex.
    pub hash: String,
    /// Unix seconds.
    pub created: u64,
}

/// The part of `key` after `prefix`, when it starts with it.
pub fn name_in<'a>(key: &'a [u8], prefix: &str) -> Option<&'a str> {
    std::str::from_utf8(key).ok()?.strip_prefix(prefix)
}
