//! Snapshots over HTTP, against the S3-protocol server `scripts/test.sh` starts: a session
//! snapshotted by name (once) or by a default name, listed and downloaded only by its key,
//! restored into a new session with its files, modes and environment, deleted; a server
//! without a store says how to configure one.

use serde_json::json;

use crate::server::{send, Server};
use crate::snapshots::{s3_url, sha256_hex};

/// A server with a store of its own for `test`, a Python session with `MODE=test`, an
/// executable file and a file its code wrote, and its snapshot "base"; answers with the
/// session's id.
fn server_with_a_snapshot(test: &str) -> (Server, String) {
    let url = s3_url(test);
    let server = Server::start_with(&[("SANDPIT_SNAPSHOTS", url.as_str())], &[]);
    let id = server.session_with(json!({"language": "python", "env": {"MODE": "test"}}));
    let r = server
        .req(
            "PUT",
            &format!("/v1/sessions/{id}/files/tools/go.sh?mode=755"),
        )
        .send_bytes(b"#!/bin/sh\necho go\n")
        .unwrap();
    assert_eq!(r.status(), 201);
    let (status, _) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/execute"),
        Some(json!({"code": "open('made.txt', 'w').write('by code')\nx = 1"})),
    );
    assert_eq!(status, 200);

    let (status, snap) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/snapshots"),
        Some(json!({"name": "base"})),
    );
    assert_eq!(status, 201, "{snap}");
    assert_eq!(snap["name"], "base");
    assert_eq!(snap["language"], "python");
    assert_eq!(snap["env"]["MODE"], "test");
    assert!(snap["kernel_state"]
        .as_str()
        .unwrap()
        .contains("not included"));
    (server, id)
}

/// Deletes every snapshot of the server's key (204 each), leaving none listed.
fn delete_all(server: &Server) {
    let (_, list) = server.json("GET", "/v1/snapshots", None);
    for s in list["snapshots"].as_array().unwrap() {
        let name = s["name"].as_str().unwrap();
        let (status, _) = server.json("DELETE", &format!("/v1/snapshots/{name}"), None);
        assert_eq!(status, 204);
    }
    let (_, list) = server.json("GET", "/v1/snapshots", None);
    assert_eq!(list["snapshots"], json!([]), "{list}");
}

#[test]
fn a_session_is_snapshotted_once_per_name_or_by_a_default_name() {
    let (server, id) = server_with_a_snapshot("http-named");
    let (status, again) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/snapshots"),
        Some(json!({"name": "base"})),
    );
    assert_eq!(status, 409, "{again}");
    let (status, bad) = server.json(
        "POST",
        &format!("/v1/sessions/{id}/snapshots"),
        Some(json!({"name": "../up"})),
    );
    assert_eq!(status, 400, "{bad}");
    // No body: a default name.
    let (status, unnamed) = send(
        server.req("POST", &format!("/v1/sessions/{id}/snapshots")),
        None,
    );
    assert_eq!(status, 201, "{unnamed}");
    assert!(unnamed["name"].as_str().unwrap().starts_with(&id));

    let (status, list) = server.json("GET", "/v1/snapshots", None);
    assert_eq!(status, 200);
    let names: Vec<&str> = list["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 2, "{list}");
    assert!(names.contains(&"base"));

    delete_all(&server);
}

#[test]
fn another_key_neither_sees_nor_restores_a_key_s_snapshots() {
    let (server, _) = server_with_a_snapshot("http-other-key");
    // Another key sees none of them and cannot restore them.
    let other = server.add_key("other");
    let (status, theirs) = send(server.req_as(&other, "GET", "/v1/snapshots"), None);
    assert_eq!(
        (status, theirs["snapshots"].as_array().unwrap().len()),
        (200, 0)
    );
    let (status, refused) = send(
        server.req_as(&other, "POST", "/v1/sessions"),
        Some(json!({"from_snapshot": "base"})),
    );
    assert_eq!(status, 404, "{refused}");

    delete_all(&server);
}

#[test]
fn a_snapshot_s_download_url_serves_its_archive() {
    let (server, _) = server_with_a_snapshot("http-download");
    // The download URL serves the archive.
    let (status, shown) = server.json("GET", "/v1/snapshots/base", None);
    assert_eq!(status, 200, "{shown}");
    let link = shown["download_url"].as_str().unwrap();
    let mut archive = Vec::new();
    std::io::Read::read_to_end(
        &mut ureq::get(link).call().unwrap().into_reader(),
        &mut archive,
    )
    .unwrap();
    assert_eq!(archive.len() as u64, shown["size_bytes"].as_u64().unwrap());
    assert_eq!(sha256_hex(&archive), shown["sha256"].as_str().unwrap());

    delete_all(&server);
}

#[test]
fn a_session_restored_from_a_snapshot_has_its_files_modes_and_environment() {
    let (server, _) = server_with_a_snapshot("http-restore");
    // Restore: from_snapshot alone is enough; the request's env goes over the snapshot's.
    let (status, restored) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"from_snapshot": "base", "env": {"EXTRA": "1"}})),
    );
    assert_eq!(status, 201, "{restored}");
    assert_eq!(restored["language"], "python");
    assert_eq!(restored["restored"]["snapshot"], "base");
    assert!(restored["restored"]["files"].as_u64().unwrap() >= 2);
    assert!(restored["restored"]["kernel_state"]
        .as_str()
        .unwrap()
        .contains("fresh kernel"));
    let new_id = restored["id"].as_str().unwrap();
    let (status, ran) = server.json(
        "POST",
        &format!("/v1/sessions/{new_id}/commands"),
        Some(json!({"command": "stat -c %a tools/go.sh; tools/go.sh; cat made.txt; echo \" $MODE $EXTRA\""})),
    );
    assert_eq!(status, 200, "{ran}");
    assert_eq!(ran["stdout"], "755\ngo\nby code test 1\n", "{ran}");
    let (status, wrong) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"from_snapshot": "base", "language": "ruby"})),
    );
    assert_eq!(status, 400, "{wrong}");
    assert!(
        wrong["message"].as_str().unwrap().contains("python"),
        "{wrong}"
    );
    let (status, missing) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"from_snapshot": "nope", "language": "python"})),
    );
    assert_eq!(status, 404, "{missing}");
    assert!(
        missing["message"].as_str().unwrap().contains("\"nope\""),
        "{missing}"
    );

    delete_all(&server);
}

#[test]
fn a_deleted_snapshot_is_gone() {
    let (server, _) = server_with_a_snapshot("http-delete");
    let (status, _) = server.json("DELETE", "/v1/snapshots/base", None);
    assert_eq!(status, 204);
    let (status, gone) = server.json("GET", "/v1/snapshots/base", None);
    assert_eq!(status, 404, "{gone}");
    let (status, _) = server.json("DELETE", "/v1/snapshots/base", None);
    assert_eq!(status, 404);
}

#[test]
fn a_server_without_a_store_says_how_to_configure_one() {
    let server = Server::start_with(&[("SANDPIT_SNAPSHOTS", "")], &[]);
    let (status, body) = server.json("GET", "/v1/snapshots", None);
    assert_eq!(status, 501, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("--snapshots"),
        "{body}"
    );
    let (status, body) = server.json(
        "POST",
        "/v1/sessions",
        Some(json!({"language": "python", "from_snapshot": "x"})),
    );
    assert_eq!(status, 501, "{body}");
}
