//! E2B's own SDKs against a real `sandpit serve` (`/compat/e2b`): what the suites in
//! `e2b_python` and `e2b_js` share (a server with an E2B key, the SDKs' interpreters, running
//! a script with the three variables set, the check that nothing is left behind), and what only
//! raw HTTP shows: keys, tokens, malformed Connect frames, unknown methods, sandboxes and
//! contexts, paths out of `/home/user`, huge uploads, hosts, none of which is a 5xx or changes
//! another sandbox.
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
fn api(server: &Server, key: &str, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}/compat/e2b{path}", server.url))
        .set("X-API-KEY", key)
        .timeout(Duration::from_secs(120))
}

/// Answers with the status, the headers asked for, and the body (JSON, else a string).
fn answer(result: Result<ureq::Response, ureq::Error>) -> (u16, ureq::Response) {
    match result {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(s, r)) => (s, r),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn body(r: ureq::Response) -> Value {
    let text = r.into_string().unwrap_or_default();
    serde_json::from_str(&text).unwrap_or(Value::String(text))
}

/// A data-plane request to `sandbox` on `port`.
fn plane(server: &Server, sandbox: &str, port: u16, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}/compat/e2b{path}", server.url))
        .set("E2b-Sandbox-Id", sandbox)
        .set("E2b-Sandbox-Port", &port.to_string())
        .timeout(Duration::from_secs(120))
}

/// One Connect envelope.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The envelopes of a streaming answer: (flags, JSON).
fn envelopes(mut bytes: &[u8]) -> Vec<(u8, Value)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let n = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let payload = &bytes[5..5 + n];
        out.push((
            bytes[0],
            serde_json::from_slice(payload).unwrap_or(Value::Null),
        ));
        bytes = &bytes[5 + n..];
    }
    out
}

