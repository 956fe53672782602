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
    /// A one-shot run: this node serves it when it has a sandbox for it at once; else it
    /// claims an idle member of another node's warm pool and the run goes there.
    Run(RunKind),
    /// The session is named in the body (JSON, read up to the body limit and then passed on
    /// unchanged): this reads it.
    InBody(fn(&[u8]) -> Target),
    /// Nothing to route: this node answers.
    Here,
}

/// What a one-shot run needs of its sandbox.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunKind {
    /// Its language, as the request names it.
    pub language: String,
    /// The libraries it asks for (the pool's image holds them).
    pub libraries: Vec<String>,
    /// A sandbox no run used before.
    pub fresh: bool,
}

impl RunKind {
    /// The run a JSON object's `language`, `libraries` and `fresh` describe (the native
    /// `/v1/run` body, MCP's `run_code` arguments); `Here` for anything else.
    pub fn of(value: &serde_json::Value) -> Target {
        let Some(language) = value["language"].as_str() else {
            return Target::Here;
        };
        let libraries = match &value["libraries"] {
            serde_json::Value::Null => Vec::new(),
            serde_json::Value::Array(items) => {
                match items
                    .iter()
                    .map(|l| l.as_str().map(str::to_string))
                    .collect()
                {
                    Some(libraries) => libraries,
                    None => return Target::Here,
                }
            }
            _ => return Target::Here,
        };
        Target::Run(RunKind {
            language: language.to_string(),
            libraries,
            fresh: value["fresh"].as_bool().unwrap_or(false),
        })
    }
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

    #[test]
    fn a_run_names_its_language_libraries_and_freshness() {
        let run = |v: serde_json::Value| match RunKind::of(&v) {
            Target::Run(kind) => Some(kind),
            _ => None,
        };
        assert_eq!(
            run(
                serde_json::json!({"language": "python", "code": "1", "libraries": ["numpy"], "fresh": true})
            ),
            Some(RunKind {
                language: "python".into(),
                libraries: vec!["numpy".into()],
                fresh: true
            })
        );
        assert_eq!(
            run(serde_json::json!({"language": "ruby"})).map(|k| k.libraries.len()),
            Some(0)
        );
        assert_eq!(run(serde_json::json!({"code": "1"})), None);
        assert_eq!(
            run(serde_json::json!({"language": "python", "libraries": "numpy"})),
            None
        );
    }
}
