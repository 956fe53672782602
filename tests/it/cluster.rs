//! A real three-node cluster on this machine (scripts/cluster.sh: a network namespace and a
//! Docker engine per node, three etcd members) with real `sandpit serve --cluster` nodes:
//! placement across nodes, every route through a node that does not own the session
//! (execute, files, SSE, MCP, a client that goes away), the cluster's keys, and each fault of
//! the design: etcd without quorum, a node cut from etcd only, an orphan container, an engine
//! restart, a node lost and the same node coming back. One test: the phases share the
//! cluster, which takes a minute or two to build.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{eventually, send, SseStream};
use crate::support::sandpit_bin;

const NODES: usize = 3;
const STATE: &str = "/var/tmp/sandpit-cluster";
const ETCD: &str = "etcd://198.18.1.21:2379,198.18.1.22:2379,198.18.1.23:2379";
const IMAGES: &[&str] = &[
    "sandpit/python:latest",
    "sandpit/ruby:latest",
    "sandpit/javascript:latest",
];

fn script(args: &[&str]) {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new("bash")
        .arg(root.join("scripts/cluster.sh"))
        .args(args)
        .status()
        .expect("scripts/cluster.sh");
    assert!(status.success(), "scripts/cluster.sh {args:?} failed");
}

/// `docker ARGS` against node `i`'s engine: (success, stdout).
fn docker(i: usize, args: &[&str]) -> (bool, String) {
    let out = Command::new("docker")
        .env("DOCKER_HOST", format!("unix:///run/spc/n{i}/docker.sock"))
        .args(args)
        .output()
        .expect("docker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
    )
}

/// Sandpit's containers on node `i`'s engine.
fn sandpit_containers(i: usize) -> Vec<String> {
    let (_, out) = docker(
        i,
        &[
            "ps",
            "-a",
            "--filter",
            "label=sandpit.managed=true",
            "--format",
            "{{.Label \"sandpit.session\"}}",
        ],
    );
    out.lines().map(str::to_string).collect()
}

fn dockerd_pid(i: usize) -> u32 {
    std::fs::read_to_string(format!("/run/spc/n{i}/docker.pid"))
        .expect("dockerd pid file")
        .trim()
        .parse()
        .expect("dockerd pid")
}

fn kill(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([signal, &pid.to_string()])
        .status();
}

fn ip(args: &[&str]) {
    let status = Command::new("ip").args(args).status().expect("ip");
    assert!(status.success(), "ip {args:?}");
}

/// `sandpit ARGS` (the CLI on the host, which reaches etcd on the registry network).
fn cli(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(sandpit_bin())
        .args(args)
        .output()
        .expect("sandpit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A key made with `sandpit keys add --cluster`, once every live node has it (the watch
/// brings it within milliseconds).
fn add_key(name: &str) -> String {
    let (code, out, err) = cli(&["keys", "add", "--name", name, "--cluster", ETCD]);
    assert_eq!(code, 0, "keys add --cluster: {err}");
    let key = out.trim().to_string();
    for i in 1..=NODES {
        let url = format!("http://198.18.0.1{i}:9501/v1/sessions");
        let known = eventually(Duration::from_secs(2), || {
            match req("GET", &url, &key)
                .timeout(Duration::from_secs(2))
                .call()
            {
                Ok(_) => true,
                // A node that is down is not asked.
                Err(ureq::Error::Status(status, _)) => status != 401,
                Err(_) => true,
            }
        });
        assert!(known, "node n{i} does not know the new key after 2 s");
    }
    key
}

struct Node {
    i: usize,
    name: String,
    url: String,
    /// `SANDPIT_POOL`: the warm pools it keeps (none unless a phase asks).
    pool: String,
    child: Option<Child>,
}

impl Node {
    fn start(&mut self) {
        let data = format!("{STATE}/n{}/sandpit", self.i);
        std::fs::create_dir_all(&data).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(format!("{STATE}/n{}/serve.log", self.i))
            .unwrap();
        let addr = format!("198.18.0.1{}:9501", self.i);
        let peer_addr = format!("198.18.0.1{}:9502", self.i);
        let tls = format!("{STATE}/tls");
        let child = Command::new("nsenter")
            .arg(format!("--net=/var/run/netns/spc-n{}", self.i))
            .arg(sandpit_bin())
            .args(["serve", "--addr", &addr, "--data-dir", &data])
            .args(["--cluster", ETCD, "--node-name", &self.name])
            .args(["--advertise", &format!("https://{peer_addr}")])
            .args(["--peer-addr", &peer_addr])
            .args(["--peer-ca", &format!("{tls}/ca.pem")])
            .args(["--peer-cert", &format!("{tls}/{}.pem", self.name)])
            .args(["--peer-key", &format!("{tls}/{}.key", self.name)])
            .env(
                "DOCKER_HOST",
                format!("unix:///run/spc/n{}/docker.sock", self.i),
            )
            .env("SANDPIT_POOL", &self.pool)
            .env("SANDPIT_SNAPSHOTS", format!("file://{STATE}/snapshots"))
            .env("SANDPIT_SWEEP_INTERVAL", "1")
            .env("SANDPIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start a node");
        self.child = Some(child);
        let health = format!("{}/health", self.url);
        let up = eventually(Duration::from_secs(60), || {
            ureq::get(&health)
                .timeout(Duration::from_secs(2))
                .call()
                .is_ok()
        });
        assert!(
            up,
            "node {} did not answer within 60 s: {}",
            self.name,
            self.log()
        );
    }

    /// SIGTERM by PID, and wait for it to stop (its sessions stay for the next process).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            kill(child.id(), "-TERM");
            let _ = child.wait();
        }
    }

    /// SIGKILL by PID.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn log(&self) -> String {
        let text =
            std::fs::read_to_string(format!("{STATE}/n{}/serve.log", self.i)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

struct Cluster {
    nodes: Vec<Node>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.kill();
        }
        // No assertion here: a failing teardown must not turn a test failure into an abort.
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
        let _ = Command::new("bash")
            .arg(root.join("scripts/cluster.sh"))
            .arg("down")
            .status();
    }
}

