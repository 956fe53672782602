//! Background processes over HTTP: a server started in the sandbox and reached from another
//! command, one fed through its standard input, followed as events, signalled, and kept across
//! a restart of `sandpit serve`.

use std::time::Duration;

use serde_json::{json, Value};

use crate::http_sessions::{server_label_of, stop_and_check_nothing_left};
use crate::server::{send, Server};

/// Starts a background process; its pid.
fn start(server: &Server, id: &str, body: Value) -> u64 {
    let (status, out) = server.json("POST", &format!("/v1/sessions/{id}/processes"), Some(body));
    assert_eq!(status, 201, "{out}");
    out["pid"].as_u64().unwrap()
}

/// The events of a process's output until `stop` says enough (or its `exit`).
fn follow(
    server: &Server,
    id: &str,
    pid: u64,
    stop: impl Fn(&str) -> bool,
) -> (String, Option<Value>) {
    let mut stream = server.sse_get(&format!("/v1/sessions/{id}/processes/{pid}/output"));
    let mut text = String::new();
    while let Some(event) = stream.next_event() {
        match event.event.as_str() {
            "output" => {
                text.push_str(event.data["text"].as_str().unwrap_or_default());
                if stop(&text) {
                    return (text, None);
                }
            }
            "exit" => return (text, Some(event.data)),
            other => panic!("unexpected {other} event: {:?}", event.data),
        }
    }
    (text, None)
}

#[test]
fn a_server_started_in_the_sandbox_answers_another_command() {
    let server = Server::start();
    let id = server.python_session();
    let pid = start(
        &server,
        &id,
        json!({"argv": ["python3", "-u", "-m", "http.server", "8000", "--bind", "127.0.0.1"], "tag": "web"}),
    );
    let (log, ended) = follow(&server, &id, pid, |t| t.contains("Serving HTTP"));
    assert!(ended.is_none(), "the server ended: {log}");
    let out = server.sh(
        &id,
        "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8000/').status)\"",
    );
    assert_eq!(out["stdout"], "200\n", "{out}");
    let (status, list) = server.json("GET", &format!("/v1/sessions/{id}/processes"), None);
    assert_eq!(status, 200);
    let listed = &list["processes"][0];
    assert_eq!(
        (
            listed["pid"].as_u64(),
            listed["tag"].as_str(),
            listed["running"].as_bool()
        ),
        (Some(pid), Some("web"), Some(true)),
        "{list}"
    );
    let (status, _) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/processes/{pid}/signal"),
        Some(json!({"signal": "term"})),
    );
    assert_eq!(status, 204);
    let (_, end) = follow(&server, &id, pid, |_| false);
    let end = end.expect("an exit event");
    assert_eq!(end["exit_code"], 143, "{end}");
}

#[test]
fn standard_input_reaches_a_background_process() {
    let server = Server::start();
    let id = server.python_session();
    let pid = start(
        &server,
        &id,
        json!({"command": "tr a-z A-Z", "stdin": true}),
    );
    let input = format!("/v1/sessions/{id}/processes/{pid}/stdin");
    let (status, _) = server.json("POST", &input, Some(json!({"data": "hello\n"})));
    assert_eq!(status, 204);
    let (status, _) = server.json(
        "POST",
        &input,
        Some(json!({"data": "again\n", "eof": true})),
    );
    assert_eq!(status, 204);
    let (text, end) = follow(&server, &id, pid, |_| false);
    assert_eq!(text, "HELLO\nAGAIN\n");
    assert_eq!(end.unwrap()["exit_code"], 0);
    // Its input is closed now: writing more is refused.
    let (status, body) = server.json("POST", &input, Some(json!({"data": "late"})));
    assert!(status == 404 || status == 400, "{status} {body}");
}

