//! `sandpit serve` keys and ownership, used as a client would: 401 without a valid key (none,
//! wrong, revoked), `Authorization: Bearer` and Pandora Box's `API-KEY` header, `sandpit keys
//! list|revoke`, and sessions that another key cannot see or touch.

use serde_json::{json, Value};

use crate::server::{send, session_containers, Server};

/// Every native route that takes a key, with a body that would be valid.
fn keyed_routes(id: &str) -> Vec<(&'static str, String, Option<Value>)> {
    let s = format!("/v1/sessions/{id}");
    vec![
        (
            "POST",
            "/v1/sessions".into(),
            Some(json!({"language": "python"})),
        ),
        ("GET", "/v1/sessions".into(), None),
        ("GET", s.clone(), None),
        ("PATCH", s.clone(), Some(json!({"timeout": 60}))),
        ("DELETE", s.clone(), None),
        ("POST", format!("{s}/execute"), Some(json!({"code": "1"}))),
        (
            "POST",
            format!("{s}/run"),
            Some(json!({"code": "print(1)"})),
        ),
        (
            "POST",
            format!("{s}/commands"),
            Some(json!({"command": "true"})),
        ),
        ("GET", format!("{s}/files"), None),
        (
            "POST",
            format!("{s}/files/ops"),
            Some(json!({"op": "mkdir", "path": "x"})),
        ),
        ("GET", format!("{s}/files/keep.txt"), None),
        ("DELETE", format!("{s}/files/keep.txt"), None),
        (
            "POST",
            format!("{s}/packages"),
            Some(json!({"packages": ["six"]})),
        ),
        ("GET", format!("{s}/packages"), None),
        ("DELETE", format!("{s}/packages/six"), None),
        ("GET", format!("{s}/env"), None),
        ("PUT", format!("{s}/env"), Some(json!({"env": {"X": "1"}}))),
        (
            "POST",
            "/v1/run".into(),
            Some(json!({"language": "python", "code": "print(1)"})),
        ),
        ("GET", "/metrics".into(), None),
    ]
}

fn assert_unauthorized(what: &str, status: u16, body: &Value, words: &str) {
    assert_eq!(status, 401, "{what}: expected 401, got {status}: {body}");
    assert_eq!(body["error"], "unauthorized", "{what}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(words),
        "{what}: the message should say {words:?}: {message:?}"
    );
}