fn req(method: &str, url: &str, key: &str) -> ureq::Request {
    ureq::request(method, url)
        .set("Authorization", &format!("Bearer {key}"))
        .timeout(Duration::from_secs(120))
}

fn call(node: &Node, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    send(req(method, &format!("{}{path}", node.url), key), body)
}

/// Opens a session through `via`; returns (id, owning node).
fn open(via: &Node, key: &str, body: Value) -> (String, String) {
    let (status, answer) = call(via, key, "POST", "/v1/sessions", Some(body.clone()));
    assert_eq!(
        status, 201,
        "POST /v1/sessions {body} via {}: {answer}",
        via.name
    );
    (
        answer["id"].as_str().unwrap().to_string(),
        answer["node"]
            .as_str()
            .expect("the session's node")
            .to_string(),
    )
}

fn execute(via: &Node, key: &str, id: &str, code: &str) -> (u16, Value) {
    call(
        via,
        key,
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({ "code": code })),
    )
}

/// The node of the three that is not `a` (nor `b`).
fn other<'a>(nodes: &'a [Node], a: &str, b: &str) -> &'a Node {
    nodes
        .iter()
        .find(|n| n.name != a && n.name != b)
        .expect("a third node")
}

fn by_name<'a>(nodes: &'a [Node], name: &str) -> &'a Node {
    nodes.iter().find(|n| n.name == name).expect("node")
}

/// The nodes as `sandpit cluster status --json` shows them (retried while etcd elects a
/// leader after members came back).
fn status() -> Vec<Value> {
    let mut last = String::new();
    for _ in 0..20 {
        let (code, out, err) = cli(&["cluster", "status", "--json", "--cluster", ETCD]);
        if code == 0 {
            return serde_json::from_str::<Value>(&out)
                .expect("status JSON")
                .as_array()
                .cloned()
                .unwrap();
        }
        last = err;
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("cluster status: {last}");
}

fn node_state(name: &str) -> String {
    status()
        .iter()
        .find(|n| n["name"] == name)
        .map(|n| n["state"].as_str().unwrap().to_string())
        .unwrap_or_default()
}

fn records_total() -> u64 {
    status()
        .iter()
        .map(|n| n["sessions"].as_u64().unwrap())
        .sum()
}

#[test]
fn a_three_node_cluster_routes_every_request_and_survives_its_faults() {
    script(&[&["up"], IMAGES].concat());
    certificates();
    let mut cluster = Cluster {
        nodes: (1..=NODES)
            .map(|i| Node {
                i,
                name: format!("n{i}"),
                url: format!("http://198.18.0.1{i}:9501"),
                pool: String::new(),
                child: None,
            })
            .collect(),
    };
    for n in &mut cluster.nodes {
        n.start();
    }
    let live = eventually(Duration::from_secs(20), || {
        status().iter().filter(|n| n["state"] == "live").count() == NODES
    });
    assert!(live, "three live nodes: {:?}", status());
    let key = add_key("cluster-tests");
    only_peers_forward(&cluster, &key);

    let orphan = plant_orphan(&cluster, &key);
    let sessions = placement_and_languages(&cluster, &key);
    every_route_through_another_node(&cluster, &key, &sessions);
    let urls: Vec<String> = cluster.nodes.iter().map(|n| n.url.clone()).collect();
    crate::e2b_cluster::sdk_through_every_node(&urls, &key, || {
        let logs: Vec<String> = cluster.nodes.iter().map(|n| n.log()).collect();
        logs.join("\n---\n")
    });
    pool_members_are_claimed_across_nodes(&mut cluster, &key);
    keys_reach_every_node(&cluster, &key);
    etcd_without_quorum(&cluster, &key, &sessions);
    a_node_cut_from_etcd_keeps_serving(&cluster, &key, &sessions);
    an_engine_restart_is_survived(&cluster, &key, &sessions);
    a_server_restart_adopts_its_sessions(&mut cluster, &key, &sessions);
    orphans_are_removed(&cluster, &orphan);
    a_lost_node_is_fenced_and_comes_back(&mut cluster, &key, &sessions);
    nothing_is_left(&cluster, &key);
}

/// `openssl ARGS` in `dir`.
fn openssl(dir: &str, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The cluster's CA and a certificate per node for its peer address (client and server
/// use), made anew for each run in `{STATE}/tls`; and a rogue CA with a certificate of its
/// own, which no node may take.
fn certificates() {
    let dir = format!("{STATE}/tls");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    for ca in ["ca", "rogue-ca"] {
        let subject = format!("/CN=sandpit test {ca}");
        let args = format!(
            "req -x509 -days 2 {ec} -keyout {ca}.key -out {ca}.pem \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        );
        let mut args: Vec<&str> = args.split_whitespace().collect();
        args.extend(["-subj", &subject]);
        openssl(&dir, &args);
    }
    let nodes: Vec<(String, String, &str)> = (1..=NODES)
        .map(|i| (format!("n{i}"), format!("198.18.0.1{i}"), "ca"))
        .chain([("rogue".to_string(), "198.18.0.1".to_string(), "rogue-ca")])
        .collect();
    for (name, ip, ca) in &nodes {
        std::fs::write(
            format!("{dir}/{name}.ext"),
            format!(
                "subjectAltName=IP:{ip}\nextendedKeyUsage=serverAuth,clientAuth\nbasicConstraints=CA:FALSE\n"
            ),
        )
        .unwrap();
        let args = format!("req -subj /CN={name} {ec} -keyout {name}.key -out {name}.csr");
        openssl(&dir, &args.split_whitespace().collect::<Vec<_>>());
        let args = format!(
            "x509 -req -days 2 -in {name}.csr -CA {ca}.pem -CAkey {ca}.key -CAcreateserial \
             -extfile {name}.ext -out {name}.pem"
        );
        openssl(&dir, &args.split_whitespace().collect::<Vec<_>>());
    }
}

/// `curl` to node 1's peer port with `cert` (none: no client certificate): its HTTP status,
/// or 0 when the TLS handshake failed.
fn peer_health(cert: Option<&str>) -> u16 {
    let dir = format!("{STATE}/tls");
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "--max-time",
        "5",
    ])
    .args(["--cacert", &format!("{dir}/ca.pem")]);
    if let Some(name) = cert {
        cmd.args(["--cert", &format!("{dir}/{name}.pem")])
            .args(["--key", &format!("{dir}/{name}.key")]);
    }
    let out = cmd
        .arg("https://198.18.0.11:9502/health")
        .output()
        .expect("curl");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0)
}

