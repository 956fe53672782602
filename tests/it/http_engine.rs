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

    // Load: clients calling the main routes in a loop until told to stop (bounded anyway).
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
        ("GET", s.clone(), None),
        (
            "POST",
            "/v1/sessions".into(),
            Some(json!({"language": "python", "timeout": 30})),
        ),
    ];
    let mut clients = Vec::new();
    for (i, (method, path, body)) in calls.into_iter().enumerate() {
        let (stop, seen) = (stop.clone(), seen.clone());
        let req_of = {
            let key = server.key.clone();
            let url = server.url.clone();
            move || {
                ureq::request(method, &format!("{url}{path}"))
                    .set("Authorization", &format!("Bearer {key}"))
                    .timeout(Duration::from_secs(60))
            }
        };
        let key = server.key.clone();
        let url = server.url.clone();
        clients.push(std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 2000 {
                n += 1;
                let at = started.elapsed();
                let (status, answer) = send(req_of(), body.clone());
                // Sessions the load made are closed again at once.
                if status == 201 {
                    if let Some(made) = answer["id"].as_str() {
                        let _ = send(
                            ureq::delete(&format!("{url}/v1/sessions/{made}"))
                                .set("Authorization", &format!("Bearer {key}")),
                            None,
                        );
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

    std::thread::sleep(Duration::from_secs(3));
    let away_at = started.elapsed();
    tls.go_away();
    // While it is away: health says so, and calls are 503 engine_unavailable.
    std::thread::sleep(Duration::from_secs(2));
    let r = ureq::get(&format!("{}/health", server.url)).call();
    let (status, health) = match r {
        Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json::<Value>().unwrap()),
        Err(e) => panic!("health: {e}"),
    };
    assert_eq!(status, 503, "/health with the engine away: {health}");
    assert_eq!(health["status"], "unavailable", "{health}");
    assert!(
        health["error"]
            .as_str()
            .is_some_and(|e| e.contains("engine")),
        "{health}"
    );
    std::thread::sleep(Duration::from_secs(4));
    let back_at = started.elapsed();
    tls.come_back();

    // It recovers by itself: health, one-shot runs, the session opened before, new sessions.
    assert!(
        eventually(Duration::from_secs(60), || ureq::get(&format!(
            "{}/health",
            server.url
        ))
        .call()
        .is_ok_and(|r| r.status() == 200)),
        "/health did not come back after the engine did:\n{}",
        server.log()
    );
    let recovered = eventually(Duration::from_secs(90), || {
        server
            .json(
                "POST",
                "/v1/run",
                Some(json!({"language": "python", "code": "print(2)"})),
            )
            .0
            == 200
    });
    assert!(recovered, "POST /v1/run did not recover:\n{}", server.log());
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().unwrap();
    }

    let seen = seen.lock().unwrap();
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
    // Every route answers again once it is back: each client's last answer is a success.
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
    drop(seen);

    // The session opened before the outage is still there, its files intact.
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
    assert_eq!(session_containers(&id), 1);
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(
        list["sessions"].as_array().unwrap().len(),
        1,
        "sessions made under load were left: {list}"
    );
    // An open the outage cut half-way leaves a container nobody owns; the server removes it
    // by itself once the engine is back.
    let strays = || {
        crate::server::containers_with(&label)
            .into_iter()
            .filter(|c| {
                c.labels.get("sandpit.owner").map(String::as_str) != Some("pool")
                    && c.labels.get("sandpit.session") != Some(&id)
            })
            .map(|c| format!("{} ({:?})", c.name, c.status))
            .collect::<Vec<_>>()
    };
    assert!(
        eventually(Duration::from_secs(90), || strays().is_empty()),
        "containers of sessions that never opened are left: {:?}",
        strays()
    );
    stop_and_check_nothing_left(server, &label);
}
