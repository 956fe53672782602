//! MCP with the official Python SDK (`mcp` on PyPI) as the client, over both transports:
//! `sandpit mcp` on stdio and `/mcp` on a real `sandpit serve`. The SDK comes from
//! `scripts/mcp-client.sh` (`ensure_mcp_client`, which `scripts/test.sh` runs), found through
//! `SANDPIT_MCP_PYTHON`.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::server::Server;
use crate::support::{ca_bundle, sandpit_bin};

/// The Python that has the MCP SDK; fails the test with what to do when there is none.
pub fn mcp_python() -> PathBuf {
    let python = std::env::var_os("SANDPIT_MCP_PYTHON").map(PathBuf::from);
    let python = python.unwrap_or_else(|| {
        panic!(
            "SANDPIT_MCP_PYTHON is not set: the MCP tests need the official MCP Python SDK. \
             Run `source scripts/mcp-client.sh && ensure_mcp_client` (scripts/test.sh does) and \
             export the python it names"
        )
    });
    let ok = Command::new(&python)
        .args(["-c", "import mcp, jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "{} cannot import mcp and jsonschema: run `source scripts/mcp-client.sh && ensure_mcp_client`",
        python.display()
    );
    python
}

/// `tests/mcp/NAME`.
pub fn helper(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("mcp")
        .join(name)
}

/// Which transport a run uses.
#[derive(Clone, Copy, Debug)]
enum Transport<'a> {
    Stdio,
    Http(&'a Server),
}

/// Runs `steps` through the SDK; returns the per-step records.
fn drive(transport: Transport<'_>, steps: &Value) -> Vec<Value> {
    let mut cmd = Command::new(mcp_python());
    cmd.arg(helper("client.py"));
    match transport {
        Transport::Stdio => {
            cmd.arg("stdio").arg(sandpit_bin()).arg("mcp");
            if let Some(ca) = ca_bundle() {
                cmd.env("SANDPIT_CA_BUNDLE", ca);
            }
        }
        Transport::Http(server) => {
            cmd.arg("http")
                .arg(format!("{}/mcp", server.url))
                .arg(&server.key);
        }
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start the MCP client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(steps.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP client failed ({}):\n{stderr}",
        out.status
    );
    let report: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the MCP client printed no JSON ({e}):\n{stderr}"));
    report["steps"].as_array().cloned().unwrap_or_default()
}

fn texts(result: &Value) -> String {
    result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "text")
        .filter_map(|c| c["text"].as_str())
        .collect::<Vec<_>>()
        .join("\n")
}

fn of_type<'a>(result: &'a Value, kind: &str) -> Vec<&'a Value> {
    result["content"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == kind)
        .collect()
}

fn ok(result: &Value, what: &str) -> String {
    assert_eq!(result["isError"], json!(false), "{what}: {result}");
    texts(result)
}

const LANGUAGES: &[(&str, &str)] = &[
    ("python", "print(sum(range(10)))"),
    ("javascript", "console.log([1,2,3,4,5,6,7,8,9].reduce((a, b) => a + b, 0))"),
    ("ruby", "puts (0...10).sum"),
    (
        "java",
        "public class Main { public static void main(String[] a) { int s = 0; for (int i = 0; i < 10; i++) s += i; System.out.println(s); } }",
    ),
    (
        "cpp",
        "#include <iostream>\nint main() { int s = 0; for (int i = 0; i < 10; i++) s += i; std::cout << s << std::endl; }",
    ),
    (
        "go",
        "package main\nimport \"fmt\"\nfunc main() { s := 0; for i := 0; i < 10; i++ { s += i }; fmt.Println(s) }",
    ),
];

