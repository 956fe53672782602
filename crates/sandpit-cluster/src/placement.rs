//! Placement: a new session goes to the better of K live nodes drawn at random (load against
//! capacity: open sessions, memory promised to sessions), among those that can take it (not
//! draining, not full, the named node or labels when the request asks).

use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};

use sandpit_service::{ErrorKind, ServiceError, ServiceResult};

use crate::cache::View;
use crate::layout::NodeInfo;
use crate::node::Cluster;

/// How many nodes are drawn for each placement.
pub const CHOICES: usize = 2;

/// What a create asks of its node.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Placement {
    /// This node only.
    pub node: Option<String>,
    /// Nodes carrying all these labels.
    pub labels: BTreeMap<String, String>,
    /// The session's memory limit, in bytes (0: the default).
    pub memory: u64,
}

/// The default memory limit of a session (512 MiB), for requests that name none.
const DEFAULT_MEMORY: u64 = 512 << 20;

/// How loaded a node is, 0 (idle) to 1 (full), with `extra` sessions placed on it lately.
fn load(n: &NodeInfo, extra: usize) -> f64 {
    let sessions = (n.sessions + extra) as f64 / n.max_sessions.max(1) as f64;
    let memory = if n.memory_bytes == 0 {
        0.0
    } else {
        (n.memory_reserved + extra as u64 * DEFAULT_MEMORY) as f64 / n.memory_bytes as f64
    };
    sessions.max(memory)
}

/// The node for `p`, or why none can take it. `draw(n)` picks an index below `n`.
pub fn choose(
    view: &View,
    p: &Placement,
    placed: &HashMap<String, usize>,
    mut draw: impl FnMut(usize) -> usize,
) -> Result<NodeInfo, String> {
    let memory = if p.memory == 0 {
        DEFAULT_MEMORY
    } else {
        p.memory
    };
    let mut skipped = Vec::new();
    let mut names: Vec<&String> = view.live.keys().collect();
    names.sort();
    let mut fit: Vec<&NodeInfo> = Vec::new();
    for name in names {
        let n = &view.live[name];
        let extra = placed.get(name).copied().unwrap_or(0);
        if p.node.as_ref().is_some_and(|want| want != name) {
            continue;
        }
        if !p.labels.iter().all(|(k, v)| n.labels.get(k) == Some(v)) {
            continue;
        }
        if view.draining.contains(name) {
            skipped.push(format!("{name} is draining"));
        } else if n.sessions + extra >= n.max_sessions {
            skipped.push(format!(
                "{name} holds {} sessions, its most",
                n.max_sessions
            ));
        } else if n.memory_bytes > 0 && n.memory_reserved + memory > n.memory_bytes {
            skipped.push(format!(
                "{name} has no memory left for {} MiB",
                memory >> 20
            ));
        } else {
            fit.push(n);
        }
    }
    if fit.is_empty() {
        let asked = match (&p.node, p.labels.is_empty()) {
            (Some(node), _) if !view.live.contains_key(node) => {
                return Err(format!("node {node} is not a live node of the cluster"))
            }
            (Some(node), _) => format!("node {node}"),
            (None, false) => format!("nodes labelled {:?}", p.labels),
            (None, true) => "live nodes".to_string(),
        };
        if skipped.is_empty() {
            return Err(format!("no {asked} in the cluster can take a session"));
        }
        return Err(format!(
            "none of the {asked} can take it: {}",
            skipped.join("; ")
        ));
    }
    let mut best: Option<&NodeInfo> = None;
    for _ in 0..CHOICES.min(fit.len()) {
        let n = fit.swap_remove(draw(fit.len()));
        let better = best.is_none_or(|b| {
            load(n, placed.get(&n.name).copied().unwrap_or(0))
                < load(b, placed.get(&b.name).copied().unwrap_or(0))
        });
        if better {
            best = Some(n);
        }
    }
    Ok(best.expect("one drawn").clone())
}

