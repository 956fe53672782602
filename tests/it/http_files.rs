//! Files of a session over HTTP: raw bytes in and out, multipart upload, listings,
//! copy/move/mkdir/info, delete; and every way a path could lead out of the workdir (`..`,
//! `%2E%2E`, absolute paths, symlinks the code made), refused with a 400 that changes nothing.

use serde_json::{json, Value};

use crate::server::{assert_invalid, Server};

fn bytes_of(server: &Server, path: &str) -> (u16, Vec<u8>, String) {
    let result = server.req("GET", path).call();
    let response = match result {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {path}: {e}"),
    };
    let status = response.status();
    let content_type = response.header("content-type").unwrap_or("").to_string();
    let mut data = Vec::new();
    std::io::Read::read_to_end(&mut response.into_reader(), &mut data).unwrap();
    (status, data, content_type)
}

fn put(server: &Server, path: &str, data: &[u8]) -> (u16, Value) {
    let result = server
        .req("PUT", path)
        .set("Content-Type", "application/octet-stream")
        .send_bytes(data);
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("PUT {path}: {e}"),
    }
}

/// A multipart body of `(field, file name, bytes)` parts (file name `None` for a plain field).
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sandpit-test-boundary-7d1c";
    let mut body = Vec::new();
    for (field, file, data) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{f}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

fn upload(server: &Server, id: &str, parts: &[(&str, Option<&str>, &[u8])]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let result = server
        .req("POST", &format!("/v1/sessions/{id}/files"))
        .set("Content-Type", &content_type)
        .send_bytes(&body);
    match result {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("upload: {e}"),
    }
}

fn paths(list: &Value) -> Vec<String> {
    list["files"]
        .as_array()
        .unwrap_or_else(|| panic!("not a file list: {list}"))
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

/// A server with no warm pool and a Python session on it; answers with the session's id and
/// the path of its files.
fn session() -> (Server, String, String) {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    let f = format!("/v1/sessions/{id}/files");
    (server, id, f)
}

/// Writes each `(path, bytes)` (a path may carry `?mode=`), asserting 201.
fn put_all(server: &Server, f: &str, files: &[(&str, &[u8])]) {
    for (path, data) in files {
        let (status, entry) = put(server, &format!("{f}/{path}"), data);
        assert_eq!(status, 201, "PUT {path}: {entry}");
    }
}

#[test]
fn a_file_written_reads_back_byte_for_byte() {
    let (server, _id, f) = session();
    let data: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
    let (status, entry) = put(&server, &format!("{f}/data/in.bin"), &data);
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["name"], "in.bin");
    assert_eq!(entry["path"], "data/in.bin");
    assert_eq!(entry["kind"], "file");
    assert_eq!(entry["size"], data.len());
    assert_eq!(entry["mode"], "644");
    assert!(
        entry["modified"].as_str().is_some_and(|m| m.ends_with('Z')),
        "{entry}"
    );
    let (status, got, content_type) = bytes_of(&server, &format!("{f}/data/in.bin"));
    assert_eq!(status, 200);
    assert!(
        got == data,
        "the bytes read back differ from the bytes written"
    );
    assert_eq!(content_type, "application/octet-stream");
    // An absolute path inside the workdir is the same file.
    let (status, got, _) = bytes_of(&server, &format!("{f}//sandbox/data/in.bin"));
    assert_eq!(status, 200);
    assert!(got == data);
}

#[test]
fn a_file_is_replaced_given_a_mode_and_shared_with_code() {
    let (server, id, f) = session();
    put_all(&server, &f, &[("data/in.bin", b"first")]);
    let (status, entry) = put(
        &server,
        &format!("{f}/run.sh?mode=755"),
        b"#!/bin/sh\necho ran $1\n",
    );
    assert_eq!(status, 201, "{entry}");
    assert_eq!(entry["mode"], "755");
    assert_eq!(server.sh(&id, "./run.sh ok")["stdout"], "ran ok\n");
    let (status, _) = put(&server, &format!("{f}/data/in.bin"), b"short");
    assert_eq!(status, 201);
    assert_eq!(bytes_of(&server, &format!("{f}/data/in.bin")).1, b"short");
    // Code sees what was written, and the routes see what code wrote.
    assert_eq!(server.sh(&id, "cat data/in.bin")["stdout"], "short");
    server.sh(
        &id,
        "mkdir -p data/deep && printf 'a,b\\n' > data/deep/t.csv",
    );
    assert_eq!(
        bytes_of(&server, &format!("{f}/data/deep/t.csv")).1,
        b"a,b\n"
    );
}

