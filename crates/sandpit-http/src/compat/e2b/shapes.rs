//! A session as E2B's API shows a sandbox: `Sandbox` (what create and connect answer),
//! `SandboxDetail` (info) and `ListedSandbox` (list).

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use sandpit::Network;
use sandpit_service::{Entry, Owner, ServiceError};
use serde_json::{json, Map, Value};

use super::tokens::{token, Purpose};
use super::ENVD_VERSION;
use crate::state::AppState;

/// The metadata key naming the template a sandbox was made from.
pub const TEMPLATE_KEY: &str = "e2b.template";
/// The metadata key (with value `e2b`) of sessions made through this layer.
pub const TAG_KEY: &str = "compat";

const MIB: u64 = 1 << 20;

/// The metadata a user gave (Sandpit's own keys left out).
pub fn user_metadata(metadata: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    metadata
        .iter()
        .filter(|(k, _)| k.as_str() != TEMPLATE_KEY && k.as_str() != TAG_KEY)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn time(secs: u64) -> String {
    sandpit::time::rfc3339(UNIX_EPOCH + Duration::from_secs(secs))
}

fn template_of(entry: &Entry) -> String {
    entry
        .record()
        .metadata
        .get(TEMPLATE_KEY)
        .cloned()
        .unwrap_or_else(|| super::templates::BASE.to_string())
}

/// What every shape holds: ids, versions, times, resources and state.
fn common(state: &AppState, entry: &Entry) -> Map<String, Value> {
    let record = entry.record();
    let policy = entry.session.policy();
    let template = template_of(entry);
    let fields = json!({
        "templateID": template,
        "alias": template,
        "sandboxID": record.id,
        "clientID": "sandpit",
        "startedAt": time(record.created),
        "endAt": time(record.expires_at),
        "envdVersion": ENVD_VERSION,
        "cpuCount": policy.cpus.ceil().max(1.0) as u64,
        "memoryMB": policy.memory / MIB,
        "diskSizeMB": policy.disk / MIB,
        "state": if record.paused_since.is_some() { "paused" } else { "running" },
        "metadata": user_metadata(&record.metadata),
        "domain": state.manager.config().e2b.domain,
    });
    match fields {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// `Sandbox`: what create, connect and resume answer, with the sandbox's tokens.
pub fn sandbox(state: &AppState, owner: &Owner, entry: &Entry) -> Result<Value, ServiceError> {
    let id = entry.session.id();
    let mut map = Map::new();
    let all = common(state, entry);
    for key in [
        "templateID",
        "alias",
        "sandboxID",
        "clientID",
        "envdVersion",
        "domain",
    ] {
        if let Some(v) = all.get(key) {
            map.insert(key.to_string(), v.clone());
        }
    }
    map.insert(
        "envdAccessToken".into(),
        json!(token(state, Purpose::Envd, id, owner)?),
    );
    map.insert(
        "trafficAccessToken".into(),
        json!(token(state, Purpose::Traffic, id, owner)?),
    );
    Ok(Value::Object(map))
}

/// `SandboxDetail`: what info answers.
pub fn detail(state: &AppState, owner: &Owner, entry: &Entry) -> Result<Value, ServiceError> {
    let mut map = common(state, entry);
    map.insert(
        "envdAccessToken".into(),
        json!(token(state, Purpose::Envd, entry.session.id(), owner)?),
    );
    map.insert(
        "allowInternetAccess".into(),
        json!(entry.session.policy().network != Network::None),
    );
    Ok(Value::Object(map))
}

/// `ListedSandbox`: one item of a list.
pub fn listed(state: &AppState, entry: &Entry) -> Value {
    let mut map = common(state, entry);
    map.remove("domain");
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_see_their_own_metadata() {
        let meta: BTreeMap<String, String> =
            [("compat", "e2b"), ("e2b.template", "base"), ("user", "abc")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        let mine = user_metadata(&meta);
        assert_eq!(mine.len(), 1);
        assert_eq!(mine["user"], "abc");
    }
}
