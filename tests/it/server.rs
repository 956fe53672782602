//! A real `sandpit serve` on a loopback port with a data folder of its own, and a small HTTP
//! client for the tests that use it as a client would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::sandpit_bin;

/// A running server; stopped (SIGTERM, then its sessions closed) when dropped.
pub struct Server {
    pub url: String,
    pub key: String,
    pub data: tempfile::TempDir,
    child: Option<Child>,
    port: u16,
    extra: Vec<(String, String)>,
    args: Vec<String>,
    /// Close every session of the key when dropped.
    pub close_on_drop: bool,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("url", &self.url)
            .field("data", &self.data.path())
            .finish_non_exhaustive()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Server {
    /// A server with a fresh data folder and one key.
    pub fn start() -> Server {
        Server::start_with(&[], &[])
    }

    /// A server with extra `SANDPIT_*` variables and `serve` flags.
    pub fn start_with(env: &[(&str, &str)], args: &[&str]) -> Server {
        let data = tempfile::tempdir().unwrap();
        let key = add_key(&data.path().to_path_buf(), "tests");
        let mut server = Server {
            url: String::new(),
            key,
            data,
            child: None,
            port: free_port(),
            extra: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            args: args.iter().map(|a| a.to_string()).collect(),
            close_on_drop: true,
        };
        server.url = format!("http://127.0.0.1:{}", server.port);
        server.launch();
        server
    }

    fn launch(&mut self) {
        let mut cmd = Command::new(sandpit_bin());
        cmd.args([
            "serve",
            "--addr",
            &format!("127.0.0.1:{}", self.port),
            "--data-dir",
        ])
        .arg(self.data.path())
        .args(&self.args)
        .env("SANDPIT_POOL", "python=1")
        .env("SANDPIT_SWEEP_INTERVAL", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(
            std::fs::File::create(self.data.path().join("server.log")).unwrap(),
        ));
        if let Some(ca) = crate::support::ca_bundle() {
            cmd.env("SANDPIT_CA_BUNDLE", ca);
        }
        for (k, v) in &self.extra {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("start sandpit serve"));
        let started = Instant::now();
        loop {
            if let Ok(r) = ureq::get(&format!("{}/health", self.url))
                .timeout(Duration::from_secs(2))
                .call()
            {
                if r.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("sandpit serve exited ({status}): {}", self.log());
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "sandpit serve did not answer within 60 s: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server.log")).unwrap_or_default()
    }

    /// Stops the server (SIGTERM) and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let started = Instant::now();
            while child.try_wait().unwrap().is_none() {
                if started.elapsed() > Duration::from_secs(30) {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same port and data folder.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Another key on this server.
    pub fn add_key(&self, name: &str) -> String {
        add_key(&self.data.path().to_path_buf(), name)
    }

    /// A request with this server's key.
    pub fn req(&self, method: &str, path: &str) -> ureq::Request {
        self.req_as(&self.key, method, path)
    }

    /// A request with `key`.
    pub fn req_as(&self, key: &str, method: &str, path: &str) -> ureq::Request {
        ureq::request(method, &format!("{}{path}", self.url))
            .set("Authorization", &format!("Bearer {key}"))
            .timeout(Duration::from_secs(300))
    }

    /// Sends JSON; returns (status, body as JSON, or as a string when it is not JSON).
    pub fn json(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        send(self.req(method, path), body)
    }

    /// Opens a Python session; returns its id.
    pub fn python_session(&self) -> String {
        let (status, body) = self.json(
            "POST",
            "/v1/sessions",
            Some(serde_json::json!({"language": "python"})),
        );
        assert_eq!(status, 201, "{body}");
        body["id"].as_str().unwrap().to_string()
    }
}

/// Sends a request with an optional JSON body; answers with the status and the body.
pub fn send(req: ureq::Request, body: Option<Value>) -> (u16, Value) {
    let result = match body {
        Some(b) => req.send_json(b),
        None => req.call(),
    };
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("request failed: {e}"),
    };
    let status = response.status();
    let text = response.into_string().unwrap_or_default();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// One server-sent event: its name and its data as JSON (or a string when it is not JSON).
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub event: String,
    pub data: Value,
}

/// An event stream being read; dropping it closes the connection (the client goes away).
pub struct SseStream {
    pub status: u16,
    pub content_type: String,
    lines: std::io::Lines<std::io::BufReader<Box<dyn std::io::Read + Send + Sync + 'static>>>,
}

impl SseStream {
    /// The next event, or `None` at the end of the stream. Keep-alive comments are skipped.
    pub fn next_event(&mut self) -> Option<SseEvent> {
        let mut event = String::from("message");
        let mut data: Vec<String> = Vec::new();
        let mut seen = false;
        loop {
            let line = match self.lines.next() {
                Some(Ok(l)) => l,
                Some(Err(e)) => panic!("reading the event stream failed: {e}"),
                None => {
                    return seen.then(|| SseEvent {
                        event,
                        data: parse_data(&data.join("\n")),
                    })
                }
            };
            if line.is_empty() {
                if seen {
                    return Some(SseEvent {
                        event,
                        data: parse_data(&data.join("\n")),
                    });
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((&line, ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => {
                    event = value.to_string();
                    seen = true;
                }
                "data" => {
                    data.push(value.to_string());
                    seen = true;
                }
                _ => {}
            }
        }
    }

    /// Every event until the end of the stream.
    pub fn collect(mut self) -> Vec<SseEvent> {
        let mut all = Vec::new();
        while let Some(e) = self.next_event() {
            all.push(e);
        }
        all
    }
}

impl SseStream {
    /// Posts `body` to `url` + `path` with `key` and `Accept: text/event-stream`; the stream,
    /// unread.
    pub fn open(url: &str, key: &str, path: &str, body: Value) -> SseStream {
        let result = ureq::post(&format!("{url}{path}"))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Accept", "text/event-stream")
            .send_json(body);
        Self::read(result, path)
    }

    /// GETs `url` + `path` with `key`; the stream, unread.
    pub fn get(url: &str, key: &str, path: &str) -> SseStream {
        let result = ureq::get(&format!("{url}{path}"))
            .set("Authorization", &format!("Bearer {key}"))
            .set("Accept", "text/event-stream")
            .call();
        Self::read(result, path)
    }

    fn read(result: Result<ureq::Response, ureq::Error>, path: &str) -> SseStream {
        let response = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("{path} (events) failed: {e}"),
        };
        let status = response.status();
        let content_type = response.header("content-type").unwrap_or("").to_string();
        let reader: Box<dyn std::io::Read + Send + Sync + 'static> = response.into_reader();
        use std::io::BufRead;
        SseStream {
            status,
            content_type,
            lines: std::io::BufReader::new(reader).lines(),
        }
    }
}

fn parse_data(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

impl Server {
    /// GETs `path` as an event stream; the stream, unread.
    pub fn sse_get(&self, path: &str) -> SseStream {
        let stream = SseStream::get(&self.url, &self.key, path);
        assert_eq!(
            stream.status, 200,
            "GET {path} as events answered {}",
            stream.status
        );
        stream
    }

    /// Posts `body` with `Accept: text/event-stream` and returns the stream, unread.
    pub fn sse_open(&self, path: &str, body: Value) -> SseStream {
        self.sse_open_as(&self.key, path, body)
    }

    /// Like [`Server::sse_open`] with another key.
    pub fn sse_open_as(&self, key: &str, path: &str, body: Value) -> SseStream {
        SseStream::open(&self.url, key, path, body)
    }

    /// Posts `body` as an event stream and reads it to the end.
    pub fn sse(&self, path: &str, body: Value) -> Vec<SseEvent> {
        let stream = self.sse_open(path, body);
        assert_eq!(
            stream.status, 200,
            "POST {path} with Accept: text/event-stream answered {}",
            stream.status
        );
        assert!(
            stream.content_type.starts_with("text/event-stream"),
            "POST {path} streamed {:?}, not text/event-stream",
            stream.content_type
        );
        stream.collect()
    }

    /// A request written byte for byte on a fresh connection, so the path reaches the server
    /// exactly as given (no client normalises `..` or `%2E%2E` away). Answers with the status,
    /// the headers (lower-case names) and the body (JSON when it parses, else a string).
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Value) {
        raw_request(
            &format!("127.0.0.1:{}", self.port),
            method,
            path,
            headers,
            body,
        )
    }

    /// [`Server::raw`] with this server's key.
    pub fn raw_keyed(&self, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
        let auth = format!("Bearer {}", self.key);
        let (status, _, value) = self.raw(method, path, &[("Authorization", &auth)], body);
        (status, value)
    }

    /// `sandpit keys ARGS... --data-dir DATA`: (exit code, stdout, stderr).
    pub fn keys_cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(sandpit_bin())
            .arg("keys")
            .args(args)
            .arg("--data-dir")
            .arg(self.data.path())
            .output()
            .expect("sandpit keys");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Opens a session of `language` with extra fields; returns its id.
    pub fn session_with(&self, body: Value) -> String {
        let (status, answer) = self.json("POST", "/v1/sessions", Some(body.clone()));
        assert_eq!(status, 201, "POST /v1/sessions {body}: {answer}");
        answer["id"].as_str().expect("session id").to_string()
    }

    /// Runs a shell command in the session; answers with the JSON result (asserting 200).
    pub fn sh(&self, id: &str, command: &str) -> Value {
        let (status, body) = self.json(
            "POST",
            &format!("/v1/sessions/{id}/commands"),
            Some(serde_json::json!({ "command": command })),
        );
        assert_eq!(status, 200, "command {command:?}: {body}");
        body
    }
}

/// See [`Server::raw`].
pub fn raw_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, Vec<(String, String)>, Value) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(300)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    let mut has_length = false;
    for (k, v) in headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !has_length {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).expect("send the request");
    // The server may answer (413) before reading the whole body; it may then close.
    let _ = stream.write_all(body);
    let mut raw = Vec::new();
    let _ = stream.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| {
            panic!(
                "no HTTP answer to {method} {path}: {:?}",
                String::from_utf8_lossy(&raw)
            )
        });
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {head:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut content = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"))
    {
        content = dechunk(&content);
    }
    let text = String::from_utf8_lossy(&content).into_owned();
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, value)
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(eol) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..eol])
                .split(';')
                .next()
                .unwrap_or("0")
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = eol + 2;
        let end = (start + size).min(data.len());
        out.extend_from_slice(&data[start..end]);
        data = &data[(end + 2).min(data.len())..];
    }
    out
}

