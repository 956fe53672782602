//! The server itself: `/health` (no key), `/metrics` (Prometheus text), `/openapi.json` (every
//! documented route in it) and `/docs` (served by the server, nothing fetched elsewhere); and
//! a property-based run of schemathesis against `/openapi.json` that must find no 5xx.

use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use crate::server::Server;

fn server() -> Server {
    Server::start_with(&[("SANDPIT_POOL", "")], &[])
}

#[test]
fn health_needs_no_key_and_names_the_engine() {
    let server = server();
    let r = ureq::get(&format!("{}/health", server.url))
        .call()
        .expect("health");
    assert_eq!(r.status(), 200);
    let health: Value = r.into_json().unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["engine"]["kind"], "docker", "{health}");
    assert!(health["engine"]["version"].is_string(), "{health}");
    assert!(health["engine"]["api_version"].is_string(), "{health}");
    assert!(health["version"].is_string(), "{health}");
}

#[test]
fn metrics_count_sessions_runs_and_errors_by_kind() {
    let server = server();
    // With a key; sessions open, runs by operation, errors by kind.
    let id = server.python_session();
    let (status, _) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({"code": "1"})),
    );
    assert_eq!(status, 200);
    let (status, _) = server.json("GET", "/v1/sessions/000000000000", None);
    assert_eq!(status, 404);
    let r = server.req("GET", "/metrics").call().expect("metrics");
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain")),
        "{:?}",
        r.header("content-type")
    );
    let text = r.into_string().unwrap();
    for needle in [
        "# TYPE sandpit_sessions_open gauge",
        "sandpit_sessions_open 1\n",
        "sandpit_sessions_opened_total 1\n",
        "sandpit_run_duration_seconds_count{operation=\"execute\"} 1\n",
        "sandpit_run_duration_seconds_bucket{operation=\"open\",le=\"+Inf\"} 1\n",
        "sandpit_errors_total{kind=\"not_found\"} 1\n",
        "sandpit_errors_total{kind=\"internal\"} 0\n",
    ] {
        assert!(text.contains(needle), "/metrics lacks {needle:?}:\n{text}");
    }
    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
    let text = server
        .req("GET", "/metrics")
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    assert!(text.contains("sandpit_sessions_open 0\n"), "{text}");
    assert!(text.contains("sandpit_sessions_closed_total 1\n"), "{text}");
}

#[test]
fn openapi_describes_every_documented_route_with_its_schemas() {
    let server = server();
    // Every route of docs/http-api.md, with its schemas resolved.
    let r = ureq::get(&format!("{}/openapi.json", server.url))
        .call()
        .expect("openapi");
    let doc: Value = r.into_json().unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    for (method, path) in [
        ("post", "/v1/sessions"),
        ("get", "/v1/sessions"),
        ("get", "/v1/sessions/{id}"),
        ("patch", "/v1/sessions/{id}"),
        ("delete", "/v1/sessions/{id}"),
        ("post", "/v1/sessions/{id}/execute"),
        ("post", "/v1/sessions/{id}/run"),
        ("post", "/v1/sessions/{id}/commands"),
        ("post", "/v1/run"),
        ("put", "/v1/sessions/{id}/files/{path}"),
        ("get", "/v1/sessions/{id}/files/{path}"),
        ("delete", "/v1/sessions/{id}/files/{path}"),
        ("post", "/v1/sessions/{id}/files"),
        ("get", "/v1/sessions/{id}/files"),
        ("post", "/v1/sessions/{id}/files/ops"),
        ("post", "/v1/sessions/{id}/packages"),
        ("get", "/v1/sessions/{id}/packages"),
        ("delete", "/v1/sessions/{id}/packages/{name}"),
        ("get", "/v1/sessions/{id}/env"),
        ("put", "/v1/sessions/{id}/env"),
        ("get", "/health"),
        ("get", "/metrics"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "/openapi.json lacks {method} {path}");
        assert!(
            op["responses"].is_object(),
            "{method} {path} has no responses"
        );
        let secured = op["security"].is_array();
        assert_eq!(
            secured,
            path != "/health",
            "{method} {path}: security is {}",
            op["security"]
        );
    }
    let text = doc.to_string();
    let schemas = doc["components"]["schemas"].as_object().expect("schemas");
    for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(
            schemas.contains_key(name),
            "{name} is referenced but not defined"
        );
    }
}

#[test]
fn the_docs_page_comes_from_the_server_itself() {
    let server = server();
    // HTML reading /openapi.json, nothing from elsewhere.
    let r = ureq::get(&format!("{}/docs", server.url))
        .call()
        .expect("docs");
    assert!(r
        .header("content-type")
        .is_some_and(|c| c.starts_with("text/html")));
    let html = r.into_string().unwrap();
    assert!(
        html.contains("/openapi.json"),
        "the docs page does not read /openapi.json"
    );
    for external in ["http://", "https://", "//cdn", "src=\"//"] {
        assert!(
            !html.contains(external),
            "the docs page loads something from elsewhere ({external})"
        );
    }
}

/// The repository's `scripts/` folder.
fn scripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .join("scripts")
}

#[test]
fn schemathesis_finds_no_server_error() {
    let python = Command::new("python3").arg("--version").output();
    assert!(
        python.as_ref().is_ok_and(|o| o.status.success()),
        "python3 is missing: schemathesis (from PyPI) needs it; install python3 and python3-venv ({python:?})"
    );
    let snapshots = tempfile::tempdir().unwrap();
    let store = format!("file://{}", snapshots.path().display());
    // A few sessions at most, so generated creations stay bounded.
    let server = Server::start_with(
        &[
            ("SANDPIT_SESSIONS_PER_KEY", "4"),
            ("SANDPIT_RUNS_PER_KEY", "4"),
            ("SANDPIT_SNAPSHOTS", &store),
        ],
        &[],
    );
    let script = scripts().join("schemathesis.sh");
    let out = Command::new("bash")
        .arg("-c")
        .arg("source \"$0\" && run_schemathesis \"$1\" \"$2\"")
        .arg(&script)
        .arg(&server.url)
        .arg(&server.key)
        .env(
            "SCHEMATHESIS_EXAMPLES",
            std::env::var("SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "25".into()),
        )
        .output()
        .expect("run scripts/schemathesis.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("schemathesis:"))
        .collect();
    eprintln!("{}", summary.join("\n"));
    assert!(
        out.status.success(),
        "schemathesis found server errors (or could not run):\n{stdout}\n{stderr}\nserver log:\n{}",
        server.log()
    );
    // The server is still whole afterwards.
    let (status, body) = server.json("GET", "/v1/sessions", None);
    assert_eq!(status, 200, "{body}");
}
