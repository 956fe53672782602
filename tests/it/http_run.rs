//! Running code in a session over HTTP as JSON: `execute` (the kernel), `run` and `commands`,
//! their bad requests, and a client that goes away stopping the work.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{assert_error, post, Server};

/// A server with no warm pool and a Python session on it; answers with the session's path.
fn session() -> (Server, String) {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let s = format!("/v1/sessions/{}", server.python_session());
    (server, s)
}

#[test]
fn execute_keeps_state_and_answers_results_output_and_errors() {
    let (server, s) = session();
    // Stateful, notebook-shaped.
    let out = post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "x = 41\nx + 1"}),
    );
    assert_eq!(out["results"], json!([{"text/plain": "42"}]), "{out}");
    assert_eq!(out["kernel_started"], true, "{out}");
    assert_eq!(out["error"], Value::Null);
    for field in ["timed_out", "truncated", "state_lost"] {
        assert_eq!(out[field], false, "{field}: {out}");
    }
    assert!(out["duration_ms"].is_u64(), "{out}");
    let out = post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "print(x)\nimport sys; print('e', file=sys.stderr)"}),
    );
    assert_eq!(out["stdout"], "41\n", "the kernel kept x: {out}");
    assert_eq!(out["stderr"], "e\n", "{out}");
    assert_eq!(out["kernel_started"], false);
    let out = post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "from IPython.display import HTML, display\ndisplay(HTML('<b>hi</b>'))\n{'a': 1}"}),
    );
    assert_eq!(out["results"][0]["text/html"], "<b>hi</b>", "{out}");
    assert_eq!(out["results"][1]["text/plain"], "{'a': 1}", "{out}");
    let out = post(&server, &format!("{s}/execute"), json!({"code": "1/0"}));
    assert_eq!(
        out["error"]["name"], "ZeroDivisionError",
        "a failing cell is a 200 with error: {out}"
    );
    assert_eq!(out["error"]["value"], "division by zero");
    assert!(
        out["error"]["traceback"]
            .as_array()
            .is_some_and(|t| !t.is_empty()),
        "{out}"
    );
}

#[test]
fn an_execute_timeout_cuts_the_cell_short_and_keeps_the_state() {
    let (server, s) = session();
    post(&server, &format!("{s}/execute"), json!({"code": "x = 41"}));
    let started = Instant::now();
    let out = post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "import time; time.sleep(30)", "timeout": 1}),
    );
    assert_eq!(out["timed_out"], true, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout did not cut it short"
    );
    let out = post(&server, &format!("{s}/execute"), json!({"code": "x"}));
    assert_eq!(
        out["results"],
        json!([{"text/plain": "41"}]),
        "state after a timeout: {out}"
    );
}

#[test]
fn run_takes_stdin_arguments_and_environment_and_answers_like_the_cli() {
    let (server, s) = session();
    // The CLI's --json shape.
    let out = post(
        &server,
        &format!("{s}/run"),
        json!({
            "code": "import os, sys\nprint(sys.argv[1:])\nprint(input())\nprint(os.environ['K'])\nprint('oops', file=sys.stderr)\nsys.exit(7)",
            "stdin": "fed\n", "args": ["a", "b c"], "env": {"K": "v"}, "timeout": 30
        }),
    );
    assert_eq!(out["stdout"], "['a', 'b c']\nfed\nv\n", "{out}");
    assert_eq!(out["stderr"], "oops\n");
    assert_eq!(
        out["exit_code"], 7,
        "a failing program is a 200 with its exit code"
    );
    assert_eq!(out["compile"], Value::Null);
    assert_eq!(out["artifacts"], json!([]));
    assert_eq!(out["oom_killed"], false);
    for field in ["duration_ms", "cpu_ms", "memory_peak_bytes"] {
        assert!(out[field].is_u64(), "{field}: {out}");
    }
    let out = post(
        &server,
        &format!("{s}/run"),
        json!({"code": "while True: pass", "timeout": 1}),
    );
    assert_eq!(out["timed_out"], true, "{out}");
    // The run's env was the run's only.
    let out = post(
        &server,
        &format!("{s}/run"),
        json!({"code": "import os; print(os.environ.get('K'))"}),
    );
    assert_eq!(out["stdout"], "None\n");
}

#[test]
fn a_command_runs_in_the_shell_with_stdin_environment_and_timeout() {
    let (server, s) = session();
    let out = post(
        &server,
        &format!("{s}/commands"),
        json!({"command": "echo out; echo err >&2; cat; echo $K; exit 3", "stdin": "in\n", "env": {"K": "cv"}}),
    );
    assert_eq!(out["stdout"], "out\nin\ncv\n", "{out}");
    assert_eq!(out["stderr"], "err\n");
    assert_eq!(out["exit_code"], 3);
    assert_eq!(out["timed_out"], false);
    let out = post(
        &server,
        &format!("{s}/commands"),
        json!({"command": "sleep 20", "timeout": 0.5}),
    );
    assert_eq!(out["timed_out"], true, "{out}");
}