/// POSTs JSON, asserting 200; answers with the body.
pub fn post(server: &Server, path: &str, body: Value) -> Value {
    let (status, answer) = server.json("POST", path, Some(body.clone()));
    assert_eq!(status, 200, "POST {path} {body}: {answer}");
    answer
}

/// Asserts a `{"error", "message"}` answer of `status` and kind `kind`.
pub fn assert_error(what: &str, (status, body): (u16, Value), want: u16, kind: &str) {
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

/// Asserts a 400 `invalid_input` with a message; `what` names the request.
pub fn assert_invalid(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 400, "{what}: expected 400, got {status}: {body}");
    assert_eq!(body["error"], "invalid_input", "{what}: {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {body}"
    );
}

/// Containers (running or not) carrying the label `label` (`key=value`), on the local engine.
pub fn containers_with(label: &str) -> Vec<sandpit::engine::ContainerSummary> {
    let label = label.to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            crate::support::engine()
                .await
                .list_containers(&label)
                .await
                .expect("list containers")
        })
}

/// Closes the session `id` through the library (for sessions no key can reach any more).
pub fn close_session(id: &str) {
    let id = id.to_string();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let engine = crate::support::engine().await;
            if let Ok(session) = sandpit::adopt(&engine, &id).await {
                let _ = session.close().await;
            }
        });
}

/// Containers of the session `id`.
pub fn session_containers(id: &str) -> usize {
    containers_with(&format!("sandpit.session={id}")).len()
}

/// Waits up to `limit` for `check` to hold; false when it never did.
pub fn eventually(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let started = Instant::now();
    loop {
        if check() {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn add_key(data: &PathBuf, name: &str) -> String {
    let out = Command::new(sandpit_bin())
        .args(["keys", "add", "--name", name, "--data-dir"])
        .arg(data)
        .output()
        .expect("sandpit keys add");
    assert!(
        out.status.success(),
        "keys add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

impl Drop for Server {
    fn drop(&mut self) {
        if self.close_on_drop && self.child.is_some() {
            if let (200, list) = self.json("GET", "/v1/sessions", None) {
                for s in list["sessions"].as_array().cloned().unwrap_or_default() {
                    let id = s["id"].as_str().unwrap_or_default().to_string();
                    let _ = self.json("DELETE", &format!("/v1/sessions/{id}"), None);
                }
            }
        }
        self.stop();
    }
}
