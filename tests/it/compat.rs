//! The compatibility APIs (`docs/compat.md`) against a real `sandpit serve`, driven by their
//! real clients: npm's `piston-client` through node, PyPI's `aio-piston` through Python, and
//! the documents' own requests (Python `requests`) for Pandora Box and the LLM Python Code
//! Sandbox; then what only raw HTTP shows (content types, validation messages, keys,
//! anonymous access, error shapes), and that no container is left behind.
//!
//! The clients come from `scripts/clients.sh` (`ensure_compat_clients`, run by
//! `scripts/test.sh`), which exports `SANDPIT_NODE_PATH` (its `node_modules`) and
//! `SANDPIT_PYTHON` (a venv's python with `requests`, `aiohttp` and `aio-piston`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::clients::{containers_with, expect_lines, run_client, script};
use crate::server::{send, Server};
use crate::support::sandpit_bin;

// ---------------------------------------------------------------- helpers

/// The venv's python that has the clients (`SANDPIT_PYTHON`).
fn client_python() -> PathBuf {
    let python = std::env::var_os("SANDPIT_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
            "SANDPIT_PYTHON is not set: it names the python of a venv with requests, aiohttp and \
             aio-piston. Run the tests with scripts/test.sh, or first: \
             source scripts/clients.sh && ensure_compat_clients"
        )
        });
    assert!(
        python.is_file(),
        "SANDPIT_PYTHON={} does not exist: run `source scripts/clients.sh && ensure_compat_clients`",
        python.display()
    );
    python
}

/// The `node_modules` folder that holds `piston-client` (`SANDPIT_NODE_PATH`).
fn client_node_modules() -> PathBuf {
    let dir = std::env::var_os("SANDPIT_NODE_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            panic!(
            "SANDPIT_NODE_PATH is not set: it names a node_modules folder holding piston-client. \
             Run the tests with scripts/test.sh, or first: \
             source scripts/clients.sh && ensure_compat_clients"
        )
        });
    assert!(
        dir.join("piston-client/package.json").is_file(),
        "SANDPIT_NODE_PATH={} holds no piston-client: run `source scripts/clients.sh && ensure_compat_clients`",
        dir.display()
    );
    dir
}

/// The id (`key_…`) of the server's key named `name`.
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

