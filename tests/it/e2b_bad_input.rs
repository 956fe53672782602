//! Bad input to `/compat/e2b` over raw HTTP gets the error E2B's SDKs expect: keys, tokens,
//! malformed Connect frames, unknown methods, processes, sandboxes and contexts, paths out of
//! `/home/user`, huge uploads, ports. None of it is a 5xx, panics the server or changes another
//! key's sandbox.

use serde_json::{json, Value};

use crate::e2b::{answer, api, body, create, e2b_key, nothing_left, plane, server, CloseAll};
use crate::server::Server;

/// A server with a 1 MiB body limit and two E2B keys: `key`, the caller's, and `other`, whose
/// sandbox is the victim.
struct Fixture {
    server: Server,
    key: String,
    other: String,
}

/// A created sandbox and its tokens.
struct Sandbox {
    id: String,
    token: String,
    traffic: String,
}

impl Fixture {
    fn start() -> Self {
        let (server, key) = server(&[("SANDPIT_MAX_BODY_BYTES", "1048576")]);
        let other = e2b_key(&server, "other");
        Fixture { server, key, other }
    }

    /// Closes the sessions of both keys when dropped, also after a failure half-way.
    fn close_all(&self) -> [CloseAll<'_>; 2] {
        [&self.key, &self.other].map(|key| CloseAll {
            server: &self.server,
            key: key.clone(),
        })
    }

    /// A sandbox of the caller's key.
    fn mine(&self) -> Sandbox {
        let (id, token, traffic) = create(&self.server, &self.key, json!({}));
        Sandbox { id, token, traffic }
    }

    /// A sandbox of the other key holding `keep.txt`, which nothing the caller does may change.
    fn victim(&self) -> Sandbox {
        let (id, token, traffic) = create(&self.server, &self.other, json!({}));
        let (s, r) = answer(
            plane(&self.server, &id, 49983, "POST", "/files?path=keep.txt")
                .set("X-Access-Token", &token)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(b"theirs"),
        );
        assert_eq!(s, 200, "upload: {}", body(r));
        Sandbox { id, token, traffic }
    }

    /// The end of every test: the victim's file (where the test made one) unchanged, no panic in
    /// the log, the sandboxes killed, and no container of either key left.
    fn finish(&self, mine: Option<&Sandbox>, victim: Option<&Sandbox>) {
        let server = &self.server;
        if let Some(theirs) = victim {
            let (s, r) = answer(
                plane(server, &theirs.id, 49983, "GET", "/files?path=keep.txt")
                    .set("X-Access-Token", &theirs.token)
                    .call(),
            );
            assert_eq!(s, 200);
            assert_eq!(
                r.into_string().unwrap(),
                "theirs",
                "another sandbox changed"
            );
        }
        let log = server.log();
        assert!(
            !log.contains("panicked"),
            "the server panicked: {}",
            crate::clients::tail(&log, 40)
        );
        if let Some(mine) = mine {
            let path = format!("/sandboxes/{}", mine.id);
            let (s, _) = answer(api(server, &self.key, "DELETE", &path).call());
            assert_eq!(s, 204);
        }
        if let Some(theirs) = victim {
            let path = format!("/sandboxes/{}", theirs.id);
            let (s, _) = answer(api(server, &self.other, "DELETE", &path).call());
            assert_eq!(s, 204);
        }
        nothing_left(server, "e2b");
        nothing_left(server, "other");
    }

    /// A streaming Connect call to the caller's sandbox: the status and the envelopes.
    fn streaming(&self, mine: &Sandbox, path: &str, bytes: Vec<u8>) -> (u16, Vec<(u8, Value)>) {
        let (s, r) = answer(
            plane(&self.server, &mine.id, 49983, "POST", path)
                .set("X-Access-Token", &mine.token)
                .set("Content-Type", "application/connect+json")
                .send_bytes(&bytes),
        );
        let mut raw = Vec::new();
        std::io::Read::read_to_end(&mut r.into_reader(), &mut raw).unwrap();
        (s, envelopes(&raw))
    }

    /// A unary Connect call to the caller's sandbox.
    fn unary(&self, mine: &Sandbox, path: &str, content_type: &str, payload: &str) -> (u16, Value) {
        let (s, r) = answer(
            plane(&self.server, &mine.id, 49983, "POST", path)
                .set("X-Access-Token", &mine.token)
                .set("Content-Type", content_type)
                .send_string(payload),
        );
        (s, body(r))
    }

