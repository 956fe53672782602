//! What a request names, as each API layer reads it: the seam every layer (native, MCP, each
//! compatibility API) implements once, so the cluster can send the request to the right node.

use std::collections::BTreeMap;

use axum::http::request::Parts;
pub use sandpit_cluster::Placement;

/// Where a request must be answered.
#[derive(Debug, Clone)]
pub enum Target {
    /// A session by id: the node that owns it answers (410 when that node was lost).
    Session(String),
    /// A new session: placement picks the node.
    NewSession(Placement),
    /// The session is named in the body (JSON, read up to the body limit and then passed on
    /// unchanged): this reads it.
    InBody(fn(&[u8]) -> Target),
    /// Nothing to route: this node answers.
    Here,
}

/// One layer's reading of a request: `None` when the request is not this layer's.
pub type TargetOf = fn(&Parts) -> Option<Target>;

/// The path without a compatibility API's `/k/{key}` prefix.
pub fn strip_key_prefix(path: &str) -> &str {
    match path.strip_prefix("/k/") {
        Some(rest) => rest.find('/').map(|i| &rest[i..]).unwrap_or("/"),
        None => path,
    }
}

/// A placement from a JSON object's `node` and `node_labels` (the native create's fields).
pub fn placement_in(body: &[u8]) -> Placement {
    #[derive(serde::Deserialize)]
    struct Wanted {
        #[serde(default)]
        node: Option<String>,
        #[serde(default)]
        node_labels: BTreeMap<String, String>,
        #[serde(default)]
        memory: Option<sandpit_service::types::Size>,
    }
    match serde_json::from_slice::<Wanted>(body) {
        Ok(w) => Placement {
            node: w.node,
            labels: w.node_labels,
            memory: w.memory.and_then(|m| m.bytes("memory").ok()).unwrap_or(0),
        },
        Err(_) => Placement::default(),
    }
}

/// The value of header `name`, trimmed, when present and not empty.
pub fn header(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_prefix_goes_and_the_native_create_names_its_node() {
        assert_eq!(
            strip_key_prefix("/k/sp_1/compat/pandora/execute"),
            "/compat/pandora/execute"
        );
        assert_eq!(strip_key_prefix("/k/sp_1"), "/");
        assert_eq!(strip_key_prefix("/v1/sessions"), "/v1/sessions");
        let p = placement_in(
            br#"{"language":"python","node":"n2","node_labels":{"disk":"ssd"},"memory":"1g"}"#,
        );
        assert_eq!(p.node.as_deref(), Some("n2"));
        assert_eq!(p.labels["disk"], "ssd");
        assert_eq!(p.memory, 1 << 30);
        assert_eq!(placement_in(b"not json"), Placement::default());
    }
}
