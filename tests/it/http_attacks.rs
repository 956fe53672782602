//! The attacks each path into a sandbox over HTTP must turn away: code run through `run`,
//! `execute`, the one-shot run and `commands` reaches no secret, no file outside its workdir,
//! no network and no engine socket; requests that smuggle options, NULs or labels are refused
//! with a 400 before anything runs, and change nothing.

use serde_json::{json, Value};

use crate::http_sessions::{server_label_of, stop_and_check_nothing_left};
use crate::server::{assert_error, containers_with, post, Server};

/// A session with kernel state, a file and an empty environment, for checking nothing changed.
fn session_with_state(server: &Server) -> (String, String) {
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");
    post(
        server,
        &format!("{s}/execute"),
        json!({"code": "state = 'intact'"}),
    );
    let (status, _) = server.raw_keyed("PUT", &format!("{s}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);
    (id, s)
}

#[test]
fn code_reaches_no_secret_no_outside_file_no_network_and_no_engine() {
    let server = Server::start();
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");
    // It runs as an unprivileged user, through each way in.
    let probe_py = "import os, socket\nprint('uid', os.getuid())\nfor p in ['/etc/shadow', '/root']:\n    try:\n        open(p).read() if p != '/root' else os.listdir(p)\n        print('READ', p)\n    except Exception:\n        print('denied', p)\nfor p in ['/etc/pwned', '/usr/pwned', '/pwned']:\n    try:\n        open(p, 'w').write('x')\n        print('WROTE', p)\n    except Exception:\n        print('denied', p)\ntry:\n    socket.create_connection(('1.1.1.1', 53), timeout=3)\n    print('NETWORK')\nexcept Exception:\n    print('no network')\nprint('socket', os.path.exists('/var/run/docker.sock'))\n";
    let expected = "uid 1000\ndenied /etc/shadow\ndenied /root\ndenied /etc/pwned\ndenied /usr/pwned\ndenied /pwned\nno network\nsocket False\n";
    let out = post(&server, &format!("{s}/run"), json!({"code": probe_py}));
    assert_eq!(out["stdout"], expected, "run: {out}");
    let out = post(&server, &format!("{s}/execute"), json!({"code": probe_py}));
    assert_eq!(out["stdout"], expected, "execute: {out}");
    let out = post(
        &server,
        "/v1/run",
        json!({"language": "python", "code": probe_py}),
    );
    assert_eq!(out["stdout"], expected, "one-shot: {out}");
    let out = post(
        &server,
        &format!("{s}/commands"),
        json!({"command": "id -u; cat /etc/shadow >/dev/null 2>&1 || echo denied; touch /etc/pwned 2>/dev/null || echo denied; sudo true 2>/dev/null || echo no sudo; ls /var/run/docker.sock 2>/dev/null || echo no socket"}),
    );
    assert_eq!(
        out["stdout"], "1000\ndenied\ndenied\nno sudo\nno socket\n",
        "commands: {out}"
    );
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn arguments_are_not_a_shells_to_read() {
    let server = Server::start();
    let id = server.python_session();
    let out = post(
        &server,
        &format!("/v1/sessions/{id}/run"),
        json!({"code": "import sys; print(sys.argv[1:])", "args": ["$(id)", "; rm -rf /sandbox", "`reboot`", "'"]}),
    );
    assert_eq!(
        out["stdout"], "['$(id)', '; rm -rf /sandbox', '`reboot`', \"'\"]\n",
        "{out}"
    );
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

/// `(what, path, body)` of requests that smuggle something in, against the session at `s`.
fn smuggling_requests(s: &str) -> Vec<(&'static str, String, Value)> {
    vec![
        (
            "run env name with =",
            format!("{s}/run"),
            json!({"code": "print(1)", "env": {"A=B": "c"}}),
        ),
        (
            "run env name empty",
            format!("{s}/run"),
            json!({"code": "print(1)", "env": {"": "c"}}),
        ),
        (
            "run env value NUL",
            format!("{s}/run"),
            json!({"code": "print(1)", "env": {"A": "x\u{0}y"}}),
        ),
        (
            "run argument NUL",
            format!("{s}/run"),
            json!({"code": "print(1)", "args": ["a\u{0}b"]}),
        ),
        (
            "run library option",
            format!("{s}/run"),
            json!({"code": "print(1)", "libraries": ["--index-url=http://evil.example/"]}),
        ),
        (
            "run library -r",
            format!("{s}/run"),
            json!({"code": "print(1)", "libraries": ["-r", "/etc/passwd"]}),
        ),
        (
            "run library shell",
            format!("{s}/run"),
            json!({"code": "print(1)", "libraries": ["six; rm -rf /"]}),
        ),
        (
            "commands env name",
            format!("{s}/commands"),
            json!({"command": "true", "env": {"": "v"}}),
        ),
        (
            "commands env value NUL",
            format!("{s}/commands"),
            json!({"command": "true", "env": {"A": "\u{0}"}}),
        ),
        (
            "commands NUL",
            format!("{s}/commands"),
            json!({"command": "echo a\u{0}b"}),
        ),
        (
            "execute NUL",
            format!("{s}/execute"),
            json!({"code": "print(1)\u{0}"}),
        ),
        (
            "one-shot argument NUL",
            "/v1/run".into(),
            json!({"language": "python", "code": "print(1)", "args": ["\u{0}"]}),
        ),
        (
            "one-shot library option",
            "/v1/run".into(),
            json!({"language": "python", "code": "print(1)", "libraries": ["--pre"]}),
        ),
        (
            "packages option",
            format!("{s}/packages"),
            json!({"packages": ["--index-url=http://evil.example/"]}),
        ),
        ("env name", format!("{s}/env"), json!({"env": {"A=B": "x"}})),
        (
            "session network host",
            "/v1/sessions".into(),
            json!({"language": "python", "network": "host"}),
        ),
        (
            "session network of another container",
            "/v1/sessions".into(),
            json!({"language": "python", "network": "container:abc"}),
        ),
        (
            "session policy",
            "/v1/sessions".into(),
            json!({"language": "python", "policy": "root"}),
        ),
        (
            "session runtime",
            "/v1/sessions".into(),
            json!({"language": "python", "runtime": "no-such-runtime"}),
        ),
        (
            "session image reference",
            "/v1/sessions".into(),
            json!({"language": "python", "image": "sandpit/python:latest; rm -rf /"}),
        ),
        (
            "session env value NUL",
            "/v1/sessions".into(),
            json!({"language": "python", "env": {"A": "x\u{0}"}}),
        ),
        (
            "session owner label",
            "/v1/sessions".into(),
            json!({"language": "python", "metadata": {"sandpit.owner": "pool"}}),
        ),
        (
            "session expiry label",
            "/v1/sessions".into(),
            json!({"language": "python", "metadata": {"sandpit.expires-at": "0"}}),
        ),
        (
            "session processes",
            "/v1/sessions".into(),
            json!({"language": "python", "max_processes": 100_000_000_000u64}),
        ),
        (
            "session idle timeout",
            "/v1/sessions".into(),
            json!({"language": "python", "idle_timeout": u64::MAX}),
        ),
    ]
}

#[test]
fn requests_that_smuggle_things_in_are_refused_and_change_nothing() {
    let server = Server::start();
    let (id, s) = session_with_state(&server);
    // This server's containers other than its warm pool's (other tests run beside this one).
    let label = server_label_of(&id);
    let made = || {
        containers_with(&label)
            .iter()
            .filter(|c| c.labels.get("sandpit.owner").map(String::as_str) != Some("pool"))
            .count()
    };
    let before = made();
    for (what, path, body) in smuggling_requests(&s) {
        let method = if path.ends_with("/env") {
            "PUT"
        } else {
            "POST"
        };
        let answer = server.json(method, &path, Some(body));
        assert_error(what, answer, 400, "invalid_input");
    }
    let (status, body) = server.json("PATCH", &s, Some(json!({"idle_timeout": u64::MAX})));
    assert_eq!(status, 400, "PATCH idle_timeout u64::MAX: {body}");
    let (status, body) = server.json("PATCH", &s, Some(json!({"timeout": u64::MAX})));
    assert_eq!(status, 400, "PATCH timeout u64::MAX: {body}");

    // No session made, the kernel's state, files and environment as they were, and the
    // sweeper still alive (the session still answers).
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(list["sessions"].as_array().unwrap().len(), 1, "{list}");
    assert!(made() <= before, "refused requests left containers");
    let out = post(&server, &format!("{s}/execute"), json!({"code": "state"}));
    assert_eq!(out["results"], json!([{"text/plain": "'intact'"}]), "{out}");
    assert_eq!(out["state_lost"], false);
    let out = server.sh(
        &id,
        "cat keep.txt; echo; for p in /etc/pwned /usr/pwned /pwned; do test -e $p && echo PWNED $p; done; echo \"[$A]\"",
    );
    assert_eq!(out["stdout"], "kept\n[]\n", "{out}");
    let (_, env) = server.json("GET", &format!("{s}/env"), None);
    assert_eq!(env, json!({"env": {}}));
}