    /// A JSON call to envd's `path` in `sandbox`, with `token` if any.
    fn envd(&self, sandbox: &str, token: Option<&str>, path: &str, payload: &str) -> (u16, Value) {
        let mut req = plane(&self.server, sandbox, 49983, "POST", path)
            .set("Content-Type", "application/json");
        if let Some(t) = token {
            req = req.set("X-Access-Token", t);
        }
        let (s, r) = answer(req.send_string(payload));
        (s, body(r))
    }
}

/// One Connect envelope.
fn envelope(flags: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// The envelopes of a streaming answer: (flags, JSON).
fn envelopes(mut bytes: &[u8]) -> Vec<(u8, Value)> {
    let mut out = Vec::new();
    while bytes.len() >= 5 {
        let n = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]) as usize;
        let payload = &bytes[5..5 + n];
        out.push((
            bytes[0],
            serde_json::from_slice(payload).unwrap_or(Value::Null),
        ));
        bytes = &bytes[5 + n..];
    }
    out
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[test]
fn no_key_or_an_unknown_key_is_401_saying_how_to_make_one() {
    let f = Fixture::start();
    let server = &f.server;
    let (s, r) = answer(ureq::get(&format!("{}/compat/e2b/v2/sandboxes", server.url)).call());
    let b = body(r);
    assert_eq!((s, b["code"].clone()), (401, json!(401)), "no key: {b}");
    assert!(
        b["message"]
            .as_str()
            .unwrap()
            .contains("sandpit keys add --e2b"),
        "{b}"
    );
    let (s, _) = answer(api(server, "e2b_0000", "GET", "/v2/sandboxes").call());
    assert_eq!(s, 401, "an unknown key");
    f.finish(None, None);
}

#[test]
fn an_e2b_key_is_an_ordinary_sandpit_key() {
    let f = Fixture::start();
    let (s, r) = answer(f.server.req_as(&f.key, "GET", "/v1/sessions").call());
    assert_eq!(
        s,
        200,
        "an e2b_ key is an ordinary Sandpit key: {}",
        body(r)
    );
    f.finish(None, None);
}

#[test]
fn a_bad_create_or_list_is_a_4xx_in_e2b_shape() {
    let f = Fixture::start();
    let _close = f.close_all();
    let (server, key) = (&f.server, &f.key);
    let (s, r) = answer(
        api(server, key, "POST", "/v2/sandboxes").send_json(json!({"templateID": "desktop"})),
    );
    let b = body(r);
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!(404)),
        "unknown template: {b}"
    );
    let (s, r) = answer(api(server, key, "POST", "/v2/sandboxes").send_string("{\"templateID\": "));
    assert_eq!(s, 400, "malformed JSON: {}", body(r));
    let (s, r) = answer(
        api(server, key, "POST", "/v2/sandboxes")
            .send_json(json!({"templateID": "base", "timeout": 0})),
    );
    assert_eq!(s, 400, "a zero timeout: {}", body(r));
    let (s, r) = answer(
        api(server, key, "POST", "/v2/sandboxes")
            .send_json(json!({"templateID": "base", "metadata": {"compat": "x"}})),
    );
    assert_eq!(s, 400, "a reserved metadata key: {}", body(r));
    let (s, r) = answer(api(server, key, "GET", "/v2/sandboxes?state=dead").call());
    assert_eq!(s, 400, "an unknown state: {}", body(r));
    f.finish(None, None);
}

#[test]
fn an_unknown_sandbox_is_404_on_the_control_plane() {
    let f = Fixture::start();
    let _close = f.close_all();
    for (method, path) in [
        ("GET", "/sandboxes/nosuchbox"),
        ("DELETE", "/sandboxes/nosuchbox"),
        ("POST", "/sandboxes/nosuchbox/pause"),
        ("POST", "/sandboxes/nosuchbox/timeout"),
        ("POST", "/v2/sandboxes/nosuchbox/connect"),
    ] {
        let (s, r) = answer(api(&f.server, &f.key, method, path).send_json(json!({"timeout": 10})));
        let b = body(r);
        assert_eq!(
            (s, b["code"].clone()),
            (404, json!(404)),
            "{method} {path}: {b}"
        );
    }
    f.finish(None, None);
}

