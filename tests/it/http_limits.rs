//! The server's limits, set through `SANDPIT_*` variables: sessions per key and concurrent runs
//! per key (429), the request body size (413); and bad input on every JSON route (malformed
//! JSON, the wrong shape, unknown fields and routes), each a clear 4xx that changes nothing.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http_sessions::{server_label_of, stop_and_check_nothing_left};
use crate::server::{assert_error, containers_with, send, Server};

/// A server allowing 2 sessions and 1 run at a time per key, with a second key; answers with
/// the other key.
fn limited_server() -> (Server, String) {
    let server = Server::start_with(
        &[
            ("SANDPIT_SESSIONS_PER_KEY", "2"),
            ("SANDPIT_RUNS_PER_KEY", "1"),
            ("SANDPIT_POOL", "python=1"),
        ],
        &[],
    );
    let other = server.add_key("other");
    (server, other)
}

#[test]
fn a_key_opens_no_more_sessions_than_its_limit() {
    let (server, other) = limited_server();
    let a = server.session_with(json!({"language": "python", "name": "a"}));
    let label = server_label_of(&a);
    let b = server.python_session();
    let containers = containers_with(&label).len();
    let answer = server.json("POST", "/v1/sessions", Some(json!({"language": "python"})));
    assert_error("a third session", answer.clone(), 429, "exhausted");
    assert!(
        answer.1["message"].as_str().unwrap().contains("limit is 2"),
        "the message should name the limit: {}",
        answer.1
    );
    assert_eq!(
        containers_with(&label).len(),
        containers,
        "the refused session made a container"
    );
    // Get-or-create of a session the key has is not a new session: no limit in the way.
    let (status, again) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "name": "a"})),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], a.as_str());
    // The limit is per key: another key still opens one.
    let (status, theirs) = send(
        server.req_as(&other, "POST", "/v1/sessions"),
        Some(json!({"language": "python"})),
    );
    assert_eq!(status, 201, "{theirs}");
    let theirs = theirs["id"].as_str().unwrap().to_string();
    // Closing one frees a place.
    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{b}"), None);
    assert_eq!(status, 204);
    server.python_session();
    let (status, _) = send(
        server.req_as(&other, "DELETE", &format!("/v1/sessions/{theirs}")),
        None,
    );
    assert_eq!(status, 204);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_key_runs_one_thing_at_a_time_in_its_sessions() {
    let (server, other) = limited_server();
    let a = server.python_session();
    let label = server_label_of(&a);
    let b = server.python_session();
    let (status, theirs) = send(
        server.req_as(&other, "POST", "/v1/sessions"),
        Some(json!({"language": "python"})),
    );
    assert_eq!(status, 201, "{theirs}");
    let theirs = theirs["id"].as_str().unwrap().to_string();
    // A second run on a session is 429 while the first goes on (one-shot runs wait in line
    // instead: see below).
    let slow = {
        let req = server.req("POST", &format!("/v1/sessions/{a}/run"));
        std::thread::spawn(move || {
            send(
                req,
                Some(json!({"code": "import time\ntime.sleep(4)\nprint('slow')"})),
            )
        })
    };
    std::thread::sleep(Duration::from_millis(1500));
    for (what, path, body) in [
        (
            "execute",
            format!("/v1/sessions/{b}/execute"),
            json!({"code": "1"}),
        ),
        (
            "run",
            format!("/v1/sessions/{b}/run"),
            json!({"code": "print(1)"}),
        ),
        (
            "commands",
            format!("/v1/sessions/{a}/commands"),
            json!({"command": "true"}),
        ),
    ] {
        let answer = server.json("POST", &path, Some(body));
        assert_error(
            &format!("{what} during another run"),
            answer,
            429,
            "exhausted",
        );
    }
    // Looking at a session, its files and its packages takes no run slot.
    let (status, out) = server.json("PUT", &format!("/v1/sessions/{a}/files/during.txt"), None);
    assert!(status < 300, "writing a file during a run: {status} {out}");
    for path in [
        format!("/v1/sessions/{a}"),
        format!("/v1/sessions/{a}/files"),
        format!("/v1/sessions/{a}/packages"),
    ] {
        let (status, out) = server.json("GET", &path, None);
        assert_eq!(status, 200, "GET {path} during a run: {out}");
    }
    // Another key is not held back by this key's run.
    let (status, out) = send(
        server.req_as(&other, "POST", &format!("/v1/sessions/{theirs}/execute")),
        Some(json!({"code": "6 * 7"})),
    );
    assert_eq!(status, 200, "{out}");
    let (status, out) = slow.join().unwrap();
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["stdout"], "slow\n");
    // The slot is free again once the run ended.
    let (status, out) = server.json(
        "POST",
        &format!("/v1/sessions/{b}/execute"),
        Some(json!({"code": "6 * 7"})),
    );
    assert_eq!(status, 200, "{out}");
    let (status, out) = server.json(
        "POST",
        "/v1/run",
        Some(json!({"language": "python", "code": "print(6 * 7)"})),
    );
    assert_eq!(status, 200, "{out}");
    let (status, _) = send(
        server.req_as(&other, "DELETE", &format!("/v1/sessions/{theirs}")),
        None,
    );
    assert_eq!(status, 204);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn request_bodies_past_the_limit_are_413_and_change_nothing() {
    let server = Server::start_with(
        &[("SANDPIT_MAX_BODY_BYTES", "1048576"), ("SANDPIT_POOL", "")],
        &[],
    );
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");
    let big = vec![b'x'; 2 << 20];
    let just_fits = vec![b'y'; 1 << 19];

    // Raw file bytes.
    let (status, body) = server.raw_keyed("PUT", &format!("{s}/files/big.bin"), &big);
    assert_error("a 2 MiB file", (status, body), 413, "too_large");
    let (status, _) = server.raw_keyed("GET", &format!("{s}/files/big.bin"), b"");
    assert_eq!(status, 404, "the refused file was written");
    let (status, body) = server.raw_keyed("PUT", &format!("{s}/files/fits.bin"), &just_fits);
    assert_eq!(status, 201, "a body under the limit: {body}");
    // Chunked, with no length announced.
    let auth = format!("Bearer {}", server.key);
    let mut chunked = Vec::new();
    for piece in big.chunks(256 << 10) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _, body) = server.raw(
        "PUT",
        &format!("{s}/files/chunked.bin"),
        &[("Authorization", &auth), ("Transfer-Encoding", "chunked")],
        &chunked,
    );
    assert_error("a 2 MiB chunked body", (status, body), 413, "too_large");
    let (status, _) = server.raw_keyed("GET", &format!("{s}/files/chunked.bin"), b"");
    assert_eq!(status, 404, "the refused chunked file was written");
    // A multipart upload.
    let (content_type, form) = crate::http_files::multipart(&[("file", Some("big.bin"), &big)]);
    let (status, _, body) = server.raw(
        "POST",
        &format!("{s}/files"),
        &[("Authorization", &auth), ("Content-Type", &content_type)],
        &form,
    );
    assert_error("a 2 MiB upload", (status, body), 413, "too_large");
    // JSON on every route that takes it.
    let code = "#".repeat(2 << 20);
    for (method, path, body) in [
        (
            "POST",
            "/v1/sessions".to_string(),
            json!({"language": "python", "metadata": {"pad": code}}),
        ),
        ("POST", format!("{s}/run"), json!({"code": code})),
        ("POST", format!("{s}/execute"), json!({"code": code})),
        ("POST", format!("{s}/commands"), json!({"command": code})),
        (
            "POST",
            "/v1/run".to_string(),
            json!({"language": "python", "code": code}),
        ),
        ("PUT", format!("{s}/env"), json!({"env": {"BIG": code}})),
        ("PATCH", s.clone(), json!({"metadata": {"pad": code}})),
        ("POST", format!("{s}/packages"), json!({"packages": [code]})),
        (
            "POST",
            format!("{s}/files/ops"),
            json!({"op": "mkdir", "path": code}),
        ),
    ] {
        let bytes = serde_json::to_vec(&body).unwrap();
        let (status, body) = server.raw_keyed(method, &path, &bytes);
        assert_error(
            &format!("{method} {path} with 2 MiB of JSON"),
            (status, body),
            413,
            "too_large",
        );
    }
    // Nothing changed.
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["sessions"][0]["metadata"], json!({}), "{list}");
    let (_, env) = server.json("GET", &format!("{s}/env"), None);
    assert_eq!(env, json!({"env": {}}));
    let out = server.sh(&id, "ls");
    assert_eq!(out["stdout"], "fits.bin\n", "{out}");
    // And the server still answers.
    let (status, out) = server.json(
        "POST",
        &format!("{s}/execute"),
        Some(json!({"code": "1 + 1"})),
    );
    assert_eq!(status, 200, "{out}");
}