/// The nodes forward to each other over mTLS on their peer port (every phase after this
/// goes through it): there a client without a certificate, or with one another CA signed,
/// gets no further than the handshake; a node's own certificate gets through. A request
/// claiming to be forwarded on the clients' port is refused.
fn only_peers_forward(cluster: &Cluster, key: &str) {
    assert_eq!(
        peer_health(Some("n2")),
        200,
        "a node's certificate on n1's peer port"
    );
    assert_eq!(
        peer_health(None),
        0,
        "no client certificate on n1's peer port"
    );
    assert_eq!(
        peer_health(Some("rogue")),
        0,
        "another CA's certificate on n1's peer port"
    );
    let (status, body) = send(
        req("GET", &format!("{}/v1/sessions", cluster.nodes[0].url), key)
            .set("Sandpit-Forwarded", "n2"),
        None,
    );
    assert_eq!(
        status, 403,
        "a forwarded request on the clients' port: {body}"
    );
    assert!(body["message"].as_str().unwrap().contains("mTLS"), "{body}");
    let (status, _) = call(&cluster.nodes[0], key, "GET", "/v1/sessions", None);
    assert_eq!(status, 200);
}

/// A container of node 2 that no session owns (as an open whose registry write failed
/// leaves one): the owner's reconcile removes it, found by its labels.
fn plant_orphan(cluster: &Cluster, key: &str) -> String {
    let n2 = &cluster.nodes[1];
    let (id, node) = open(n2, key, json!({"language": "python", "node": "n2"}));
    assert_eq!(node, "n2");
    let (_, labels) = docker(
        2,
        &[
            "ps",
            "--filter",
            &format!("label=sandpit.session={id}"),
            "--format",
            "{{.Label \"sandpit.server\"}} {{.Label \"sandpit.owner\"}} {{.Label \"sandpit.epoch\"}}",
        ],
    );
    let parts: Vec<&str> = labels.split_whitespace().collect();
    assert_eq!(parts.len(), 3, "labels of session {id}: {labels:?}");
    let (status, _) = call(n2, key, "DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
    let orphan = "orphan0000001";
    let (ok, out) = docker(
        2,
        &[
            "run",
            "-d",
            "--network",
            "none",
            "--name",
            "sandpit-orphan-test",
            "--label",
            "sandpit.managed=true",
            "--label",
            &format!("sandpit.session={orphan}"),
            "--label",
            &format!("sandpit.server={}", parts[0]),
            "--label",
            &format!("sandpit.owner={}", parts[1]),
            "--label",
            "sandpit.kind=session",
            "--label",
            "sandpit.node=n2",
            "--label",
            &format!("sandpit.epoch={}", parts[2]),
            "sandpit/python:latest",
            "sleep",
            "600",
        ],
    );
    assert!(ok, "docker run the orphan: {out}");
    orphan.to_string()
}

/// Sessions of three languages through one node land on several; `node` pins one; a
/// drained node takes none.
fn placement_and_languages(cluster: &Cluster, key: &str) -> Vec<(String, String)> {
    let n1 = &cluster.nodes[0];
    let mut sessions = Vec::new();
    for language in [
        "python",
        "ruby",
        "javascript",
        "python",
        "ruby",
        "javascript",
    ] {
        sessions.push(open(n1, key, json!({ "language": language })));
    }
    let mut used: Vec<&str> = sessions.iter().map(|(_, n)| n.as_str()).collect();
    used.sort();
    used.dedup();
    assert!(used.len() >= 2, "six sessions all on {used:?}");
    for name in ["n1", "n2", "n3"] {
        let (id, node) = open(n1, key, json!({"language": "python", "node": name}));
        assert_eq!(node, name, "a session asked for node {name}");
        sessions.push((id, node));
    }
    let (status, body) = call(
        n1,
        key,
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "node_labels": {"gpu": "yes"}})),
    );
    assert_eq!(status, 429, "no node carries the label: {body}");
    assert!(body["message"].as_str().unwrap().contains("gpu"), "{body}");

    let (code, _, err) = cli(&["cluster", "drain", "n2", "--cluster", ETCD]);
    assert_eq!(code, 0, "drain: {err}");
    assert!(eventually(Duration::from_secs(5), || node_state("n2") == "draining"));
    std::thread::sleep(Duration::from_millis(500));
    for _ in 0..4 {
        let (id, node) = open(&cluster.nodes[2], key, json!({"language": "ruby"}));
        assert_ne!(node, "n2", "a drained node took a new session");
        sessions.push((id, node));
    }
    let (code, _, err) = cli(&["cluster", "undrain", "n2", "--cluster", ETCD]);
    assert_eq!(code, 0, "undrain: {err}");
    let (code, _, err) = cli(&["cluster", "drain", "n9", "--cluster", ETCD]);
    assert_ne!(code, 0);
    assert!(err.contains("no node n9"), "{err}");

    // Each answers through a node that does not own it, in its own language.
    for (id, node) in &sessions {
        let via = other(&cluster.nodes, node, "");
        let (status, body) = call(
            via,
            key,
            "POST",
            &format!("/v1/sessions/{id}/commands"),
            Some(json!({"command": "echo $((6*7))"})),
        );
        assert_eq!(status, 200, "{id} on {node} via {}: {body}", via.name);
        assert_eq!(body["stdout"], "42\n", "{body}");
    }
    sessions
}