/// A created sandbox: (id, envd token, traffic token).
fn create(server: &Server, key: &str, extra: Value) -> (String, String, String) {
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
fn bad_input_gets_the_error_the_sdk_expects() {
    let (server, key) = server(&[("SANDPIT_MAX_BODY_BYTES", "1048576")]);
    let other = e2b_key(&server, "other");
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    let _close_other = CloseAll {
        server: &server,
        key: other.clone(),
    };

    // Keys: none, unknown, and an e2b_ key as an ordinary Sandpit key.
    let (s, r) = answer(ureq::get(&format!("{}/compat/e2b/v2/sandboxes", server.url)).call());
    let b = body(r);
    assert_eq!((s, b["code"].clone()), (401, json!(401)), "no key: {b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("sandpit keys add --e2b"),
        "{b}"
    );
    let (s, _) = answer(api(&server, "e2b_0000", "GET", "/v2/sandboxes").call());
    assert_eq!(s, 401, "an unknown key");
    let (s, r) = answer(server.req_as(&key, "GET", "/v1/sessions").call());
    assert_eq!(
        s,
        200,
        "an e2b_ key is an ordinary Sandpit key: {}",
        body(r)
    );

    // The control plane's bad input, in E2B's shape.
    let (s, r) = answer(
        api(&server, &key, "POST", "/v2/sandboxes").send_json(json!({"templateID": "desktop"})),
    );
    let b = body(r);
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!(404)),
        "unknown template: {b}"
    );
    let (s, r) =
        answer(api(&server, &key, "POST", "/v2/sandboxes").send_string("{\"templateID\": "));
    assert_eq!(s, 400, "malformed JSON: {}", body(r));
    let (s, r) = answer(
        api(&server, &key, "POST", "/v2/sandboxes")
            .send_json(json!({"templateID": "base", "timeout": 0})),
    );
    assert_eq!(s, 400, "a zero timeout: {}", body(r));
    let (s, r) = answer(
        api(&server, &key, "POST", "/v2/sandboxes")
            .send_json(json!({"templateID": "base", "metadata": {"compat": "x"}})),
    );
    assert_eq!(s, 400, "a reserved metadata key: {}", body(r));
    let (s, r) = answer(api(&server, &key, "GET", "/v2/sandboxes?state=dead").call());
    assert_eq!(s, 400, "an unknown state: {}", body(r));
    for (method, path) in [
        ("GET", "/sandboxes/nosuchbox"),
        ("DELETE", "/sandboxes/nosuchbox"),
        ("POST", "/sandboxes/nosuchbox/pause"),
        ("POST", "/sandboxes/nosuchbox/timeout"),
        ("POST", "/v2/sandboxes/nosuchbox/connect"),
    ] {
        let (s, r) = answer(api(&server, &key, method, path).send_json(json!({"timeout": 10})));
        let b = body(r);
        assert_eq!(
            (s, b["code"].clone()),
            (404, json!(404)),
            "{method} {path}: {b}"
        );
    }

    let (mine, token, traffic) = create(&server, &key, json!({}));
    let (theirs, their_token, _) = create(&server, &other, json!({}));
    // Another key's sandbox is not found on the control plane, whatever the call.
    for (method, path) in [
        ("GET", format!("/sandboxes/{theirs}")),
        ("DELETE", format!("/sandboxes/{theirs}")),
        ("POST", format!("/sandboxes/{theirs}/pause")),
    ] {
        let (s, _) = answer(api(&server, &key, method, &path).call());
        assert_eq!(s, 404, "{method} {path} with another key");
    }

    // Their sandbox holds a file; nothing below may change it.
    let (s, r) = answer(
        plane(&server, &theirs, 49983, "POST", "/files?path=keep.txt")
            .set("X-Access-Token", &their_token)
            .set("Content-Type", "application/octet-stream")
            .send_bytes(b"theirs"),
    );
    assert_eq!(s, 200, "upload: {}", body(r));

    // Tokens: none, another sandbox's, forged, a traffic token on envd's port.
    let stat = |sandbox: &str, token: Option<&str>| {
        let mut req = plane(
            &server,
            sandbox,
            49983,
            "POST",
            "/filesystem.Filesystem/Stat",
        )
        .set("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.set("X-Access-Token", t);
        }
        let (s, r) = answer(req.send_string(r#"{"path": "keep.txt"}"#));
        (s, body(r))
    };
    let (s, b) = stat(&theirs, None);
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "no token: {b}"
    );
    let (s, b) = stat(&theirs, Some(&token));
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "my token on their sandbox: {b}"
    );
    let forged = format!("{}.{}", token.split('.').next().unwrap(), "0".repeat(64));
    assert_eq!(stat(&mine, Some(&forged)).0, 401, "a forged token");
    assert_eq!(
        stat(&mine, Some(&traffic)).0,
        401,
        "the traffic token on envd's port"
    );
    let (s, b) = stat(&theirs, Some(&their_token));
    assert_eq!(s, 200, "their own token works: {b}");

    // The process service takes the same tokens: their sandbox's processes are out of reach.
    let list = |sandbox: &str, token: Option<&str>| {
        let mut req = plane(&server, sandbox, 49983, "POST", "/process.Process/List")
            .set("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.set("X-Access-Token", t);
        }
        let (s, r) = answer(req.send_string("{}"));
        (s, body(r))
    };
    let (s, b) = list(&theirs, None);
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "no token: {b}"
    );
    let (s, b) = list(&theirs, Some(&token));
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "my token: {b}"
    );
    let (s, b) = list(&theirs, Some(&their_token));
    assert_eq!(
        (s, b["processes"].as_array().map(Vec::len)),
        (200, Some(0)),
        "theirs: {b}"
    );
    let (s, b) = answer(
        plane(
            &server,
            &theirs,
            49983,
            "POST",
            "/process.Process/SendSignal",
        )
        .set("Content-Type", "application/json")
        .send_string(r#"{"process": {"pid": 1}, "signal": "SIGNAL_SIGKILL"}"#),
    );
    assert_eq!(s, 401, "a signal without a token: {}", body(b));

    // Connect: malformed frames, unknown methods and services, content types.
    let streaming = |path: &str, bytes: Vec<u8>| {
        let (s, r) = answer(
            plane(&server, &mine, 49983, "POST", path)
                .set("X-Access-Token", &token)
                .set("Content-Type", "application/connect+json")
                .send_bytes(&bytes),
        );
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut raw).unwrap();
        (s, envelopes(&raw))
    };
    for bad in [
        vec![0u8, 0, 0],
        envelope(0, b"{}")[..7].to_vec(),
        envelope(1, b"{}"),
    ] {
        let (s, frames) = streaming("/filesystem.Filesystem/WatchDir", bad.clone());
        assert_eq!(s, 200, "a stream's errors travel in its end frame");
        let (flags, end) = frames.last().cloned().unwrap_or((0, Value::Null));
        assert_eq!(flags, 2, "{bad:?}: {frames:?}");
        assert!(
            matches!(
                end["error"]["code"].as_str(),
                Some("invalid_argument" | "unimplemented")
            ),
            "{bad:?}: {end}"
        );
    }
    let unary = |path: &str, content_type: &str, payload: &str| {
        let (s, r) = answer(
            plane(&server, &mine, 49983, "POST", path)
                .set("X-Access-Token", &token)
                .set("Content-Type", content_type)
                .send_string(payload),
        );
        (s, body(r))
    };
    let (s, b) = unary(
        "/filesystem.Filesystem/Stat",
        "application/json",
        "{\"path\": ",
    );
    assert_eq!(
        (s, b["code"].clone()),
        (400, json!("invalid_argument")),
        "malformed JSON: {b}"
    );
    let (s, b) = unary("/filesystem.Filesystem/Chmod", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown method: {b}"
    );
    let (s, b) = unary("/volume.Volume/List", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown service: {b}"
    );
    let (s, _) = unary(
        "/filesystem.Filesystem/Stat",
        "application/proto",
        "\n\x01a",
    );
    assert_eq!(s, 415, "binary protobuf is refused");
    let (s, b) = unary(
        "/filesystem.Filesystem/Stat",
        "application/json",
        r#"{"path": "nothing-here"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "a missing file: {b}"
    );

    // The process service: unknown processes, malformed starts, terminals, unknown methods.
    let (s, b) = unary(
        "/process.Process/SendSignal",
        "application/json",
        r#"{"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "signal to no process: {b}"
    );
    let (s, b) = unary(
        "/process.Process/SendInput",
        "application/json",
        r#"{"process": {"pid": 999999}, "input": {"stdin": "aGk="}}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "input to no process: {b}"
    );
    let (s, b) = unary(
        "/process.Process/SendSignal",
        "application/json",
        r#"{"process": {"pid": 1}, "signal": "SIGNAL_UNSPECIFIED"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (400, json!("invalid_argument")),
        "no signal: {b}"
    );
    let (s, b) = unary("/process.Process/Launch", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown method: {b}"
    );
    for (what, message, code) in [
        (
            "a start without a command",
            json!({"process": {"args": ["x"]}}),
            "invalid_argument",
        ),
        (
            "a terminal",
            json!({"process": {"cmd": "/bin/bash"}, "pty": {"size": {"cols": 80, "rows": 24}}}),
            "unimplemented",
        ),
    ] {
        let (s, frames) = streaming(
            "/process.Process/Start",
            envelope(0, message.to_string().as_bytes()),
        );
        assert_eq!(s, 200, "{what}");
        let (flags, end) = frames.last().cloned().unwrap_or((0, Value::Null));
        assert_eq!(
            (flags, end["error"]["code"].as_str()),
            (2, Some(code)),
            "{what}: {frames:?}"
        );
    }
    let (_, frames) = streaming(
        "/process.Process/Connect",
        envelope(0, br#"{"process": {"pid": 999999}}"#),
    );
    assert_eq!(
        frames.last().map(|f| f.1["error"]["code"].clone()),
        Some(json!("not_found")),
        "connecting to no process: {frames:?}"
    );
    // A started command streams its start, its output and its end.
    let (s, frames) = streaming(
        "/process.Process/Start",
        envelope(
            0,
            br#"{"process": {"cmd": "/bin/sh", "args": ["-c", "echo hi; exit 7"]}}"#,
        ),
    );
    assert_eq!(s, 200);
    let events: Vec<&Value> = frames.iter().map(|f| &f.1["event"]).collect();
    assert!(events[0]["start"]["pid"].as_u64().is_some(), "{frames:?}");
    assert!(
        events.iter().any(|e| e["data"]["stdout"] == "aGkK"),
        "{frames:?}"
    );
    let end = events
        .iter()
        .find(|e| e.get("end").is_some())
        .expect("an end event");
    assert_eq!(end["end"]["exitCode"], 7, "{frames:?}");
    assert_eq!(
        frames.last().unwrap().0,
        2,
        "the last frame ends the stream"
    );

    // Paths out of /home/user, by RPC and by /files.
    for path in [
        "/etc/passwd",
        "../../etc/passwd",
        "/home/user/../../etc/shadow",
        "/proc/1/environ",
    ] {
        let (s, b) = unary(
            "/filesystem.Filesystem/Stat",
            "application/json",
            &json!({"path": path}).to_string(),
        );
        assert!(
            s == 400 || s == 404,
            "Stat {path} answered {s} {b}: only the workdir is the sandbox's"
        );
        let (s, r) = answer(
            plane(
                &server,
                &mine,
                49983,
                "GET",
                &format!("/files?path={}", urlencode(path)),
            )
            .set("X-Access-Token", &token)
            .call(),
        );
        let b = body(r);
        assert!(s == 400 || s == 404, "GET /files {path} answered {s} {b}");
        let (s, r) = answer(
            plane(
                &server,
                &mine,
                49983,
                "POST",
                &format!("/files?path={}", urlencode(path)),
            )
            .set("X-Access-Token", &token)
            .set("Content-Type", "application/octet-stream")
            .send_bytes(b"x"),
        );
        let b = body(r);
        assert!(s == 400 || s == 404, "POST /files {path} answered {s} {b}");
    }
    // As root: a clear refusal, never a write as someone else.
    let (s, r) = answer(
        plane(
            &server,
            &mine,
            49983,
            "POST",
            "/files?path=r.txt&username=root",
        )
        .set("X-Access-Token", &token)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(b"x"),
    );
    let b = body(r);
    assert_eq!(s, 403, "root files: {b}");
    assert!(b["message"].as_str().unwrap().contains("root"), "{b}");

    // Huge uploads, plain and as a gzip bomb. The server answers 413 before reading the whole
    // upload and may close while it is still being sent: a raw socket reads the answer anyway.
    let (s, _, b) = server.raw(
        "POST",
        "/compat/e2b/files?path=big.bin",
        &[
            ("E2b-Sandbox-Id", &mine),
            ("E2b-Sandbox-Port", "49983"),
            ("X-Access-Token", &token),
            ("Content-Type", "application/octet-stream"),
        ],
        &vec![7u8; 2 << 20],
    );
    assert_eq!(s, 413, "an upload past the server's limit: {b}");
    let bomb = {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 8 << 20]).unwrap();
        z.finish().unwrap()
    };
    let (s, _) = answer(
        plane(&server, &mine, 49983, "POST", "/files?path=bomb.bin")
            .set("X-Access-Token", &token)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Encoding", "gzip")
            .send_bytes(&bomb),
    );
    assert_eq!(s, 413, "a gzip bomb past the limit once inflated");

    // Ports Sandpit does not serve, and unknown sandboxes on the data plane.
    let (s, r) = answer(
        plane(&server, &mine, 8080, "GET", "/health")
            .set("X-Access-Token", &token)
            .call(),
    );
    let b = body(r);
    assert_eq!(s, 502, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("port is not open"),
        "{b}"
    );
    let (s, r) = answer(
        plane(&server, "nosuchbox", 49983, "GET", "/health")
            .set("X-Access-Token", &token)
            .call(),
    );
    let b = body(r);
    assert_eq!(s, 502, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("was not found"),
        "{b}"
    );

    // The code interpreter: unknown contexts, both a context and a language, bad JSON.
    let execute = |payload: &str| {
        let (s, r) = answer(
            plane(&server, &mine, 49999, "POST", "/execute")
                .set("E2B-Traffic-Access-Token", &traffic)
                .set("Content-Type", "application/json")
                .send_string(payload),
        );
        (s, body(r))
    };
    assert_eq!(
        execute(r#"{"code": "1", "context_id": "nope"}"#).0,
        404,
        "an unknown context"
    );
    assert_eq!(
        execute(r#"{"code": "1", "context_id": "default", "language": "python"}"#).0,
        400
    );
    assert_eq!(execute(r#"{"code": "#).0, 422, "malformed JSON");
    let (s, r) = answer(
        plane(&server, &mine, 49999, "DELETE", "/contexts/nope")
            .set("E2B-Traffic-Access-Token", &traffic)
            .call(),
    );
    assert_eq!(s, 404, "removing an unknown context: {}", body(r));
    let (s, _) = answer(plane(&server, &mine, 49999, "GET", "/contexts").call());
    assert_eq!(s, 401, "contexts without a token");

    // Their file is still theirs, unchanged.
    let (s, r) = answer(
        plane(&server, &theirs, 49983, "GET", "/files?path=keep.txt")
            .set("X-Access-Token", &their_token)
            .call(),
    );
    assert_eq!(s, 200);
    assert_eq!(
        r.into_string().unwrap(),
        "theirs",
        "another sandbox changed"
    );
    let log = server.log();
    assert!(
        !log.contains("panicked"),
        "the server panicked: {}",
        crate::clients::tail(&log, 40)
    );

    // Killed: 204, then 404; its token now finds nothing.
    let (s, _) = answer(api(&server, &key, "DELETE", &format!("/sandboxes/{mine}")).call());
    assert_eq!(s, 204);
    let (s, _) = answer(api(&server, &key, "DELETE", &format!("/sandboxes/{mine}")).call());
    assert_eq!(s, 404);
    let (s, r) = answer(
        plane(&server, &mine, 49983, "GET", "/health")
            .set("X-Access-Token", &token)
            .call(),
    );
    assert_eq!(s, 502, "a killed sandbox's health: {}", body(r));
    let (s, _) = answer(api(&server, &other, "DELETE", &format!("/sandboxes/{theirs}")).call());
    assert_eq!(s, 204);
    nothing_left(&server, "e2b");
    nothing_left(&server, "other");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
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
