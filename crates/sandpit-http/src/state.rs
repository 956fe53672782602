//! What every handler shares.

use std::sync::Arc;

use sandpit_cluster::Cluster;
use sandpit_service::Manager;

use crate::forward::Forwarder;

/// The server's state: the session manager (with the store, config and metrics), and on a
/// cluster node the cluster.
#[derive(Clone, Debug)]
pub struct AppState {
    /// The manager.
    pub manager: Manager,
    /// The address the server answers on, for links it hands out (`http://host:port`).
    pub base_url: Arc<String>,
    /// The cluster this node belongs to (`None`: a single server).
    pub cluster: Option<Cluster>,
    /// The client that sends requests on to other nodes.
    pub forwarder: Forwarder,
}