/// A session with a name, metadata and a file, and how it looked before anything was asked.
fn session_to_keep(server: &Server) -> (String, String, Value) {
    let id =
        server.session_with(json!({"language": "python", "name": "n", "metadata": {"m": "1"}}));
    let s = format!("/v1/sessions/{id}");
    let (status, _) = server.raw_keyed("PUT", &format!("{s}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);
    let (_, before) = server.json("GET", &s, None);
    (id, s, before)
}

/// The session of [`session_to_keep`] is as it was, and it is the only one.
fn check_nothing_changed(server: &Server, id: &str, before: &Value) {
    let s = format!("/v1/sessions/{id}");
    let (_, after) = server.json("GET", &s, None);
    for field in ["name", "metadata", "expires_at", "idle_timeout"] {
        assert_eq!(after[field], before[field], "{field} changed");
    }
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    let out = server.sh(id, "ls; cat keep.txt");
    assert_eq!(out["stdout"], "keep.txt\nkept", "{out}");
    let (_, env) = server.json("GET", &format!("{s}/env"), None);
    assert_eq!(env, json!({"env": {}}));
}

#[test]
fn malformed_json_on_every_route_is_400_and_changes_nothing() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let (id, s, before) = session_to_keep(&server);
    let json_routes: Vec<(&str, String)> = vec![
        ("POST", "/v1/sessions".into()),
        ("PATCH", s.clone()),
        ("POST", format!("{s}/execute")),
        ("POST", format!("{s}/run")),
        ("POST", format!("{s}/commands")),
        ("POST", format!("{s}/files/ops")),
        ("POST", format!("{s}/packages")),
        ("PUT", format!("{s}/env")),
        ("POST", "/v1/run".into()),
    ];
    let malformed: &[(&str, &[u8])] = &[
        ("nothing", b""),
        ("truncated JSON", b"{\"language\": \"pyth"),
        ("not JSON", b"language=python"),
        ("a trailing comma", b"{\"code\": \"1\",}"),
        ("an array", b"[1, 2]"),
        ("a string", b"\"python\""),
        ("null", b"null"),
        ("invalid UTF-8", b"{\"code\": \"\xff\xfe\"}"),
        ("an unknown field", b"{\"language\": \"python\", \"code\": \"1\", \"command\": \"1\", \"op\": \"mkdir\", \"path\": \"x\", \"packages\": [\"six\"], \"env\": {}, \"colour\": \"red\"}"),
        ("a number for a string", b"{\"language\": 5, \"code\": 5, \"command\": 5, \"op\": 5, \"path\": 5, \"packages\": 5, \"env\": 5}"),
        ("deeply nested", &[b'['; 100_000]),
    ];
    let auth = format!("Bearer {}", server.key);
    for (method, path) in &json_routes {
        for (what, body) in malformed {
            // A JSON content type, and also the wrong one (JSON is read whatever it says).
            for content_type in ["application/json", "text/plain"] {
                let (status, _, answer) = server.raw(
                    method,
                    path,
                    &[("Authorization", &auth), ("Content-Type", content_type)],
                    body,
                );
                assert_error(
                    &format!("{method} {path} with {what} as {content_type}"),
                    (status, answer),
                    400,
                    "invalid_input",
                );
            }
        }
    }
    check_nothing_changed(&server, &id, &before);
    // The errors were counted by kind.
    let (_, metrics) = server.json("GET", "/metrics", None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    let invalid: u64 = metrics
        .lines()
        .find(|l| l.starts_with("sandpit_errors_total{kind=\"invalid_input\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no invalid_input counter:\n{metrics}"));
    assert!(
        invalid >= (json_routes.len() * malformed.len() * 2) as u64,
        "{invalid} counted:\n{metrics}"
    );
}

#[test]
fn a_bad_request_s_message_says_what_is_wrong() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let (id, _, before) = session_to_keep(&server);
    let (_, body) = server.raw_keyed("POST", "/v1/sessions", b"{\"language\": ");
    assert!(
        body["message"].as_str().unwrap().contains("not valid JSON"),
        "{body}"
    );
    let (_, body) = server.raw_keyed("POST", "/v1/sessions", b"{\"langauge\": \"python\"}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains("langauge"),
        "the unknown field should be named: {body}"
    );
    let (_, body) = server.raw_keyed("POST", "/v1/sessions", b"{\"language\": \"cobol\"}");
    assert!(
        body["message"].as_str().unwrap().contains("python"),
        "an unknown language lists the known ones: {body}"
    );

    check_nothing_changed(&server, &id, &before);
}

#[test]
fn unknown_routes_methods_and_undecodable_paths_get_json_errors() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let (id, s, before) = session_to_keep(&server);
    let auth = format!("Bearer {}", server.key);
    for (method, path, want) in [
        ("GET", "/v1/nothing".to_string(), 404),
        ("GET", "/nothing".to_string(), 404),
        ("GET", format!("{s}/nothing"), 404),
        ("PUT", "/v1/sessions".to_string(), 405),
        ("POST", s.clone(), 405),
        ("DELETE", "/v1/run".to_string(), 405),
    ] {
        let (status, _, body) = server.raw(method, &path, &[("Authorization", &auth)], b"");
        assert_eq!(status, want, "{method} {path}: {body}");
        assert!(
            body["error"].is_string() && body["message"].is_string(),
            "{method} {path}: the error is not a JSON error body: {body}"
        );
    }
    // A path segment that is not UTF-8 once decoded.
    let (status, body) = server.raw_keyed("GET", &format!("{s}/files/%FF%FE"), b"");
    assert!(
        status == 400 && body["error"] == "invalid_input",
        "an undecodable path: {status} {body}"
    );

    check_nothing_changed(&server, &id, &before);
}