#[test]
fn every_route_but_health_wants_a_valid_key_and_refusing_changes_nothing() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    let (status, _) =
        server.raw_keyed("PUT", &format!("/v1/sessions/{id}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);

    for (method, path, body) in keyed_routes(&id) {
        let what = format!("{method} {path}");
        // No key at all.
        let req = ureq::request(method, &format!("{}{path}", server.url));
        let (status, answer) = send(req, body.clone());
        assert_unauthorized(&format!("{what} without a key"), status, &answer, "Bearer");
        // A key of the right form that the server never made.
        let req = server.req_as("sp_0000000000000000000000000000000000000000", method, &path);
        let (status, answer) = send(req, body.clone());
        assert_unauthorized(
            &format!("{what} with a wrong key"),
            status,
            &answer,
            "unknown",
        );
        // Garbage in the header.
        let req = ureq::request(method, &format!("{}{path}", server.url))
            .set("Authorization", "Basic dXNlcjpwYXNz");
        let (status, answer) = send(req, body);
        assert_unauthorized(
            &format!("{what} with Basic auth"),
            status,
            &answer,
            "unknown",
        );
    }

    // Nothing changed: the session, its file and its environment are as they were, and no
    // other session was made.
    let (status, list) = server.json("GET", "/v1/sessions", None);
    assert_eq!(status, 200);
    let sessions = list["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 1, "refused requests made sessions: {list}");
    assert_eq!(sessions[0]["id"], id.as_str());
    let r = server
        .req("GET", &format!("/v1/sessions/{id}/files/keep.txt"))
        .call()
        .expect("the file is still there");
    assert_eq!(r.into_string().unwrap(), "kept");
    let (_, env) = server.json("GET", &format!("/v1/sessions/{id}/env"), None);
    assert_eq!(
        env,
        json!({"env": {}}),
        "a refused PUT env changed the environment"
    );
    assert_eq!(session_containers(&id), 1);

    // The routes that need no key.
    for path in ["/health", "/openapi.json", "/docs"] {
        let r = ureq::get(&format!("{}{path}", server.url)).call();
        assert!(
            r.as_ref().is_ok_and(|r| r.status() == 200),
            "GET {path} without a key should answer 200: {r:?}"
        );
    }
}

#[test]
fn bearer_and_api_key_headers_both_work() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    for (header, value) in [
        ("Authorization", format!("Bearer {}", server.key)),
        ("Authorization", format!("bearer {}", server.key)),
        ("API-KEY", server.key.clone()),
        ("api-key", format!("  {}  ", server.key)),
    ] {
        let r = ureq::get(&format!("{}/v1/sessions", server.url))
            .set(header, &value)
            .call();
        assert!(
            r.as_ref().is_ok_and(|r| r.status() == 200),
            "{header}: {value:?} should be accepted: {r:?}"
        );
    }
    // A session made with one header is the same owner's under the other.
    let (status, made) = send(
        ureq::post(&format!("{}/v1/sessions", server.url)).set("API-KEY", &server.key),
        Some(json!({"language": "python", "name": "via-api-key"})),
    );
    assert_eq!(status, 201, "{made}");
    let (status, list) = server.json("GET", "/v1/sessions?name=via-api-key", None);
    assert_eq!(status, 200);
    assert_eq!(list["sessions"][0]["id"], made["id"], "{list}");
}

#[test]
fn keys_list_and_revoke() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let second = server.add_key("second-key");

    let (code, out, err) = server.keys_cli(&["list"]);
    assert_eq!(code, 0, "keys list failed: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("ID")
            && lines[0].contains("NAME")
            && lines[0].contains("PREFIX")
            && lines[0].contains("CREATED")
            && lines[0].contains("LAST USED"),
        "keys list has no header: {out}"
    );
    assert_eq!(lines.len(), 3, "two keys and a header expected: {out}");
    let row = lines
        .iter()
        .find(|l| l.contains("second-key"))
        .unwrap_or_else(|| panic!("second-key is not listed: {out}"));
    let cols: Vec<&str> = row.split_whitespace().collect();
    let key_id = cols[0].to_string();
    assert!(key_id.starts_with("key_"), "{row}");
    assert!(
        second.starts_with(cols[2]),
        "the prefix {} is not the key's start",
        cols[2]
    );
    assert!(
        cols[3].ends_with('Z') && cols[3].contains('T'),
        "created is not a date: {row}"
    );
    assert_eq!(*cols.last().unwrap(), "never", "unused key: {row}");
    assert!(!out.contains(&second), "keys list shows a whole key: {out}");

    // Using it shows when.
    let (status, _) = send(server.req_as(&second, "GET", "/v1/sessions"), None);
    assert_eq!(status, 200);
    let (_, out, _) = server.keys_cli(&["list"]);
    let row = out.lines().find(|l| l.contains("second-key")).unwrap();
    assert!(
        !row.ends_with("never") && row.trim_end().ends_with('Z'),
        "last used should be a date now: {row}"
    );

    // A session of the key outlives nothing: once revoked, the key is refused at once (the
    // running server sees the revocation without a restart).
    let (status, made) = send(
        server.req_as(&second, "POST", "/v1/sessions"),
        Some(json!({"language": "python"})),
    );
    assert_eq!(status, 201, "{made}");
    let sid = made["id"].as_str().unwrap().to_string();
    let (code, _, err) = server.keys_cli(&["revoke", &key_id]);
    assert_eq!(code, 0, "keys revoke failed: {err}");
    assert!(err.contains("revoked"), "{err}");
    for (method, path) in [
        ("GET", "/v1/sessions".to_string()),
        ("GET", format!("/v1/sessions/{sid}")),
        ("DELETE", format!("/v1/sessions/{sid}")),
    ] {
        let (status, body) = send(server.req_as(&second, method, &path), None);
        assert_unauthorized(
            &format!("{method} {path} with a revoked key"),
            status,
            &body,
            "revoked",
        );
    }
    let (_, out, _) = server.keys_cli(&["list"]);
    assert!(
        !out.contains("second-key"),
        "a revoked key is still listed: {out}"
    );
    // The first key is unaffected; and it cannot see the revoked key's session either.
    let (status, body) = server.json("GET", &format!("/v1/sessions/{sid}"), None);
    assert_eq!(status, 404, "{body}");

    // Revoking what does not exist says so.
    let (code, _, err) = server.keys_cli(&["revoke", "key_00000000"]);
    assert_ne!(code, 0, "revoking an unknown key succeeded");
    assert!(
        err.contains("keys list"),
        "the message should point at keys list: {err}"
    );

    // Clean up the revoked key's session: nobody can reach it over HTTP any more.
    drop(server);
    crate::server::close_session(&sid);
    assert_eq!(session_containers(&sid), 0);
}

