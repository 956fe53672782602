//! Where a request for a session goes: the watched copy says which node owns it; a session
//! the copy does not know yet (opened a moment ago elsewhere) costs one read of etcd.

use sandpit_service::ServiceResult;

use crate::etcd::within;
use crate::layout::{NodeInfo, SessionRoute, SESSIONS};
use crate::node::{answers, Cluster};

/// Where a session is.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// The registry has no record of it: this node answers (404 when it holds none).
    Unknown,
    /// This node owns it.
    Here,
    /// Another node owns it.
    Node {
        /// The node's name.
        name: String,
        /// Its address.
        advertise: String,
        /// Whether its lease is alive (a node cut from etcd only still answers).
        live: bool,
    },
    /// Its node was declared lost: never recreated elsewhere.
    Lost {
        /// The node.
        node: String,
        /// Unix seconds when it was declared lost.
        at: u64,
        /// The key that made the session.
        owner: String,
    },
}

impl Cluster {
    /// The route of session `id` from the watched copy alone.
    pub fn route(&self, id: &str) -> Route {
        let view = self.inner.view.read().expect("view");
        match view.sessions.get(id) {
            Some(r) => self.route_from(&view, r),
            None => Route::Unknown,
        }
    }

    fn route_from(&self, view: &crate::cache::View, r: &SessionRoute) -> Route {
        if let Some(lost) = view.lost.get(&r.node).filter(|l| r.epoch <= l.epoch) {
            return Route::Lost {
                node: r.node.clone(),
                at: lost.at,
                owner: r.owner.clone(),
            };
        }
        if r.node == self.name() {
            return Route::Here;
        }
        match view.known.get(&r.node) {
            Some(n) => Route::Node {
                name: n.name.clone(),
                advertise: n.advertise.clone(),
                live: view.live.contains_key(&n.name),
            },
            // A node this process never saw announce itself (its lease lapsed before we
            // started): nothing to forward to; its sessions count as lost once declared.
            None => Route::Unknown,
        }
    }

    /// The route of session `id`: the watched copy, then (for a session it does not know
    /// yet) one read of etcd, skipped while etcd is out of reach.
    pub async fn lookup(&self, id: &str) -> Route {
        let route = self.route(id);
        if route != Route::Unknown || !self.is_ready() {
            return route;
        }
        match self.fetch(id).await {
            Ok(Some(r)) => {
                let view = self.inner.view.read().expect("view");
                self.route_from(&view, &r)
            }
            _ => Route::Unknown,
        }
    }

    async fn fetch(&self, id: &str) -> ServiceResult<Option<SessionRoute>> {
        let mut client = self.client();
        let got = within(
            "looking a session up",
            client.get(format!("{SESSIONS}{id}"), None),
        )
        .await?;
        Ok(got
            .kvs()
            .first()
            .and_then(|kv| serde_json::from_slice(kv.value()).ok()))
    }

    /// Called when `node` did not take a forwarded request: when its lease lapsed too, it
    /// is declared lost now (the route turns to [`Route::Lost`]).
    pub async fn unreachable(&self, node: &str) {
        let info = {
            let view = self.inner.view.read().expect("view");
            if view.live.contains_key(node) {
                return;
            }
            view.known.get(node).cloned()
        };
        if let Some(info) = info {
            if !answers(&info.advertise).await {
                let _ = self.mark_lost(&info).await;
            }
        }
    }

    /// The other live nodes (for a listing across the cluster).
    pub fn peers(&self) -> Vec<NodeInfo> {
        let view = self.inner.view.read().expect("view");
        let mut peers: Vec<NodeInfo> = view
            .live
            .values()
            .filter(|n| n.name != self.name())
            .cloned()
            .collect();
        peers.sort_by(|a, b| a.name.cmp(&b.name));
        peers
    }
}