/// Waits (up to 30 s) until no container of the key `name` is left.
fn nothing_left_for(server: &Server, name: &str) {
    let id = key_id(server, name);
    let label = format!("sandpit.owner={id}");
    let started = Instant::now();
    loop {
        let left = containers_with(&label);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "containers of key {name} ({id}) are left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The server's id (the `sandpit.server` label of its containers), from its store.
fn server_id(server: &Server) -> String {
    let db = server.data.path().join("sandpit.db");
    let out = Command::new(client_python())
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT value FROM server WHERE key = 'id'\").fetchone()[0])",
        ])
        .arg(&db)
        .output()
        .expect("read the server's id");
    assert!(
        out.status.success(),
        "cannot read the server id from {}: {}",
        db.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A server for the Piston tests: no warm pool, so that every sandbox a one-shot run takes is
/// opened for it and closed after it, and none is being refilled when the server stops.
fn piston_server(args: &[&str]) -> Server {
    Server::start_with(&[("SANDPIT_POOL", "")], args)
}

/// Stops the server (one without a warm pool), then waits (up to 30 s) until none of its
/// containers is left: one-shot sandboxes kept for a key's next run are closed at shutdown.
fn nothing_left_on(server: &mut Server) {
    let label = format!("sandpit.server={}", server_id(server));
    server.stop();
    let started = Instant::now();
    loop {
        let left = containers_with(&label);
        if left.is_empty() {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "sandboxes are left behind: {left:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Closes every session of these keys when dropped, also when the test failed half-way (a
/// stopped server leaves its sessions for the next one to adopt). With `anonymous`, also the
/// anonymous owner's Code Sandbox sandboxes.
struct CloseAll<'a> {
    server: &'a Server,
    keys: Vec<String>,
    anonymous: bool,
}

impl<'a> CloseAll<'a> {
    fn new(server: &'a Server, keys: &[&str]) -> Self {
        CloseAll {
            server,
            keys: keys.iter().map(|k| k.to_string()).collect(),
            anonymous: false,
        }
    }
}

impl Drop for CloseAll<'_> {
    fn drop(&mut self) {
        let quiet = |req: ureq::Request| -> Option<Value> {
            match req.timeout(Duration::from_secs(60)).call() {
                Ok(r) => r.into_json().ok(),
                Err(_) => None,
            }
        };
        for key in &self.keys {
            let Some(list) = quiet(self.server.req_as(key, "GET", "/v1/sessions")) else {
                continue;
            };
            for s in list["sessions"].as_array().cloned().unwrap_or_default() {
                let id = s["id"].as_str().unwrap_or_default();
                let _ = quiet(
                    self.server
                        .req_as(key, "DELETE", &format!("/v1/sessions/{id}")),
                );
            }
        }
        if self.anonymous {
            if let Some(Value::Object(boxes)) =
                quiet(bare(self.server, "GET", "/compat/code-sandbox/sandboxes"))
            {
                for id in boxes.keys() {
                    let path = format!("/compat/code-sandbox/sandbox/{id}/close");
                    let _ = quiet(bare(self.server, "POST", &path));
                }
            }
        }
    }
}

/// A request without any key.
fn bare(server: &Server, method: &str, path: &str) -> ureq::Request {
    ureq::request(method, &format!("{}{path}", server.url)).timeout(Duration::from_secs(300))
}

/// Sends a raw body; answers with the status, the content type and the body as JSON (or a
/// string).
fn send_raw(req: ureq::Request, body: &str) -> (u16, String, Value) {
    let response = match req.send_string(body) {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let content_type = response
        .header("content-type")
        .unwrap_or_default()
        .to_string();
    let text = response.into_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, content_type, value)
}

// ---------------------------------------------------------------- Pandora Box

const PANDORA_SCRIPT: &str = r#""""Pandora Box's HTTP API on Sandpit, driven the way its document does (requests)."""
import json
import os

import requests

BASE = os.environ["SANDPIT_URL"].rstrip("/") + "/compat/pandora"
AUTH = {"API-KEY": os.environ["SANDPIT_KEY"]}


def execute(kernel, code):
    headers = {**AUTH, "KERNEL-ID": kernel, "Content-Type": "application/json; charset=utf-8"}
    return requests.post(f"{BASE}/execute", headers=headers,
                         data=json.dumps({"code": code}), timeout=120)


r = requests.get(f"{BASE}/health", timeout=30)
print("health", r.status_code, r.text)
r = requests.get(f"{BASE}/create", headers=AUTH, timeout=120)
kernel = r.json()["kernel_id"]
print("create", r.status_code, isinstance(kernel, str) and kernel != "")
for route in ("kernels", "sandbox"):
    r = requests.get(f"{BASE}/{route}", headers=AUTH, timeout=30)
    print(route, r.status_code, kernel in r.json()["kernel_ids"])
r = execute(kernel, 'print("Hello, Pandora Box!")')
print("hello", r.status_code, json.dumps(r.json()))
execute(kernel, "x = 'Hello, PandoraBox!'")
print("state", execute(kernel, "print(x)").json()["logs"]["stdout"])
print("lines", execute(kernel, 'import sys\nprint("a\\nb")\nprint("warn", file=sys.stderr)').json()["logs"])
print("value", execute(kernel, "6 * 7").json()["results"])
err = execute(kernel, "1 / 0").json()["error"]
print("error", err["name"], err["value"],
      isinstance(err["traceback"], list) and any("ZeroDivisionError" in l for l in err["traceback"]))
res = execute(kernel, "import matplotlib.pyplot as plt\n_ = plt.plot([1, 2, 3])").json()["results"]
print("plot", [x["type"] for x in res], all(x["data"].startswith("iVBORw0KGgo") for x in res))
r = requests.post(f"{BASE}/execute", headers=AUTH, json={"code": "print(1)"}, timeout=30)
print("no-kernel-id", r.status_code, r.json()["detail"][0]["loc"])
r = requests.get(f"{BASE}/create", timeout=30)
print("no-key", r.status_code, r.json()["detail"][0]["loc"])
r = requests.get(f"{BASE}/create", headers={"API-KEY": "pb-not-a-key"}, timeout=30)
print("bad-key", r.status_code, r.json())
r = execute(kernel, "   ")
print("blank", r.status_code, r.json()["detail"][0]["msg"])
r = execute("no-such-kernel", "print(1)")
print("other-kernel", r.status_code, r.json())
# The English README's curl sends no JSON content type (curl -d => form-urlencoded).
r = requests.post(f"{BASE}/execute", data='{"code": "print(1)"}',
                  headers={**AUTH, "KERNEL-ID": kernel,
                           "Content-Type": "application/x-www-form-urlencoded"}, timeout=60)
print("form-type", r.status_code, r.json()["logs"]["stdout"])
r = requests.get(f"{BASE}/close", headers={**AUTH, "KERNEL-ID": kernel}, timeout=60)
print("close", r.status_code, r.json())
r = execute(kernel, "print(1)")
print("after-close", r.status_code, r.json())
r = requests.get(f"{BASE}/kernels", headers=AUTH, timeout=30)
print("kernels-empty", r.status_code, r.json())
"#;

const PANDORA_EXPECTED: &str = r#"
health 200 "success"
create 200 True
kernels 200 True
sandbox 200 True
hello 200 {"results": [], "logs": {"stdout": ["Hello, Pandora Box!"], "stderr": []}, "error": null}
state ['Hello, PandoraBox!']
lines {'stdout': ['a', 'b'], 'stderr': ['warn']}
value [{'type': 'text/plain', 'data': '42'}]
error ZeroDivisionError division by zero True
plot ['image/png'] True
no-kernel-id 422 ['header', 'kernel-id']
no-key 422 ['header', 'api-key']
bad-key 400 {'detail': 'Invalid API_KEY.'}
blank 422 Value error, Invalid code
other-kernel 500 {'detail': 'Invalid KERNEL_ID'}
form-type 200 ['1']
close 200 {'message': 'Sandbox Closed.'}
after-close 500 {'detail': 'No sandbox found, Please create a sandbox first.'}
kernels-empty 500 {'detail': 'No sandbox found, Please create a sandbox first.'}
"#;

#[test]
fn pandora_box_answers_its_documents_requests() {
    let python = client_python();
    let server = Server::start();
    let key = server.add_key("pandora");
    let mut cleanup = CloseAll::new(&server, &[&key]);
    let (_dir, path) = script("pandora_compat.py", PANDORA_SCRIPT);
    let ran = run_client(&python, &path, &server, &key);
    expect_lines("pandora_compat.py", &ran, PANDORA_EXPECTED, &server);

    // FastAPI's 422 lists every problem, headers first, in the original's key order.
    let response = bare(&server, "POST", "/compat/pandora/execute").call();
    let text = match response {
        Err(ureq::Error::Status(422, r)) => r.into_string().unwrap(),
        other => panic!("422 expected: {other:?}"),
    };
    assert_eq!(
        text,
        r#"{"detail":[{"type":"missing","loc":["header","api-key"],"msg":"Field required","input":null},{"type":"missing","loc":["header","kernel-id"],"msg":"Field required","input":null},{"type":"missing","loc":["body"],"msg":"Field required","input":null}]}"#
    );
    // Empty headers, then the key in the path instead of a header.
    let (status, body) = send(
        bare(&server, "GET", "/compat/pandora/create").set("API-KEY", ""),
        None,
    );
    assert_eq!((status, body), (400, json!({"detail": "Missing API_KEY."})));
    let (status, body) = send(
        bare(&server, "GET", &format!("/k/{key}/compat/pandora/create")),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let kernel = body["kernel_id"].as_str().unwrap().to_string();
    let (status, body) = send(
        bare(&server, "POST", &format!("/k/{key}/compat/pandora/execute"))
            .set("KERNEL-ID", &kernel)
            .set("Content-Type", "text/plain"),
        Some(json!({"code": "print(6 * 7)"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"]["stdout"], json!(["42"]));
    let (status, body) = send(
        bare(&server, "POST", &format!("/k/{key}/compat/pandora/execute")).set("KERNEL-ID", ""),
        Some(json!({"code": "1"})),
    );
    assert_eq!(
        (status, body),
        (400, json!({"detail": "Missing KERNEL_ID."}))
    );
    // Another key's kernel is not this key's.
    let other = server.add_key("pandora-other");
    cleanup.keys.push(other.clone());
    let (status, _) = send(
        bare(&server, "GET", "/compat/pandora/create").set("API-KEY", &other),
        None,
    );
    assert_eq!(status, 200);
    let (status, body) = send(
        bare(&server, "POST", "/compat/pandora/execute")
            .set("API-KEY", &other)
            .set("KERNEL-ID", &kernel),
        Some(json!({"code": "1"})),
    );
    assert_eq!(
        (status, body),
        (500, json!({"detail": "Invalid KERNEL_ID"}))
    );
    let (_, listed) = send(
        bare(&server, "GET", "/compat/pandora/kernels").set("API-KEY", &other),
        None,
    );
    let other_kernel = listed["kernel_ids"][0].as_str().unwrap().to_string();
    for (k, id) in [(&key, &kernel), (&other, &other_kernel)] {
        let (status, body) = send(
            bare(&server, "GET", "/compat/pandora/close")
                .set("Authorization", &format!("Bearer {k}"))
                .set("KERNEL-ID", id),
            None,
        );
        assert_eq!((status, body), (200, json!({"message": "Sandbox Closed."})));
    }
    // Pandora Box is never anonymous, and its unknown paths and methods answer as FastAPI.
    let (status, body) = send(bare(&server, "GET", "/compat/pandora/nope"), None);
    assert_eq!((status, body), (404, json!({"detail": "Not Found"})));
    let (status, body) = send(bare(&server, "POST", "/compat/pandora/health"), None);
    assert_eq!(
        (status, body),
        (405, json!({"detail": "Method Not Allowed"}))
    );
    nothing_left_for(&server, "pandora");
    nothing_left_for(&server, "pandora-other");
}

// ---------------------------------------------------------------- LLM Python Code Sandbox

const CODE_SANDBOX_SCRIPT: &str = r#""""LLM Python Code Sandbox's HTTP API on Sandpit, called exactly as its SandboxClient calls it."""
import json
import os

import requests

ROOT = os.environ["SANDPIT_URL"].rstrip("/")
BASE = f"{ROOT}/k/{os.environ['SANDPIT_KEY']}/compat/code-sandbox"  # SandboxClient(base_url=BASE)
T = 120

r = requests.get(f"{BASE}/health", timeout=T)
print("health", r.status_code, r.json())
r = requests.post(f"{BASE}/sandbox/create", timeout=T)
sid = r.json()["sandbox_id"]
print("create", r.status_code, isinstance(sid, str) and sid != "")
S = f"{BASE}/sandbox/{sid}"

# The document's (and DSXiangLi's client's) request: the raw code, no Content-Type.
r = requests.post(f"{S}/execute", data="print('Hello, Sandbox!')", timeout=T)
print("raw", r.status_code, json.dumps(r.json()))
# The later client's request: {"code": ...} as JSON.
r = requests.post(f"{S}/execute", json={"code": "x = 41"}, timeout=T)
print("json", r.status_code, r.json()["stdout"] == "" and r.json()["error"] is None)
print("state", repr(requests.post(f"{S}/execute", json={"code": "print(x + 1)"}, timeout=T).json()["stdout"]))
e = requests.post(f"{S}/execute", data="1/0", timeout=T).json()
print("error", e["error"], e["traceback"].splitlines()[-1], "\x1b" in e["traceback"])
print("value", requests.post(f"{S}/execute", data="6 * 7", timeout=T).json()["results"])

csv = ("import pandas as pd\n"
       "df = pd.DataFrame({'Name': ['Alice', 'Bob'], 'Age': [28, 32]})\n"
       "df.to_csv('processed_data.csv', index=False)\n"
       "print('saved')")
print("csv", repr(requests.post(f"{S}/execute", data=csv, timeout=T).json()["stdout"]))

payload = b"This is a test file for upload."
r = requests.post(f"{S}/upload", files={"file": ("test_upload.txt", payload)}, timeout=T)
print("upload", r.status_code, r.json())
r = requests.post(f"{S}/upload", files={"file": ("test_upload.txt", payload)},
                  params={"file_path": "data/in.txt"}, timeout=T)
print("upload-query", r.status_code, r.json())
r = requests.post(f"{S}/upload", files={"file": ("x.txt", payload)},
                  data={"file_path": "data/form.txt"}, timeout=T)
print("upload-form", r.status_code, r.json())

files = requests.get(f"{S}/files", timeout=T).json()
wanted = {"processed_data.csv", "test_upload.txt", "data/in.txt", "data/form.txt"}
print("files", sorted((f["path"], f["size"]) for f in files if f["path"] in wanted))
print("kernel-sees", repr(requests.post(f"{S}/execute", data="print(open('data/in.txt').read())",
                                        timeout=T).json()["stdout"]))

r = requests.get(f"{S}/download/processed_data.csv", stream=True, timeout=T)
print("download", r.status_code, r.content, r.headers["content-disposition"])
r = requests.get(f"{S}/download/data/in.txt", timeout=T)
print("download-sub", r.status_code, r.content == payload)
r = requests.get(f"{S}/download/nope.txt", timeout=T)
print("download-missing", r.status_code, r.json())
r = requests.get(f"{S}/download/%2E%2E/etc/passwd", timeout=T)  # requests keeps a decoded ".."
print("download-escape", r.status_code, r.json())

r = requests.post(f"{S}/install", json={"package_name": "tabulate"}, timeout=600)
print("install", r.status_code, r.json()["success"], isinstance(r.json()["message"], str))
print("imported", repr(requests.post(f"{S}/execute", data="import tabulate; print(tabulate.__name__)",
                                     timeout=T).json()["stdout"]))

boxes = requests.get(f"{BASE}/sandboxes", timeout=T).json()
print("sandboxes", sid in boxes, isinstance(boxes[sid]["created_at"], (int, float)))
r = requests.post(f"{S}/close", timeout=T)
print("close", r.status_code, r.json())
r = requests.post(f"{S}/execute", data="print(1)", timeout=T)
print("after-close", r.status_code, r.json())
print("sandboxes-after", sid in requests.get(f"{BASE}/sandboxes", timeout=T).json())
r = requests.post(f"{ROOT}/compat/code-sandbox/sandbox/create", timeout=T)
print("no-key", r.status_code, "detail" in r.json())
"#;

const CODE_SANDBOX_EXPECTED: &str = r#"
health 200 {'status': 'healthy'}
create 200 True
raw 200 {"stdout": "Hello, Sandbox!\n", "stderr": "", "error": null, "traceback": null, "results": []}
json 200 True
state '42\n'
error ZeroDivisionError ZeroDivisionError: division by zero False
value [{'type': 'text/plain', 'data': '42'}]
csv 'saved\n'
upload 200 {'file_path': 'test_upload.txt'}
upload-query 200 {'file_path': 'data/in.txt'}
upload-form 200 {'file_path': 'data/form.txt'}
files [('data/form.txt', 31), ('data/in.txt', 31), ('processed_data.csv', 25), ('test_upload.txt', 31)]
kernel-sees 'This is a test file for upload.\n'
download 200 b'Name,Age\nAlice,28\nBob,32\n' attachment; filename="processed_data.csv"
download-sub 200 True
download-missing 404 {'detail': 'File not found'}
download-escape 403 {'detail': 'File access denied'}
install 200 True True
imported 'tabulate\n'
sandboxes True True
close 200 {'status': 'success', 'message': 'Sandbox closed'}
after-close 404 {'detail': 'Sandbox not found'}
sandboxes-after False
no-key 401 True
"#;

#[test]
fn code_sandbox_answers_its_clients_calls() {
    let python = client_python();
    let server = Server::start();
    let key = server.add_key("code-sandbox");
    let _cleanup = CloseAll::new(&server, &[&key]);
    let (_dir, path) = script("code_sandbox_compat.py", CODE_SANDBOX_SCRIPT);
    let ran = run_client(&python, &path, &server, &key);
    expect_lines(
        "code_sandbox_compat.py",
        &ran,
        CODE_SANDBOX_EXPECTED,
        &server,
    );

    // A body declared JSON must be JSON; a folder is no file; an unknown route is FastAPI's 404.
    let (status, body) = send(
        server.req("POST", "/compat/code-sandbox/sandbox/create"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let id = body["sandbox_id"].as_str().unwrap().to_string();
    let at = |p: &str| format!("/compat/code-sandbox/sandbox/{id}{p}");
    let (status, _, body) = send_raw(
        server
            .req("POST", &at("/execute"))
            .set("Content-Type", "application/json"),
        "print(1)",
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["type"], "json_invalid", "{body}");
    let (status, _, body) = send_raw(
        server
            .req("POST", &at("/execute"))
            .set("Content-Type", "application/json"),
        r#"{"source": "print(1)"}"#,
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "code"]));
    let (status, body) = send(
        server.req("POST", &at("/execute")),
        Some(json!({"code": "import os; os.makedirs('d', exist_ok=True)"})),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = send(server.req("GET", &at("/download/d")), None);
    assert_eq!((status, body), (404, json!({"detail": "File not found"})));
    let (status, body) = send(
        server.req("POST", &at("/install")),
        Some(json!({"name": "six"})),
    );
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "package_name"]));
    let (status, body) = send(
        server.req("POST", &at("/install")),
        Some(json!({"package_name": "--index-url=http://x"})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["success"], false, "{body}");
    assert_eq!(body["message"], "Failed to install --index-url=http://x");
    let (status, body) = send(server.req("GET", "/compat/code-sandbox/nope"), None);
    assert_eq!((status, body), (404, json!({"detail": "Not Found"})));
    let (status, body) = send(server.req("GET", &at("/close")), None);
    assert_eq!(
        (status, body),
        (405, json!({"detail": "Method Not Allowed"}))
    );
    let (status, body) = send(server.req("POST", &at("/close")), None);
    assert_eq!(status, 200, "{body}");
    // Unknown key in the path.
    let (status, body) = send(
        bare(
            &server,
            "POST",
            "/k/sp_unknown/compat/code-sandbox/sandbox/create",
        ),
        None,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    nothing_left_for(&server, "code-sandbox");
    nothing_left_for(&server, "tests");
    assert!(
        !server.log().contains(&key),
        "the key in /k/... shows in the server's log"
    );
}

// ---------------------------------------------------------------- Piston: piston-client

const PISTON_CLIENT_SCRIPT: &str = r#"// Piston's v2 API on Sandpit through the npm package piston-client 1.0.2.
import piston from "piston-client";

const root = process.env.SANDPIT_URL.replace(/\/$/, "");
// piston-client cannot send headers: the key rides in the server URL.
const client = piston({ server: `${root}/k/${process.env.SANDPIT_KEY}` });
const j = JSON.stringify;

const runtimes = await client.runtimes();
console.log("runtimes", runtimes.map((r) => r.language).join(","),
  runtimes.every((r) => /^\d+\.\d+\.\d+$/.test(r.version) && Array.isArray(r.aliases)));

let r = await client.execute("python", "import sys\nprint('Hello World!', sys.argv[1:])");
console.log("python", r.language, j(r.run.stdout), r.run.code, r.run.signal, "compile" in r);
r = await client.execute("py", "print(input()[::-1])", { stdin: "abc", args: [] });
console.log("alias-stdin", r.language, j(r.run.stdout));
r = await client.execute("javascript", "console.log(process.argv.slice(2).join(' '))", { args: ["x", "y"] });
console.log("javascript", r.language, j(r.run.stdout));
r = await client.execute("c++", '#include <iostream>\nint main(int argc, char**) { std::cout << "argc=" << argc << "\\n"; }');
console.log("c++", r.language, r.compile.code, j(r.run.stdout));
r = await client.execute("cpp", "int main() { return x; }");
console.log("compile-error", r.language, r.compile.code, r.run.code, r.run.stderr === r.compile.stderr,
  r.run.stderr.includes("error"));
r = await client.execute("java", 'public class Main { public static void main(String[] a) { System.out.println("java " + a.length); } }');
console.log("java", r.language, j(r.run.stdout));
r = await client.execute("go", 'package main\nimport "fmt"\nfunc main() { fmt.Println("go") }');
console.log("go", r.language, j(r.run.stdout));
r = await client.execute("ruby", 'puts ARGV.join(",")');
console.log("ruby", r.language, j(r.run.stdout));
r = await client.execute({
  language: "python", version: "3.x", args: [],
  files: [
    { name: "main.py", content: "import helper\nprint(helper.X, open('data.bin', 'rb').read())" },
    { name: "helper.py", content: "X = 42" },
    { name: "data.bin", content: "aGk=", encoding: "base64" },
  ],
});
console.log("files", j(r.run.stdout));
r = await client.execute("python",
  "import sys, time\nprint('a', flush=True)\ntime.sleep(0.2)\nprint('b', file=sys.stderr, flush=True)\ntime.sleep(0.2)\nprint('c', flush=True)",
  { args: [] });
console.log("output", j(r.run.output), j(r.run.stdout), j(r.run.stderr));
r = await client.execute("python", "import sys\nsys.exit(3)");
console.log("exit", r.run.code, r.run.signal, r.run.status, j(r.run.message));
r = await client.execute("python", "while True: pass", { runTimeout: 1000 });
console.log("timeout", r.run.code, r.run.signal, r.run.status);
r = await client.execute("python", "print(1)", { version: "2.7.18" });
console.log("unknown-version", j(r));
r = await client.execute("cobol", "DISPLAY 'HI'.");
console.log("unknown-language", j(r));
r = await client.execute("python", "print(1)", { runTimeout: 10 ** 12 });
console.log("over-limit", r.message.startsWith("run_timeout cannot exceed the configured limit of "));
"#;

const PISTON_CLIENT_EXPECTED: &str = r#"
runtimes python,java,javascript,c++,go,ruby true
python python "Hello World! ['1', '2', '3']\n" 0 null false
alias-stdin python "cba\n"
javascript javascript "x y\n"
c++ c++ 0 "argc=4\n"
compile-error c++ 1 1 true true
java java "java 3\n"
go go "go\n"
ruby ruby "1,2,3\n"
files "42 b'hi'\n"
output "a\nb\nc\n" "a\nc\n" "b\n"
exit 3 null RE "Exited with error status 3"
timeout null SIGKILL TO
unknown-version {"message":"python-2.7.18 runtime is unknown"}
unknown-language {"message":"cobol-* runtime is unknown"}
over-limit true
"#;

#[test]
fn piston_answers_piston_client() {
    let node_modules = client_node_modules();
    let mut server = piston_server(&[]);
    let key = server.add_key("piston-client");
    let _cleanup = CloseAll::new(&server, &[&key]);
    // An ES module finds packages from its own folder upwards, not through NODE_PATH.
    let (dir, path) = script("piston_client_compat.mjs", PISTON_CLIENT_SCRIPT);
    std::os::unix::fs::symlink(&node_modules, dir.path().join("node_modules")).unwrap();
    let ran = run_client(Path::new("node"), &path, &server, &key);
    expect_lines(
        "piston_client_compat.mjs",
        &ran,
        PISTON_CLIENT_EXPECTED,
        &server,
    );
    assert!(
        !server.log().contains(&key),
        "the key in /k/... shows in the server's log"
    );

    // The document's own request, the key in a header this time.
    let (status, list) = send(bare(&server, "GET", "/api/v2/runtimes"), None);
    assert_eq!(status, 200);
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["language"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["python", "java", "javascript", "c++", "go", "ruby"]);
    let mut request = json!({"language": "js", "version": "15.10.0", "files": [{"name": "my_cool_code.js", "content": "console.log(process.argv)"}], "stdin": "", "args": ["1", "2", "3"], "compile_timeout": 10000, "run_timeout": 3000, "compile_memory_limit": -1, "run_memory_limit": -1});
    let (status, body) = send(server.req("POST", "/api/v2/execute"), Some(request.clone()));
    assert_eq!(
        (status, body),
        (400, json!({"message": "js-15.10.0 runtime is unknown"}))
    );
    request["version"] = json!("*");
    let (status, body) = send(server.req("POST", "/api/v2/execute"), Some(request));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["language"], "javascript");
    assert_eq!(body["run"]["code"], 0, "{body}");
    // Node prints argv on one line or several depending on its length (Piston's long paths
    // broke it into lines; Sandpit's `/usr/bin/node` and `/sandbox/main.cjs` do not).
    let argv: String = body["run"]["stdout"]
        .as_str()
        .unwrap()
        .split_whitespace()
        .collect();
    assert!(argv.ends_with("'1','2','3']"), "{body}");
    drop(_cleanup);
    nothing_left_on(&mut server);
}

// ---------------------------------------------------------------- Piston: aio-piston

const AIO_PISTON_SCRIPT: &str = r#""""Piston on Sandpit through PyPI's aio-piston 1.0.0 (class Tio, emkc's v1 URLs)."""
import asyncio
import os

import aiohttp
import aio_piston

ROOT = os.environ["SANDPIT_URL"].rstrip("/")


class SandpitTio(aio_piston.Tio):
    # Tio hard-codes https://emkc.org/api/v1/piston/...; swap the base URL before its first call.
    async def _update_languages(self):
        self.API_URL = ROOT + "/api/v1/piston/execute"
        self.LANGUAGES_URL = ROOT + "/api/v1/piston/runtimes"
        await super()._update_languages()


async def main():
    session = aiohttp.ClientSession(headers={"Authorization": f"Bearer {os.environ['SANDPIT_KEY']}"})
    tio = await SandpitTio(session=session)  # not `async with`: __aenter__ opens a header-less session
    print("languages", ",".join(sorted(tio.languages)))
    out = await tio.execute('print("hello world")', language="python")
    print("hello", repr(str(out)), out.language, out.ran, out.version.count(".") == 2)
    out = await tio.execute('print(input("what is your name"))', language="python", inputs="bob")
    print("stdin", repr(out.stdout))
    out = await tio.execute("import sys; print(sys.argv[1:])", language="py", arguments=["a", "b"])
    print("args", out.language, repr(out.stdout))
    out = await tio.execute("import sys; print('e', file=sys.stderr); sys.exit(2)", language="python")
    print("stderr", repr(out.stdout), repr(out.stderr), repr(out.output))
    out = await tio.execute("int main() { return x; }", language="cpp")
    print("compile-error", out.ran, "error" in out.output)
    try:
        await tio.execute("DISPLAY 'HI'.", language="cobol")
    except aio_piston.ApiError as e:
        print("ApiError", e)
    await tio.close()


asyncio.run(main())
"#;

const AIO_PISTON_EXPECTED: &str = r#"
languages c++,go,java,javascript,python,ruby
hello 'hello world\n' python True True
stdin 'what is your namebob\n'
args python "['a', 'b']\n"
stderr '' 'e\n' 'e\n'
compile-error True True
ApiError Error 400 cobol is not supported by Piston
"#;

#[test]
fn piston_answers_aio_piston() {
    let python = client_python();
    let mut server = piston_server(&[]);
    let key = server.add_key("aio-piston");
    let _cleanup = CloseAll::new(&server, &[&key]);
    let (_dir, path) = script("aio_piston_compat.py", AIO_PISTON_SCRIPT);
    let ran = run_client(&python, &path, &server, &key);
    expect_lines("aio_piston_compat.py", &ran, AIO_PISTON_EXPECTED, &server);
    drop(_cleanup);
    nothing_left_on(&mut server);
}

// ---------------------------------------------------------------- Piston: raw HTTP

fn hello(extra: Value) -> String {
    let mut body = json!({"language": "python", "files": [{"content": "print('hi')"}]});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body.to_string()
}

/// A server for the raw Piston tests, logging at debug: the key in `/k/...` must not show
/// even there.
fn raw_piston_server() -> Server {
    Server::start_with(&[("SANDPIT_POOL", ""), ("SANDPIT_LOG", "debug")], &[])
}

/// The key never showed in the server's log, and the server leaves nothing behind.
fn finish_raw_piston(mut server: Server) {
    assert!(
        !server.log().contains(&server.key),
        "the key shows in the server's log"
    );
    nothing_left_on(&mut server);
}

#[test]
fn piston_reads_json_whatever_the_content_type_and_answers_json() {
    let server = raw_piston_server();
    // Every answer is application/json.
    for content_type in [
        Some("text/plain;charset=UTF-8"),
        None,
        Some("application/json"),
    ] {
        let mut req = server.req("POST", "/api/v2/execute");
        if let Some(t) = content_type {
            req = req.set("Content-Type", t);
        }
        let (status, ct, body) = send_raw(req, &hello(json!({})));
        assert_eq!(status, 200, "{content_type:?}: {body}");
        assert_eq!(ct, "application/json", "{content_type:?}");
        assert_eq!(body["run"]["stdout"], "hi\n", "{body}");
        assert_eq!(body["version"].as_str().unwrap().split('.').count(), 3);
    }
    finish_raw_piston(server);
}

#[test]
fn piston_memory_limits_are_sandpits_default_or_a_sandbox_of_their_own() {
    let server = raw_piston_server();
    // Memory: -1 and 0 are Sandpit's default; a limit of its own runs in a sandbox of its own.
    for limit in [json!(-1), json!(0), json!(256 << 20)] {
        let (status, _, body) = send_raw(
            server.req("POST", "/api/v2/execute"),
            &hello(json!({"run_memory_limit": limit, "compile_memory_limit": limit})),
        );
        assert_eq!(status, 200, "memory {limit}: {body}");
        assert_eq!(body["run"]["stdout"], "hi\n", "{body}");
    }
    let (status, _, body) = send_raw(
        server.req("POST", "/api/v2/execute"),
        &json!({"language": "python", "files": [{"content": "import os; print(os.environ['PISTON_LANGUAGE'])"}], "run_memory_limit": 64 << 20}).to_string(),
    );
    assert_eq!(
        (status, body["run"]["stdout"].clone()),
        (200, json!("python\n")),
        "{body}"
    );
    finish_raw_piston(server);
}

#[test]
fn piston_refuses_bad_requests_with_its_own_messages() {
    let server = raw_piston_server();
    // Piston's validation messages, one request each.
    let cases = [
        (json!({}), "language is required as a string"),
        (
            json!({"language": "python", "version": 1, "files": []}),
            "version is required as a string",
        ),
        (
            json!({"language": "python"}),
            "files is required as an array",
        ),
        (
            json!({"language": "python", "files": [{"content": 1}]}),
            "files[0].content is required as a string",
        ),
        (
            json!({"language": "python", "version": "3.10.0", "files": [{"content": ""}]}),
            "python-3.10.0 runtime is unknown",
        ),
        (
            json!({"language": "python", "files": [{"content": "aGk=", "encoding": "base64"}]}),
            "files must include at least one utf8 encoded file",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "run_timeout": "1"}),
            "If specified, run_timeout must be a number",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "compile_timeout": -1}),
            "compile_timeout must be non-negative",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "run_memory_limit": 1024}),
            "run_memory_limit must be at least 16777216",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}, {"name": "../x", "content": ""}]}),
            "File path \"../x\" tries to escape parent directory",
        ),
        (
            json!({"language": "python", "files": [{"content": ""}], "args": "a"}),
            "args must be an array of strings",
        ),
    ];
    for (request, expected) in cases {
        let (status, body) = send(server.req("POST", "/api/v2/execute"), Some(request.clone()));
        assert_eq!(
            (status, body),
            (400, json!({ "message": expected })),
            "{request}"
        );
    }
    let (status, _, body) = send_raw(server.req("POST", "/api/v2/execute"), "{not json");
    assert_eq!(status, 400);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("request body is not valid JSON: "),
        "{body}"
    );
    finish_raw_piston(server);
}

