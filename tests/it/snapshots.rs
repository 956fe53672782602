//! Snapshots against a real S3-protocol server on loopback (`scripts/test.sh` starts s3s-fs
//! through `scripts/s3.sh` and exports its settings): the store's operations, a snapshot
//! restored on the same engine and on Podman with files, modes, library and environment, and
//! damaged or missing snapshots as clear errors. The HTTP routes: `http_snapshots`.

use std::time::Duration;

use bytes::Bytes;
use sandpit::{Language, LanguageExt, SandboxSession};
use sandpit_snapshot::{Error, ObjectStorage, RestoreOptions, SnapshotStore};
use serde_json::{json, Value};

use crate::per_target;
use crate::support::{ca_bundle, engine, Target};

/// The S3 store the tests use, under a folder of its own for `test`. Fails with what to do
/// when the S3 server's settings are missing.
pub fn s3_url(test: &str) -> String {
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

pub fn sha256_hex(data: &[u8]) -> String {
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

/// A store holding the snapshot "good" of a session with one file, `data.bin`, and what it
/// takes to put damaged copies of it beside it and restore them; its sessions carry a label
/// of their own.
struct Damaged {
    store: SnapshotStore,
    storage: ObjectStorage,
    engine: sandpit::Engine,
    tag: String,
    payload: Vec<u8>,
    archive: Bytes,
    original: Value,
}

impl Damaged {
    async fn new(test: &str) -> Damaged {
        let store = store(test);
        let storage = store.storage().clone();
        let engine = engine().await;
        let tag = format!("{test}-{}", std::process::id());
        let mut damaged = Damaged {
            store,
            storage,
            engine,
            tag,
            payload: (0..400_000u32).map(|i| (i * 7 % 251) as u8).collect(),
            archive: Bytes::new(),
            original: Value::Null,
        };
        let source = damaged.builder().open().await.unwrap();
        source
            .files()
            .write("data.bin", &damaged.payload, None)
            .await
            .unwrap();
        let manifest = damaged.store.snapshot(&source, "good").await.unwrap();
        source.close().await.unwrap();
        assert_eq!(manifest.archive.files, 1);
        damaged.archive = damaged.storage.get("good/workdir.tar.gz").await.unwrap();
        let manifest_json = damaged.storage.get("good/manifest.json").await.unwrap();
        damaged.original = serde_json::from_slice(&manifest_json).unwrap();
        damaged
    }

    fn builder(&self) -> sandpit::SessionBuilder {
        SandboxSession::builder()
            .language(Language::Python)
            .engine(self.engine.clone())
            .label("snaptest", self.tag.clone())
    }

    async fn restore(&self, name: &str) -> Result<SandboxSession, Error> {
        self.store
            .restore(name, self.builder(), &RestoreOptions::default())
            .await
            .map(|r| r.session)
    }

    /// Stores `archive` and `manifest` as the snapshot `name`.
    async fn copy(&self, name: &str, archive: Vec<u8>, manifest: Value) {
        self.storage
            .put(&format!("{name}/workdir.tar.gz"), Bytes::from(archive))
            .await
            .unwrap();
        self.storage
            .put(
                &format!("{name}/manifest.json"),
                Bytes::from(serde_json::to_vec(&manifest).unwrap()),
            )
            .await
            .unwrap();
    }

    /// Stores `archive` with the good manifest, its checksum and size set to match.
    async fn copy_matching(&self, name: &str, archive: Vec<u8>) {
        let mut m = self.original.clone();
        m["archive"]["sha256"] = json!(sha256_hex(&archive));
        m["archive"]["size_bytes"] = json!(archive.len());
        self.copy(name, archive, m).await;
    }

    /// Every session a failed restore opened is gone, the good snapshot still restores, and
    /// the store is emptied.
    async fn finish(self) {
        assert_eq!(labelled(&self.engine, &self.tag).await, 0);
        let s = self.restore("good").await.unwrap();
        assert_eq!(s.files().read("data.bin").await.unwrap(), self.payload);
        s.close().await.unwrap();
        for l in self.store.list("").await.unwrap() {
            let _ = self.store.delete(&l.name).await;
        }
        let _ = self.storage.delete("no-archive/manifest.json").await;
        assert!(self.storage.list("").await.unwrap().is_empty());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_snapshot_is_not_found() {
    let store = store("missing");
    let err = store
        .restore(
            "nothing",
            crate::support::python().await,
            &RestoreOptions::default(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
    assert!(err.to_string().contains("no snapshot \"nothing\""), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_damaged_or_missing_archive_is_a_clear_error() {
    let d = Damaged::new("damaged").await;
    // Bytes changed in the middle of the archive, size unchanged.
    let mut flipped = d.archive.to_vec();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x5a;
    flipped[at + 1] ^= 0xa5;
    d.copy("flipped", flipped, d.original.clone()).await;
    let err = d.restore("flipped").await.unwrap_err();
    assert!(matches!(err, Error::Corrupt { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("SHA-256") || text.contains("cannot be read"),
        "{text}"
    );
    // Cut short.
    let short = d.archive[..d.archive.len() - 100].to_vec();
    d.copy("short", short, d.original.clone()).await;
    let err = d.restore("short").await.unwrap_err();
    assert!(err.to_string().contains("cut short"), "{err}");
    // The archive is gone, the manifest is there.
    d.copy("no-archive", d.archive.to_vec(), d.original.clone())
        .await;
    d.storage.delete("no-archive/workdir.tar.gz").await.unwrap();
    let err = d.restore("no-archive").await.unwrap_err();
    assert!(err.to_string().contains("missing from the store"), "{err}");
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_manifest_from_the_future_or_not_json_is_a_clear_error() {
    let d = Damaged::new("manifests").await;
    let mut future = d.original.clone();
    future["version"] = json!(2);
    d.copy("future", d.archive.to_vec(), future).await;
    let err = d.restore("future").await.unwrap_err();
    assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
    assert!(err.to_string().contains("format 2"), "{err}");
    d.storage
        .put(
            "garbled/manifest.json",
            Bytes::from_static(b"{\"format\": 1"),
        )
        .await
        .unwrap();
    let err = d.restore("garbled").await.unwrap_err();
    assert!(err.to_string().contains("not JSON"), "{err}");
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn archive_entries_that_leave_the_workdir_are_refused() {
    let d = Damaged::new("escapes").await;
    // The checksum matches: refused before the engine writes them, whatever the entry.
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
        d.copy_matching(name, bytes).await;
        let err = d.restore(name).await.unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{name}: {err}");
        assert!(err.to_string().contains(says), "{name}: {err}");
    }
    d.finish().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_archive_restored_into_a_session_lands_nothing_outside_its_workdir() {
    let d = Damaged::new("into").await;
    let dotdot = crafted(&[
        (b"ok.txt", tar::EntryType::Regular, b"", b"fine"),
        (b"../../escaped", tar::EntryType::Regular, b"", b"x"),
    ]);
    d.copy_matching("dotdot", dotdot).await;
    let target = d.builder().open().await.unwrap();
    let m = sandpit_snapshot::Manifest::parse(
        "dotdot",
        &d.storage.get("dotdot/manifest.json").await.unwrap(),
    )
    .unwrap();
    let err = d
        .store
        .restore_into(&target, "dotdot", &m)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("climbs out"), "{err}");
    let out = target
        .execute_command("ls /escaped /tmp/escaped /sandbox/../escaped 2>&1 | grep -c 'No such'")
        .await
        .unwrap();
    assert_eq!(out.stdout.trim(), "3", "{}", out.stdout);
    target.close().await.unwrap();
    d.finish().await;
}