/// Execute, files (multipart up, bytes down), SSE, MCP, listing and a client that hangs up,
/// all through a node that does not own the session.
fn every_route_through_another_node(cluster: &Cluster, key: &str, sessions: &[(String, String)]) {
    let (id, owner) = open(
        &cluster.nodes[0],
        key,
        json!({"language": "python", "node": "n3"}),
    );
    assert_eq!(owner, "n3");
    let via = &cluster.nodes[0];
    let (status, body) = execute(via, key, &id, "x = 6 * 7\nx");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"][0]["text/plain"], "42", "{body}");
    let (status, body) = execute(&cluster.nodes[1], key, &id, "x + 1");
    assert_eq!(
        body["results"][0]["text/plain"], "43",
        "state kept: {status} {body}"
    );

    // Multipart upload via n1, read back via n2.
    let boundary = "sandpitboundary";
    let mut multipart = Vec::new();
    multipart.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
    );
    let payload: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    multipart.extend_from_slice(&payload);
    multipart.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let response = req("POST", &format!("{}/v1/sessions/{id}/files", via.url), key)
        .set(
            "Content-Type",
            &format!("multipart/form-data; boundary={boundary}"),
        )
        .send_bytes(&multipart);
    let status = match response {
        Ok(r) => r.status(),
        Err(ureq::Error::Status(s, r)) => panic!("upload: {s} {}", r.into_string().unwrap()),
        Err(e) => panic!("upload: {e}"),
    };
    assert!(status == 200 || status == 201, "upload: {status}");
    let got = req(
        "GET",
        &format!("{}/v1/sessions/{id}/files/big.bin", cluster.nodes[1].url),
        key,
    )
    .call()
    .expect("download");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut got.into_reader(), &mut bytes).unwrap();
    assert!(
        bytes == payload,
        "the file came back changed ({} bytes)",
        bytes.len()
    );

    // SSE through n2.
    let stream = SseStream::open(
        &cluster.nodes[1].url,
        key,
        &format!("/v1/sessions/{id}/run"),
        json!({"code": "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.2)"}),
    );
    assert_eq!(stream.status, 200);
    assert!(stream.content_type.starts_with("text/event-stream"));
    let events = stream.collect();
    let outputs = events.iter().filter(|e| e.event == "output").count();
    assert!(outputs >= 3, "streamed output events: {events:?}");
    assert_eq!(events.last().unwrap().event, "result");

    // A client of n1 that hangs up stops the work on n3.
    let spin = "import time\nwhile True:\n    print('tick', flush=True)\n    open('spin.log', 'a').write('x')\n    time.sleep(0.1)\n";
    let mut stream = SseStream::open(
        &via.url,
        key,
        &format!("/v1/sessions/{id}/run"),
        json!({ "code": spin }),
    );
    assert_eq!(stream.next_event().expect("first output").event, "output");
    drop(stream);
    std::thread::sleep(Duration::from_millis(1500));
    let size = |n: &Node| {
        let (_, body) = call(
            n,
            key,
            "POST",
            &format!("/v1/sessions/{id}/commands"),
            Some(json!({"command": "wc -c < spin.log"})),
        );
        body["stdout"].as_str().unwrap_or("").trim().to_string()
    };
    let before = size(&cluster.nodes[2]);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(
        size(&cluster.nodes[2]),
        before,
        "the run went on after its client left"
    );

    // MCP streamable HTTP through n2, for a session of n3; and a new one placed by MCP.
    let mcp = |via: &Node, body: Value| -> Value {
        let response = req("POST", &format!("{}/mcp", via.url), key)
            .set("Accept", "application/json, text/event-stream")
            .set("MCP-Protocol-Version", "2025-06-18")
            .send_json(body.clone());
        let (status, value) = match response {
            Ok(r) => (r.status(), r.into_json::<Value>().unwrap_or(Value::Null)),
            Err(ureq::Error::Status(s, r)) => (s, r.into_json::<Value>().unwrap_or(Value::Null)),
            Err(e) => panic!("MCP: {e}"),
        };
        assert_eq!(status, 200, "MCP {body}: {value}");
        value
    };
    let init = mcp(
        &cluster.nodes[1],
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {},
            "clientInfo": {"name": "cluster-test", "version": "1"}}}),
    );
    assert!(init["result"]["serverInfo"].is_object(), "{init}");
    let answer = mcp(
        &cluster.nodes[1],
        json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
            "name": "execute", "arguments": {"session_id": id, "code": "x * 10"}}}),
    );
    let text = answer["result"]["content"].to_string();
    assert!(text.contains("420"), "MCP execute through n2: {answer}");
    let made = mcp(
        &cluster.nodes[0],
        json!({"jsonrpc": "2.0", "id": 3, "method": "tools/call", "params": {
            "name": "create_session", "arguments": {"language": "python"}}}),
    );
    let made_text = made["result"]["content"][0]["text"].as_str().unwrap_or("");
    let made_id = made_text
        .lines()
        .find_map(|l| l.strip_prefix("session_id: "))
        .unwrap_or_else(|| panic!("create_session over MCP: {made}"))
        .trim()
        .to_string();

    // The key's sessions across the cluster, from any node.
    for n in &cluster.nodes {
        let (status, list) = call(n, key, "GET", "/v1/sessions", None);
        assert_eq!(status, 200);
        let ids: Vec<&str> = list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        for (sid, _) in sessions {
            assert!(
                ids.contains(&sid.as_str()),
                "{sid} missing from {}'s list",
                n.name
            );
        }
        assert!(ids.contains(&id.as_str()) && ids.contains(&made_id.as_str()));
    }
    for sid in [&id, &made_id] {
        let (status, _) = call(
            &cluster.nodes[1],
            key,
            "DELETE",
            &format!("/v1/sessions/{sid}"),
            None,
        );
        assert_eq!(status, 204);
    }
}

