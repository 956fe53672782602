//! The registry seam: what a node of a cluster tells the others about its sessions. A single
//! server has none (`None` in [`crate::Manager::start`]) and never reaches this code; a cluster
//! node's is `sandpit-cluster`'s, over etcd.

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::ServiceResult;
use crate::keys::KeyStore;
use crate::store::SessionRecord;

/// Label naming the node that made a session's container.
pub const NODE_LABEL: &str = "sandpit.node";

/// Label holding the epoch of the node process that made a session's container: a node
/// declared lost fences every container of its epoch or older.
pub const EPOCH_LABEL: &str = "sandpit.epoch";

/// What the registry says of a session this node holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// The record names this node, at an epoch not declared lost: keep serving it.
    Owned,
    /// The record names this node at an epoch declared lost (the cluster answers 410 for it):
    /// its container goes, it is never resurrected.
    Fenced,
    /// No record (yet, or the registry was never reached): left as it is.
    Unknown,
}

/// A node's view of the cluster's registry.
#[async_trait]
pub trait Registry: Send + Sync + std::fmt::Debug {
    /// This node's name.
    fn node(&self) -> &str;
    /// Labels every session container of this node carries ([`NODE_LABEL`], [`EPOCH_LABEL`]).
    fn labels(&self) -> Vec<(String, String)>;
    /// `Err(EngineUnavailable)` at once when the registry cannot be reached now, so a create
    /// fails fast instead of opening a container it could not record.
    fn ready(&self) -> ServiceResult<()>;
    /// Records a new session of this node (a transaction that fails when the id exists).
    async fn add_session(&self, record: &SessionRecord, language: &str) -> ServiceResult<()>;
    /// Notes a changed expiry (a `PATCH` of the lifetime): one write, not one per call.
    async fn update_session(&self, record: &SessionRecord);
    /// Removes a session's record. Never fails: a removal the registry cannot take now is
    /// kept and made when it answers again (deletes finish locally).
    async fn remove_session(&self, id: &str);
    /// Whether this node still owns session `id` (from the watched local copy).
    fn ownership(&self, id: &str) -> Ownership;
    /// The cluster's keys.
    fn keys(&self) -> Arc<dyn KeyStore>;
}
