//! The service's registry seam over etcd: a session's record is one transaction when it
//! opens (it fails if the id exists), one put when its lifetime changes, one delete when it
//! closes (kept and retried while etcd is out of reach).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, Txn, TxnOp};
use sandpit_service::{
    ErrorKind, KeyStore, Ownership, Registry, ServiceError, ServiceResult, SessionRecord,
    EPOCH_LABEL, NODE_LABEL,
};

use crate::etcd::within;
use crate::keys::ClusterKeys;
use crate::layout::{SessionRoute, SESSIONS};
use crate::node::Cluster;

impl Cluster {
    fn route_of(&self, record: &SessionRecord, language: &str) -> SessionRoute {
        SessionRoute {
            node: self.name().to_string(),
            epoch: self.epoch(),
            owner: record.owner.clone(),
            language: language.to_string(),
            created: record.created,
            expires_at: record.expires_at,
        }
    }
}

#[async_trait]
impl Registry for Cluster {
    fn node(&self) -> &str {
        self.name()
    }

    fn labels(&self) -> Vec<(String, String)> {
        vec![
            (NODE_LABEL.to_string(), self.name().to_string()),
            (EPOCH_LABEL.to_string(), self.epoch().to_string()),
        ]
    }

    fn ready(&self) -> ServiceResult<()> {
        if self.is_ready() {
            return Ok(());
        }
        Err(ServiceError::new(
            ErrorKind::EngineUnavailable,
            format!(
                "the cluster's registry (etcd) is unreachable from node {}, so no new session can be recorded; open sessions keep working: try again when etcd has a quorum",
                self.name()
            ),
        ))
    }

    async fn add_session(&self, record: &SessionRecord, language: &str) -> ServiceResult<()> {
        let route = self.route_of(record, language);
        let key = format!("{SESSIONS}{}", record.id);
        let txn = Txn::new()
            .when([Compare::version(key.clone(), CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                key,
                serde_json::to_vec(&route).expect("route"),
                None,
            )]);
        let mut client = self.client();
        let done = within("recording the session", client.txn(txn)).await?;
        if !done.succeeded() {
            return Err(ServiceError::new(
                ErrorKind::Conflict,
                format!("a session {} is recorded in the cluster already", record.id),
            ));
        }
        self.inner
            .view
            .write()
            .expect("view")
            .sessions
            .insert(record.id.clone(), route);
        Ok(())
    }

    async fn update_session(&self, record: &SessionRecord) {
        let Some(mut route) = self.view().sessions.get(&record.id).cloned() else {
            return;
        };
        route.expires_at = record.expires_at;
        let mut client = self.client();
        let key = format!("{SESSIONS}{}", record.id);
        let value = serde_json::to_vec(&route).expect("route");
        if let Err(e) = within("noting a new lifetime", client.put(key, value, None)).await {
            tracing::warn!("session {}: {e}", record.id);
        }
    }

    async fn remove_session(&self, id: &str) {
        self.inner.view.write().expect("view").sessions.remove(id);
        let mut client = self.client();
        let key = format!("{SESSIONS}{id}");
        if self.is_ready()
            && within("removing the session's record", client.delete(key, None))
                .await
                .is_ok()
        {
            return;
        }
        tracing::info!("session {id} closed here; its record goes when the registry answers again");
        self.inner
            .pending_removals
            .lock()
            .expect("removals")
            .insert(id.to_string());
    }

    fn ownership(&self, id: &str) -> Ownership {
        let view = self.inner.view.read().expect("view");
        match view.sessions.get(id) {
            Some(r) if r.node == self.name() => {
                if view.is_lost(&r.node, r.epoch) {
                    Ownership::Fenced
                } else {
                    Ownership::Owned
                }
            }
            _ => Ownership::Unknown,
        }
    }

    fn keys(&self) -> Arc<dyn KeyStore> {
        Arc::new(ClusterKeys {
            cluster: self.clone(),
        })
    }
}

impl Cluster {
    /// Sessions whose record removal waits for the registry.
    pub fn pending_removals(&self) -> usize {
        self.inner.pending_removals.lock().expect("removals").len()
    }

    /// The lease id this node holds now.
    pub fn lease(&self) -> i64 {
        self.inner.lease.load(Ordering::SeqCst)
    }
}