impl Cluster {
    /// The node a new session goes to (`EngineUnavailable` while etcd is out of reach,
    /// `Exhausted` when no node can take it).
    pub fn place(&self, p: &Placement) -> ServiceResult<NodeInfo> {
        if !self.is_ready() {
            return Err(ServiceError::new(
                ErrorKind::EngineUnavailable,
                format!(
                    "the cluster's registry (etcd) is unreachable from node {}, so no new session can be placed; open sessions keep working: try again when etcd has a quorum",
                    self.name()
                ),
            ));
        }
        let view = self.inner.view.read().expect("view");
        let mut placed = self.inner.placed.lock().expect("placed");
        let seed = std::collections::hash_map::RandomState::new();
        let node = choose(&view, p, &placed, |n| {
            let mut h = seed.build_hasher();
            h.write_usize(n);
            (h.finish() % n as u64) as usize
        })
        .map_err(|e| ServiceError::new(ErrorKind::Exhausted, e))?;
        *placed.entry(node.name.clone()).or_default() += 1;
        Ok(node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, sessions: usize, labels: &[(&str, &str)]) -> NodeInfo {
        NodeInfo {
            name: name.into(),
            advertise: format!("http://{name}:9501"),
            epoch: 1,
            lease: 1,
            engine: "docker".into(),
            runtimes: vec![],
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            max_sessions: 10,
            memory_bytes: 16 << 30,
            sessions,
            memory_reserved: sessions as u64 * DEFAULT_MEMORY,
            pool_idle: 0,
        }
    }

    fn view(nodes: Vec<NodeInfo>) -> View {
        let mut v = View::default();
        for n in nodes {
            v.live.insert(n.name.clone(), n);
        }
        v
    }

    #[test]
    fn the_less_loaded_of_two_wins_and_full_or_draining_nodes_are_skipped() {
        let v = view(vec![node("a", 7, &[]), node("b", 2, &[])]);
        let p = Placement::default();
        let none = HashMap::new();
        for first in 0..2 {
            let mut draws = [first, 0].into_iter();
            let got = choose(&v, &p, &none, |_| draws.next().unwrap()).unwrap();
            assert_eq!(got.name, "b", "the idler node whichever is drawn first");
        }
        // Sessions placed lately count until the node announces its load.
        let busy: HashMap<String, usize> = [("b".to_string(), 6)].into();
        let got = choose(&v, &p, &busy, |_| 0).unwrap();
        assert_eq!(got.name, "a");
        let mut v = view(vec![node("a", 10, &[]), node("b", 2, &[])]);
        v.draining.insert("b".into());
        let err = choose(&v, &p, &none, |_| 0).unwrap_err();
        assert!(
            err.contains("a holds 10") && err.contains("b is draining"),
            "{err}"
        );
    }

    #[test]
    fn a_named_node_or_labels_narrow_the_choice() {
        let v = view(vec![node("a", 0, &[("disk", "ssd")]), node("b", 5, &[])]);
        let p = Placement {
            node: Some("b".into()),
            ..Placement::default()
        };
        assert_eq!(choose(&v, &p, &HashMap::new(), |_| 0).unwrap().name, "b");
        let p = Placement {
            labels: [("disk".to_string(), "ssd".to_string())].into(),
            ..Placement::default()
        };
        assert_eq!(choose(&v, &p, &HashMap::new(), |_| 0).unwrap().name, "a");
        let p = Placement {
            node: Some("zz".into()),
            ..Placement::default()
        };
        let err = choose(&v, &p, &HashMap::new(), |_| 0).unwrap_err();
        assert!(err.contains("zz is not a live node"), "{err}");
        let p = Placement {
            memory: 64 << 30,
            ..Placement::default()
        };
        let err = choose(&v, &p, &HashMap::new(), |_| 0).unwrap_err();
        assert!(err.contains("no memory left"), "{err}");
    }
}
