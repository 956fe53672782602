//! Snapshots against a real S3-protocol server on loopback (`scripts/test.sh` starts s3s-fs
//! through `scripts/s3.sh` and exports its settings): the store's operations, a snapshot
//! restored on the same engine and on Podman with files, modes, library and environment, the
//! HTTP routes, and damaged or missing snapshots as clear errors.

use std::time::Duration;

use bytes::Bytes;
use sandpit::{Language, LanguageExt, SandboxSession};
use sandpit_snapshot::{Error, ObjectStorage, RestoreOptions, SnapshotStore};
use serde_json::{json, Value};

use crate::per_target;
use crate::server::{send, Server};
use crate::support::{ca_bundle, engine, Target};

/// The S3 store the tests use, under a folder of its own for `test`. Fails with what to do
/// when the S3 server's settings are missing.
fn s3_url(test: &str) -> String {
    for var in [
        "SANDPIT_TEST_S3_URL",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
    ] {
        assert!(
            std::env::var(var).is_ok_and(|v| !v.is_empty()),
            "{var} is not set: the snapshot tests need an S3 server; scripts/test.sh starts one (source scripts/s3.sh; ensure_s3)"
        );
    }
    let base = std::env::var("SANDPIT_TEST_S3_URL").unwrap();
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{}/{test}-{}-{stamp}",
        base.trim_end_matches('/'),
        std::process::id()
    )
}

fn store(test: &str) -> SnapshotStore {
    SnapshotStore::open(&s3_url(test)).expect("open the S3 store")
}

/// Containers of the run a test labelled with `sandpit.meta.snaptest=<tag>`.
async fn labelled(engine: &sandpit::Engine, tag: &str) -> usize {
    engine
        .list_containers(&format!("sandpit.meta.snaptest={tag}"))
        .await
        .expect("list containers")
        .len()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_s3_store_puts_gets_lists_deletes_and_signs() {
    let s = ObjectStorage::open(&s3_url("objects")).unwrap();
    s.put("a/small.txt", Bytes::from_static(b"hello"))
        .await
        .unwrap();
    // Past one part: a multipart upload, streamed.
    let part = vec![7u8; 3 << 20];
    let chunks: Vec<std::io::Result<Bytes>> =
        (0..4).map(|_| Ok(Bytes::from(part.clone()))).collect();
    let written = s
        .put_stream("a/big.bin", futures_util::stream::iter(chunks))
        .await
        .unwrap();
    assert_eq!(written, 12 << 20);
    assert_eq!(&s.get("a/small.txt").await.unwrap()[..], b"hello");
    let (size, stream) = s.get_stream("a/big.bin").await.unwrap();
    assert_eq!(size, 12 << 20);
    let got: Vec<Bytes> = futures_util::TryStreamExt::try_collect(stream)
        .await
        .unwrap();
    assert_eq!(got.iter().map(Bytes::len).sum::<usize>(), 12 << 20);
    assert!(got.iter().all(|c| c.iter().all(|b| *b == 7)));

    let listed: Vec<(String, u64)> = s
        .list("a")
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.key, o.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("a/big.bin".to_string(), 12 << 20),
            ("a/small.txt".to_string(), 5)
        ]
    );
    assert!(s.list("nothing-here").await.unwrap().is_empty());

    // A presigned URL works without credentials.
    let url = s
        .presigned_url("a/small.txt", Duration::from_secs(300))
        .await
        .unwrap();
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let body = ureq::get(&url).call().unwrap().into_string().unwrap();
    assert_eq!(body, "hello");

    s.delete("a/small.txt").await.unwrap();
    s.delete("a/small.txt").await.unwrap();
    let err = s.get("a/small.txt").await.unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert_eq!(s.size("a/small.txt").await.unwrap(), None);
    s.delete("a/big.bin").await.unwrap();
}

