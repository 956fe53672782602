//! Pause and resume through the HTTP API of a real server: the kernel keeps its state, the
//! lifetime clock stops while paused (the expiry moves by the paused time), a call to a paused
//! session resumes it, and a pause survives a restart of the server.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::Server;

/// Unix seconds of an RFC 3339 UTC time as the API writes it (`2026-11-27T20:00:00Z`).
fn unix(t: &Value) -> i64 {
    let t = t.as_str().unwrap_or_else(|| panic!("not a time: {t}"));
    let n = |range: std::ops::Range<usize>| t[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    let (hh, mm, ss) = (n(11..13), n(14..16), n(17..19));
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + hh * 3600 + mm * 60 + ss
}

/// The session as `GET /v1/sessions` lists it (which, unlike `GET /v1/sessions/{id}`, does not
/// count as a call and so does not resume it).
fn listed(server: &Server, id: &str) -> Value {
    let (status, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(status, 200, "{list}");
    list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("session {id} is not listed: {list}"))
        .clone()
}

fn execute(server: &Server, id: &str, code: &str) -> Value {
    let (status, out) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({"code": code})),
    );
    assert_eq!(status, 200, "{out}");
    out
}

#[test]
fn a_paused_session_keeps_its_kernel_and_its_lifetime_moves() {
    let server = Server::start();
    let id = server.session_with(json!({"language": "python", "timeout": 600}));
    let out = execute(
        &server,
        &id,
        "import time\nx = 41\nstarted = time.monotonic()",
    );
    assert!(out["error"].is_null(), "{out}");
    let before = listed(&server, &id);
    assert_eq!(before["state"], "running");

    let (status, paused) = server.json("POST", &format!("/v1/sessions/{id}/pause"), None);
    assert_eq!(status, 200, "{paused}");
    assert_eq!(paused["state"], "paused");
    // Pausing twice is fine.
    let (status, _) = server.json("POST", &format!("/v1/sessions/{id}/pause"), None);
    assert_eq!(status, 200);
    let paused_at = Instant::now();
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(listed(&server, &id)["state"], "paused");

    let (status, resumed) = server.json("POST", &format!("/v1/sessions/{id}/resume"), None);
    assert_eq!(status, 200, "{resumed}");
    let paused_for = paused_at.elapsed().as_secs() as i64;
    assert_eq!(resumed["state"], "running");
    let moved = unix(&resumed["expires_at"]) - unix(&before["expires_at"]);
    assert!(
        (paused_for - 1..=paused_for + 1).contains(&moved),
        "the expiry moved {moved} s for {paused_for} s paused: {before} -> {resumed}"
    );

    // The kernel's state is there, and its clock saw the pause as time passing.
    let out = execute(
        &server,
        &id,
        "print(x + 1, time.monotonic() - started >= 3)",
    );
    assert_eq!(out["stdout"], "42 True\n", "{out}");

    // A call to a paused session resumes it by itself.
    let (status, _) = server.json("POST", &format!("/v1/sessions/{id}/pause"), None);
    assert_eq!(status, 200);
    let out = execute(&server, &id, "x * 2");
    assert_eq!(out["results"][0]["text/plain"], "82", "{out}");
    assert_eq!(listed(&server, &id)["state"], "running");

    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
}

#[test]
fn a_pause_survives_a_restart_of_the_server() {
    let mut server = Server::start();
    let id = server.session_with(json!({"language": "python", "timeout": 600}));
    let r = server
        .req("PUT", &format!("/v1/sessions/{id}/files/kept.txt"))
        .send_bytes(b"still here")
        .unwrap();
    assert_eq!(r.status(), 201);
    let before = listed(&server, &id);
    let (status, paused) = server.json("POST", &format!("/v1/sessions/{id}/pause"), None);
    assert_eq!(status, 200, "{paused}");
    let paused_at = Instant::now();

    server.restart();
    let after = listed(&server, &id);
    assert_eq!(after["state"], "paused", "the pause is kept: {after}");
    assert_eq!(after["expires_at"], before["expires_at"]);
    std::thread::sleep(Duration::from_secs(2));

    let (status, resumed) = server.json("POST", &format!("/v1/sessions/{id}/resume"), None);
    assert_eq!(status, 200, "{resumed}");
    let paused_for = paused_at.elapsed().as_secs() as i64;
    let moved = unix(&resumed["expires_at"]) - unix(&before["expires_at"]);
    assert!(
        (paused_for - 1..=paused_for + 1).contains(&moved),
        "the expiry moved {moved} s for {paused_for} s paused across a restart: {before} -> {resumed}"
    );
    let (status, ran) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/commands"),
        Some(json!({"command": "cat kept.txt"})),
    );
    assert_eq!(
        (status, ran["stdout"].as_str()),
        (200, Some("still here")),
        "{ran}"
    );
    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204);
}

#[test]
fn rfc3339_times_read_back() {
    assert_eq!(unix(&json!("1970-01-01T00:00:00Z")), 0);
    assert_eq!(unix(&json!("2000-03-01T00:00:01Z")), 951_868_801);
    assert_eq!(unix(&json!("2026-11-27T20:00:00Z")), 1_795_809_600);
}

/// Two calls that resume (or pause) a session at once both succeed: the engine refuses the
/// second one (Docker with a 500 "is not paused"), and the session sees that the container is
/// where the call wanted it anyway.
#[tokio::test(flavor = "multi_thread")]
async fn pausing_and_resuming_twice_at_once_both_succeed() {
    let s = crate::support::python().await.open().await.unwrap();
    s.execute("kept = 41").await.unwrap();
    let (a, b) = tokio::join!(s.pause(), s.pause());
    a.unwrap();
    b.unwrap();
    assert!(s.is_paused());
    let (a, b) = tokio::join!(s.resume(), s.resume());
    a.unwrap();
    b.unwrap();
    s.resume()
        .await
        .expect("resuming a running session changes nothing");
    assert!(!s.is_paused());
    let r = s.execute("print(kept + 1)").await.unwrap();
    assert_eq!(r.stdout, "42\n", "{r:?}");
    s.close().await.unwrap();
}
