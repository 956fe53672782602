//! `sandpit serve` sessions over HTTP: create (and get-or-create by name), list with filters,
//! show with usage, change, close; expiry by lifetime and by idleness; a restart after which
//! the same id answers with its files intact and its expired siblings are gone.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use crate::server::{containers_with, eventually, send, session_containers, Server};

/// Unix seconds of an RFC 3339 UTC time such as `2026-11-27T20:00:00Z`.
pub fn unix(text: &str) -> i64 {
    let t = text.trim_end_matches('Z');
    let (date, time) = t
        .split_once('T')
        .unwrap_or_else(|| panic!("{text:?} is not an RFC 3339 time"));
    let d: Vec<i64> = date.split('-').map(|x| x.parse().unwrap()).collect();
    let h: Vec<i64> = time
        .split(':')
        .map(|x| x.split('.').next().unwrap().parse().unwrap())
        .collect();
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m, day) = (if d[1] <= 2 { d[0] - 1 } else { d[0] }, d[1], d[2]);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    days * 86_400 + h[0] * 3600 + h[1] * 60 + h[2]
}

pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The `sandpit.server` label of a session's container: what every container of that server
/// carries, warm pool included.
pub fn server_label_of(session: &str) -> String {
    let found = containers_with(&format!("sandpit.session={session}"));
    let c = found
        .first()
        .unwrap_or_else(|| panic!("session {session} has no container"));
    let id = c
        .labels
        .get("sandpit.server")
        .unwrap_or_else(|| panic!("session {session}'s container has no sandpit.server label"));
    format!("sandpit.server={id}")
}

/// Stops the server (closing its key's sessions first) and checks it left no container behind.
pub fn stop_and_check_nothing_left(server: Server, label: &str) {
    drop(server);
    let left = containers_with(label);
    assert!(
        left.is_empty(),
        "containers of the stopped server are left behind: {:?}",
        left.iter().map(|c| &c.name).collect::<Vec<_>>()
    );
}

fn ids(list: &Value) -> Vec<String> {
    let mut ids: Vec<String> = list["sessions"]
        .as_array()
        .unwrap_or_else(|| panic!("not a session list: {list}"))
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

/// A server with no warm pool, for the tests that count a session's containers.
fn server_without_pool() -> Server {
    Server::start_with(&[("SANDPIT_POOL", "")], &[])
}

/// Opens the session "analysis-1" with every setting given (the alias `py` for its language);
/// answers with its id and the creation's answer.
fn open_analysis(server: &Server) -> (String, Value) {
    let (status, a) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({
            "language": "py",
            "name": "analysis-1",
            "env": {"MODE": "test"},
            "network": "none",
            "memory": "256m",
            "cpus": 0.5,
            "max_processes": 64,
            "disk": "256m",
            "policy": "standard",
            "timeout": 600,
            "idle_timeout": 300,
            "run_timeout": 30,
            "metadata": {"user": "alice", "team": "x"}
        })),
    );
    assert_eq!(status, 201, "{a}");
    (a["id"].as_str().unwrap().to_string(), a)
}

