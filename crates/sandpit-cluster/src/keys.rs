//! The cluster's keys: hashed in etcd, checked against the watched copy (a revocation
//! reaches every node with the watch, within a second), made and revoked by
//! `sandpit keys ... --cluster`.

use etcd_client::{Compare, CompareOp, GetOptions, Txn, TxnOp};
use sandpit_service::{
    key_hash, mint_key, ErrorKind, KeyFormat, KeyInfo, KeyStore, ServiceError, ServiceResult,
};

use crate::etcd::within;
use crate::layout::{KeyRecord, KEYS};
use crate::node::Cluster;

/// The key store of a cluster node.
#[derive(Debug)]
pub struct ClusterKeys {
    pub(crate) cluster: Cluster,
}

fn info(r: &KeyRecord) -> KeyInfo {
    KeyInfo {
        id: r.id.clone(),
        name: r.name.clone(),
        prefix: r.prefix.clone(),
        created: r.created,
        last_used: None,
    }
}

impl KeyStore for ClusterKeys {
    fn verify(&self, secret: &str) -> ServiceResult<Option<KeyInfo>> {
        let hash = key_hash(secret);
        let view = self.cluster.inner.view.read().expect("view");
        Ok(view.keys.values().find(|k| k.hash == hash).map(info))
    }

    fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>> {
        let view = self.cluster.inner.view.read().expect("view");
        let mut keys: Vec<KeyInfo> = view.keys.values().map(info).collect();
        keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
        Ok(keys)
    }
}

/// Makes a key in `format` in the cluster; returns its listing and the key (shown once).
pub async fn add_key(
    client: &mut etcd_client::Client,
    name: &str,
    format: KeyFormat,
) -> ServiceResult<(KeyInfo, String)> {
    let key = mint_key(name, format)?;
    let record = KeyRecord {
        id: key.info.id.clone(),
        name: key.info.name.clone(),
        prefix: key.info.prefix.clone(),
        hash: key.hash.clone(),
        created: key.info.created,
    };
    let path = format!("{KEYS}{}", record.id);
    let txn = Txn::new()
        .when([Compare::version(path.clone(), CompareOp::Equal, 0)])
        .and_then([TxnOp::put(
            path,
            serde_json::to_vec(&record).expect("key"),
            None,
        )]);
    let done = within("making a key", client.txn(txn)).await?;
    if !done.succeeded() {
        return Err(ServiceError::internal(
            "a key with this id exists: try again",
        ));
    }
    Ok((key.info, key.secret))
}

/// The cluster's keys.
pub async fn list_keys(client: &mut etcd_client::Client) -> ServiceResult<Vec<KeyInfo>> {
    let got = within(
        "listing keys",
        client.get(KEYS, Some(GetOptions::new().with_prefix())),
    )
    .await?;
    let mut keys: Vec<KeyInfo> = got
        .kvs()
        .iter()
        .filter_map(|kv| serde_json::from_slice::<KeyRecord>(kv.value()).ok())
        .map(|r| info(&r))
        .collect();
    keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(keys)
}

/// Revokes a key by id (or its prefix): every node refuses it once the watch brings it.
pub async fn revoke_key(client: &mut etcd_client::Client, id: &str) -> ServiceResult<KeyInfo> {
    let key = list_keys(client)
        .await?
        .into_iter()
        .find(|k| k.id == id || k.prefix == id)
        .ok_or_else(|| {
            ServiceError::new(
                ErrorKind::NotFound,
                format!(
                    "no key {id} in the cluster: `sandpit keys list --cluster URL` shows the ids"
                ),
            )
        })?;
    within(
        "revoking a key",
        client.delete(format!("{KEYS}{}", key.id), None),
    )
    .await?;
    Ok(key)
}
