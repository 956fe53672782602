//! The watched local copy of the registry: nodes, lost epochs, drains, session routes and keys.
//! Requests read it and never wait on etcd; a watch keeps it current, and a full read
//! replaces it whenever the watch had to start again.

use std::collections::{HashMap, HashSet};

use crate::layout::{
    name_in, IdleMember, KeyRecord, Lost, NodeInfo, SessionRoute, DRAIN, IDLE, KEYS, LOST, NODES,
    SESSIONS,
};

/// What this node knows of the registry.
#[derive(Debug, Default, Clone)]
pub struct View {
    /// Nodes whose lease is alive.
    pub live: HashMap<String, NodeInfo>,
    /// Every node seen since this process started (the last announcement of each), so a
    /// node whose lease lapsed can still be reached while it answers.
    pub known: HashMap<String, NodeInfo>,
    /// Nodes declared lost.
    pub lost: HashMap<String, Lost>,
    /// Nodes draining.
    pub draining: HashSet<String>,
    /// Sessions by id.
    pub sessions: HashMap<String, SessionRoute>,
    /// Keys by id.
    pub keys: HashMap<String, KeyRecord>,
    /// Idle warm-pool members by node: member id to pool.
    pub idle: HashMap<String, HashMap<String, String>>,
}

impl View {
    /// Applies one put (`Some(value)`) or delete (`None`) of `key`.
    pub fn apply(&mut self, key: &[u8], value: Option<&[u8]>) {
        if let Some(name) = name_in(key, NODES) {
            match value.and_then(|v| serde_json::from_slice::<NodeInfo>(v).ok()) {
                Some(info) => {
                    self.known.insert(name.to_string(), info.clone());
                    self.live.insert(name.to_string(), info);
                }
                None => {
                    self.live.remove(name);
                }
            }
        } else if let Some(name) = name_in(key, LOST) {
            match value.and_then(|v| serde_json::from_slice::<Lost>(v).ok()) {
                Some(lost) => {
                    self.lost.insert(name.to_string(), lost);
                }
                None => {
                    self.lost.remove(name);
                }
            }
        } else if let Some(name) = name_in(key, DRAIN) {
            if value.is_some() {
                self.draining.insert(name.to_string());
            } else {
                self.draining.remove(name);
            }
        } else if let Some(id) = name_in(key, SESSIONS) {
            match value.and_then(|v| serde_json::from_slice::<SessionRoute>(v).ok()) {
                Some(route) => {
                    self.sessions.insert(id.to_string(), route);
                }
                None => {
                    self.sessions.remove(id);
                }
            }
        } else if let Some((node, id)) = name_in(key, IDLE).and_then(|rest| rest.split_once('/')) {
            match value.and_then(|v| serde_json::from_slice::<IdleMember>(v).ok()) {
                Some(member) => {
                    self.idle
                        .entry(node.to_string())
                        .or_default()
                        .insert(id.to_string(), member.pool);
                }
                None => {
                    if let Some(members) = self.idle.get_mut(node) {
                        members.remove(id);
                        if members.is_empty() {
                            self.idle.remove(node);
                        }
                    }
                }
            }
        } else if let Some(id) = name_in(key, KEYS) {
            match value.and_then(|v| serde_json::from_slice::<KeyRecord>(v).ok()) {
                Some(record) => {
                    self.keys.insert(id.to_string(), record);
                }
                None => {
                    self.keys.remove(id);
                }
            }
        }
    }

    /// A fresh view from a full read, keeping the nodes known before it.
    pub fn reloaded(&self, kvs: &[(Vec<u8>, Vec<u8>)]) -> View {
        let mut view = View {
            known: self.known.clone(),
            ..View::default()
        };
        for (k, v) in kvs {
            view.apply(k, Some(v));
        }
        view
    }

    /// Whether a session of `node` opened at `epoch` belongs to a process declared lost.
    pub fn is_lost(&self, node: &str, epoch: i64) -> bool {
        self.lost.get(node).is_some_and(|l| epoch <= l.epoch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, epoch: i64) -> Vec<u8> {
        serde_json::to_vec(&NodeInfo {
            name: name.into(),
            advertise: format!("http://{name}:9501"),
            epoch,
            lease: 1,
            engine: "docker".into(),
            runtimes: vec![],
            labels: Default::default(),
            max_sessions: 10,
            memory_bytes: 1 << 30,
            sessions: 0,
            memory_reserved: 0,
            pool_idle: 0,
        })
        .unwrap()
    }

    #[test]
    fn idle_members_come_and_go_by_node() {
        let mut v = View::default();
        let member = |pool: &str| serde_json::to_vec(&IdleMember { pool: pool.into() }).unwrap();
        v.apply(b"/sandpit/idle/n1/m1", Some(&member("[\"python\"]")));
        v.apply(b"/sandpit/idle/n1/m2", Some(&member("[\"ruby\"]")));
        v.apply(b"/sandpit/idle/n2/m3", Some(&member("[\"python\"]")));
        assert_eq!(v.idle["n1"]["m1"], "[\"python\"]");
        assert_eq!(v.idle["n1"].len(), 2);
        v.apply(b"/sandpit/idle/n2/m3", None);
        assert!(
            !v.idle.contains_key("n2"),
            "a node with none idle is dropped"
        );
        v.apply(b"/sandpit/idle/n1/m1", None);
        assert_eq!(v.idle["n1"].len(), 1);
    }

    #[test]
    fn a_lapsed_node_stays_known_and_its_old_epochs_are_lost() {
        let mut v = View::default();
        v.apply(b"/sandpit/nodes/n1", Some(&node("n1", 7)));
        assert!(v.live.contains_key("n1"));
        v.apply(b"/sandpit/nodes/n1", None);
        assert!(!v.live.contains_key("n1"));
        assert_eq!(
            v.known["n1"].epoch, 7,
            "still reachable by its last address"
        );
        let lost = serde_json::to_vec(&Lost {
            epoch: 7,
            at: 1,
            by: "n2".into(),
        })
        .unwrap();
        v.apply(b"/sandpit/lost/n1", Some(&lost));
        assert!(v.is_lost("n1", 7) && v.is_lost("n1", 3));
        assert!(!v.is_lost("n1", 8), "a later process of the node is not");
        assert!(!v.is_lost("n2", 1));
        let reloaded = v.reloaded(&[]);
        assert!(reloaded.known.contains_key("n1") && reloaded.lost.is_empty());
    }

    #[test]
    fn drains_sessions_and_keys_come_and_go() {
        let mut v = View::default();
        v.apply(b"/sandpit/drain/n2", Some(b"1"));
        assert!(v.draining.contains("n2"));
        v.apply(b"/sandpit/drain/n2", None);
        assert!(v.draining.is_empty());
        let route = serde_json::to_vec(&SessionRoute {
            node: "n1".into(),
            epoch: 3,
            owner: "key_1".into(),
            language: "python".into(),
            created: 1,
            expires_at: 2,
        })
        .unwrap();
        v.apply(b"/sandpit/sessions/abc", Some(&route));
        assert_eq!(v.sessions["abc"].node, "n1");
        v.apply(b"/sandpit/sessions/abc", Some(b"not json"));
        assert!(v.sessions.is_empty(), "an unreadable record is no route");
    }
}