#[test]
fn another_keys_sandbox_is_not_found_on_the_control_plane() {
    let f = Fixture::start();
    let _close = f.close_all();
    let theirs = f.victim();
    for (method, path) in [
        ("GET", format!("/sandboxes/{}", theirs.id)),
        ("DELETE", format!("/sandboxes/{}", theirs.id)),
        ("POST", format!("/sandboxes/{}/pause", theirs.id)),
    ] {
        let (s, _) = answer(api(&f.server, &f.key, method, &path).call());
        assert_eq!(s, 404, "{method} {path} with another key");
    }
    f.finish(None, Some(&theirs));
}

#[test]
fn filesystem_calls_need_the_sandboxs_own_envd_token() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    let stat = |sandbox: &str, token: Option<&str>| {
        f.envd(
            sandbox,
            token,
            "/filesystem.Filesystem/Stat",
            r#"{"path": "keep.txt"}"#,
        )
    };
    let (s, b) = stat(&theirs.id, None);
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "no token: {b}"
    );
    let (s, b) = stat(&theirs.id, Some(&mine.token));
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "my token on their sandbox: {b}"
    );
    let forged = format!(
        "{}.{}",
        mine.token.split('.').next().unwrap(),
        "0".repeat(64)
    );
    assert_eq!(stat(&mine.id, Some(&forged)).0, 401, "a forged token");
    assert_eq!(
        stat(&mine.id, Some(&mine.traffic)).0,
        401,
        "the traffic token on envd's port"
    );
    let (s, b) = stat(&theirs.id, Some(&theirs.token));
    assert_eq!(s, 200, "their own token works: {b}");
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn process_calls_need_the_sandboxs_own_envd_token() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    let list = |token: Option<&str>| f.envd(&theirs.id, token, "/process.Process/List", "{}");
    let (s, b) = list(None);
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "no token: {b}"
    );
    let (s, b) = list(Some(&mine.token));
    assert_eq!(
        (s, b["code"].clone()),
        (401, json!("unauthenticated")),
        "my token: {b}"
    );
    let (s, b) = list(Some(&theirs.token));
    assert_eq!(
        (s, b["processes"].as_array().map(Vec::len)),
        (200, Some(0)),
        "theirs: {b}"
    );
    let (s, b) = f.envd(
        &theirs.id,
        None,
        "/process.Process/SendSignal",
        r#"{"process": {"pid": 1}, "signal": "SIGNAL_SIGKILL"}"#,
    );
    assert_eq!(s, 401, "a signal without a token: {b}");
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn a_malformed_stream_frame_ends_the_stream_with_an_error() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    for bad in [
        vec![0u8, 0, 0],
        envelope(0, b"{}")[..7].to_vec(),
        envelope(1, b"{}"),
    ] {
        let (s, frames) = f.streaming(&mine, "/filesystem.Filesystem/WatchDir", bad.clone());
        assert_eq!(s, 200, "a stream's errors travel in its end frame");
        let (flags, end) = frames.last().cloned().unwrap_or((0, Value::Null));
        assert_eq!(flags, 2, "{bad:?}: {frames:?}");
        assert!(
            matches!(
                end["error"]["code"].as_str(),
                Some("invalid_argument" | "unimplemented")
            ),
            "{bad:?}: {end}"
        );
    }
    f.finish(Some(&mine), None);
}

#[test]
fn a_bad_unary_call_gets_its_connect_error() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let unary =
        |path: &str, content_type: &str, payload: &str| f.unary(&mine, path, content_type, payload);
    let (s, b) = unary(
        "/filesystem.Filesystem/Stat",
        "application/json",
        "{\"path\": ",
    );
    assert_eq!(
        (s, b["code"].clone()),
        (400, json!("invalid_argument")),
        "malformed JSON: {b}"
    );
    let (s, b) = unary("/filesystem.Filesystem/Chmod", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown method: {b}"
    );
    let (s, b) = unary("/volume.Volume/List", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown service: {b}"
    );
    let (s, _) = unary(
        "/filesystem.Filesystem/Stat",
        "application/proto",
        "\n\x01a",
    );
    assert_eq!(s, 415, "binary protobuf is refused");
    let (s, b) = unary(
        "/filesystem.Filesystem/Stat",
        "application/json",
        r#"{"path": "nothing-here"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "a missing file: {b}"
    );
    f.finish(Some(&mine), None);
}