#[test]
fn a_session_is_made_with_the_settings_it_was_asked_for() {
    let server = server_without_pool();
    let t0 = now();
    let (id, a) = open_analysis(&server);
    assert!(
        id.len() >= 8 && id.chars().all(|c| c.is_ascii_hexdigit()),
        "id {id:?}"
    );
    assert_eq!(a["name"], "analysis-1");
    assert_eq!(a["language"], "python", "the alias is reported by its name");
    assert_eq!(a["image"], "sandpit/python:latest");
    assert_eq!(a["state"], "running");
    assert_eq!(a["network"], "none");
    assert_eq!(a["idle_timeout"], 300);
    assert_eq!(a["metadata"], json!({"user": "alice", "team": "x"}));
    assert_eq!(a["libraries"], json!([]));
    let created = unix(a["created_at"].as_str().unwrap());
    assert!((created - t0).abs() <= 5, "created_at {}", a["created_at"]);
    assert_eq!(
        unix(a["expires_at"].as_str().unwrap()) - created,
        600,
        "timeout is the lifetime: {a}"
    );
    assert!(
        a.get("usage").is_none_or(Value::is_null),
        "usage only on GET: {a}"
    );
    assert_eq!(session_containers(&id), 1);

    // The environment and the run timeout were applied.
    let out = server.sh(&id, "echo $MODE");
    assert_eq!(out["stdout"], "test\n");
    let (status, slow) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/commands"),
        Some(json!({"command": "sleep 3", "timeout": 1})),
    );
    assert_eq!(status, 200, "{slow}");
    assert_eq!(
        slow["timed_out"], true,
        "a timeout is a result, not an error: {slow}"
    );
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn the_same_name_is_the_same_session() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    let (status, again) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "name": "analysis-1"})),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], id.as_str());
    assert_eq!(
        session_containers(&id),
        1,
        "a second container for the name"
    );
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn sessions_are_listed_by_language_name_and_metadata() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    let b = server.session_with(json!({
        "language": "python", "name": "b", "metadata": {"user": "bob", "team": "x"}
    }));
    let both = {
        let mut v = vec![id.clone(), b.clone()];
        v.sort();
        v
    };
    for (query, expected) in [
        ("", both.clone()),
        ("?language=python", both.clone()),
        ("?language=py", both.clone()),
        ("?language=javascript", vec![]),
        ("?name=analysis-1", vec![id.clone()]),
        ("?name=analysis-2", vec![]),
        ("?metadata.team=x", both.clone()),
        ("?metadata.team=x&metadata.user=bob", vec![b.clone()]),
        ("?metadata.user=alice&name=b", vec![]),
        ("?metadata.user=carol", vec![]),
        ("?language=python&metadata.user=al%69ce", vec![id.clone()]),
    ] {
        let (status, list) = server.json("GET", &format!("/v1/sessions{query}"), None);
        assert_eq!(status, 200, "GET /v1/sessions{query}: {list}");
        assert_eq!(ids(&list), expected, "GET /v1/sessions{query}");
    }
    for query in ["?colour=red", "?language=cobol"] {
        let (status, body) = server.json("GET", &format!("/v1/sessions{query}"), None);
        assert_eq!(status, 400, "GET /v1/sessions{query}: {body}");
        assert_eq!(body["error"], "invalid_input");
    }
    let label = server_label_of(&b);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_session_is_shown_with_what_it_uses_now() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    let (status, shown) = server.json("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 200, "{shown}");
    assert_eq!(shown["id"], id.as_str());
    let usage = &shown["usage"];
    assert_eq!(usage["memory_limit_bytes"], 256u64 << 20, "{usage}");
    // The workdir's disk is a file system of that size: a little of it is its own.
    let disk = usage["disk_limit_bytes"].as_u64().unwrap();
    assert!(
        ((200 << 20)..=(256 << 20)).contains(&disk),
        "disk_limit_bytes for a 256m disk: {usage}"
    );
    for field in [
        "cpu_seconds",
        "memory_bytes",
        "memory_peak_bytes",
        "pids",
        "disk_used_bytes",
        "net_rx_bytes",
        "net_tx_bytes",
    ] {
        assert!(usage[field].is_number(), "usage.{field} missing: {usage}");
    }
    assert!(usage["memory_bytes"].as_u64().unwrap() > 0, "{usage}");
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

/// Changes the session's lifetime (from now), idle timeout and metadata (merged); answers with
/// the session as changed.
fn change_analysis(server: &Server, id: &str) -> Value {
    let (status, changed) = server.json(
        "PATCH",
        &format!("/v1/sessions/{id}"),
        Some(json!({"timeout": 3600})),
    );
    assert_eq!(status, 200, "{changed}");
    let expires = unix(changed["expires_at"].as_str().unwrap());
    assert!(
        (expires - (now() + 3600)).abs() <= 5,
        "PATCH timeout makes it expire an hour from now: {changed}"
    );
    let (status, changed) = server.json(
        "PATCH",
        &format!("/v1/sessions/{id}"),
        Some(json!({"idle_timeout": 600, "metadata": {"team": "y", "stage": "2"}})),
    );
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["idle_timeout"], 600);
    assert_eq!(
        changed["metadata"],
        json!({"user": "alice", "team": "y", "stage": "2"})
    );
    changed
}