/// The same conversation on either transport; returns the results for transport-specific
/// checks (the file read is the last but three).
fn conversation(transport: Transport<'_>) -> Vec<Value> {
    let mut steps = vec![json!({"list_tools": true})];
    for (language, code) in LANGUAGES {
        steps.push(json!({"tool": "run_code", "args": {"language": language, "code": code}}));
    }
    steps.extend([
        json!({"tool": "create_session", "args": {"language": "python"}}),
        json!({"tool": "execute", "args": {"session_id": "{session}", "code": "x = 41"}}),
        json!({"tool": "execute", "args": {"session_id": "{session}", "code": "x + 1"}}),
        json!({"tool": "execute", "args": {"session_id": "{session}", "code":
            "import matplotlib.pyplot as plt\nplt.figure(); plt.plot([1, 3, 2])\nplt.figure(); plt.bar([1, 2], [3, 4])\nprint('two figures')"}}),
        json!({"tool": "write_file", "args": {"session_id": "{session}", "path": "notes/hello.txt", "content": "hello from MCP\n"}}),
        json!({"tool": "read_file", "args": {"session_id": "{session}", "path": "notes/hello.txt"}}),
        json!({"tool": "run_command", "args": {"session_id": "{session}", "command": "cat notes/hello.txt | wc -c"}}),
        json!({"tool": "execute", "args": {"session_id": "{session}", "code":
            "open('big.bin', 'wb').write(bytes(range(256)) * 400)"}}),
        json!({"tool": "read_file", "args": {"session_id": "{session}", "path": "big.bin"}}),
        json!({"tool": "execute", "args": {"session_id": "nosuchsession", "code": "1"}}),
        json!({"tool": "execute", "args": {"session_id": "{session}"}}),
        json!({"tool": "list_sessions", "args": {}}),
    ]);
    let results = drive(transport, &Value::Array(steps));
    let mut i = 0;
    let mut next = || {
        i += 1;
        results[i - 1].clone()
    };

    let tools = next();
    let names: Vec<&str> = tools["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    for expected in [
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
    ] {
        assert!(
            names.contains(&expected),
            "{expected} missing from {names:?}"
        );
    }
    for t in tools["tools"].as_array().unwrap() {
        assert_eq!(t["inputSchema"]["type"], "object", "{t}");
        assert!(t["description"].as_str().unwrap().len() > 100, "{t}");
    }

    for (language, _) in LANGUAGES {
        let r = next();
        let text = ok(&r, &format!("run_code {language}"));
        assert!(text.contains("exit code: 0"), "{language}: {text}");
        assert!(text.contains("45"), "{language}: {text}");
    }

    let created = ok(&next(), "create_session");
    assert!(created.contains("session_id: "), "{created}");
    ok(&next(), "execute x = 41");
    let answer = ok(&next(), "execute x + 1");
    assert!(answer.contains("42"), "state kept across calls: {answer}");

    let plot = next();
    let text = ok(&plot, "plot");
    assert!(text.contains("two figures"), "{text}");
    let images = of_type(&plot, "image");
    assert_eq!(images.len(), 2, "every figure comes back: {plot}");
    for image in images {
        assert_eq!(image["mimeType"], "image/png");
        let png = base64::engine::general_purpose::STANDARD
            .decode(image["data"].as_str().unwrap())
            .unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "a PNG");
    }

    ok(&next(), "write_file");
    let read = ok(&next(), "read_file");
    assert_eq!(read, "hello from MCP\n");
    let count = ok(&next(), "run_command");
    assert!(count.contains("15"), "{count}");
    ok(&next(), "write big.bin");
    let big = next();
    ok(&big, "read_file big.bin");

    let missing = next();
    assert_eq!(missing["isError"], json!(true), "{missing}");
    let message = texts(&missing);
    assert!(
        message.contains("nosuchsession") && message.contains("create_session"),
        "an error a model can act on: {message}"
    );
    let bad = next();
    assert_eq!(bad["isError"], json!(true), "{bad}");
    assert!(
        texts(&bad).contains("code"),
        "names the missing argument: {bad}"
    );

    let listed = ok(&next(), "list_sessions");
    assert!(listed.contains("python"), "{listed}");
    results
}

fn big_bin() -> Vec<u8> {
    (0..400).flat_map(|_| 0u8..=255).collect()
}