#[test]
fn the_workdir_is_listed_by_folder_recursively_and_by_pattern() {
    let (server, _id, f) = session();
    put_all(
        &server,
        &f,
        &[
            ("data/in.bin", b"short"),
            ("data/deep/t.csv", b"a,b\n"),
            ("data/x.csv", b"1"),
        ],
    );
    let (status, list) = server.json("GET", &f, None);
    assert_eq!(status, 200, "{list}");
    assert!(paths(&list).contains(&"data".to_string()), "{list}");
    assert!(
        !paths(&list).contains(&"data/in.bin".to_string()),
        "not recursive: {list}"
    );
    let data_dir = list["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["path"] == "data")
        .unwrap();
    assert_eq!(data_dir["kind"], "dir");
    let (_, list) = server.json("GET", &format!("{f}?path=data"), None);
    assert_eq!(
        paths(&list),
        ["data/deep", "data/in.bin", "data/x.csv"],
        "{list}"
    );
    let (_, list) = server.json("GET", &format!("{f}?path=data&recursive=true"), None);
    assert_eq!(
        paths(&list),
        ["data/deep", "data/deep/t.csv", "data/in.bin", "data/x.csv"],
        "{list}"
    );
    let (_, list) = server.json(
        "GET",
        &format!("{f}?path=data&recursive=true&pattern=*.csv"),
        None,
    );
    assert_eq!(paths(&list), ["data/deep/t.csv", "data/x.csv"], "{list}");
    let (_, list) = server.json(
        "GET",
        &format!("{f}?recursive=true&pattern=data/deep/*"),
        None,
    );
    assert_eq!(paths(&list), ["data/deep/t.csv"], "{list}");
}

#[test]
fn multipart_uploads_go_into_the_path_folder_by_file_name() {
    let (server, id, f) = session();
    // File parts by their names (folders dropped), into the `path` folder.
    let (status, up) = upload(
        &server,
        &id,
        &[
            ("path", None, b"up/load"),
            ("file", Some("a.txt"), b"first"),
            ("file", Some("../../etc/b.txt"), b"second"),
        ],
    );
    assert_eq!(status, 201, "{up}");
    assert_eq!(paths(&up), ["up/load/a.txt", "up/load/b.txt"], "{up}");
    assert_eq!(up["files"][1]["size"], 6);
    assert_eq!(
        bytes_of(&server, &format!("{f}/up/load/b.txt")).1,
        b"second"
    );
    let (status, up) = upload(&server, &id, &[("file", Some("root.txt"), b"r")]);
    assert_eq!(status, 201, "{up}");
    assert_eq!(paths(&up), ["root.txt"]);
}

#[test]
fn uploads_without_files_or_not_multipart_are_4xx() {
    let (server, id, f) = session();
    assert_invalid(
        "an upload without file parts",
        upload(&server, &id, &[("path", None, b"x")]),
    );
    assert_invalid(
        "a part without a file name",
        upload(&server, &id, &[("file", Some(""), b"x")]),
    );
    let bad = server
        .req("POST", &f)
        .set("Content-Type", "application/json")
        .send_string("{}");
    let (status, body) = match bad {
        Ok(r) => (r.status(), r.into_json::<Value>().unwrap()),
        Err(ureq::Error::Status(s, r)) => (s, r.into_json::<Value>().unwrap_or(Value::Null)),
        Err(e) => panic!("{e}"),
    };
    assert!(
        (400..500).contains(&status) && body["error"].is_string(),
        "an upload that is not multipart should be a JSON 4xx: {status} {body}"
    );
}

#[test]
fn files_are_copied_moved_made_and_described() {
    let (server, _id, f) = session();
    put_all(
        &server,
        &f,
        &[
            ("up/load/a.txt", b"first"),
            ("run.sh?mode=755", b"#!/bin/sh\n"),
            ("root.txt", b"r"),
        ],
    );
    let op = |body: Value| server.json("POST", &format!("{f}/ops"), Some(body));
    let (status, e) = op(json!({"op": "copy", "path": "up/load/a.txt", "to": "copies/a.txt"}));
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        (e["path"].as_str(), e["size"].as_u64()),
        (Some("copies/a.txt"), Some(5))
    );
    let (status, e) = op(json!({"op": "move", "path": "copies/a.txt", "to": "moved/a.txt"}));
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["path"], "moved/a.txt");
    assert_eq!(
        bytes_of(&server, &format!("{f}/copies/a.txt")).0,
        404,
        "a move leaves no source"
    );
    let (status, e) = op(json!({"op": "mkdir", "path": "made/deep/er"}));
    assert_eq!((status, e["kind"].as_str()), (200, Some("dir")), "{e}");
    let (status, e) = op(json!({"op": "mkdir", "path": "made/deep/er"}));
    assert_eq!(status, 200, "making a folder that exists is fine: {e}");
    let (status, e) = op(json!({"op": "info", "path": "run.sh"}));
    assert_eq!((status, e["mode"].as_str()), (200, Some("755")), "{e}");
    let (status, e) = op(json!({"op": "copy", "path": "run.sh", "to": "root.txt"}));
    assert_eq!(status, 409, "copying onto a file is a conflict: {e}");
    assert_eq!(e["error"], "conflict");
    assert_eq!(
        bytes_of(&server, &format!("{f}/root.txt")).1,
        b"r",
        "the refused copy changed the file"
    );
}

