//! Tools for function calling: every parameters/input_schema is a valid JSON Schema (checked
//! with Python's `jsonschema`), a sample call of each tool validates against it and runs
//! against a real session through the dispatcher, bad calls come back as errors a model can
//! act on, and the agent loop example runs to its answer.

use std::path::PathBuf;
use std::process::Command;

use sandpit::tools::{self, Format, LocalTools};
use serde_json::{json, Value};

use crate::mcp::{helper, mcp_python};
use crate::support::{ca_bundle, engine};

fn samples() -> Value {
    json!({
        "run_code": {"language": "python", "code": "import sys\nprint(6 * 7, sys.stdin.read())", "stdin": "in", "timeout": 30},
        "create_session": {"language": "python", "lifetime": 600},
        "execute": {"session_id": "{session}", "code": "y = 6 * 7\ny", "timeout": 30},
        "run_command": {"session_id": "{session}", "command": "echo hi; cat", "stdin": "from stdin", "timeout": 20},
        "write_file": {"session_id": "{session}", "path": "data/n.txt", "content": "NDI=", "encoding": "base64"},
        "read_file": {"session_id": "{session}", "path": "data/n.txt"},
        "list_files": {"session_id": "{session}", "path": "data", "recursive": true, "pattern": "*.txt"},
        "install_packages": {"session_id": "{session}", "packages": ["six==1.17.0"]},
        "list_sessions": {},
        "close_session": {"session_id": "{session}"},
        "snapshot_session": {"session_id": "{session}", "name": "base-1"},
        "list_snapshots": {},
    })
}

fn bad_calls() -> Value {
    json!({
        "run_code": {"code": "print(1)"},
        "execute": {"session_id": "s"},
        "write_file": {"session_id": "s", "path": "p", "content": "c", "encoding": "hex"},
        "list_sessions": {"extra": 1},
        "close_session": {},
        "create_session": {"language": "python", "lifetime": "long"},
    })
}