/// A server with a second key, and a session of the first key with a name, metadata, a file
/// and kernel state; answers with the other key and the session's id.
fn session_and_another_key() -> (Server, String, String) {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let other = server.add_key("other");
    let id = server
        .session_with(json!({"language": "python", "name": "mine", "metadata": {"team": "a"}}));
    let (status, _) =
        server.raw_keyed("PUT", &format!("/v1/sessions/{id}/files/keep.txt"), b"kept");
    assert_eq!(status, 201);
    let (status, _) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({"code": "secret = 7"})),
    );
    assert_eq!(status, 200);
    (server, other, id)
}

/// The owner's session went through what another key tried untouched.
fn check_untouched(server: &Server, id: &str) {
    let (status, info) = server.json("GET", &format!("/v1/sessions/{id}"), None);
    assert_eq!(status, 200, "{info}");
    let (status, out) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({"code": "secret"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        out["results"][0]["text/plain"], "7",
        "the kernel lost its state: {out}"
    );
    let r = server
        .req("GET", &format!("/v1/sessions/{id}/files/keep.txt"))
        .call()
        .unwrap();
    assert_eq!(r.into_string().unwrap(), "kept");
    let (_, env) = server.json("GET", &format!("/v1/sessions/{id}/env"), None);
    assert_eq!(env, json!({"env": {}}));
}

#[test]
fn another_key_s_session_looks_exactly_like_one_that_does_not_exist() {
    let (server, other, id) = session_and_another_key();
    // What a session that never existed answers, for comparison.
    let (status, missing) = send(
        server.req_as(&other, "GET", "/v1/sessions/0123456789ab"),
        None,
    );
    assert_eq!(status, 404);

    for (method, path, body) in keyed_routes(&id) {
        if !path.starts_with(&format!("/v1/sessions/{id}")) {
            continue;
        }
        let (status, answer) = send(server.req_as(&other, method, &path), body);
        assert_eq!(
            status, 404,
            "{method} {path} with another key should be 404: {answer}"
        );
        assert_eq!(answer["error"], "not_found", "{method} {path}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert_eq!(
            message.replace(&id, "ID"),
            missing["message"]
                .as_str()
                .unwrap()
                .replace("0123456789ab", "ID"),
            "another key's session must look exactly like one that does not exist"
        );
    }
    // Streaming answers the same 404 before any event.
    let stream = server.sse_open_as(
        &other,
        &format!("/v1/sessions/{id}/run"),
        json!({"code": "print(1)"}),
    );
    assert_eq!(stream.status, 404);

    check_untouched(&server, &id);
}

#[test]
fn another_key_lists_none_of_the_key_s_sessions() {
    let (server, other, id) = session_and_another_key();
    // Its list is empty, whatever the filter.
    for q in ["", "?language=python", "?name=mine", "?metadata.team=a"] {
        let (status, list) = send(
            server.req_as(&other, "GET", &format!("/v1/sessions{q}")),
            None,
        );
        assert_eq!(status, 200);
        assert_eq!(
            list,
            json!({"sessions": []}),
            "GET /v1/sessions{q} with another key"
        );
    }
    check_untouched(&server, &id);
}

#[test]
fn the_same_name_gives_another_key_a_session_of_its_own() {
    let (server, other, id) = session_and_another_key();
    // Get-or-create by the same name makes the other key a session of its own.
    let (status, theirs) = send(
        server.req_as(&other, "POST", "/v1/sessions"),
        Some(json!({"language": "python", "name": "mine"})),
    );
    assert_eq!(status, 201, "{theirs}");
    assert_ne!(
        theirs["id"],
        id.as_str(),
        "another key was handed this key's session"
    );
    let theirs = theirs["id"].as_str().unwrap().to_string();
    let (status, _) = send(
        server.req_as(&other, "DELETE", &format!("/v1/sessions/{theirs}")),
        None,
    );
    assert_eq!(status, 204);

    check_untouched(&server, &id);
}