/// The idle pool members node `node` publishes: (member id, pool), read through etcd's JSON
/// gateway (from the host, on the registry network).
fn idle_members(node: &str) -> Vec<(String, String)> {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD;
    let prefix = format!("/sandpit/idle/{node}/");
    // The prefix's range ends where its last byte ('/') is one more ('0').
    let end = format!("/sandpit/idle/{node}0");
    let answer: Value = ureq::post("http://198.18.1.21:2379/v3/kv/range")
        .timeout(Duration::from_secs(5))
        .send_json(json!({"key": b64.encode(&prefix), "range_end": b64.encode(&end)}))
        .expect("etcd's range")
        .into_json()
        .expect("etcd's JSON");
    let decode = |v: &Value| String::from_utf8(b64.decode(v.as_str().unwrap()).unwrap()).unwrap();
    answer["kvs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|kv| {
            let key = decode(&kv["key"]);
            let value: Value =
                serde_json::from_str(&decode(&kv["value"])).expect("an idle member's JSON");
            (
                key[prefix.len()..].to_string(),
                value["pool"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// A node's count of claims by `outcome` (its `/metrics`).
fn claims(node: &Node, key: &str, outcome: &str) -> u64 {
    let text = req("GET", &format!("{}/metrics", node.url), key)
        .call()
        .expect("metrics")
        .into_string()
        .unwrap();
    let line = format!("sandpit_pool_claims_total{{outcome=\"{outcome}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(line.as_str()))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

/// Waits until node `node` publishes one idle python member other than `not`; returns it.
fn one_idle_python(node: &str, not: &[String]) -> String {
    let mut seen = Vec::new();
    let found = eventually(Duration::from_secs(60), || {
        seen = idle_members(node);
        seen.len() == 1 && seen[0].1 == "[\"python\"]" && !not.contains(&seen[0].0)
    });
    assert!(
        found,
        "node {node} publishes {seen:?}, not one new idle python member"
    );
    seen[0].0.clone()
}

/// Node 3 keeps a warm pool of one python sandbox; nodes 1 and 2 keep none. One-shot runs
/// through nodes 1 and 2 claim node 3's idle member through etcd (its entry is deleted in a
/// transaction that succeeds once) and run there: node 1's engine opens nothing, node 3 holds
/// the member for the run. Runs through nodes 1 and 2 at the same moment for the one member:
/// exactly one claim wins, the other runs are served where they came in. Node 3 then goes
/// back to no pool (its server restarted: its sessions adopted, its pool closed).
fn pool_members_are_claimed_across_nodes(cluster: &mut Cluster, key: &str) {
    let n3 = &mut cluster.nodes[2];
    n3.stop();
    n3.pool = "python=1".into();
    n3.start();
    let first = one_idle_python("n3", &[]);
    let run = |via: &Node| -> (u16, Value) {
        call(
            via,
            key,
            "POST",
            "/v1/run",
            Some(json!({"language": "python", "code": "print(6 * 7)"})),
        )
    };
    let (n1, n2, n3) = (&cluster.nodes[0], &cluster.nodes[1], &cluster.nodes[2]);
    let on_n1 = sandpit_containers(1).len();
    let (won, held) = (claims(n1, key, "won"), claims(n3, key, "held"));
    let (status, body) = run(n1);
    assert_eq!(status, 200, "a run through n1: {body}");
    assert_eq!(body["stdout"], "42\n", "{body}");
    assert_eq!(claims(n1, key, "won"), won + 1, "n1 claimed n3's member");
    assert_eq!(
        claims(n3, key, "held"),
        held + 1,
        "n3 held its member for the run"
    );
    assert_eq!(
        sandpit_containers(1).len(),
        on_n1,
        "n1's engine opened a sandbox for a run n3's pool served"
    );
    assert!(
        !idle_members("n3").iter().any(|(id, _)| *id == first),
        "the claimed member is still published"
    );

    // Two nodes, two runs each, at the same moment, for the one idle member.
    let second = one_idle_python("n3", std::slice::from_ref(&first));
    let won_before = claims(n1, key, "won") + claims(n2, key, "won");
    let lost_before = claims(n1, key, "lost") + claims(n2, key, "lost");
    let held_before = claims(n3, key, "held");
    let gone_before = claims(n3, key, "gone");
    let barrier = std::sync::Barrier::new(4);
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let runs: Vec<_> = [n1, n2, n1, n2]
            .into_iter()
            .map(|via| {
                let barrier = &barrier;
                s.spawn(move || {
                    barrier.wait();
                    run(via)
                })
            })
            .collect();
        runs.into_iter().map(|r| r.join().unwrap()).collect()
    });
    for (status, body) in &answers {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(body["stdout"], "42\n", "{body}");
    }
    let won = claims(n1, key, "won") + claims(n2, key, "won") - won_before;
    let lost = claims(n1, key, "lost") + claims(n2, key, "lost") - lost_before;
    assert_eq!(won, 1, "claims of one member that won");
    assert_eq!(claims(n3, key, "held"), held_before + 1);
    assert_eq!(
        claims(n3, key, "gone"),
        gone_before,
        "a claim found its member gone"
    );
    eprintln!(
        "four runs at once for member {second}: one claim won, {lost} lost their transaction"
    );

    // MCP's run_code claims too (for a key with no sandbox of its runs parked on n2).
    let third = one_idle_python("n3", &[first, second]);
    let held_before = claims(n3, key, "held");
    let other_key = add_key("claims-over-mcp");
    let response = req("POST", &format!("{}/mcp", n2.url), &other_key)
        .set("Accept", "application/json, text/event-stream")
        .set("MCP-Protocol-Version", "2025-06-18")
        .send_json(
            json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": {
            "name": "run_code", "arguments": {"language": "python", "code": "print(6 * 7)"}}}),
        )
        .expect("MCP run_code through n2");
    let answer: Value = response.into_json().unwrap();
    assert!(
        answer["result"]["content"].to_string().contains("42"),
        "{answer}"
    );
    assert_eq!(
        claims(n3, key, "held"),
        held_before + 1,
        "MCP's run_code through n2 ran on n3's member {third}"
    );

    let n3 = &mut cluster.nodes[2];
    n3.stop();
    n3.pool = String::new();
    n3.start();
}

/// A key made with `--cluster` works on every node; its revocation reaches every node
/// within a second.
fn keys_reach_every_node(cluster: &Cluster, key: &str) {
    let second = add_key("revoked-soon");
    for n in &cluster.nodes {
        let (status, _) = call(n, &second, "GET", "/v1/sessions", None);
        assert_eq!(status, 200, "a new key on {}", n.name);
    }
    let (code, out, _) = cli(&["keys", "list", "--cluster", ETCD]);
    assert_eq!(code, 0);
    let id = out
        .lines()
        .find(|l| l.contains("revoked-soon"))
        .and_then(|l| l.split_whitespace().next())
        .expect("the key listed")
        .to_string();
    let (code, _, err) = cli(&["keys", "revoke", &id, "--cluster", ETCD]);
    assert_eq!(code, 0, "{err}");
    let revoked_at = Instant::now();
    for n in &cluster.nodes {
        let refused = eventually(Duration::from_secs(1), || {
            call(n, &second, "GET", "/v1/sessions", None).0 == 401
        });
        assert!(
            refused,
            "node {} still takes the revoked key after 1 s",
            n.name
        );
    }
    eprintln!(
        "revocation reached every node in {:?}",
        revoked_at.elapsed()
    );
    let (status, _) = call(&cluster.nodes[0], key, "GET", "/v1/sessions", None);
    assert_eq!(status, 200, "the other key still works");
}

/// Two of three etcd members stopped: open sessions serve, creates fail fast with 503, a
/// delete finishes and its record goes when the quorum is back.
fn etcd_without_quorum(cluster: &Cluster, key: &str, sessions: &[(String, String)]) {
    let (doomed, doomed_node) = open(&cluster.nodes[0], key, json!({"language": "python"}));
    let records_before = records_total();
    let pids: Vec<u32> = [2, 3]
        .iter()
        .map(|j| {
            std::fs::read_to_string(format!("/run/spc/e{j}.pid"))
                .unwrap()
                .trim()
                .parse()
                .unwrap()
        })
        .collect();
    for pid in &pids {
        kill(*pid, "-KILL");
    }
    std::thread::sleep(Duration::from_secs(1));
    for (id, node) in sessions.iter().take(4) {
        let owner = by_name(&cluster.nodes, node);
        let via = other(&cluster.nodes, node, "");
        for n in [owner, via] {
            let (status, body) = execute(n, key, id, "1 + 1");
            if status != 200 {
                // Ruby and JavaScript sessions answer `execute` in their own kernels.
                assert!(
                    status < 500,
                    "{id} via {} without quorum: {status} {body}",
                    n.name
                );
            }
        }
    }
    // Creates: 503 engine_unavailable, fast, saying the registry is out of reach.
    let started = Instant::now();
    let (status, body) = call(
        &cluster.nodes[1],
        key,
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python"})),
    );
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "engine_unavailable");
    assert!(
        body["message"].as_str().unwrap().contains("registry"),
        "{body}"
    );
    assert!(
        took < Duration::from_secs(8),
        "a create took {took:?} to fail"
    );
    eprintln!("a create without quorum failed in {took:?}");
    // A delete finishes on its node.
    let (status, body) = call(
        by_name(&cluster.nodes, &doomed_node),
        key,
        "DELETE",
        &format!("/v1/sessions/{doomed}"),
        None,
    );
    assert_eq!(status, 204, "delete without quorum: {body}");
    assert!(!sandpit_containers(doomed_node[1..].parse().unwrap()).contains(&doomed));
    for j in ["2", "3"] {
        script(&["etcd", j]);
    }
    let reconciled = eventually(Duration::from_secs(30), || {
        records_total() == records_before - 1
    });
    assert!(reconciled, "the deleted session's record is still in etcd");
    let back = eventually(Duration::from_secs(30), || {
        call(
            &cluster.nodes[1],
            key,
            "POST",
            "/v1/sessions",
            Some(json!({"language": "python", "node": "n2"})),
        )
        .0 == 201
    });
    assert!(back, "creates work again once etcd has a quorum");
}

