//! Running code over HTTP: `execute` (the kernel), `run` and `commands` in a session, as JSON
//! and as server-sent events (parsed here), a client that goes away stopping the work, the
//! one-shot `POST /v1/run` in all six languages, and the attacks each of these paths into a
//! sandbox must turn away.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{containers_with, send, Server, SseEvent};

fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, answer) = server.json("POST", path, Some(body.clone()));
    assert_eq!(status, 200, "POST {path} {body}: {answer}");
    answer
}

/// Asserts a `{"error", "message"}` answer of `status` and kind `kind`.
fn assert_error(what: &str, (status, body): (u16, Value), want: u16, kind: &str) {
    assert_eq!(
        status, want,
        "{what}: expected {want}, got {status}: {body}"
    );
    assert_eq!(body["error"], kind, "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| m.len() > 10),
        "{what}: the error needs a message that says what is wrong: {body}"
    );
}

#[test]
fn execute_run_and_commands_answer_json() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");

    // execute: stateful, notebook-shaped.
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

    // run: the CLI's --json shape, with stdin, arguments and environment.
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

    // commands: one shell command as the sandbox user.
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

    // Bad requests are 400 with a message.
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
    // A session that does not exist.
    for route in ["execute", "run", "commands"] {
        let answer = server.json(
            "POST",
            &format!("/v1/sessions/000000000000/{route}"),
            Some(json!({"code": "1", "command": "true"})),
        );
        assert!(answer.0 == 404 || answer.0 == 400, "{route}: {answer:?}");
    }
}

fn events_of(events: &[SseEvent]) -> (String, String, &SseEvent) {
    let (last, outputs) = events.split_last().expect("no events at all");
    let mut stdout = String::new();
    let mut stderr = String::new();
    for e in outputs {
        assert_eq!(
            e.event, "output",
            "only output events come before the end: {events:?}"
        );
        let text = e.data["text"].as_str().expect("output events carry text");
        match e.data["stream"].as_str() {
            Some("stdout") => stdout.push_str(text),
            Some("stderr") => stderr.push_str(text),
            other => panic!("output event of stream {other:?}"),
        }
    }
    (stdout, stderr, last)
}