#[test]
fn bad_operations_are_4xx() {
    let (server, _id, f) = session();
    put_all(&server, &f, &[("run.sh", b"#!/bin/sh\n")]);
    let op = |body: Value| server.json("POST", &format!("{f}/ops"), Some(body));
    assert_invalid(
        "an unknown op",
        op(json!({"op": "chmod", "path": "run.sh"})),
    );
    assert_invalid(
        "a copy without `to`",
        op(json!({"op": "copy", "path": "run.sh"})),
    );
    assert_invalid("an op without a path", op(json!({"op": "mkdir"})));
    let (status, e) = op(json!({"op": "copy", "path": "nothing-here", "to": "x"}));
    assert_eq!(status, 404, "{e}");
}

#[test]
fn a_file_and_then_a_folder_with_everything_in_it_are_deleted() {
    let (server, _id, f) = session();
    put_all(
        &server,
        &f,
        &[
            ("root.txt", b"r"),
            ("up/load/a.txt", b"first"),
            ("up/b.txt", b"b"),
        ],
    );
    let (status, _) = server.json("DELETE", &format!("{f}/root.txt"), None);
    assert_eq!(status, 204);
    let (status, body) = server.json("GET", &format!("{f}/root.txt"), None);
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    let (status, _) = server.json("DELETE", &format!("{f}/up"), None);
    assert_eq!(status, 204);
    let (_, list) = server.json("GET", &format!("{f}?recursive=true"), None);
    assert!(!paths(&list).iter().any(|p| p.starts_with("up")), "{list}");
    let (status, _) = server.json("DELETE", &format!("{f}/up"), None);
    assert_eq!(status, 404, "deleting what is not there");
}