/// Node 3 cut from etcd but not from clients or nodes: its sessions keep answering, directly
/// and through others, no other node takes them, and it rejoins when the link is back.
fn a_node_cut_from_etcd_keeps_serving(cluster: &Cluster, key: &str, sessions: &[(String, String)]) {
    let ttl = Duration::from_secs(5);
    let of_n3: Vec<&String> = sessions
        .iter()
        .filter(|(_, n)| n == "n3")
        .map(|(id, _)| id)
        .collect();
    assert!(!of_n3.is_empty());
    ip(&["-n", "spc-sw", "link", "set", "spc-n3r", "down"]);
    std::thread::sleep(ttl + Duration::from_secs(4));
    assert_eq!(node_state("n3"), "away", "{:?}", status());
    for id in &of_n3 {
        for via in [&cluster.nodes[2], &cluster.nodes[0]] {
            let (status, body) = call(
                via,
                key,
                "POST",
                &format!("/v1/sessions/{id}/commands"),
                Some(json!({"command": "echo still"})),
            );
            assert_eq!(
                status, 200,
                "{id} via {} while n3 is cut off: {body}",
                via.name
            );
        }
    }
    for _ in 0..3 {
        let (_, node) = open(&cluster.nodes[0], key, json!({"language": "ruby"}));
        assert_ne!(node, "n3", "a node out of the registry took a session");
    }
    ip(&["-n", "spc-sw", "link", "set", "spc-n3r", "up"]);
    assert!(
        eventually(Duration::from_secs(20), || node_state("n3") == "live"),
        "n3 did not rejoin: {:?}",
        status()
    );
    for id in &of_n3 {
        let (status, _) = call(
            &cluster.nodes[1],
            key,
            "POST",
            &format!("/v1/sessions/{id}/commands"),
            Some(json!({"command": "true"})),
        );
        assert_eq!(status, 200, "{id} after n3 rejoined");
    }
}