#[test]
fn a_process_call_to_no_process_is_not_found() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let (s, b) = f.unary(
        &mine,
        "/process.Process/SendSignal",
        "application/json",
        r#"{"process": {"pid": 999999}, "signal": "SIGNAL_SIGKILL"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "signal to no process: {b}"
    );
    let (s, b) = f.unary(
        &mine,
        "/process.Process/SendInput",
        "application/json",
        r#"{"process": {"pid": 999999}, "input": {"stdin": "aGk="}}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (404, json!("not_found")),
        "input to no process: {b}"
    );
    let (_, frames) = f.streaming(
        &mine,
        "/process.Process/Connect",
        envelope(0, br#"{"process": {"pid": 999999}}"#),
    );
    assert_eq!(
        frames.last().map(|f| f.1["error"]["code"].clone()),
        Some(json!("not_found")),
        "connecting to no process: {frames:?}"
    );
    f.finish(Some(&mine), None);
}

#[test]
fn a_bad_process_call_gets_its_connect_error() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let (s, b) = f.unary(
        &mine,
        "/process.Process/SendSignal",
        "application/json",
        r#"{"process": {"pid": 1}, "signal": "SIGNAL_UNSPECIFIED"}"#,
    );
    assert_eq!(
        (s, b["code"].clone()),
        (400, json!("invalid_argument")),
        "no signal: {b}"
    );
    let (s, b) = f.unary(&mine, "/process.Process/Launch", "application/json", "{}");
    assert_eq!(
        (s, b["code"].clone()),
        (501, json!("unimplemented")),
        "unknown method: {b}"
    );
    for (what, message, code) in [
        (
            "a start without a command",
            json!({"process": {"args": ["x"]}}),
            "invalid_argument",
        ),
        (
            "a terminal",
            json!({"process": {"cmd": "/bin/bash"}, "pty": {"size": {"cols": 80, "rows": 24}}}),
            "unimplemented",
        ),
    ] {
        let (s, frames) = f.streaming(
            &mine,
            "/process.Process/Start",
            envelope(0, message.to_string().as_bytes()),
        );
        assert_eq!(s, 200, "{what}");
        let (flags, end) = frames.last().cloned().unwrap_or((0, Value::Null));
        assert_eq!(
            (flags, end["error"]["code"].as_str()),
            (2, Some(code)),
            "{what}: {frames:?}"
        );
    }
    f.finish(Some(&mine), None);
}

#[test]
fn a_started_command_streams_its_start_output_and_end() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let (s, frames) = f.streaming(
        &mine,
        "/process.Process/Start",
        envelope(
            0,
            br#"{"process": {"cmd": "/bin/sh", "args": ["-c", "echo hi; exit 7"]}}"#,
        ),
    );
    assert_eq!(s, 200);
    let events: Vec<&Value> = frames.iter().map(|f| &f.1["event"]).collect();
    assert!(events[0]["start"]["pid"].as_u64().is_some(), "{frames:?}");
    assert!(
        events.iter().any(|e| e["data"]["stdout"] == "aGkK"),
        "{frames:?}"
    );
    let end = events
        .iter()
        .find(|e| e.get("end").is_some())
        .expect("an end event");
    assert_eq!(end["end"]["exitCode"], 7, "{frames:?}");
    assert_eq!(
        frames.last().unwrap().0,
        2,
        "the last frame ends the stream"
    );
    f.finish(Some(&mine), None);
}

