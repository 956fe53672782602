//! Warm-pool members shared across the cluster. Each node publishes its idle members under
//! `idle/{node}/{member}` on its lease, following its pools' changes; a node with nothing idle
//! for a run claims another node's member by deleting that entry in a transaction that
//! succeeds only while the entry exists, so one claimant alone gets it. The run is then
//! forwarded to the member's node, which takes that very member out of its pool (a run of its
//! own that took it a moment before makes it serve the run as any other).

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::time::{Duration, Instant};

use etcd_client::{Compare, CompareOp, PutOptions, Txn, TxnOp};
use sandpit_service::Manager;

use crate::etcd::within;
use crate::layout::{IdleMember, IDLE};
use crate::node::Cluster;

/// Operations per transaction (etcd takes 128 at most by default).
const OPS_PER_TXN: usize = 100;

/// How many members a run tries to claim before it is served where it came in.
const CLAIM_TRIES: usize = 3;

/// Changes are gathered this long before they are published (a run takes a member and its
/// pool opens another: one transaction for both when they come together).
const GATHER: Duration = Duration::from_millis(50);

/// A member claimed whose run did not come this long after (the claimant died, or its run
/// was served elsewhere) is published again while it is still idle.
const CLAIM_GRACE: Duration = Duration::from_secs(10);

/// An idle member of another node's warm pool, claimed for one run.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedMember {
    /// The node whose pool holds it.
    pub node: String,
    /// Where that node is reached.
    pub advertise: String,
    /// The member's session id.
    pub id: String,
}

impl Cluster {
    /// Claims an idle member of pool `pool` on another live node that is not draining: the
    /// member's entry is deleted in a transaction that succeeds only while it exists, so no
    /// two claimants get the same member. `None` when no other node has one idle, or etcd is
    /// out of reach (the run is then served where it came in).
    pub async fn claim_member(&self, pool: &str) -> Option<ClaimedMember> {
        if !self.is_ready() {
            return None;
        }
        let mut candidates: Vec<ClaimedMember> = {
            let view = self.inner.view.read().expect("view");
            view.idle
                .iter()
                .filter(|(node, _)| node.as_str() != self.name())
                .filter(|(node, _)| !view.draining.contains(*node))
                .filter_map(|(node, members)| {
                    let info = view.live.get(node)?;
                    (!view.is_lost(node, info.epoch)).then_some((info, members))
                })
                .flat_map(|(info, members)| {
                    members
                        .iter()
                        .filter(|(_, p)| p.as_str() == pool)
                        .map(|(id, _)| ClaimedMember {
                            node: info.name.clone(),
                            advertise: info.advertise.clone(),
                            id: id.clone(),
                        })
                })
                .collect()
        };
        if candidates.is_empty() {
            self.claim_outcome("none");
            return None;
        }
        // In random order: routers racing for the same pool mostly go for different members.
        let seed = std::collections::hash_map::RandomState::new();
        candidates.sort_by_cached_key(|c| {
            let mut h = seed.build_hasher();
            h.write(c.id.as_bytes());
            h.finish()
        });
        for member in candidates.into_iter().take(CLAIM_TRIES) {
            let key = format!("{IDLE}{}/{}", member.node, member.id);
            let txn = Txn::new()
                .when([Compare::version(key.clone(), CompareOp::Greater, 0)])
                .and_then([TxnOp::delete(key.clone(), None)]);
            let mut client = self.client();
            let claimed = match within("claiming a pool member", client.txn(txn)).await {
                Ok(done) => done.succeeded(),
                Err(e) => {
                    tracing::debug!("{e}");
                    return None;
                }
            };
            self.inner
                .view
                .write()
                .expect("view")
                .apply(key.as_bytes(), None);
            if claimed {
                self.claim_outcome("won");
                return Some(member);
            }
            self.claim_outcome("lost");
        }
        None
    }

    fn claim_outcome(&self, outcome: &'static str) {
        if let Some(m) = self.inner.manager.get() {
            m.metrics().pool_claim(outcome);
        }
    }

    /// Keeps `idle/{this node}/...` equal to the idle members of `manager`'s pools: after each
    /// change, one transaction of the puts (on the lease) and deletes that differ from what
    /// it published last. A new lease (the node rejoined) publishes them all again; a member
    /// claimed whose run never came (the claimant died) is published again after
    /// [`CLAIM_GRACE`].
    pub(crate) async fn publish_idle(self, manager: Manager) {
        let mut changes = manager.pool_changes();
        // What this process published on `lease`: member id to pool.
        let mut published: HashMap<String, String> = HashMap::new();
        // Members published and still idle here whose entry went: since when.
        let mut claimed_at: HashMap<String, Instant> = HashMap::new();
        let mut lease = 0;
        loop {
            let mut in_sync = false;
            if self.is_ready() {
                if self.lease() != lease {
                    lease = self.lease();
                    published.clear();
                    claimed_at.clear();
                }
                let now: HashMap<String, String> =
                    manager.idle_members().await.into_iter().collect();
                let listed: HashSet<String> = {
                    let view = self.inner.view.read().expect("view");
                    view.idle
                        .get(self.name())
                        .map(|m| m.keys().cloned().collect())
                        .unwrap_or_default()
                };
                let again = unclaimed(&mut claimed_at, &published, &now, &listed, Instant::now());
                let (puts, deletes) = idle_changes(&published, &now, &again);
                match self.publish_changes(lease, puts, deletes).await {
                    Ok(()) => {
                        published = now;
                        claimed_at.retain(|id, _| !again.contains(id));
                        in_sync = true;
                    }
                    Err(e) => tracing::debug!("publishing the idle pool members: {e}"),
                }
            }
            // Out of sync (etcd out of reach): look again in a second; in sync, every few
            // seconds all the same (a lease taken anew, a claim whose run never came).
            let wait = if in_sync {
                Duration::from_secs(3)
            } else {
                Duration::from_secs(1)
            };
            match tokio::time::timeout(wait, changes.changed()).await {
                Ok(Err(_)) => return,
                Ok(Ok(())) => tokio::time::sleep(GATHER).await,
                Err(_) => {}
            }
        }
    }