/// A server allowing one run at a time per key, with a line of `length` one-shot runs that
/// wait up to `wait` seconds.
fn one_at_a_time(length: &str, wait: &str) -> Server {
    Server::start_with(
        &[
            ("SANDPIT_RUNS_PER_KEY", "1"),
            ("SANDPIT_RUN_QUEUE_LENGTH", length),
            ("SANDPIT_RUN_QUEUE_WAIT", wait),
            ("SANDPIT_POOL", "python=2"),
        ],
        &[],
    )
}

/// Starts a one-shot run that sleeps `secs` in the background.
fn slow_one_shot(server: &Server, secs: u32) -> std::thread::JoinHandle<(u16, Value)> {
    let req = server.req("POST", "/v1/run");
    let code = format!("import time\ntime.sleep({secs})\nprint('slow')");
    let handle =
        std::thread::spawn(move || send(req, Some(json!({"language": "python", "code": code}))));
    std::thread::sleep(Duration::from_millis(1500));
    handle
}

#[test]
fn a_one_shot_run_over_the_limit_waits_its_turn() {
    let server = one_at_a_time("4", "30");
    let slow = slow_one_shot(&server, 4);
    let started = std::time::Instant::now();
    let (status, out) = server.json(
        "POST",
        "/v1/run",
        Some(json!({"language": "python", "code": "print('after')"})),
    );
    assert_eq!(
        (status, out["stdout"].as_str()),
        (200, Some("after\n")),
        "{out}"
    );
    assert!(
        started.elapsed() > Duration::from_secs(1),
        "it ran beside the slow one: the key's limit is one run"
    );
    let (status, out) = slow.join().unwrap();
    assert_eq!(status, 200, "{out}");
}