#[test]
fn paths_out_of_home_user_are_refused_by_rpc_and_by_files() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    for path in [
        "/etc/passwd",
        "../../etc/passwd",
        "/home/user/../../etc/shadow",
        "/proc/1/environ",
    ] {
        let (s, b) = f.unary(
            &mine,
            "/filesystem.Filesystem/Stat",
            "application/json",
            &json!({"path": path}).to_string(),
        );
        assert!(
            s == 400 || s == 404,
            "Stat {path} answered {s} {b}: only the workdir is the sandbox's"
        );
        let files = format!("/files?path={}", urlencode(path));
        let (s, r) = answer(
            plane(&f.server, &mine.id, 49983, "GET", &files)
                .set("X-Access-Token", &mine.token)
                .call(),
        );
        let b = body(r);
        assert!(s == 400 || s == 404, "GET /files {path} answered {s} {b}");
        let (s, r) = answer(
            plane(&f.server, &mine.id, 49983, "POST", &files)
                .set("X-Access-Token", &mine.token)
                .set("Content-Type", "application/octet-stream")
                .send_bytes(b"x"),
        );
        let b = body(r);
        assert!(s == 400 || s == 404, "POST /files {path} answered {s} {b}");
    }
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn files_as_root_are_refused_clearly() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    // A clear refusal, never a write as someone else.
    let (s, r) = answer(
        plane(
            &f.server,
            &mine.id,
            49983,
            "POST",
            "/files?path=r.txt&username=root",
        )
        .set("X-Access-Token", &mine.token)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(b"x"),
    );
    let b = body(r);
    assert_eq!(s, 403, "root files: {b}");
    assert!(b["message"].as_str().unwrap().contains("root"), "{b}");
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn an_upload_past_the_limit_is_413_plain_or_as_a_gzip_bomb() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    // The server answers 413 before reading the whole upload and may close while it is still
    // being sent: a raw socket reads the answer anyway.
    let (s, _, b) = f.server.raw(
        "POST",
        "/compat/e2b/files?path=big.bin",
        &[
            ("E2b-Sandbox-Id", &mine.id),
            ("E2b-Sandbox-Port", "49983"),
            ("X-Access-Token", &mine.token),
            ("Content-Type", "application/octet-stream"),
        ],
        &vec![7u8; 2 << 20],
    );
    assert_eq!(s, 413, "an upload past the server's limit: {b}");
    let bomb = {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        z.write_all(&vec![0u8; 8 << 20]).unwrap();
        z.finish().unwrap()
    };
    let (s, _) = answer(
        plane(&f.server, &mine.id, 49983, "POST", "/files?path=bomb.bin")
            .set("X-Access-Token", &mine.token)
            .set("Content-Type", "application/octet-stream")
            .set("Content-Encoding", "gzip")
            .send_bytes(&bomb),
    );
    assert_eq!(s, 413, "a gzip bomb past the limit once inflated");
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn a_port_sandpit_does_not_serve_is_502_saying_so() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let (s, r) = answer(
        plane(&f.server, &mine.id, 8080, "GET", "/health")
            .set("X-Access-Token", &mine.token)
            .call(),
    );
    let b = body(r);
    assert_eq!(s, 502, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("port is not open"),
        "{b}"
    );
    f.finish(Some(&mine), None);
}

#[test]
fn an_unknown_sandbox_on_the_data_plane_is_502_saying_so() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    let (s, r) = answer(
        plane(&f.server, "nosuchbox", 49983, "GET", "/health")
            .set("X-Access-Token", &mine.token)
            .call(),
    );
    let b = body(r);
    assert_eq!(s, 502, "{b}");
    assert!(
        b["message"].as_str().unwrap().contains("was not found"),
        "{b}"
    );
    f.finish(Some(&mine), Some(&theirs));
}

#[test]
fn bad_code_interpreter_calls_get_a_4xx() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    // Unknown contexts, both a context and a language, bad JSON, no token.
    let execute = |payload: &str| {
        let (s, r) = answer(
            plane(&f.server, &mine.id, 49999, "POST", "/execute")
                .set("E2B-Traffic-Access-Token", &mine.traffic)
                .set("Content-Type", "application/json")
                .send_string(payload),
        );
        (s, body(r))
    };
    assert_eq!(
        execute(r#"{"code": "1", "context_id": "nope"}"#).0,
        404,
        "an unknown context"
    );
    assert_eq!(
        execute(r#"{"code": "1", "context_id": "default", "language": "python"}"#).0,
        400
    );
    assert_eq!(execute(r#"{"code": "#).0, 422, "malformed JSON");
    let (s, r) = answer(
        plane(&f.server, &mine.id, 49999, "DELETE", "/contexts/nope")
            .set("E2B-Traffic-Access-Token", &mine.traffic)
            .call(),
    );
    assert_eq!(s, 404, "removing an unknown context: {}", body(r));
    let (s, _) = answer(plane(&f.server, &mine.id, 49999, "GET", "/contexts").call());
    assert_eq!(s, 401, "contexts without a token");
    f.finish(Some(&mine), None);
}

#[test]
fn a_killed_sandbox_is_204_then_404_and_its_token_finds_nothing() {
    let f = Fixture::start();
    let _close = f.close_all();
    let mine = f.mine();
    let theirs = f.victim();
    let path = format!("/sandboxes/{}", mine.id);
    let (s, _) = answer(api(&f.server, &f.key, "DELETE", &path).call());
    assert_eq!(s, 204);
    let (s, _) = answer(api(&f.server, &f.key, "DELETE", &path).call());
    assert_eq!(s, 404);
    let (s, r) = answer(
        plane(&f.server, &mine.id, 49983, "GET", "/health")
            .set("X-Access-Token", &mine.token)
            .call(),
    );
    assert_eq!(s, 502, "a killed sandbox's health: {}", body(r));
    f.finish(None, Some(&theirs));
}