#[test]
fn bad_requests_on_good_paths_are_400_and_change_nothing() {
    let (server, _id, f) = session();
    put_all(
        &server,
        &f,
        &[("data/in.bin", b"short"), ("run.sh", b"#!/bin/sh\n")],
    );
    assert_invalid(
        "reading a folder",
        server.json("GET", &format!("{f}/data"), None),
    );
    assert_invalid(
        "listing a file",
        server.json("GET", &format!("{f}?path=run.sh"), None),
    );
    assert_invalid(
        "mode 999",
        put(&server, &format!("{f}/m.txt?mode=999"), b"x"),
    );
    assert_invalid(
        "mode abc",
        put(&server, &format!("{f}/m.txt?mode=abc"), b"x"),
    );
    assert_invalid(
        "an unknown write option",
        put(&server, &format!("{f}/m.txt?colour=red"), b"x"),
    );
    assert_invalid(
        "recursive=maybe",
        server.json("GET", &format!("{f}?recursive=maybe"), None),
    );
    assert_eq!(
        bytes_of(&server, &format!("{f}/m.txt")).0,
        404,
        "a refused write made the file"
    );
    assert_invalid(
        "a NUL in a path",
        server.raw_keyed("PUT", &format!("{f}/a%00b"), b"x"),
    );
}

/// A session whose code made symlinks out of the workdir (to a folder, to a file, through a
/// relative climb) beside `inside/keep.txt`; answers with what [`fingerprint`] sees then.
fn session_with_symlinks_out() -> (Server, String, String, String) {
    let (server, id, f) = session();
    put_all(&server, &f, &[("inside/keep.txt", b"kept")]);
    server.sh(&id, "ln -s /etc out && ln -s /etc/passwd pw && ln -s / root && mkdir -p d && ln -s ../.. d/up && ln -s /tmp tmp");
    let out = server.json(
        "POST",
        &format!("/v1/sessions/{id}/run"),
        Some(json!({"code": "import os\nos.symlink('/usr/bin', 'bin')"})),
    );
    assert_eq!(out.0, 200);
    let before = fingerprint(&server, &id);
    (server, id, f, before)
}