#[test]
fn mcp_over_stdio_with_the_python_sdk() {
    let results = conversation(Transport::Stdio);
    let big = &results[results.len() - 4];
    let embedded = of_type(big, "resource");
    assert_eq!(embedded.len(), 1, "stdio attaches the file: {big}");
    let resource = &embedded[0]["resource"];
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(resource["blob"].as_str().expect("a blob"))
        .unwrap();
    assert!(
        bytes == big_bin(),
        "the attached bytes are the file's ({} bytes)",
        bytes.len()
    );
    assert!(resource["uri"].as_str().unwrap().ends_with("/big.bin"));
}

#[test]
fn mcp_over_http_wants_a_key_before_any_mcp_is_spoken() {
    let server = Server::start();
    // No key, a wrong key: 401.
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "t", "version": "1"}}});
    let bare = ureq::post(&format!("{}/mcp", server.url))
        .set("Accept", "application/json, text/event-stream")
        .send_json(init.clone());
    match bare {
        Err(ureq::Error::Status(401, r)) => {
            assert!(r.header("www-authenticate").is_some());
        }
        other => panic!("/mcp without a key: {other:?}"),
    }
    let wrong = ureq::post(&format!("{}/mcp", server.url))
        .set("Authorization", "Bearer sp_not_a_key")
        .set("Accept", "application/json, text/event-stream")
        .send_json(init);
    assert!(
        matches!(wrong, Err(ureq::Error::Status(401, _))),
        "{wrong:?}"
    );
}

/// The download link works without a key, and only as signed.
fn check_the_link_serves_the_file_only_as_signed(url: &str) {
    let response = ureq::get(url).call().expect("download");
    assert!(response
        .header("content-disposition")
        .is_some_and(|d| d.contains("big.bin")));
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut bytes).unwrap();
    assert!(
        bytes == big_bin(),
        "the download is the file ({} bytes)",
        bytes.len()
    );
    let (head, tail) = url.rsplit_once('.').unwrap();
    let flipped = if tail.starts_with('A') { "B" } else { "A" };
    let forged = format!("{head}.{flipped}{}", &tail[1..]);
    assert!(matches!(
        ureq::get(&forged).call(),
        Err(ureq::Error::Status(404, _))
    ));
}

