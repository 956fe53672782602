//! Files and folders in and out, bytes and modes kept, escapes refused.

use std::os::unix::fs::PermissionsExt;

use sandpit::Error;

use crate::per_target;
use crate::support::{python, Target};

per_target!(
    a_file_and_a_folder_go_in_and_come_back_unchanged,
    [docker, gvisor, podman],
    |t: Target| async move { round_trip(&t).await }
);

async fn round_trip(t: &Target) {
    let host = tempfile::tempdir().unwrap();
    let src = host.path().join("src");
    std::fs::create_dir_all(src.join("nested/deeper")).unwrap();
    let binary: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    std::fs::write(src.join("nested/deeper/blob.bin"), &binary).unwrap();
    std::fs::write(src.join("run.sh"), "#!/bin/sh\necho ran\n").unwrap();
    std::fs::set_permissions(src.join("run.sh"), std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::write(host.path().join("one.txt"), "single ✓").unwrap();

    let s = t.builder(sandpit::Language::Python).open().await.unwrap();
    s.copy_to_runtime(&src, "project").await.unwrap();
    s.copy_to_runtime(host.path().join("one.txt"), "/sandbox/in/one.txt")
        .await
        .unwrap();
    let r = s
        .execute_command("./project/run.sh && python3 -c \"import os; s = os.stat('project/run.sh'); print(oct(s.st_mode)[-3:], s.st_uid)\" && cat in/one.txt && echo new > project/made-inside.txt")
        .await
        .unwrap();
    assert_eq!(r.stdout, "ran\n750 1000\nsingle ✓", "{}", r.stderr);

    let back = host.path().join("back");
    s.copy_from_runtime("project", &back).await.unwrap();
    assert_eq!(
        std::fs::read(back.join("nested/deeper/blob.bin")).unwrap(),
        binary
    );
    assert_eq!(
        std::fs::read_to_string(back.join("made-inside.txt")).unwrap(),
        "new\n"
    );
    let mode = std::fs::metadata(back.join("run.sh"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o750);
    s.copy_from_runtime("/sandbox/in/one.txt", host.path().join("one-back.txt"))
        .await
        .unwrap();
    assert_eq!(
        std::fs::read_to_string(host.path().join("one-back.txt")).unwrap(),
        "single ✓"
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn escaping_paths_and_symlinks_are_refused() {
    let host = tempfile::tempdir().unwrap();
    std::fs::write(host.path().join("f.txt"), "x").unwrap();
    let s = python().await.open().await.unwrap();

    let err = s
        .copy_to_runtime(host.path().join("f.txt"), "../../etc/evil")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    let err = s
        .copy_from_runtime("../etc/passwd", host.path().join("p"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");

    // A folder holding a symlink to the host's /etc must not be unpacked through.
    s.execute_command("mkdir -p out && ln -s /etc out/link && ln -s ../../../../../../tmp out/up")
        .await
        .unwrap();
    let dest = host.path().join("dest");
    let err = s.copy_from_runtime("out", &dest).await.unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
    assert!(err.to_string().contains("points outside"), "{err}");

    let err = s
        .copy_from_runtime("does-not-exist", host.path().join("n"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PathNotFound {
                in_sandbox: true,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(err.kind(), sandpit::ErrorKind::NotFound);
    assert!(
        err.to_string().contains("does not exist in the sandbox"),
        "{err}"
    );
    let err = s
        .copy_to_runtime(host.path().join("missing"), "x")
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::PathNotFound {
                in_sandbox: false,
                ..
            }
        ),
        "{err}"
    );
    s.close().await.unwrap();
}
