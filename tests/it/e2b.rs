//! E2B's own SDKs against a real `sandpit serve` (`/compat/e2b`): what the suites in
//! `e2b_python` and `e2b_js` share (a server with an E2B key, the SDKs' interpreters, running
//! a script with the three variables set, the check that nothing is left behind), the raw HTTP
//! helpers `e2b_bad_input` shares, and what only raw HTTP shows of sandboxes that work: reached
//! by host, kept across a restart of the server.
//!
//! The SDKs come from `scripts/e2b-sdks.sh` (`ensure_e2b_sdks`, run by `scripts/test.sh`),
//! which exports `SANDPIT_E2B_PYTHON`, `SANDPIT_E2B_PYTHON_V1` and `SANDPIT_E2B_NODE_PATH`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{containers_with, expect_lines, run_script, script, Ran};
use crate::server::Server;
use crate::support::sandpit_bin;

/// A path an env variable names, checked, with what to do when it is missing.
fn sdk_path(var: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: it names {what}. Run the tests with scripts/test.sh, or first: \
             source scripts/e2b-sdks.sh && ensure_e2b_sdks"
        )
    });
    assert!(
        path.exists(),
        "{var}={} does not exist: run `source scripts/e2b-sdks.sh && ensure_e2b_sdks`",
        path.display()
    );
    path
}

/// The python of the venv with the newest SDKs.
pub fn python() -> PathBuf {
    sdk_path(
        "SANDPIT_E2B_PYTHON",
        "the python of a venv with e2b and e2b-code-interpreter",
    )
}

/// The python of the venv with the older SDKs (v1 routes).
pub fn python_v1() -> PathBuf {
    sdk_path(
        "SANDPIT_E2B_PYTHON_V1",
        "the python of a venv with e2b 2.30.0 and e2b-code-interpreter 2.9.0",
    )
}

/// The `node_modules` holding npm's `e2b` and `@e2b/code-interpreter`.
pub fn node_modules() -> PathBuf {
    let dir = sdk_path(
        "SANDPIT_E2B_NODE_PATH",
        "a node_modules folder holding e2b and @e2b/code-interpreter",
    );
    assert!(
        dir.join("@e2b/code-interpreter/package.json").is_file(),
        "SANDPIT_E2B_NODE_PATH={} holds no @e2b/code-interpreter",
        dir.display()
    );
    dir
}

/// A server for the E2B suites (no warm pool: every container is a sandbox of a test) and
/// its E2B key.
pub fn server(env: &[(&str, &str)]) -> (Server, String) {
    let mut all = vec![("SANDPIT_POOL", "")];
    all.extend_from_slice(env);
    let server = Server::start_with(&all, &[]);
    let key = e2b_key(&server, "e2b");
    (server, key)
}

/// `sandpit keys add --e2b`: a key as E2B's SDKs want one.
pub fn e2b_key(server: &Server, name: &str) -> String {
    let out = Command::new(sandpit_bin())
        .args(["keys", "add", "--e2b", "--name", name, "--data-dir"])
        .arg(server.data.path())
        .output()
        .expect("sandpit keys add --e2b");
    assert!(
        out.status.success(),
        "keys add --e2b: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let hex = key
        .strip_prefix("e2b_")
        .unwrap_or_else(|| panic!("{key} does not start with e2b_"));
    assert!(
        !hex.is_empty()
            && hex
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
        "{key} does not match ^e2b_[0-9a-f]+$ (SDKs 2.25 to 2.45 refuse it)"
    );
    key
}

/// Runs an SDK script (Python or node) with the variables set, within 10 minutes.
pub fn run_sdk(program: &Path, script_path: &Path, server: &Server, key: &str) -> Ran {
    // The three variables a user sets.
    let base = format!("{}/compat/e2b", server.url);
    let env = [
        ("E2B_API_URL", base.as_str()),
        ("E2B_SANDBOX_URL", base.as_str()),
        ("E2B_API_KEY", key),
    ];
    run_script(program, script_path, &env, Duration::from_secs(600))
}

/// Runs `text` as a script named `name` (node: with the SDKs' `node_modules` beside it) and
/// compares what it printed with `expected`.
pub fn check_script(
    program: &Path,
    name: &str,
    text: &str,
    expected: &str,
    server: &Server,
    key: &str,
) {
    let (dir, path) = script(name, text);
    if name.ends_with(".mjs") {
        // An ES module finds packages from its own folder upwards, not through NODE_PATH.
        std::os::unix::fs::symlink(node_modules(), dir.path().join("node_modules")).unwrap();
    }
    let ran = run_sdk(program, &path, server, key);
    expect_lines(name, &ran, expected, server);
}

/// Closes every session of `key` when dropped, also after a failure half-way.
pub struct CloseAll<'a> {
    pub server: &'a Server,
    pub key: String,
}

impl Drop for CloseAll<'_> {
    fn drop(&mut self) {
        let call = |method: &str, path: &str| {
            self.server
                .req_as(&self.key, method, path)
                .timeout(Duration::from_secs(60))
                .call()
                .ok()
                .and_then(|r| r.into_json::<Value>().ok())
        };
        if let Some(list) = call("GET", "/v1/sessions") {
            for s in list["sessions"].as_array().cloned().unwrap_or_default() {
                let id = s["id"].as_str().unwrap_or_default();
                let _ = call("DELETE", &format!("/v1/sessions/{id}"));
            }
        }
    }
}