#[test]
fn a_crashing_piston_program_ends_with_a_signal_not_a_code() {
    let server = raw_piston_server();
    // A C++ program that crashes: a signal, no code.
    let (status, body) = send(
        server.req("POST", "/compat/piston/api/v2/piston/execute"),
        Some(
            json!({"language": "cpp", "files": [{"content": "#include <cstdlib>\nint main() { std::abort(); }"}]}),
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["compile"]["code"], 0, "{body}");
    assert_eq!(
        (
            body["run"]["code"].clone(),
            body["run"]["signal"].clone(),
            body["run"]["status"].clone()
        ),
        (Value::Null, json!("SIGABRT"), json!("SG")),
        "{body}"
    );
    finish_raw_piston(server);
}

#[test]
fn piston_lists_runtimes_without_a_key_but_executes_only_with_one() {
    let server = raw_piston_server();
    let key = server.key.clone();
    // Runtime lists need no key; executing does.
    for path in [
        "/api/v2/runtimes",
        "/api/v2/piston/runtimes",
        "/api/v1/piston/runtimes",
        "/api/v1/piston/versions",
        "/api/v2/packages",
    ] {
        let (status, body) = send(bare(&server, "GET", path), None);
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (_, v1) = send(bare(&server, "GET", "/api/v1/piston/runtimes"), None);
    assert!(v1["python"]["version"].is_string(), "{v1}");
    let (status, ct, body) = send_raw(bare(&server, "POST", "/api/v2/execute"), &hello(json!({})));
    assert_eq!(status, 401, "{body}");
    assert_eq!(ct, "application/json");
    assert!(
        body["message"].as_str().unwrap().contains("/k/<key>"),
        "{body}"
    );
    let (status, _, body) = send_raw(
        bare(
            &server,
            "POST",
            "/k/sp_0000000000000000000000000000000000000000/api/v2/execute",
        ),
        &hello(json!({})),
    );
    assert_eq!(
        (status, body),
        (401, json!({"message": "the key is unknown or was revoked"}))
    );
    let (status, _, body) = send_raw(
        bare(
            &server,
            "POST",
            &format!("/k/{key}/compat/piston/api/v2/execute"),
        ),
        &hello(json!({})),
    );
    assert_eq!(status, 200, "{body}");
    finish_raw_piston(server);
}

#[test]
fn what_piston_does_not_offer_is_501_and_its_unknown_routes_404() {
    let server = raw_piston_server();
    // What Piston does not offer, and its 404s.
    let (status, body) = send(server.req("POST", "/api/v2/packages"), Some(json!({})));
    assert_eq!(status, 501, "{body}");
    assert!(body["message"].is_string());
    let (status, body) = send(server.req("GET", "/api/v2/execute"), None);
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    let (status, body) = send(server.req("GET", "/api/v3/anything"), None);
    assert_eq!((status, body), (404, json!({"message": "Not Found"})));
    finish_raw_piston(server);
}

// ---------------------------------------------------------------- anonymous access

#[test]
fn anonymous_access_only_with_the_flag() {
    let closed = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let (status, body) = send(
        bare(&closed, "POST", "/compat/code-sandbox/sandbox/create"),
        None,
    );
    assert_eq!(status, 401, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    let (status, _, body) = send_raw(bare(&closed, "POST", "/api/v2/execute"), &hello(json!({})));
    assert_eq!(status, 401, "{body}");
    drop(closed);

    let mut open = piston_server(&["--allow-anonymous"]);
    let mut cleanup = CloseAll::new(&open, &[]);
    cleanup.anonymous = true;
    let (status, _, body) = send_raw(
        bare(&open, "POST", "/api/v2/execute").set("Content-Type", "text/plain;charset=UTF-8"),
        &hello(json!({})),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["run"]["stdout"], "hi\n");
    let (status, body) = send(
        bare(&open, "POST", "/compat/code-sandbox/sandbox/create"),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let id = body["sandbox_id"].as_str().unwrap().to_string();
    let (status, _, body) = send_raw(
        bare(
            &open,
            "POST",
            &format!("/compat/code-sandbox/sandbox/{id}/execute"),
        ),
        "print('anonymous')",
    );
    assert_eq!(
        (status, body["stdout"].clone()),
        (200, json!("anonymous\n")),
        "{body}"
    );
    // A key's sandbox is not the anonymous owner's, nor the other way round.
    let (status, body) = send(
        open.req("POST", &format!("/compat/code-sandbox/sandbox/{id}/close")),
        None,
    );
    assert_eq!(
        (status, body),
        (404, json!({"detail": "Sandbox not found"}))
    );
    // Pandora Box stays keyed, as its original.
    let (status, body) = send(bare(&open, "GET", "/compat/pandora/create"), None);
    assert_eq!(status, 422, "{body}");
    // The anonymous owner's limit is its own (4 sandboxes by default).
    let mut made = vec![id];
    let mut refused = None;
    for _ in 0..4 {
        let (status, body) = send(
            bare(&open, "POST", "/compat/code-sandbox/sandbox/create"),
            None,
        );
        match status {
            200 => made.push(body["sandbox_id"].as_str().unwrap().to_string()),
            _ => {
                refused = Some((status, body));
                break;
            }
        }
    }
    let (status, body) = refused.expect("a fifth anonymous sandbox was allowed");
    assert_eq!(status, 429, "{body}");
    assert!(body["detail"].is_string(), "{body}");
    assert_eq!(made.len(), 4);
    for id in &made {
        let (status, body) = send(
            bare(
                &open,
                "POST",
                &format!("/compat/code-sandbox/sandbox/{id}/close"),
            ),
            None,
        );
        assert_eq!(status, 200, "{body}");
    }
    let label = "sandpit.owner=anonymous";
    let server_label = format!("sandpit.server={}", server_id(&open));
    let left: Vec<String> = containers_with(label)
        .into_iter()
        .filter(|c| containers_with(&server_label).contains(c))
        .collect();
    assert!(left.is_empty(), "anonymous sandboxes left: {left:?}");
    drop(cleanup);
    nothing_left_on(&mut open);
}