#[test]
fn bad_requests_to_run_code_are_400_and_unknown_sessions_404() {
    let (server, s) = session();
    for (route, body) in [
        ("execute", json!({"code": "1", "timeout": 0})),
        ("execute", json!({"code": "1", "timeout": -1})),
        ("execute", json!({"code": "1", "timeout": 1e12})),
        ("execute", json!({"cell": "1"})),
        ("execute", json!({})),
        ("run", json!({"code": 5})),
        ("run", json!({"code": "print(1)", "args": "a b"})),
        ("commands", json!({"command": ["ls"]})),
        ("commands", json!({"command": "ls", "timeout": "soon"})),
    ] {
        let answer = server.json("POST", &format!("{s}/{route}"), Some(body.clone()));
        assert_error(&format!("{route} {body}"), answer, 400, "invalid_input");
    }
    for route in ["execute", "run", "commands"] {
        let answer = server.json(
            "POST",
            &format!("/v1/sessions/000000000000/{route}"),
            Some(json!({"code": "1", "command": "true"})),
        );
        assert!(answer.0 == 404 || answer.0 == 400, "{route}: {answer:?}");
    }
}

/// The command lines of the processes in the sandbox, as the sandbox user sees them.
fn processes(server: &Server, id: &str) -> Vec<String> {
    let out = server.sh(
        id,
        "for p in /proc/[0-9]*; do [ -r $p/cmdline ] && tr '\\0' ' ' < $p/cmdline && echo; done",
    );
    out["stdout"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.contains("/proc/[0-9]"))
        .map(String::from)
        .collect()
}

fn file_size(server: &Server, id: &str, path: &str) -> usize {
    let (status, info) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/files/ops"),
        Some(json!({"op": "info", "path": path})),
    );
    assert_eq!(status, 200, "{info}");
    info["size"].as_u64().unwrap() as usize
}

#[test]
fn a_client_that_goes_away_stops_the_work() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");
    post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "kept = 'still here'"}),
    );
    let (status, _) = server.raw_keyed(
        "PUT",
        &format!("{s}/files/spin-marker.sh"),
        b"while :; do echo tick; echo x >> cmd.log; sleep 0.1; done\n",
    );
    assert_eq!(status, 201);
    let python_loop = "import time\nwhile True:\n    print('tick', flush=True)\n    open('LOG', 'a').write('x')\n    time.sleep(0.1)\n";

    // Streamed: read one event, then hang up.
    let cases: [(&str, Value, &str); 3] = [
        (
            "commands",
            json!({"command": "sh spin-marker.sh"}),
            "cmd.log",
        ),
        (
            "run",
            json!({"code": python_loop.replace("LOG", "run.log")}),
            "run.log",
        ),
        (
            "execute",
            json!({"code": python_loop.replace("LOG", "exec.log")}),
            "exec.log",
        ),
    ];
    for (route, body, log) in cases {
        let mut stream = server.sse_open(&format!("{s}/{route}"), body);
        let first = stream.next_event().expect("first output");
        assert_eq!(first.event, "output", "{route}: {first:?}");
        drop(stream);
        std::thread::sleep(Duration::from_millis(700));
        let size = file_size(&server, &id, log);
        std::thread::sleep(Duration::from_millis(1000));
        assert_eq!(
            file_size(&server, &id, log),
            size,
            "{route}: the work went on after its client went away"
        );
        let left: Vec<String> = processes(&server, &id)
            .into_iter()
            .filter(|p| {
                p.contains("spin-marker") || p.contains("main.py") || p.starts_with("sleep 0.1")
            })
            .collect();
        assert!(
            left.is_empty(),
            "{route}: processes left in the sandbox: {left:?}"
        );
    }

    // Plain JSON: the client times out and goes; the run is stopped too.
    let r = server
        .req("POST", &format!("{s}/run"))
        .timeout(Duration::from_millis(1500))
        .send_json(json!({"code": python_loop.replace("LOG", "plain.log")}));
    assert!(r.is_err(), "the endless run answered: {r:?}");
    std::thread::sleep(Duration::from_millis(700));
    let size = file_size(&server, &id, "plain.log");
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        file_size(&server, &id, "plain.log"),
        size,
        "a plain run went on after its client went away"
    );
    let left: Vec<String> = processes(&server, &id)
        .into_iter()
        .filter(|p| p.contains("main.py"))
        .collect();
    assert!(left.is_empty(), "processes left: {left:?}");

    // The kernel was interrupted, not lost; and the session takes new work at once.
    let started = Instant::now();
    let out = post(&server, &format!("{s}/execute"), json!({"code": "kept"}));
    assert_eq!(
        out["results"],
        json!([{"text/plain": "'still here'"}]),
        "{out}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the kernel was still busy"
    );
    // And no run slot leaked: the key can still start runs.
    let out = post(
        &server,
        &format!("{s}/commands"),
        json!({"command": "echo free"}),
    );
    assert_eq!(out["stdout"], "free\n");
}