per_target!(
    a_snapshot_restores_files_modes_library_and_environment,
    [docker, podman],
    |t: Target| async move {
        let ca = ca_bundle().expect("a CA bundle (SANDPIT_CA_BUNDLE)");
        let store = store(&format!("restore-{}", t.name));
        // The snapshot is taken on Docker and restored on the target engine.
        let source = SandboxSession::builder()
            .language(Language::Python)
            .engine(engine().await)
            .extra_ca_certificates(&ca)
            .libraries(["tabulate"])
            .env("GREETING", "hello")
            .open()
            .await
            .unwrap();
        let files = source.files();
        let binary: Vec<u8> = (0..=255u8).cycle().take(200_000).collect();
        files
            .write("data/raw.bin", &binary, Some(0o640))
            .await
            .unwrap();
        files
            .write("bin/run.sh", b"#!/bin/sh\necho ran\n", Some(0o750))
            .await
            .unwrap();
        files.write_text("notes/deep/a.txt", "héllo").await.unwrap();
        let made = source
            .execute_command(
                "mkdir -m 700 private && echo s > private/secret && ln -s ../data/raw.bin notes/raw-link \
                 && ln bin/run.sh bin/hard.sh && ln -s /etc/passwd outside && touch -d 2020-01-02 notes/deep/a.txt",
            )
            .await
            .unwrap();
        assert_eq!(made.exit_code, 0, "{}", made.stderr);
        source.set_env("LATER", "set after open").unwrap();
        // A kernel variable: memory is not part of a snapshot.
        let x = source.execute("x = 41").await.unwrap();
        assert!(x.error.is_none(), "{:?}", x.error);

        let manifest = store.snapshot(&source, "proj/v1").await.unwrap();
        assert_eq!(manifest.language, "python");
        assert_eq!(manifest.libraries, ["tabulate"]);
        assert_eq!(
            manifest.env.get("GREETING").map(String::as_str),
            Some("hello")
        );
        assert_eq!(
            manifest.env.get("LATER").map(String::as_str),
            Some("set after open")
        );
        assert_eq!(manifest.archive.sha256.len(), 64);
        assert_eq!(manifest.archive.hard_links, 1);
        assert!(manifest.archive.content_bytes >= 200_000);
        assert!(
            manifest.kernel_state.contains("not included"),
            "{}",
            manifest.kernel_state
        );
        let left_out: Vec<&str> = manifest.skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(left_out, ["outside"], "{:?}", manifest.skipped);
        // The same name again is a conflict.
        let again = store.snapshot(&source, "proj/v1").await.unwrap_err();
        assert!(matches!(again, Error::Exists { .. }), "{again}");
        source.close().await.unwrap();

        let listed = store.list("").await.unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].name, "proj/v1");
        assert_eq!(listed[0].manifest.as_ref().unwrap(), &manifest);

        let restored = store
            .restore(
                "proj/v1",
                t.builder(Language::Python).extra_ca_certificates(&ca),
                &RestoreOptions::default(),
            )
            .await
            .unwrap();
        let s = restored.session;
        assert_eq!(restored.report.files, manifest.archive.files);
        assert!(restored.report.kernel_state.contains("fresh kernel"));
        assert_eq!(s.installed_libraries(), ["tabulate"]);
        let out = s
            .execute_command(
                "stat -c '%a %u %n' data/raw.bin bin/run.sh private notes/deep/a.txt && readlink notes/raw-link \
                 && stat -c '%h' bin/hard.sh && date -r notes/deep/a.txt +%F && ls outside 2>&1; cat private/secret; bin/run.sh",
            )
            .await
            .unwrap();
        assert_eq!(
            out.stdout,
            "640 1000 data/raw.bin\n750 1000 bin/run.sh\n700 1000 private\n644 1000 notes/deep/a.txt\n\
             ../data/raw.bin\n2\n2020-01-02\nls: cannot access 'outside': No such file or directory\ns\nran\n",
            "{}",
            out.stderr
        );
        assert_eq!(s.files().read("data/raw.bin").await.unwrap(), binary);
        assert_eq!(
            s.files().read_text("notes/deep/a.txt").await.unwrap(),
            "héllo"
        );
        let r = s
            .run(
                "import os, tabulate\nprint(tabulate.__name__, os.environ['GREETING'], os.environ['LATER'])",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.stdout, "tabulate hello set after open\n", "{}", r.stderr);
        let x = s.execute("x").await.unwrap();
        assert_eq!(
            x.error.map(|e| e.name).as_deref(),
            Some("NameError"),
            "the kernel starts fresh"
        );
        s.close().await.unwrap();
        store.delete("proj/v1").await.unwrap();
    }
);

/// A gzip-compressed tar of `entries` (name bytes, type, link target, data), written byte for
/// byte so that names a tar writer refuses (`..`, absolute) can be made.
/// An entry of [`crafted`]: name bytes, type, link target bytes, data.
type Entry<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