/// Node 2's engine restarts: its sessions come back, files kept.
fn an_engine_restart_is_survived(cluster: &Cluster, key: &str, sessions: &[(String, String)]) {
    let (id, _) = sessions
        .iter()
        .find(|(_, n)| n == "n2")
        .expect("a session of n2");
    let (status, _) = call(
        &cluster.nodes[0],
        key,
        "POST",
        &format!("/v1/sessions/{id}/commands"),
        Some(json!({"command": "echo kept > before-restart.txt"})),
    );
    assert_eq!(status, 200);
    kill(dockerd_pid(2), "-TERM");
    let gone = eventually(Duration::from_secs(60), || {
        !std::path::Path::new("/run/spc/n2/docker.pid").exists()
    });
    assert!(gone, "node 2's engine did not stop");
    script(&["dockerd", "2"]);
    let mut last = (0, Value::Null);
    let back = eventually(Duration::from_secs(60), || {
        last = call(
            &cluster.nodes[0],
            key,
            "POST",
            &format!("/v1/sessions/{id}/commands"),
            Some(json!({"command": "cat before-restart.txt"})),
        );
        last.0 == 200 && last.1["stdout"] == "kept\n"
    });
    assert!(
        back,
        "session {id} of n2 after its engine restarted: {last:?}\n{}",
        cluster.nodes[1].log()
    );
}