/// What the session sees of the files a way out could reach, inside the workdir and out.
fn fingerprint(server: &Server, id: &str) -> String {
    server.sh(
        id,
        "md5sum /etc/passwd /etc/hostname | cut -c1-32; ls -A /tmp | sort; ls -la /etc | wc -l; find /sandbox -printf '%p %s\\n' | sort",
    )["stdout"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn raw_paths_out_of_the_workdir_are_refused_and_change_nothing() {
    let (server, id, f, before) = session_with_symlinks_out();
    // Paths as they go on the wire (written raw: a client library would normalise `..`).
    let escapes = [
        "../etc/passwd",
        "../../../../etc/passwd",
        "%2E%2E/etc/passwd",
        "%2e%2e%2fetc%2fpasswd",
        "..%2F..%2Fetc%2Fpasswd",
        "inside/%2E%2E/%2E%2E/etc/passwd",
        "inside/..%2f..%2fetc%2fpasswd",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "%2Fsandbox%2F..%2Fetc%2Fpasswd",
        "/sandbox/../etc/passwd",
        "%2Fsandboxx%2Fpasswd",
        "out/passwd",
        "pw",
        "root/etc/passwd",
        "d/up/etc/passwd",
        "bin/sh",
        "tmp/pwned",
        "out/pwned",
    ];
    for p in escapes {
        let path = format!("{f}/{p}");
        assert_invalid(&format!("GET {p}"), server.raw_keyed("GET", &path, b""));
        assert_invalid(
            &format!("PUT {p}"),
            server.raw_keyed("PUT", &path, b"pwned"),
        );
        if !matches!(p, "pw" | "out" | "bin" | "tmp") {
            // Deleting the symlink itself is fine; deleting through it is not.
            assert_invalid(
                &format!("DELETE {p}"),
                server.raw_keyed("DELETE", &path, b""),
            );
        }
    }
    assert_eq!(
        fingerprint(&server, &id),
        before,
        "a refused request changed something"
    );
}

#[test]
fn listings_and_operations_cannot_lead_out_of_the_workdir() {
    let (server, id, f, before) = session_with_symlinks_out();
    for p in ["../etc", "%2E%2E", "/etc", "out", "root", "d/up", "tmp"] {
        let (status, body) = server.raw_keyed("GET", &format!("{f}?path={p}"), b"");
        assert_invalid(&format!("list ?path={p}"), (status, body));
        let (status, body) = server.raw_keyed("GET", &format!("{f}?path={p}&recursive=true"), b"");
        assert_invalid(&format!("list ?path={p}&recursive=true"), (status, body));
    }
    let op = |body: Value| server.json("POST", &format!("{f}/ops"), Some(body));
    for (what, body) in [
        (
            "copy out",
            json!({"op": "copy", "path": "inside/keep.txt", "to": "../keep.txt"}),
        ),
        (
            "copy to /tmp",
            json!({"op": "copy", "path": "inside/keep.txt", "to": "/tmp/keep.txt"}),
        ),
        (
            "copy through a symlink",
            json!({"op": "copy", "path": "inside/keep.txt", "to": "out/keep.txt"}),
        ),
        (
            "copy in from /etc",
            json!({"op": "copy", "path": "/etc/passwd", "to": "passwd"}),
        ),
        (
            "copy in through a symlink",
            json!({"op": "copy", "path": "out/passwd", "to": "passwd"}),
        ),
        (
            "move out",
            json!({"op": "move", "path": "inside", "to": "tmp/inside"}),
        ),
        (
            "move the workdir",
            json!({"op": "move", "path": "/sandbox", "to": "x"}),
        ),
        ("mkdir outside", json!({"op": "mkdir", "path": "/tmp/made"})),
        (
            "mkdir through a symlink",
            json!({"op": "mkdir", "path": "root/made"}),
        ),
        (
            "mkdir with ..",
            json!({"op": "mkdir", "path": "inside/../../made"}),
        ),
        ("info outside", json!({"op": "info", "path": "/etc/passwd"})),
        (
            "info through a symlink",
            json!({"op": "info", "path": "out/passwd"}),
        ),
    ] {
        assert_invalid(what, op(body));
    }
    assert_eq!(
        fingerprint(&server, &id),
        before,
        "a refused request changed something"
    );
}

#[test]
fn uploads_cannot_lead_out_of_the_workdir() {
    let (server, id, _f, before) = session_with_symlinks_out();
    for (what, folder) in [
        ("upload into ..", "../.."),
        ("upload into /etc", "/etc"),
        ("upload through a symlink", "out"),
        ("upload through a deeper symlink", "d/up/tmp"),
    ] {
        let answer = upload(
            &server,
            &id,
            &[
                ("path", None, folder.as_bytes()),
                ("file", Some("pwned"), b"x"),
            ],
        );
        assert_invalid(what, answer);
    }
    assert_eq!(
        fingerprint(&server, &id),
        before,
        "a refused request changed something"
    );
}

#[test]
fn the_workdir_itself_cannot_be_deleted_or_overwritten() {
    let (server, id, f, before) = session_with_symlinks_out();
    for p in [".", "%2E", "%2Fsandbox", "/sandbox/", "./"] {
        assert_invalid(
            &format!("DELETE {p}"),
            server.raw_keyed("DELETE", &format!("{f}/{p}"), b""),
        );
        assert_invalid(
            &format!("PUT {p}"),
            server.raw_keyed("PUT", &format!("{f}/{p}"), b"x"),
        );
    }
    assert_eq!(
        fingerprint(&server, &id),
        before,
        "a refused request changed something"
    );
}

#[test]
fn a_symlink_out_is_described_not_followed_and_can_be_removed() {
    let (server, id, f, _) = session_with_symlinks_out();
    let (status, e) = server.json(
        "POST",
        &format!("{f}/ops"),
        Some(json!({"op": "info", "path": "out"})),
    );
    assert_eq!((status, e["kind"].as_str()), (200, Some("symlink")), "{e}");
    let (status, _) = server.raw_keyed("DELETE", &format!("{f}/out"), b"");
    assert_eq!(status, 204);
    assert_eq!(
        server.sh(&id, "test -e /etc/passwd && test ! -e out && echo ok")["stdout"],
        "ok\n",
        "deleting the symlink must not touch its target"
    );
}