    async fn publish_changes(
        &self,
        lease: i64,
        puts: Vec<(String, String)>,
        deletes: Vec<String>,
    ) -> sandpit_service::ServiceResult<()> {
        let key = |id: &str| format!("{IDLE}{}/{id}", self.name());
        let mut ops: Vec<TxnOp> = Vec::new();
        for (id, pool) in puts {
            let value = serde_json::to_vec(&IdleMember { pool }).expect("idle member");
            ops.push(TxnOp::put(
                key(&id),
                value,
                Some(PutOptions::new().with_lease(lease)),
            ));
        }
        for id in deletes {
            ops.push(TxnOp::delete(key(&id), None));
        }
        while !ops.is_empty() {
            let rest = ops.split_off(ops.len().min(OPS_PER_TXN));
            let txn = Txn::new().and_then(std::mem::replace(&mut ops, rest));
            let mut client = self.client();
            within("publishing the idle pool members", client.txn(txn)).await?;
        }
        Ok(())
    }
}

/// The members to publish again: published, still idle here, their entry gone (claimed) for
/// [`CLAIM_GRACE`] or more. Keeps `claimed_at` current: when each such member was first seen
/// gone (an entry the watch has not brought back yet after a put counts too, and is dropped
/// once it is seen).
fn unclaimed(
    claimed_at: &mut HashMap<String, Instant>,
    published: &HashMap<String, String>,
    now: &HashMap<String, String>,
    listed: &HashSet<String>,
    at: Instant,
) -> HashSet<String> {
    claimed_at.retain(|id, _| now.contains_key(id) && !listed.contains(id));
    for id in now.keys() {
        if published.contains_key(id) && !listed.contains(id) {
            claimed_at.entry(id.clone()).or_insert(at);
        }
    }
    claimed_at
        .iter()
        .filter(|(_, since)| at.saturating_duration_since(**since) >= CLAIM_GRACE)
        .map(|(id, _)| id.clone())
        .collect()
}

/// What to put (member, pool) and delete so that what was `published` becomes `now`, with the
/// members in `again` put anew.
fn idle_changes(
    published: &HashMap<String, String>,
    now: &HashMap<String, String>,
    again: &HashSet<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let puts = now
        .iter()
        .filter(|(id, pool)| published.get(*id) != Some(*pool) || again.contains(*id))
        .map(|(id, pool)| (id.clone(), pool.clone()))
        .collect();
    let deletes = published
        .keys()
        .filter(|id| !now.contains_key(*id))
        .cloned()
        .collect();
    (puts, deletes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(id, pool)| (id.to_string(), pool.to_string()))
            .collect()
    }

    fn ids(list: &[&str]) -> HashSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_what_changed_is_published() {
        let published = members(&[("a", "py"), ("b", "py"), ("c", "rb")]);
        let now = members(&[("a", "py"), ("c", "js"), ("d", "py")]);
        let (mut puts, deletes) = idle_changes(&published, &now, &HashSet::new());
        puts.sort();
        assert_eq!(
            puts,
            vec![("c".into(), "js".into()), ("d".into(), "py".into())]
        );
        assert_eq!(deletes, vec!["b".to_string()]);
        let (puts, deletes) = idle_changes(&now, &now, &ids(&["a"]));
        assert_eq!(puts, vec![("a".into(), "py".into())]);
        assert!(deletes.is_empty());
    }

    #[test]
    fn a_claim_whose_run_never_came_is_published_again_after_the_grace() {
        let published = members(&[("a", "py"), ("b", "py")]);
        let now = published.clone();
        let mut claimed_at = HashMap::new();
        let t0 = Instant::now();
        // `a` was claimed (its entry is gone) but is still idle here.
        let listed = ids(&["b"]);
        assert!(unclaimed(&mut claimed_at, &published, &now, &listed, t0).is_empty());
        let early = t0 + CLAIM_GRACE / 2;
        assert!(unclaimed(&mut claimed_at, &published, &now, &listed, early).is_empty());
        let late = t0 + CLAIM_GRACE;
        assert_eq!(
            unclaimed(&mut claimed_at, &published, &now, &listed, late),
            ids(&["a"])
        );
        // Its run came: no longer idle, forgotten.
        let taken = members(&[("b", "py")]);
        assert!(unclaimed(&mut claimed_at, &published, &taken, &listed, late).is_empty());
        assert!(claimed_at.is_empty());
        // An entry the watch brings back is no claim.
        let mut claimed_at = HashMap::new();
        unclaimed(&mut claimed_at, &published, &now, &listed, t0);
        unclaimed(&mut claimed_at, &published, &now, &ids(&["a", "b"]), early);
        assert!(claimed_at.is_empty());
    }
}