#[test]
fn execute_run_and_commands_stream_server_sent_events() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");

    let code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)\nprint('warn', file=sys.stderr, flush=True)\n";
    // run: output as it happens, then the result, which is what the plain route answers.
    let started = Instant::now();
    let mut stream = server.sse_open(&format!("{s}/run"), json!({"code": code}));
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "{}",
        stream.content_type
    );
    let first = stream.next_event().expect("an output event");
    let first_at = started.elapsed();
    assert_eq!(first.event, "output", "{first:?}");
    let mut events = vec![first];
    events.extend(stream.collect());
    let done_at = started.elapsed();
    assert!(
        done_at - first_at >= Duration::from_millis(500),
        "the output came all at once at the end ({first_at:?}, {done_at:?}): not streamed"
    );
    let (stdout, stderr, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!(stdout, "0\n1\n2\n");
    assert_eq!(stderr, "warn\n");
    assert_eq!(last.data["stdout"], "0\n1\n2\n");
    assert_eq!(last.data["stderr"], "warn\n");
    assert_eq!(last.data["exit_code"], 0);
    let plain = post(&server, &format!("{s}/run"), json!({"code": code}));
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&last.data),
        keys(&plain),
        "the result event has the plain route's shape"
    );

    // execute.
    let events = server.sse(
        &format!("{s}/execute"),
        json!({"code": "for i in range(2): print('line', i)\n6 * 7"}),
    );
    let (stdout, _, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!(stdout, "line 0\nline 1\n");
    assert_eq!(last.data["results"], json!([{"text/plain": "42"}]));
    assert_eq!(last.data["stdout"], "line 0\nline 1\n");
    let events = server.sse(
        &format!("{s}/execute"),
        json!({"code": "raise KeyError('k')"}),
    );
    let (_, _, last) = events_of(&events);
    assert_eq!(
        last.event, "result",
        "a failing cell is a result: {events:?}"
    );
    assert_eq!(last.data["error"]["name"], "KeyError");

    // commands.
    let events = server.sse(
        &format!("{s}/commands"),
        json!({"command": "for i in 1 2 3; do echo $i; sleep 0.2; done; echo bad >&2; exit 4"}),
    );
    let (stdout, stderr, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("1\n2\n3\n", "bad\n"));
    assert_eq!(last.data["exit_code"], 4);
    assert!(
        events.len() >= 4,
        "expected several output events: {events:?}"
    );

    // Refusals come before the stream, as a plain JSON error.
    let stream = server.sse_open(&format!("{s}/run"), json!({"code": "1", "timeout": -1}));
    assert_eq!(stream.status, 400);
    assert!(
        stream.content_type.starts_with("application/json"),
        "{}",
        stream.content_type
    );
    let stream = server.sse_open(
        "/v1/sessions/000000000000/commands",
        json!({"command": "true"}),
    );
    assert_eq!(stream.status, 404);

    // A failure once the stream started is an `error` event with the error body: the
    // container removed from outside in the middle of a run.
    let mut stream = server.sse_open(
        &format!("{s}/run"),
        json!({"code": "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.2)"}),
    );
    let first = stream.next_event().expect("the run's first output");
    assert_eq!(first.event, "output");
    crate::server::close_session(&id);
    let rest = stream.collect();
    let last = rest
        .last()
        .unwrap_or_else(|| panic!("the stream ended without an event"));
    // Either the removal broke the run's stream (an `error` event, `gone`), or it killed the
    // program first and the run ended with its exit code 137 (a `result`); the session is gone
    // for the next call either way.
    match last.event.as_str() {
        "error" => {
            assert_eq!(
                last.data["error"], "gone",
                "a container removed from outside is `gone`: {rest:?}"
            );
            assert!(
                last.data["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("gone")),
                "{rest:?}"
            );
        }
        "result" => assert_eq!(last.data["exit_code"], 137, "{rest:?}"),
        other => panic!("the stream ended with a {other:?} event: {rest:?}"),
    }
    // From then on the session says it was lost, and why.
    for _ in 0..2 {
        let (status, body) = server.json("GET", &s, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (410, Some("gone")),
            "the removed session should say it was lost: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("lost")),
            "{body}"
        );
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

/// `(language, program)`: prints its first argument and its first stdin line, exits with 3.
const HELLO: &[(&str, &str)] = &[
    ("python", "import sys\nprint(sys.argv[1], sys.stdin.readline().strip())\nsys.exit(3)\n"),
    (
        "java",
        "import java.io.*;\nclass Main {\n  public static void main(String[] a) throws Exception {\n    String l = new BufferedReader(new InputStreamReader(System.in)).readLine();\n    System.out.println(a[0] + \" \" + l.trim());\n    System.exit(3);\n  }\n}\n",
    ),
    (
        "javascript",
        "const l = require('fs').readFileSync(0, 'utf8').split('\\n')[0];\nconsole.log(process.argv[2], l.trim());\nprocess.exit(3);\n",
    ),
    (
        "cpp",
        "#include <iostream>\n#include <string>\nint main(int argc, char** argv) {\n  std::string l; std::getline(std::cin, l);\n  std::cout << argv[1] << \" \" << l << std::endl;\n  return 3;\n}\n",
    ),
    (
        "go",
        "package main\nimport (\"bufio\"; \"fmt\"; \"os\"; \"strings\")\nfunc main() {\n  l, _ := bufio.NewReader(os.Stdin).ReadString('\\n')\n  fmt.Println(os.Args[1], strings.TrimSpace(l))\n  os.Exit(3)\n}\n",
    ),
    ("ruby", "puts \"#{ARGV[0]} #{STDIN.gets.strip}\"\nexit 3\n"),
];

#[test]
fn one_shot_runs_in_all_six_languages() {
    let server = Server::start();
    for (language, code) in HELLO {
        let started = Instant::now();
        let out = post(
            &server,
            "/v1/run",
            json!({"language": language, "code": code, "args": ["hello"], "stdin": "sandpit\nmore\n", "timeout": 120}),
        );
        assert_eq!(out["stdout"], "hello sandpit\n", "{language}: {out}");
        assert_eq!(out["exit_code"], 3, "{language}: {out}");
        assert_eq!(out["timed_out"], false, "{language}: {out}");
        match *language {
            "python" | "javascript" | "ruby" => {
                assert_eq!(out["compile"], Value::Null, "{language}: {out}")
            }
            _ => assert_eq!(out["compile"]["exit_code"], 0, "{language} compiles: {out}"),
        }
        eprintln!("POST /v1/run {language}: {:?}", started.elapsed());
    }
    // Aliases, and a compile error (a 200 with the compile step's failure).
    let out = post(
        &server,
        "/v1/run",
        json!({"language": "node", "code": "console.log(6 * 7)"}),
    );
    assert_eq!(out["stdout"], "42\n", "{out}");
    let out = post(
        &server,
        "/v1/run",
        json!({"language": "c++", "code": "int main() { return undefined_name; }"}),
    );
    assert_ne!(out["compile"]["exit_code"], 0, "{out}");
    assert!(
        out["compile"]["stderr"]
            .as_str()
            .unwrap()
            .contains("undefined_name"),
        "{out}"
    );
    let out = post(
        &server,
        "/v1/run",
        json!({"language": "python", "code": "while True: pass", "timeout": 1}),
    );
    assert_eq!(out["timed_out"], true, "{out}");
    for (body, what) in [
        (
            json!({"language": "cobol", "code": "x"}),
            "unknown language",
        ),
        (
            json!({"language": "../python", "code": "x"}),
            "a path for a language",
        ),
        (json!({"language": "python"}), "no code"),
        (json!({"code": "print(1)"}), "no language"),
        (
            json!({"language": "python", "code": "print(1)", "image": "alpine"}),
            "an unknown field",
        ),
        (
            json!({"language": "python", "code": "print(1)", "timeout": 0}),
            "a zero timeout",
        ),
    ] {
        let answer = server.json("POST", "/v1/run", Some(body));
        assert_error(what, answer, 400, "invalid_input");
    }
}

/// Leaves what a run can leave: files in the workdir and /tmp, a background process.
const LEAVE_BEHIND: &str = "import subprocess, os\nopen('/sandbox/secret', 'w').write('s')\nopen('/tmp/secret', 'w').write('s')\nsubprocess.Popen(['sleep', '600'], start_new_session=True)\nprint(os.getuid())";

/// Prints the container it runs in, then what an earlier run left that it can see.
const LOOK_AROUND: &str = "import os, glob, socket\nprint(socket.gethostname())\nprint(os.path.exists('/sandbox/secret'), os.path.exists('/tmp/secret'))\nprint([open(p).read() for p in glob.glob('/proc/[0-9]*/cmdline') if open(p).read().startswith('sleep\\x00600')])";

/// The sandbox (its hostname) a look-around ran in, checking it saw nothing of earlier runs.
fn look_around(server: &Server, key: &str, fresh: bool) -> String {
    let (status, out) = send(
        server.req_as(key, "POST", "/v1/run"),
        Some(json!({"language": "python", "code": LOOK_AROUND, "fresh": fresh})),
    );
    assert_eq!(status, 200, "{out}");
    let stdout = out["stdout"].as_str().unwrap();
    let (host, rest) = stdout.split_once('\n').unwrap();
    assert_eq!(
        rest, "False False\n[]\n",
        "a one-shot sandbox saw an earlier run's leftovers: {out}"
    );
    host.to_string()
}

#[test]
fn one_shot_sandboxes_are_reused_for_the_same_key_and_reset_between() {
    let server = Server::start();
    let key = server.key.clone();
    let out = post(
        &server,
        "/v1/run",
        json!({"language": "python", "code": LEAVE_BEHIND}),
    );
    assert_eq!(out["stdout"], "1000\n", "{out}");
    // The next runs see none of it, and come from sandboxes this key's runs used before.
    let hosts: Vec<String> = (0..6).map(|_| look_around(&server, &key, false)).collect();
    let distinct: std::collections::HashSet<&String> = hosts.iter().collect();
    assert!(
        distinct.len() < hosts.len(),
        "no sandbox was reused: {hosts:?}"
    );
    let label = crate::http_sessions::server_label_of(&server.python_session());
    crate::http_sessions::stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_key_never_gets_a_sandbox_another_key_used() {
    let server = Server::start();
    let other = server.add_key("other");
    let mine: std::collections::HashSet<String> = (0..5)
        .map(|_| look_around(&server, &server.key, false))
        .collect();
    let theirs: std::collections::HashSet<String> = (0..5)
        .map(|_| look_around(&server, &other, false))
        .collect();
    assert!(
        mine.is_disjoint(&theirs),
        "two keys shared a sandbox: {mine:?} {theirs:?}"
    );
}

#[test]
fn a_fresh_one_shot_run_gets_a_sandbox_no_run_used() {
    let server = Server::start();
    let used: std::collections::HashSet<String> = (0..3)
        .map(|_| look_around(&server, &server.key, false))
        .collect();
    for _ in 0..3 {
        let host = look_around(&server, &server.key, true);
        assert!(!used.contains(&host), "a fresh run got a used sandbox");
    }
}

#[test]
fn every_path_into_the_sandbox_turns_attacks_away() {
    let server = Server::start();
    let id = server.python_session();
    let s = format!("/v1/sessions/{id}");
    post(
        &server,
        &format!("{s}/execute"),
        json!({"code": "state = 'intact'"}),
    );
    let (status, _) = server.raw_keyed("PUT", &format!("{s}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);

    // What code may try from inside, through each way in: it runs as an unprivileged user,
    // cannot read secrets or write outside its workdir, has no network and no engine socket.
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
    // Arguments are not a shell's to read.
    let out = post(
        &server,
        &format!("{s}/run"),
        json!({"code": "import sys; print(sys.argv[1:])", "args": ["$(id)", "; rm -rf /sandbox", "`reboot`", "'"]}),
    );
    assert_eq!(
        out["stdout"], "['$(id)', '; rm -rf /sandbox', '`reboot`', \"'\"]\n",
        "{out}"
    );

    // What the request itself may smuggle in: refused with a 400 before anything runs.
    let refused: Vec<(&str, String, Value)> = vec![
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
    ];
    // This server's containers other than its warm pool's (other tests run beside this one).
    let label = crate::http_sessions::server_label_of(&id);
    let made = || {
        containers_with(&label)
            .iter()
            .filter(|c| c.labels.get("sandpit.owner").map(String::as_str) != Some("pool"))
            .count()
    };
    let before = made();
    for (what, path, body) in refused {
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

    // None of that changed anything: no session made, the kernel's state, files and
    // environment as they were, and the sweeper still alive (the session still answers).
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
