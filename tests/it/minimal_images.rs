//! Images that are not Debian, built here from scratch (no registry serves Alpine or
//! distroless here): one with Debian's static busybox (a shell, no libc), one with a single
//! static program and no shell at all. The agent needs neither: each serves a command given as
//! argv and the files API.

use std::path::Path;

use sandpit::{CommandOptions, Engine, Language};

use crate::per_target;
use crate::support::{containers_of, Target};

/// Builds `tag` from `dockerfile` with `files` beside it, unless the engine has it.
async fn build(engine: &Engine, tag: &str, dockerfile: &str, files: &[(&str, &Path)]) {
    if crate::support::image_exists(engine, tag).await {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Dockerfile"), dockerfile).unwrap();
    for (name, from) in files {
        std::fs::copy(from, dir.path().join(name)).unwrap();
    }
    sandpit::image::build_dockerfile(
        engine,
        &dir.path().join("Dockerfile"),
        tag,
        &sandpit::image::quiet(),
    )
    .await
    .unwrap_or_else(|e| panic!("building {tag}: {e}"));
}

/// A static program: prints its arguments, one per line (compiled here with the host's gcc).
fn static_program() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("hello.c");
    std::fs::write(
        &source,
        "#include <stdio.h>\nint main(int c, char **v) { for (int i = 1; i < c; i++) puts(v[i]); return c > 1 ? 0 : 3; }\n",
    )
    .unwrap();
    let out = std::process::Command::new("gcc")
        .args(["-static", "-O2", "-o"])
        .arg(dir.path().join("hello"))
        .arg(&source)
        .output()
        .expect("gcc (Debian's gcc and libc6-dev) builds the static test program");
    assert!(
        out.status.success(),
        "gcc -static failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    dir
}

const BUSYBOX: &str = "sandpit-test/busybox:latest";
const STATIC_ONLY: &str = "sandpit-test/static-only:latest";

async fn busybox_image(engine: &Engine) {
    // The base image is the project's own Debian (built by `sandpit images build`).
    build(
        engine,
        BUSYBOX,
        "FROM debian:bookworm-slim AS debian\nRUN apt-get update && apt-get install -y --no-install-recommends busybox-static\nFROM scratch\nCOPY --from=debian /bin/busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        &[],
    )
    .await;
}

async fn static_only_image(engine: &Engine) {
    let program = static_program();
    build(
        engine,
        STATIC_ONLY,
        "FROM scratch\nCOPY hello /hello\n",
        &[("hello", &program.path().join("hello"))],
    )
    .await;
}

per_target!(
    a_busybox_image_without_libc_serves_commands_and_files,
    [docker, gvisor],
    |t: Target| async move {
        busybox_image(&t.engine).await;
        let s = t
            .builder(Language::Python)
            .image(BUSYBOX)
            .open()
            .await
            .unwrap();
        let r = s
            .execute_argv(
                &["sh", "-c", "echo $((6 * 7)) from $(id -u)"],
                CommandOptions::new(),
            )
            .await
            .unwrap();
        assert_eq!(
            (r.stdout.as_str(), r.exit_code),
            ("42 from 1000\n", 0),
            "{r:?}"
        );
        let r = s.execute_command("ls /lib 2>&1; echo done").await.unwrap();
        assert!(r.stdout.ends_with("done\n"), "{r:?}");
        s.files().write_text("note.txt", "kept").await.unwrap();
        let r = s
            .execute_argv(&["cat", "note.txt"], CommandOptions::new())
            .await
            .unwrap();
        assert_eq!(r.stdout, "kept");
        s.close().await.unwrap();
        assert_eq!(containers_of(&t.engine, s.id()).await, 0);
    }
);

per_target!(
    an_image_with_no_shell_serves_a_program_and_files,
    [docker, gvisor],
    |t: Target| async move {
        static_only_image(&t.engine).await;
        let s = t
            .builder(Language::Python)
            .image(STATIC_ONLY)
            .open()
            .await
            .unwrap();
        let r = s
            .execute_argv(&["/hello", "one", "two words"], CommandOptions::new())
            .await
            .unwrap();
        assert_eq!(
            (r.stdout.as_str(), r.exit_code),
            ("one\ntwo words\n", 0),
            "{r:?}"
        );
        let r = s
            .execute_argv(&["/hello"], CommandOptions::new())
            .await
            .unwrap();
        assert_eq!(r.exit_code, 3);
        // No shell: a shell command is the program-not-found answer a shell would give.
        let r = s.execute_command("echo hi").await.unwrap();
        assert_eq!(r.exit_code, 127, "{r:?}");
        assert!(r.stderr.contains("/bin/sh"), "{r:?}");
        s.files()
            .write("data/bytes.bin", &[0, 1, 2, 255], None)
            .await
            .unwrap();
        assert_eq!(
            s.files().read("data/bytes.bin").await.unwrap(),
            vec![0, 1, 2, 255]
        );
        let listed = s
            .files()
            .list(".", &sandpit::ListOptions::default())
            .await
            .unwrap();
        assert_eq!(listed.len(), 1, "{listed:?}");
        s.close().await.unwrap();
        assert_eq!(containers_of(&t.engine, s.id()).await, 0);
    }
);
