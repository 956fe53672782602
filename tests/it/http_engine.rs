//! The engine going away under load: a server pointed at an engine behind a TLS front this
//! test controls (the machine's own engine keeps running for everyone else) answers 503 with a
//! clear message while the engine is out of reach, loses none of its sessions, and recovers by
//! itself when the engine comes back.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::http_sessions::{server_label_of, stop_and_check_nothing_left};
use crate::server::{eventually, send, session_containers, Server};
use crate::support::TlsEngine;

/// One answer seen by the load: when it was asked and answered (since the start), what,
/// status, body.
type Seen = (Duration, Duration, String, u16, Value);

fn engine_flags(tls: &TlsEngine) -> Vec<String> {
    let d = tls.dir.path();
    vec![
        "--host".into(),
        format!("tcp://{}", tls.addr),
        "--tlsverify".into(),
        "--tlscacert".into(),
        d.join("ca.pem").display().to_string(),
        "--tlscert".into(),
        d.join("cert.pem").display().to_string(),
        "--tlskey".into(),
        d.join("key.pem").display().to_string(),
    ]
}

/// Clients calling the main routes of a server in a loop until stopped (bounded anyway),
/// recording every answer.
struct Load {
    started: Instant,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Seen>>>,
    clients: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    /// One client per main route, `s` being the path of a session with a file `keep.txt`.
    fn start(server: &Server, s: &str) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::new(Mutex::new(Vec::new()));
        let started = Instant::now();
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            (
                "POST",
                "/v1/run".into(),
                Some(json!({"language": "python", "code": "print(1)", "timeout": 20})),
            ),
            (
                "POST",
                format!("{s}/execute"),
                Some(json!({"code": "1 + 1", "timeout": 20})),
            ),
            (
                "POST",
                format!("{s}/commands"),
                Some(json!({"command": "true", "timeout": 20})),
            ),
            ("GET", format!("{s}/files/keep.txt"), None),
            ("GET", s.to_string(), None),
            (
                "POST",
                "/v1/sessions".into(),
                Some(json!({"language": "python", "timeout": 30})),
            ),
        ];
        let mut clients = Vec::new();
        for (i, (method, path, body)) in calls.into_iter().enumerate() {
            let (stop, seen) = (stop.clone(), seen.clone());
            let key = server.key.clone();
            let url = server.url.clone();
            let req = move |method: &str, path: &str| {
                ureq::request(method, &format!("{url}{path}"))
                    .set("Authorization", &format!("Bearer {key}"))
                    .timeout(Duration::from_secs(60))
            };
            clients.push(std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) && n < 2000 {
                    n += 1;
                    let at = started.elapsed();
                    let (status, answer) = send(req(method, &path), body.clone());
                    // Sessions the load made are closed again at once.
                    if status == 201 {
                        if let Some(made) = answer["id"].as_str() {
                            let _ = send(req("DELETE", &format!("/v1/sessions/{made}")), None);
                        }
                    }
                    let done = started.elapsed();
                    seen.lock()
                        .unwrap()
                        .push((at, done, format!("{method} #{i}"), status, answer));
                    std::thread::sleep(Duration::from_millis(50));
                }
            }));
        }
        Load {
            started,
            stop,
            seen,
            clients,
        }
    }

    /// Stops the clients; answers with what they saw.
    fn finish(self) -> Vec<Seen> {
        self.stop.store(true, Ordering::SeqCst);
        for c in self.clients {
            c.join().unwrap();
        }
        let seen = Arc::try_unwrap(self.seen).expect("the clients are done");
        seen.into_inner().unwrap()
    }
}

/// `/health`'s status and body; status 0 and the error when it could not be asked.
fn health(server: &Server) -> (u16, Value) {
    match ureq::get(&format!("{}/health", server.url)).call() {
        Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json::<Value>().unwrap()),
        Err(e) => (0, Value::String(format!("health: {e}"))),
    }
}

/// Calls asked and answered while the engine was away are 503 `engine_unavailable` saying so
/// (a few, not all: a GET may be served before the server notices).
fn check_answers_while_away(seen: &[Seen], away_at: Duration, back_at: Duration) {
    let during: Vec<&Seen> = seen
        .iter()
        .filter(|(at, done, ..)| *at > away_at + Duration::from_millis(500) && *done < back_at)
        .collect();
    eprintln!(
        "while the engine was away: {} calls, {} answered 503",
        during.len(),
        during.iter().filter(|c| c.3 == 503).count()
    );
    assert!(
        during.len() >= 6,
        "too few calls while the engine was away: {}",
        during.len()
    );
    let unavailable = during
        .iter()
        .filter(|(_, _, _, status, _)| *status == 503)
        .count();
    assert!(
        unavailable > 0,
        "no 503 while the engine was away: {during:?}"
    );
    for (at, _, what, status, body) in &during {
        if *status == 200 || *status == 201 {
            // Served without the engine (a file of the session, read before it went?) is
            // impossible for these routes: say so clearly if it happens.
            assert!(
                what.starts_with("GET"),
                "{what} at {at:?} succeeded while the engine was away: {body}"
            );
            continue;
        }
        assert_eq!(
            *status, 503,
            "{what} at {at:?} while the engine was away: expected 503, got {status}: {body}"
        );
        assert_eq!(body["error"], "engine_unavailable", "{what}: {body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("engine"),
            "{what}: the message should say the engine is out of reach: {message:?}"
        );
    }
}

