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