/// Waits (up to 30 s) until no container of the key named `name` is left.
pub fn nothing_left(server: &Server, name: &str) {
    let label = format!("sandpit.owner={}", key_id(server, name));
    let started = Instant::now();
    loop {
        let left = containers_with(&label);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "containers of the E2B key {name} are left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The id of the server's key named `name`.
fn key_id(server: &Server, name: &str) -> String {
    let out = Command::new(sandpit_bin())
        .args(["keys", "list", "--data-dir"])
        .arg(server.data.path())
        .output()
        .expect("sandpit keys list");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.get(1) == Some(&name))
        .and_then(|cols| cols.first().map(|c| c.to_string()))
        .unwrap_or_else(|| panic!("no key named {name} in `sandpit keys list`: {text}"))
}

// ---------------------------------------------------------------- raw HTTP

/// A request to the control plane with `X-API-KEY`.
pub fn api(server: &Server, key: &str, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}/compat/e2b{path}", server.url))
        .set("X-API-KEY", key)
        .timeout(Duration::from_secs(120))
}

/// Answers with the status, the headers asked for, and the body (JSON, else a string).
pub fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, ureq::Response) {
    match result {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("request failed: {e}"),
    }
}

pub fn body(r: ureq::Response) -> Value {
    let text = r.into_string().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A data-plane request to `sandbox` on `port`.
pub fn plane(server: &Server, sandbox: &str, port: u16, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}/compat/e2b{path}", server.url))
        .set("E2b-Sandbox-Id", sandbox)
        .set("E2b-Sandbox-Port", &port.to_string())
        .timeout(Duration::from_secs(120))
}

/// A created sandbox: (id, envd token, traffic token).
pub fn create(server: &Server, key: &str, extra: Value) -> (String, String, String) {
    let mut request = json!({"templateID": "base", "timeout": 300});
    if let (Some(r), Some(e)) = (request.as_object_mut(), extra.as_object()) {
        r.extend(e.clone());
    }
    let (status, r) = answer(api(server, key, "POST", "/v2/sandboxes").send_json(request));
    let b = body(r);
    assert_eq!(status, 201, "create answered {status}: {b}");
    (
        b["sandboxID"].as_str().unwrap().to_string(),
        b["envdAccessToken"].as_str().unwrap().to_string(),
        b["trafficAccessToken"].as_str().unwrap().to_string(),
    )
}

#[test]
fn sandboxes_are_reached_by_host_too() {
    let (server, key) = server(&[("SANDPIT_E2B_DOMAIN", "sandboxes.test")]);
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    let (id, token, _) = create(&server, &key, json!({}));
    let (_, r) = answer(api(&server, &key, "GET", &format!("/sandboxes/{id}")).call());
    assert_eq!(body(r)["domain"], "sandboxes.test");
    let host = |port: u16, method: &str, path: &str| {
        ureq::request(method, &format!("{}{path}", server.url))
            .set("Host", &format!("{port}-{id}.sandboxes.test"))
            .set("X-Access-Token", &token)
            .timeout(Duration::from_secs(60))
    };
    let (s, r) = answer(
        host(49983, "POST", "/files?path=via-host.txt")
            .set("Content-Type", "application/octet-stream")
            .send_bytes(b"by host"),
    );
    assert_eq!(s, 200, "{}", body(r));
    let (s, r) = answer(host(49983, "GET", "/files?path=/home/user/via-host.txt").call());
    assert_eq!((s, r.into_string().unwrap()), (200, "by host".to_string()));
    let (s, _) = answer(host(49983, "GET", "/health").call());
    assert_eq!(s, 204, "envd's health by host");
    let (s, r) = answer(host(3000, "GET", "/").call());
    assert_eq!(s, 502, "a port Sandpit does not serve: {}", body(r));
    // Another domain's host is an ordinary request to Sandpit.
    let (s, _) = answer(
        ureq::get(&format!("{}/health", server.url))
            .set("Host", &format!("49983-{id}.elsewhere.test"))
            .call(),
    );
    assert_eq!(s, 200);
    let (s, _) = answer(api(&server, &key, "DELETE", &format!("/sandboxes/{id}")).call());
    assert_eq!(s, 204);
    nothing_left(&server, "e2b");
}

#[test]
fn a_restarted_server_keeps_its_sandboxes_and_their_tokens() {
    let (mut server, key) = server(&[]);
    let (id, token, _) = create(&server, &key, json!({"metadata": {"kept": "yes"}}));
    let (s, r) = answer(
        plane(&server, &id, 49983, "POST", "/files?path=kept.txt")
            .set("X-Access-Token", &token)
            .set("Content-Type", "application/octet-stream")
            .send_bytes(b"across a restart"),
    );
    assert_eq!(s, 200, "{}", body(r));
    server.restart();
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    let (s, r) = answer(api(&server, &key, "GET", &format!("/sandboxes/{id}")).call());
    let b = body(r);
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["metadata"], json!({"kept": "yes"}), "{b}");
    let (s, r) = answer(
        plane(
            &server,
            &id,
            49983,
            "GET",
            "/files?path=/home/user/kept.txt",
        )
        .set("X-Access-Token", &token)
        .call(),
    );
    assert_eq!(
        (s, r.into_string().unwrap()),
        (200, "across a restart".to_string()),
        "the token of before the restart opens the sandbox"
    );
    let (s, _) = answer(api(&server, &key, "DELETE", &format!("/sandboxes/{id}")).call());
    assert_eq!(s, 204);
    nothing_left(&server, "e2b");
}