/// A link dies with its session, and with its key (checked first).
fn check_a_link_dies_with_its_session_and_its_key(server: &Server, id: &str, url: &str) {
    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
    assert!(matches!(
        ureq::get(url).call(),
        Err(ureq::Error::Status(404, _))
    ));
    let out = Command::new(sandpit_bin())
        .args(["keys", "list", "--data-dir"])
        .arg(server.data.path())
        .output()
        .unwrap();
    let listing = String::from_utf8_lossy(&out.stdout).to_string();
    let tests_key = listing
        .lines()
        .find(|l| l.split_whitespace().nth(1) == Some("tests"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the tests key is listed")
        .to_string();
    let revoked = Command::new(sandpit_bin())
        .args(["keys", "revoke", &tests_key, "--data-dir"])
        .arg(server.data.path())
        .status()
        .unwrap();
    assert!(revoked.success());
    assert!(matches!(
        ureq::get(url).call(),
        Err(ureq::Error::Status(401, _))
    ));
}

// One conversation through the SDK (every language), then what its download link and
// sessions are over HTTP: a test per check would repeat the conversation.
#[test]
fn mcp_over_http_with_the_python_sdk() {
    let server = Server::start();
    let results = conversation(Transport::Http(&server));
    let big = &results[results.len() - 4];
    let links = of_type(big, "resource_link");
    assert_eq!(links.len(), 1, "HTTP links the file: {big}");
    let url = links[0]["uri"].as_str().unwrap().to_string();
    assert!(
        url.starts_with(&format!("{}/v1/downloads/", server.url)),
        "{url}"
    );
    assert_eq!(links[0]["size"], json!(102400));

    check_the_link_serves_the_file_only_as_signed(&url);
    // The sessions MCP made are the key's, in the HTTP API too.
    let (status, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(status, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "{list}");
    let id = sessions[0]["id"].as_str().unwrap().to_string();

    // Another key sees none of it: not the session, not through MCP.
    let other = server.add_key("other");
    let (status, _) = crate::server::send(
        server.req_as(&other, "GET", &format!("/v1/sessions/{id}")),
        None,
    );
    assert_eq!(status, 404);

    check_a_link_dies_with_its_session_and_its_key(&server, &id, &url);
}

#[test]
fn tools_are_served_in_both_formats() {
    let server = Server::start();
    for format in ["openai", "anthropic"] {
        let (status, body) = server.json("GET", &format!("/v1/tools?format={format}"), None);
        assert_eq!(status, 200, "{body}");
        let (code, cli, err) = crate::support::sandpit_cli(&["tools", "--format", format], None);
        assert_eq!(code, 0, "{err}");
        let cli: Value = serde_json::from_str(&cli).unwrap();
        assert_eq!(
            body["tools"], cli,
            "the server and the CLI render the same tools"
        );
        assert_eq!(body["format"], format);
    }
    let (status, body) = server.json("GET", "/v1/tools?format=cohere", None);
    assert_eq!(status, 400, "{body}");
    let (status, _) = crate::server::send(ureq::get(&format!("{}/v1/tools", server.url)), None);
    assert_eq!(status, 401, "keyed like the other routes");
}

#[test]
fn snapshot_tools_save_and_reopen_a_session_over_mcp() {
    let store = tempfile::tempdir().unwrap();
    let url = format!("file://{}", store.path().display());
    let server = Server::start_with(&[("SANDPIT_SNAPSHOTS", url.as_str())], &[]);
    let steps = json!([
        {"list_tools": true},
        {"tool": "create_session", "args": {"language": "python", "lifetime": 600}},
        {"tool": "write_file", "args": {"session_id": "{session}", "path": "notes/plan.txt", "content": "step 1: snapshot"}},
        {"tool": "snapshot_session", "args": {"session_id": "{session}", "name": "mcp-base"}},
        {"tool": "close_session", "args": {"session_id": "{session}"}},
        {"tool": "list_snapshots", "args": {}},
        {"tool": "create_session", "args": {"from_snapshot": "mcp-base"}},
        {"tool": "read_file", "args": {"session_id": "{session}", "path": "notes/plan.txt"}},
        {"tool": "create_session", "args": {"from_snapshot": "no-such-snapshot"}},
        {"tool": "snapshot_session", "args": {"session_id": "{session}", "name": "../out"}},
        {"tool": "close_session", "args": {"session_id": "{session}"}},
    ]);
    let results = drive(Transport::Http(&server), &steps);
    let names: Vec<&str> = results[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        names.contains(&"snapshot_session") && names.contains(&"list_snapshots"),
        "a server with a store offers the snapshot tools: {names:?}"
    );
    let saved = ok(&results[3], "snapshot_session");
    assert!(saved.contains("mcp-base"), "{saved}");
    let listed = ok(&results[5], "list_snapshots");
    assert!(
        listed.contains("mcp-base") && listed.contains("python"),
        "{listed}"
    );
    ok(&results[6], "create_session from the snapshot");
    let read = ok(&results[7], "read_file");
    assert!(read.contains("step 1: snapshot"), "{read}");
    for (i, what, needle) in [
        (8, "an unknown snapshot", "no-such-snapshot"),
        (9, "a name with a path in it", "../out"),
    ] {
        assert_eq!(results[i]["isError"], json!(true), "{what}: {}", results[i]);
        assert!(
            texts(&results[i]).contains(needle),
            "{what}: {}",
            results[i]
        );
    }
    ok(&results[10], "close_session");

    // Without a store the tools are not offered at all.
    let plain = Server::start();
    let listed = drive(Transport::Http(&plain), &json!([{"list_tools": true}]));
    let names: Vec<&str> = listed[0]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert_eq!(names.len(), 10, "{names:?}");
    assert!(!names.contains(&"snapshot_session"), "{names:?}");
}