fn crafted(entries: &[Entry]) -> Vec<u8> {
    use std::io::Write;
    let mut b = tar::Builder::new(Vec::new());
    for (name, kind, link, data) in entries {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(*kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    let plain = b.into_inner().unwrap();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    gz.finish().unwrap()
}

fn sha256_hex(data: &[u8]) -> String {
    // The manifest's checksum, computed here without another crate: sha256sum.
    use std::io::Write;
    let mut child = std::process::Command::new("sha256sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8(out.stdout).unwrap()[..64].to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn damaged_missing_and_unknown_snapshots_are_clear_errors() {
    let store = store("damaged");
    let storage = store.storage().clone();
    let engine = engine().await;
    let tag = format!("damaged-{}", std::process::id());
    let builder = || {
        SandboxSession::builder()
            .language(Language::Python)
            .engine(engine.clone())
            .label("snaptest", tag.clone())
    };
    let source = builder().open().await.unwrap();
    let payload: Vec<u8> = (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect();
    source
        .files()
        .write("data.bin", &payload, None)
        .await
        .unwrap();
    let manifest = store.snapshot(&source, "good").await.unwrap();
    source.close().await.unwrap();
    let archive = storage.get("good/workdir.tar.gz").await.unwrap();
    let manifest_json = storage.get("good/manifest.json").await.unwrap();

    // A missing snapshot.
    let err = store
        .restore("nothing", builder(), &RestoreOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("no snapshot \"nothing\""), "{err}");

    let restore = |name: &'static str| {
        let store = store.clone();
        let b = builder();
        async move {
            store
                .restore(name, b, &RestoreOptions::default())
                .await
                .map(|r| r.session)
        }
    };
    let copy = |name: &str, archive: Vec<u8>, manifest: Value| {
        let storage = storage.clone();
        let name = name.to_string();
        async move {
            storage
                .put(&format!("{name}/workdir.tar.gz"), Bytes::from(archive))
                .await
                .unwrap();
            storage
                .put(
                    &format!("{name}/manifest.json"),
                    Bytes::from(serde_json::to_vec(&manifest).unwrap()),
                )
                .await
                .unwrap();
        }
    };
    let original: Value = serde_json::from_slice(&manifest_json).unwrap();

    // Bytes changed in the middle of the archive, size unchanged.
    let mut flipped = archive.to_vec();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x5a;
    flipped[at + 1] ^= 0xa5;
    copy("flipped", flipped, original.clone()).await;
    let err = restore("flipped").await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("SHA-256") || text.contains("cannot be read"),
        "{text}"
    );

    // Cut short.
    copy(
        "short",
        archive[..archive.len() - 100].to_vec(),
        original.clone(),
    )
    .await;
    let err = restore("short").await.unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");

    // The archive is gone, the manifest is there.
    copy("no-archive", archive.to_vec(), original.clone()).await;
    storage.delete("no-archive/workdir.tar.gz").await.unwrap();
    let err = restore("no-archive").await.unwrap_err();
    assert!(err.to_string().contains("missing from the store"), "{err}");

    // A format from the future, and a manifest that is not one.
    let mut future = original.clone();
    future["version"] = json!(2);
    copy("future", archive.to_vec(), future).await;
    let err = restore("future").await.unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    assert!(err.to_string().contains("format 2"), "{err}");
    storage
        .put(
            "garbled/manifest.json",
            Bytes::from_static(b"{\"format\": 1"),
        )
        .await
        .unwrap();
    let err = restore("garbled").await.unwrap_err();
    assert!(err.to_string().contains("not JSON"), "{err}");

    // Archives whose checksum matches but which hold entries that leave the workdir: refused
    // before the engine writes them, whatever the entry.
    let escapes: [(&str, Vec<u8>, &str); 4] = [
        (
            "dotdot",
            crafted(&[
                (b"ok.txt", tar::EntryType::Regular, b"", b"fine"),
                (b"../../escaped", tar::EntryType::Regular, b"", b"x"),
            ]),
            "climbs out",
        ),
        (
            "absolute",
            crafted(&[(b"/tmp/escaped", tar::EntryType::Regular, b"", b"x")]),
            "absolute",
        ),
        (
            "link-out",
            crafted(&[
                (b"l", tar::EntryType::Symlink, b"/tmp", b""),
                (b"l/escaped", tar::EntryType::Regular, b"", b"x"),
            ]),
            "outside the workdir",
        ),
        (
            "device",
            crafted(&[(b"null", tar::EntryType::Char, b"", b"")]),
            "device",
        ),
    ];
    for (name, bytes, says) in escapes {
        let mut m = original.clone();
        m["archive"]["sha256"] = json!(sha256_hex(&bytes));
        m["archive"]["size_bytes"] = json!(bytes.len());
        copy(name, bytes, m).await;
        let err = restore(name).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
    }

    // Into a session held open: nothing lands outside the workdir.
    let target = builder().open().await.unwrap();
    let m = sandpit_snapshot::Manifest::parse(
        "dotdot",
        &storage.get("dotdot/manifest.json").await.unwrap(),
    )
    .unwrap();
    let err = store.restore_into(&target, "dotdot", &m).await.unwrap_err();
    assert!(err.to_string().contains("climbs out"), "{err}");
    let out = target
        .execute_command("ls /escaped /tmp/escaped /sandbox/../escaped 2>&1 | grep -c 'No such'")
        .await
        .unwrap();
    assert_eq!(out.stdout.trim(), "3", "{}", out.stdout);
    target.close().await.unwrap();

    // Every session a failed restore opened is gone.
    assert_eq!(labelled(&engine, &tag).await, 0);

    // And the good one still restores.
    let s = restore("good").await.unwrap();
    assert_eq!(s.files().read("data.bin").await.unwrap(), payload);
    s.close().await.unwrap();
    assert_eq!(manifest.archive.files, 1);
    for l in store.list("").await.unwrap() {
        let _ = store.delete(&l.name).await;
    }
    let _ = storage.delete("no-archive/manifest.json").await;
    assert!(storage.list("").await.unwrap().is_empty());
}

#[test]
fn snapshots_through_the_http_api() {
    let url = s3_url("http");
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

    for name in &names {
        let (status, _) = server.json("DELETE", &format!("/v1/snapshots/{name}"), None);
        assert_eq!(status, 204);
    }
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