#[test]
fn bad_process_requests_are_clear_errors() {
    let server = Server::start();
    let id = server.python_session();
    let base = format!("/v1/sessions/{id}/processes");
    for (body, why) in [
        (json!({}), "neither argv nor command"),
        (
            json!({"argv": ["true"], "command": "true"}),
            "both argv and command",
        ),
        (json!({"argv": ["a\u{0}b"]}), "a NUL byte"),
        (
            json!({"argv": ["true"], "cwd": "relative"}),
            "a relative folder",
        ),
        (
            json!({"argv": ["true"], "timeout": -1}),
            "a negative timeout",
        ),
        (json!({"argv": ["/no/such/program"]}), "a missing program"),
    ] {
        let (status, out) = server.json("POST", &base, Some(body));
        assert_eq!(status, 400, "{why}: {out}");
        assert_eq!(out["error"], "invalid_input", "{why}: {out}");
    }
    for path in ["999999/stdin", "999999/signal"] {
        let body = if path.ends_with("signal") {
            json!({"signal": "kill"})
        } else {
            json!({"data": "x"})
        };
        let (status, out) = server.json("POST", &format!("{base}/{path}"), Some(body));
        assert_eq!(status, 404, "{path}: {out}");
    }
    let (status, out) = server.json(
        "POST",
        &format!("{base}/1/signal"),
        Some(json!({"signal": "bogus"})),
    );
    assert_eq!(status, 400, "{out}");
    // Another key sees none of it.
    let other = server.add_key("other");
    let (status, _) = send(server.req_as(&other, "GET", &base), None);
    assert_eq!(status, 404);
}

#[test]
fn a_background_process_outlives_a_restart_of_the_server() {
    let mut server = Server::start();
    let id = server.python_session();
    let label = server_label_of(&id);
    let pid = start(
        &server,
        &id,
        json!({"command": "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.2; done"}),
    );
    let (before, _) = follow(&server, &id, pid, |t| t.lines().count() >= 2);
    assert!(before.starts_with("tick 0"), "{before}");
    server.restart();
    // The new server process connects to the same agent, which kept the process running.
    let (status, list) = server.json("GET", &format!("/v1/sessions/{id}/processes"), None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["processes"][0]["running"], true, "{list}");
    let (after, ended) = follow(&server, &id, pid, |t| t.lines().count() >= 3);
    assert!(
        ended.is_none(),
        "the process ended: {ended:?}, output: {after}"
    );
    let last: u32 = after
        .lines()
        .last()
        .and_then(|l| l.trim_start_matches("tick ").parse().ok())
        .unwrap();
    assert!(
        last >= 3,
        "the process kept counting across the restart: {after}"
    );
    let (status, _) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/processes/{pid}/signal"),
        Some(json!({"signal": "kill"})),
    );
    assert_eq!(status, 204);
    std::thread::sleep(Duration::from_millis(200));
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn the_process_routes_reach_only_the_keys_own_background_processes() {
    let server = Server::start();
    let id = server.python_session();
    let base = format!("/v1/sessions/{id}/processes");
    let pid = start(
        &server,
        &id,
        json!({"command": "exec sleep 300", "stdin": true}),
    );
    // The agent (pid 1) and a process no background start made are out of the routes' reach.
    let mut stray = server.sh(&id, "sleep 300 >/dev/null 2>&1 & echo $!");
    let stray: u64 = stray["stdout"]
        .take()
        .as_str()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    for target in [1, stray] {
        let (status, out) = server.json(
            "POST",
            &format!("{base}/{target}/signal"),
            Some(json!({"signal": "kill"})),
        );
        assert_eq!(status, 404, "signal to {target}: {out}");
        let (status, out) = server.json(
            "POST",
            &format!("{base}/{target}/stdin"),
            Some(json!({"data": "x"})),
        );
        assert_eq!(status, 404, "stdin of {target}: {out}");
    }
    // Another key reaches none of this session's processes, whatever the route.
    let other = server.add_key("other");
    let signal = format!("{base}/{pid}/signal");
    let (status, _) = send(
        server.req_as(&other, "POST", &signal),
        Some(json!({"signal": "kill"})),
    );
    assert_eq!(status, 404);
    let input = format!("{base}/{pid}/stdin");
    let (status, _) = send(
        server.req_as(&other, "POST", &input),
        Some(json!({"data": "x"})),
    );
    assert_eq!(status, 404);
    let output = format!("{base}/{pid}/output");
    let (status, _) = send(server.req_as(&other, "GET", &output), None);
    assert_eq!(status, 404);
    let (status, _) = send(
        server.req_as(&other, "POST", &base),
        Some(json!({"argv": ["true"]})),
    );
    assert_eq!(status, 404);
    // The session, its agent and both processes are untouched.
    let (status, list) = server.json("GET", &base, None);
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["processes"][0]["running"], true, "{list}");
    let alive = server.sh(&id, &format!("kill -0 {stray} && echo alive"));
    assert_eq!(alive["stdout"], "alive\n", "{alive}");
}