#[test]
fn a_session_changes_its_lifetime_idle_timeout_and_metadata() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    change_analysis(&server, &id);
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn bad_changes_are_refused_and_change_nothing() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    let before = change_analysis(&server, &id);
    // Not even the parts that were fine.
    for bad in [
        json!({"timeout": 0}),
        json!({"timeout": 10_000_000}),
        json!({"timeout": -5}),
        json!({"timeout": "soon"}),
        json!({"colour": "red"}),
        json!({"timeout": 100, "metadata": {"bad key!": "x"}}),
        json!({"idle_timeout": 5, "metadata": {"": "x"}}),
    ] {
        let (status, body) = server.json("PATCH", &format!("/v1/sessions/{id}"), Some(bad.clone()));
        assert_eq!(status, 400, "PATCH {bad}: {body}");
        assert_eq!(body["error"], "invalid_input", "PATCH {bad}: {body}");
        let (_, now_) = server.json("GET", &format!("/v1/sessions/{id}"), None);
        for field in ["expires_at", "idle_timeout", "metadata", "name"] {
            assert_eq!(
                now_[field], before[field],
                "PATCH {bad} was refused but changed {field}"
            );
        }
    }
    let label = server_label_of(&id);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_closed_session_is_gone_with_its_container_and_frees_its_name() {
    let server = server_without_pool();
    let (id, _) = open_analysis(&server);
    let b = server.session_with(json!({"language": "python", "name": "b"}));
    let (status, body) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 204, "{body}");
    let (status, body) = server.json("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    assert!(body["message"].as_str().unwrap().contains(&id), "{body}");
    let (status, _) = server.json("DELETE", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 404, "closing twice");
    assert_eq!(
        session_containers(&id),
        0,
        "the closed session's container is left"
    );
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(ids(&list), vec![b.clone()]);
    // Its name is free again: get-or-create makes a new one.
    let (status, fresh) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "name": "analysis-1"})),
    );
    assert_eq!(status, 201, "{fresh}");
    assert_ne!(fresh["id"], id.as_str());
    let label = server_label_of(&b);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn sessions_expire_by_lifetime_and_by_idleness() {
    let server = Server::start_with(
        &[("SANDPIT_POOL", ""), ("SANDPIT_SWEEP_INTERVAL", "1")],
        &[],
    );
    let short = server.session_with(json!({"language": "python", "timeout": 3}));
    let idle = server.session_with(json!({"language": "python", "idle_timeout": 2}));
    let busy = server.session_with(json!({"language": "python", "idle_timeout": 3}));
    let extended = server.session_with(json!({"language": "python", "timeout": 3}));
    let keeper = server.session_with(json!({"language": "python"}));
    let opened = Instant::now();
    let (status, body) = server.json(
        "PATCH",
        &format!("/v1/sessions/{extended}"),
        Some(json!({"timeout": 120})),
    );
    assert_eq!(status, 200, "{body}");

    // A run longer than the idle timeout is not cut short, and the session lives on after it.
    let (status, out) = server.json(
        "POST",
        &format!("/v1/sessions/{busy}/run"),
        Some(json!({"code": "import time\ntime.sleep(5)\nprint('done')"})),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["stdout"], "done\n", "{out}");
    let (status, body) = server.json("GET", &format!("/v1/sessions/{busy}"), None);
    assert_eq!(
        status, 200,
        "the session was closed under its own run: {body}"
    );

    // Watched through the list, which is not a call on the session (a GET of the session is,
    // and would keep it from idling).
    let gone = |id: &str| {
        let (_, list) = server.json("GET", "/v1/sessions", None);
        !ids(&list).contains(&id.to_string()) && session_containers(id) == 0
    };
    assert!(
        eventually(Duration::from_secs(15), || gone(&short)),
        "a session with a 3 s lifetime still answers (or has a container) {:?} after it opened",
        opened.elapsed()
    );
    assert!(
        eventually(Duration::from_secs(10), || gone(&idle)),
        "a session idle past its 2 s idle timeout was not closed"
    );
    assert!(
        eventually(Duration::from_secs(10), || gone(&busy)),
        "the session left idle after its run was not closed"
    );
    for id in [&short, &idle, &busy] {
        let (status, body) = server.json("GET", &format!("/v1/sessions/{id}"), None);
        assert_eq!(status, 404, "{body}");
    }
    // The extended and the plain ones live on.
    for id in [&extended, &keeper] {
        let (status, body) = server.json("GET", &format!("/v1/sessions/{id}"), None);
        assert_eq!(status, 200, "session {id} was closed too early: {body}");
    }
    let (_, list) = server.json("GET", "/v1/sessions", None);
    let mut expected = vec![extended.clone(), keeper.clone()];
    expected.sort();
    assert_eq!(ids(&list), expected);
    let (_, metrics) = server.json("GET", "/metrics", None);
    let metrics = metrics.as_str().unwrap_or_default().to_string();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("sandpit_sessions_open") && l.trim_end().ends_with(" 2")),
        "metrics should count 2 open sessions:\n{metrics}"
    );
    let label = server_label_of(&keeper);
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_restarted_server_keeps_a_session_with_its_files_env_and_name() {
    let mut server = Server::start();
    let keeper = server.session_with(json!({
        "language": "python", "name": "keeper", "metadata": {"user": "alice"}, "run_timeout": 20
    }));
    let label = server_label_of(&keeper);
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let (status, body) = server.raw_keyed(
        "PUT",
        &format!("/v1/sessions/{keeper}/files/data/blob.bin"),
        &bytes,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = server.raw_keyed(
        "PUT",
        &format!("/v1/sessions/{keeper}/files/notes.txt?mode=600"),
        b"kept across restarts",
    );
    assert_eq!(status, 201, "{body}");
    let (status, _) = server.json(
        "PUT",
        &format!("/v1/sessions/{keeper}/env"),
        Some(json!({"env": {"MODE": "kept"}})),
    );
    assert_eq!(status, 200);
    let (_, before) = server.json("GET", &format!("/v1/sessions/{keeper}"), None);
    server.restart();

    let (status, after) = server.json("GET", &format!("/v1/sessions/{keeper}"), None);
    assert_eq!(
        status,
        200,
        "the session did not survive the restart: {after}\n{}",
        server.log()
    );
    for field in [
        "id",
        "name",
        "language",
        "metadata",
        "created_at",
        "expires_at",
        "idle_timeout",
    ] {
        assert_eq!(
            after[field], before[field],
            "{field} changed across the restart"
        );
    }
    let r = server
        .req("GET", &format!("/v1/sessions/{keeper}/files/data/blob.bin"))
        .call()
        .expect("read the file after the restart");
    let mut got = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut got).unwrap();
    assert!(got == bytes, "the file's bytes changed across the restart");
    let (status, listing) = server.json(
        "GET",
        &format!("/v1/sessions/{keeper}/files?recursive=true"),
        None,
    );
    assert_eq!(status, 200);
    let notes = listing["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["path"] == "notes.txt")
        .unwrap_or_else(|| panic!("notes.txt is missing: {listing}"));
    assert_eq!(notes["mode"], "600");
    let (_, env) = server.json("GET", &format!("/v1/sessions/{keeper}/env"), None);
    assert_eq!(env, json!({"env": {"MODE": "kept"}}));
    assert_eq!(
        server.sh(&keeper, "echo $MODE; cat notes.txt")["stdout"],
        "kept\nkept across restarts"
    );
    let (status, out) = server.json(
        "POST",
        &format!("/v1/sessions/{keeper}/execute"),
        Some(json!({"code": "open('notes.txt').read()"})),
    );
    assert_eq!(status, 200, "{out}");
    assert_eq!(
        out["results"][0]["text/plain"], "'kept across restarts'",
        "{out}"
    );
    // Get-or-create by name finds it again.
    let (status, again) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "name": "keeper"})),
    );
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["id"], keeper.as_str());
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_restarted_server_drops_the_sessions_that_expired_while_it_was_away() {
    let mut server = Server::start();
    let keeper = server.python_session();
    let sibling = server.session_with(json!({"language": "python", "timeout": 4}));
    let label = server_label_of(&keeper);
    let sibling_expires = {
        let (_, s) = server.json("GET", &format!("/v1/sessions/{sibling}"), None);
        unix(s["expires_at"].as_str().unwrap())
    };

    // Down past the sibling's end, then up again on the same data folder.
    server.stop();
    while now() <= sibling_expires + 1 {
        std::thread::sleep(Duration::from_millis(200));
    }
    server.restart();

    // Gone, container and all.
    let (status, body) = server.json("GET", &format!("/v1/sessions/{sibling}"), None);
    assert_eq!(status, 404, "{body}");
    assert!(
        eventually(Duration::from_secs(10), || session_containers(&sibling)
            == 0),
        "the expired sibling's container is still there after the restart"
    );
    let (_, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(ids(&list), vec![keeper.clone()]);
    // The previous process's warm pool went with it: at most this process's pool remains.
    let pool = containers_with(&label)
        .into_iter()
        .filter(|c| c.labels.get("sandpit.owner").map(String::as_str) == Some("pool"))
        .count();
    assert!(
        pool <= 1,
        "{pool} warm pool containers for a pool of 1: the old ones leaked"
    );
    stop_and_check_nothing_left(server, &label);
}

#[test]
fn a_session_lost_while_the_server_was_away_says_so_after_the_restart() {
    let mut server = Server::start();
    let lost = server.python_session();
    let kept = server.python_session();
    let label = server_label_of(&kept);
    server.stop();
    // Its sandbox goes while no server runs.
    crate::server::close_session(&lost);
    server.restart();
    let (status, body) = server.json("GET", &format!("/v1/sessions/{lost}"), None);
    assert_eq!(
        (status, body["error"].as_str()),
        (410, Some("gone")),
        "{body}"
    );
    assert!(
        body["message"].as_str().is_some_and(|m| m.contains("lost")),
        "{body}"
    );
    // Only to its own key: another key learns nothing of it.
    let other = server.add_key("other");
    let (status, _) = send(
        server.req_as(&other, "GET", &format!("/v1/sessions/{lost}")),
        None,
    );
    assert_eq!(status, 404);
    let (status, body) = server.json("GET", &format!("/v1/sessions/{kept}"), None);
    assert_eq!(status, 200, "{body}");
    stop_and_check_nothing_left(server, &label);
}
