//! One-shot runs over HTTP (`POST /v1/run`): all six languages, aliases, compile errors,
//! timeouts and bad requests; sandboxes reused for the same key, reset between runs, never
//! shared between keys, fresh on request.

use std::time::Instant;

use serde_json::{json, Value};

use crate::server::{assert_error, post, send, Server};

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