/// Node 2's server restarts (SIGTERM, then started again within its lease): it adopts its
/// sessions as a single server does.
fn a_server_restart_adopts_its_sessions(
    cluster: &mut Cluster,
    key: &str,
    sessions: &[(String, String)],
) {
    let (id, _) = sessions
        .iter()
        .find(|(_, n)| n == "n2")
        .expect("a session of n2");
    cluster.nodes[1].stop();
    cluster.nodes[1].start();
    let (status, body) = call(
        &cluster.nodes[2],
        key,
        "POST",
        &format!("/v1/sessions/{id}/commands"),
        Some(json!({"command": "cat before-restart.txt"})),
    );
    assert_eq!(
        status, 200,
        "session {id} after n2's server restarted: {body}"
    );
    assert_eq!(body["stdout"], "kept\n");
    assert_eq!(node_state("n2"), "live");
}

fn orphans_are_removed(cluster: &Cluster, orphan: &str) {
    let _ = cluster;
    let removed = eventually(Duration::from_secs(90), || {
        !sandpit_containers(2).contains(&orphan.to_string())
    });
    assert!(removed, "the orphan container is still on node 2");
}

/// Node 1 (its server and its engine) killed by PID: its sessions answer 410 saying so,
/// through any node, and are never recreated; new sessions go elsewhere. Started again, it
/// removes its fenced containers and takes new sessions.
fn a_lost_node_is_fenced_and_comes_back(
    cluster: &mut Cluster,
    key: &str,
    sessions: &[(String, String)],
) {
    let of_n1: Vec<String> = sessions
        .iter()
        .filter(|(_, n)| n == "n1")
        .map(|(id, _)| id.clone())
        .collect();
    assert!(!of_n1.is_empty());
    // A snapshot of one of them (the store is a folder every node shares here).
    let (status, body) = call(
        &cluster.nodes[1],
        key,
        "POST",
        &format!("/v1/sessions/{}/snapshots", of_n1[0]),
        Some(json!({"name": "before-the-loss"})),
    );
    assert_eq!(status, 201, "snapshot through n2: {body}");
    let killed_at = Instant::now();
    cluster.nodes[0].kill();
    kill(dockerd_pid(1), "-KILL");
    let id = &of_n1[0];
    let lost = eventually(Duration::from_secs(30), || {
        call(
            &cluster.nodes[1],
            key,
            "GET",
            &format!("/v1/sessions/{id}"),
            None,
        )
        .0 == 410
    });
    assert!(lost, "session {id} of the killed node does not answer 410");
    eprintln!("node lost to 410 in {:?}", killed_at.elapsed());
    for id in &of_n1 {
        for via in &cluster.nodes[1..] {
            let (status, body) = execute(via, key, id, "1");
            assert_eq!(status, 410, "{id} via {}: {body}", via.name);
            let message = body["message"].as_str().unwrap();
            assert!(
                message.contains("node n1") && message.contains("lost"),
                "{body}"
            );
        }
    }
    let (_, body) = call(
        &cluster.nodes[2],
        key,
        "GET",
        &format!("/v1/sessions/{id}"),
        None,
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("before-the-loss"),
        "the 410 names the last snapshot: {body}"
    );
    // Another key learns nothing of the session.
    let stranger = add_key("stranger");
    let (status, _) = call(
        &cluster.nodes[1],
        &stranger,
        "GET",
        &format!("/v1/sessions/{id}"),
        None,
    );
    assert_eq!(status, 404);
    for _ in 0..3 {
        let (_, node) = open(&cluster.nodes[1], key, json!({"language": "python"}));
        assert_ne!(node, "n1");
    }
    assert_eq!(node_state("n1"), "lost");

    // Back: the engine first (its containers are still there), then the server.
    script(&["dockerd", "1"]);
    let before = sandpit_containers(1);
    assert!(
        of_n1.iter().any(|id| before.contains(id)),
        "the killed node's containers should still exist before it comes back: {before:?}"
    );
    cluster.nodes[0].start();
    let fenced = eventually(Duration::from_secs(30), || {
        let now = sandpit_containers(1);
        of_n1.iter().all(|id| !now.contains(id))
    });
    assert!(
        fenced,
        "node 1 kept fenced containers: {:?}",
        sandpit_containers(1)
    );
    for id in &of_n1 {
        let (status, _) = execute(&cluster.nodes[0], key, id, "1");
        assert_eq!(status, 410, "{id} through the node that came back");
    }
    let (_, node) = open(
        &cluster.nodes[2],
        key,
        json!({"language": "python", "node": "n1"}),
    );
    assert_eq!(node, "n1", "the node that came back takes sessions again");
}

/// Every session closed through the API; no Sandpit container on any node's engine.
fn nothing_is_left(cluster: &Cluster, key: &str) {
    let (status, list) = call(&cluster.nodes[1], key, "GET", "/v1/sessions", None);
    assert_eq!(status, 200);
    for s in list["sessions"].as_array().unwrap() {
        let id = s["id"].as_str().unwrap();
        let (status, body) = call(
            &cluster.nodes[2],
            key,
            "DELETE",
            &format!("/v1/sessions/{id}"),
            None,
        );
        assert_eq!(status, 204, "closing {id}: {body}");
    }
    for i in 1..=NODES {
        let left = eventually(Duration::from_secs(20), || sandpit_containers(i).is_empty());
        assert!(
            left,
            "node {i} keeps containers: {:?}",
            sandpit_containers(i)
        );
    }
    let _ = Value::Null;
}