/// Every route answers again once the engine is back: each client's last answer is a success.
fn check_every_route_answers_again(seen: &[Seen], back_at: Duration) {
    let kinds: std::collections::BTreeSet<&String> =
        seen.iter().map(|(_, _, what, ..)| what).collect();
    for kind in kinds {
        let (at, _, what, status, body) =
            seen.iter().rev().find(|(_, _, w, ..)| w == kind).unwrap();
        assert!(
            *status == 200 || *status == 201,
            "{what}'s last call at {at:?}, after the engine came back at {back_at:?}: {status} {body}"
        );
    }
}

/// The session opened before the outage is still there, its files and kernel intact, and
/// nothing the load opened is left (an open the outage cut half-way leaves a container nobody
/// owns; the server removes it by itself once the engine is back).
fn check_nothing_lost_and_nothing_left(server: &Server, id: &str, label: &str) {
    let s = format!("/v1/sessions/{id}");
    let (status, body) = server.json("GET", &s, None);
    assert_eq!(status, 200, "the session was lost in the outage: {body}");
    let r = server
        .req("GET", &format!("{s}/files/keep.txt"))
        .call()
        .unwrap();
    assert_eq!(r.into_string().unwrap(), "kept");
    let (status, out) = server.json(
        "POST",
        &format!("{s}/execute"),
        Some(json!({"code": "2 + 2"})),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["results"], json!([{"text/plain": "4"}]), "{out}");
    assert_eq!(session_containers(id), 1);
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(
        list["sessions"].as_array().unwrap().len(),
        1,
        "sessions made under load were left: {list}"
    );
    let strays = || {
        crate::server::containers_with(label)
            .into_iter()
            .filter(|c| {
                c.labels.get("sandpit.owner").map(String::as_str) != Some("pool")
                    && c.labels.get("sandpit.session").map(String::as_str) != Some(id)
            })
            .map(|c| format!("{} ({:?})", c.name, c.status))
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(90), || strays().is_empty()),
        "containers of sessions that never opened are left: {:?}",
        strays()
    );
}

// One outage under load is one behaviour: its phases are checked by the helpers above
// (a test per phase would repeat the outage).
#[test]
fn the_engine_going_away_is_503_and_the_server_recovers_by_itself() {
    let mut tls = TlsEngine::start();
    let flags = engine_flags(&tls);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let server = Server::start_with(
        &[
            ("SANDPIT_POOL", "python=1"),
            ("SANDPIT_RUNS_PER_KEY", "64"),
            ("SANDPIT_SESSIONS_PER_KEY", "64"),
        ],
        &flags,
    );
    let id = server.python_session();
    let label = server_label_of(&id);
    let s = format!("/v1/sessions/{id}");
    let (status, _) = server.raw_keyed("PUT", &format!("{s}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);
    let (status, out) = server.json(
        "POST",
        &format!("{s}/execute"),
        Some(json!({"code": "x = 1"})),
    );
    assert_eq!(status, 200, "{out}");

    let load = Load::start(&server, &s);
    std::thread::sleep(Duration::from_secs(3));
    let away_at = load.started.elapsed();
    tls.go_away();
    std::thread::sleep(Duration::from_secs(2));
    let (status, health_) = health(&server);
    assert_eq!(status, 503, "/health with the engine away: {health_}");
    assert_eq!(health_["status"], "unavailable", "{health_}");
    assert!(
        health_["error"]
            .as_str()
            .is_some_and(|e| e.contains("engine")),
        "{health_}"
    );
    std::thread::sleep(Duration::from_secs(4));
    let back_at = load.started.elapsed();
    tls.come_back();

    // It recovers by itself: health, then one-shot runs.
    assert!(
        eventually(Duration::from_secs(60), || health(&server).0 == 200),
        "/health did not come back after the engine did:\n{}",
        server.log()
    );
    let recovered = eventually(Duration::from_secs(90), || {
        let run = json!({"language": "python", "code": "print(2)"});
        server.json("POST", "/v1/run", Some(run)).0 == 200
    });
    assert!(recovered, "POST /v1/run did not recover:\n{}", server.log());
    std::thread::sleep(Duration::from_secs(5));
    let seen = load.finish();
    check_answers_while_away(&seen, away_at, back_at);
    check_every_route_answers_again(&seen, back_at);
    check_nothing_lost_and_nothing_left(&server, &id, &label);
    stop_and_check_nothing_left(server, &label);
}