fn substitute(v: &Value, session: &str) -> Value {
    match v {
        Value::String(s) => Value::String(s.replace("{session}", session)),
        Value::Object(o) => Value::Object(
            o.iter()
                .map(|(k, v)| (k.clone(), substitute(v, session)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn every_schema_is_valid_and_every_sample_call_validates() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.json");
    std::fs::write(
        &cases,
        json!({
            "openai": tools::render(Format::OpenAi),
            "anthropic": tools::render(Format::Anthropic),
            "samples": samples(),
            "bad": bad_calls(),
        })
        .to_string(),
    )
    .unwrap();
    let out = Command::new(mcp_python())
        .arg(helper("validate.py"))
        .arg(&cases)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the tool schemas do not check out:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.trim(), "ok 24", "12 tools in 2 formats");
    // One source: the names and descriptions are the same in both formats.
    let openai = tools::render(Format::OpenAi);
    let anthropic = tools::render(Format::Anthropic);
    for (o, a) in openai
        .as_array()
        .unwrap()
        .iter()
        .zip(anthropic.as_array().unwrap())
    {
        assert_eq!(o["function"]["name"], a["name"]);
        assert_eq!(o["function"]["description"], a["description"]);
        assert_eq!(o["function"]["parameters"], a["input_schema"]);
    }
}

fn toolbox(engine: sandpit::Engine) -> LocalTools {
    LocalTools::new()
        .engine(engine)
        .configure(|b| match ca_bundle() {
            Some(ca) => b.extra_ca_certificates(ca),
            None => b,
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_sample_call_runs_against_a_real_session() {
    let toolbox = toolbox(engine().await);
    let samples = samples();
    let order = [
        "run_code",
        "create_session",
        "execute",
        "run_command",
        "write_file",
        "read_file",
        "list_files",
        "install_packages",
        "list_sessions",
        "close_session",
    ];
    let mut session = String::new();
    let mut outputs = Vec::new();
    for name in order {
        let args = substitute(&samples[name], &session);
        let out = tools::call(&toolbox, name, args).await;
        assert!(!out.is_error, "{name}: {}", out.text);
        if name == "create_session" {
            session = out
                .text
                .lines()
                .find_map(|l| l.strip_prefix("session_id: "))
                .expect("create_session names the session")
                .to_string();
        }
        outputs.push((name, out));
    }
    let text = |name: &str| {
        outputs
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, o)| o.text.clone())
            .unwrap()
    };
    assert!(text("run_code").contains("42 in"), "{}", text("run_code"));
    assert!(text("execute").contains("42"), "{}", text("execute"));
    let command = text("run_command");
    assert!(
        command.contains("hi") && command.contains("from stdin"),
        "{command}"
    );
    assert_eq!(text("read_file"), "42");
    assert!(
        text("list_files").contains("data/n.txt"),
        "{}",
        text("list_files")
    );
    assert!(
        text("install_packages").contains("six"),
        "{}",
        text("install_packages")
    );
    assert!(
        text("list_sessions").contains(&session),
        "{}",
        text("list_sessions")
    );

    // The session is closed: calls on it say so and what to do.
    let gone = tools::call(
        &toolbox,
        "execute",
        json!({"session_id": session, "code": "1"}),
    )
    .await;
    assert!(gone.is_error);
    assert_eq!(gone.error_kind.as_deref(), Some("not_found"));
    assert!(gone.text.contains("create_session"), "{}", gone.text);
    let none = tools::call(&toolbox, "list_sessions", Value::Null).await;
    assert!(none.text.contains("no sessions"), "{}", none.text);

    // Bad calls are errors that name what is wrong, never panics.
    for (name, args) in bad_calls().as_object().unwrap() {
        let out = tools::call(&toolbox, name, args.clone()).await;
        assert!(out.is_error, "{name} {args}: {}", out.text);
        assert_eq!(out.error_kind.as_deref(), Some("invalid_input"), "{name}");
        assert!(out.text.contains(name.as_str()), "{}", out.text);
    }
    let unknown = tools::call(&toolbox, "rm_rf", json!({})).await;
    assert!(
        unknown.is_error && unknown.text.contains("run_code"),
        "{}",
        unknown.text
    );
    // OpenAI sends the arguments as a string holding JSON.
    let as_string = tools::call(
        &toolbox,
        "run_code",
        Value::String(r#"{"language": "ruby", "code": "puts 6 * 7"}"#.into()),
    )
    .await;
    assert!(as_string.text.contains("42"), "{}", as_string.text);
    toolbox.close_all().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn compiled_sessions_run_each_snippet_and_files_come_back_by_kind() {
    let toolbox = toolbox(engine().await);
    let created = tools::call(&toolbox, "create_session", json!({"language": "cpp"})).await;
    assert!(!created.is_error, "{}", created.text);
    let id = created
        .text
        .lines()
        .find_map(|l| l.strip_prefix("session_id: "))
        .unwrap()
        .to_string();
    let program = tools::call(
        &toolbox,
        "execute",
        json!({"session_id": id, "code": "#include <cstdio>\n#include <fstream>\nint main() { std::ofstream(\"out.txt\") << 7 * 6; std::ofstream b(\"blob.bin\", std::ios::binary); for (int i = 0; i < 300; i++) b.put(char(i % 256)); puts(\"written\"); }"}),
    )
    .await;
    assert!(program.text.contains("exit code: 0"), "{}", program.text);
    assert!(program.text.contains("written"), "{}", program.text);
    let read = tools::call(
        &toolbox,
        "read_file",
        json!({"session_id": id, "path": "out.txt"}),
    )
    .await;
    assert_eq!(read.text, "42");
    // Binary: attached (a local toolbox has no links), not put into the text.
    let blob = tools::call(
        &toolbox,
        "read_file",
        json!({"session_id": id, "path": "blob.bin"}),
    )
    .await;
    assert!(!blob.is_error, "{}", blob.text);
    assert_eq!(blob.files.len(), 1);
    match &blob.files[0].body {
        tools::FileBody::Bytes(b) => assert_eq!(b.len(), 300),
        other => panic!("expected the bytes: {other:?}"),
    }
    let mkdir = tools::call(
        &toolbox,
        "run_command",
        json!({"session_id": id, "command": "mkdir sub"}),
    )
    .await;
    assert!(mkdir.text.contains("exit code: 0"), "{}", mkdir.text);
    let folder = tools::call(
        &toolbox,
        "read_file",
        json!({"session_id": id, "path": "sub"}),
    )
    .await;
    assert!(
        folder.is_error && folder.text.contains("list_files"),
        "{}",
        folder.text
    );
    let missing = tools::call(
        &toolbox,
        "read_file",
        json!({"session_id": id, "path": "nope.txt"}),
    )
    .await;
    assert!(missing.is_error, "{}", missing.text);
    toolbox.close_all().await;
}

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the examples first (cargo build --workspace --all-targets, as scripts/test.sh does)",
        bin.display()
    );
    bin
}

#[test]
fn the_agent_loop_example_reaches_its_answer() {
    let out = Command::new(example("agent_loop")).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "agent_loop failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("6765"), "{stdout}");
    assert!(stdout.contains("figure"), "{stdout}");
}