#[test]
fn a_full_line_or_a_long_wait_is_429_with_retry_after() {
    let server = one_at_a_time("1", "2");
    let slow = slow_one_shot(&server, 8);
    // The one place in line is taken, and its wait (2 s) runs out before the slow run ends.
    let waiting = {
        let req = server.req("POST", "/v1/run");
        std::thread::spawn(move || {
            let r = req.send_json(json!({"language": "python", "code": "print(1)"}));
            match r {
                Err(ureq::Error::Status(status, r)) => {
                    (status, r.header("Retry-After").map(String::from))
                }
                Ok(r) => (r.status(), None),
                Err(e) => panic!("{e}"),
            }
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    // No place left: refused at once, with when to come back.
    let started = std::time::Instant::now();
    let full = server
        .req("POST", "/v1/run")
        .send_json(json!({"language": "python", "code": "print(1)"}));
    let Err(ureq::Error::Status(status, response)) = full else {
        panic!("a run past a full line was not refused: {full:?}");
    };
    assert_eq!(status, 429);
    assert!(started.elapsed() < Duration::from_secs(2), "it waited");
    let retry: u64 = response
        .header("Retry-After")
        .expect("a 429 of a full line says when to retry")
        .parse()
        .unwrap();
    assert!(retry >= 1, "{retry}");
    let body: Value = response.into_json().unwrap();
    assert_eq!(body["error"], "exhausted", "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("waiting"),
        "{body}"
    );
    // The one in line gave up after its wait, also with when to come back.
    let (status, retry) = waiting.join().unwrap();
    assert_eq!(status, 429);
    assert!(
        retry.is_some(),
        "a run whose wait ran out says when to retry"
    );
    let (status, out) = slow.join().unwrap();
    assert_eq!(status, 200, "{out}");
}
