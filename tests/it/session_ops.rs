//! What a session offers besides running code: files, environment, packages, resource usage,
//! and adoption by another process. Every file operation is attacked on every engine.

use std::collections::BTreeMap;

use sandpit::{Error, ErrorKind, FileKind, Language, ListOptions, PackageSpec};

use crate::per_target;
use crate::support::{ca_bundle, engine, python, Target};

per_target!(
    files_round_trip_and_stay_in_the_workdir,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let files = s.files();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
        let written = files
            .write("data/raw.bin", &bytes, Some(0o640))
            .await
            .unwrap();
        assert_eq!(
            (written.kind, written.size, written.mode),
            (FileKind::File, 300_000, 0o640)
        );
        assert_eq!(written.path, "data/raw.bin");
        assert_eq!(files.read("data/raw.bin").await.unwrap(), bytes);
        files.write_text("data/notes.txt", "héllo ✓").await.unwrap();
        files
            .write_text("/sandbox/data/sub/deep.csv", "a,b\n")
            .await
            .unwrap();
        assert_eq!(files.read_text("data/notes.txt").await.unwrap(), "héllo ✓");
        // The program sees what the API wrote, and the API sees what the program wrote.
        let r = s
            .run("import os\nprint(open('data/notes.txt').read())\nopen('out.txt', 'w').write('from code')", &[])
            .await
            .unwrap();
        assert_eq!(r.stdout, "héllo ✓\n", "{}", r.stderr);
        assert_eq!(files.read_text("out.txt").await.unwrap(), "from code");

        let top = files.list("data", &ListOptions::default()).await.unwrap();
        let names: Vec<&str> = top.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["notes.txt", "raw.bin", "sub"]);
        assert_eq!(top[2].kind, FileKind::Dir);
        let all = files
            .list(
                "data",
                &ListOptions {
                    recursive: true,
                    pattern: Some("**/*.csv".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        assert_eq!(all[0].path, "data/sub/deep.csv");
        let txt = files
            .list(
                ".",
                &ListOptions {
                    recursive: true,
                    pattern: Some("*.txt".into()),
                    ..Default::default()
                },
            )
            .await
            .unwrap();
        assert_eq!(txt.len(), 2, "{txt:?}");

        assert!(files.exists("data/raw.bin").await.unwrap());
        assert!(!files.exists("nope").await.unwrap());
        files
            .copy("data/notes.txt", "copy/notes.txt")
            .await
            .unwrap();
        files.rename("copy/notes.txt", "moved.txt").await.unwrap();
        assert_eq!(files.read_text("moved.txt").await.unwrap(), "héllo ✓");
        assert_eq!(files.mkdir("made/here").await.unwrap().kind, FileKind::Dir);
        files.delete("data").await.unwrap();
        assert!(!files.exists("data/raw.bin").await.unwrap());

        // Errors of their own kinds.
        let err = files.read("missing.txt").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
        let err = files.copy("moved.txt", "out.txt").await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Conflict, "{err}");
        let err = files.read("made").await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");

        // Attacks: climbing out, absolute paths elsewhere, symlinks made by the code.
        for path in [
            "../etc/passwd",
            "/etc/passwd",
            "/sandbox/../etc/shadow",
            "data/../../x",
        ] {
            let err = files.read(path).await.unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
            let err = files.write(path, b"x", None).await.unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
        }
        let err = files.delete("/sandbox").await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        s.run(
            "import os\nos.symlink('/etc', 'etc-link')\nos.symlink('/etc/passwd', 'passwd-link')\nos.makedirs('inner')\nos.symlink('/tmp', 'inner/tmp-link')",
            &[],
        )
        .await
        .unwrap();
        for path in ["passwd-link", "etc-link/hostname", "inner/tmp-link/x"] {
            let err = files.read(path).await.unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{path}: {err}");
        }
        let err = files.write("etc-link/evil", b"x", None).await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        let err = files
            .list("etc-link", &ListOptions::default())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        let err = files.copy("passwd-link", "stolen").await.unwrap_err();
        assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
        // A symlink is a thing of its own: it can be described and deleted (not its target).
        let link = files.info("passwd-link").await.unwrap();
        assert_eq!(link.kind, FileKind::Symlink);
        files.delete("passwd-link").await.unwrap();
        let r = s
            .execute_command("test -s /etc/passwd && echo intact")
            .await
            .unwrap();
        assert_eq!(r.stdout, "intact\n");
        s.close().await.unwrap();
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn the_environment_reaches_runs_commands_and_the_kernel() {
    let s = python().await.env("FIRST", "1").open().await.unwrap();
    s.execute("import os").await.unwrap();
    s.set_env("GREETING", "hallo welt").unwrap();
    let r = s
        .run(
            "import os; print(os.environ['GREETING'], os.environ['FIRST'])",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "hallo welt 1\n");
    let c = s.execute_command("echo $GREETING").await.unwrap();
    assert_eq!(c.stdout, "hallo welt\n");
    let k = s
        .execute("print(os.environ.get('GREETING'))")
        .await
        .unwrap();
    assert_eq!(k.stdout, "hallo welt\n");
    assert!(s.unset_env("GREETING"));
    let k = s
        .execute("print(os.environ.get('GREETING'))")
        .await
        .unwrap();
    assert_eq!(k.stdout, "None\n");
    let mut vars = BTreeMap::new();
    vars.insert("ONLY".to_string(), "this".to_string());
    s.replace_env(vars).unwrap();
    assert_eq!(s.env_vars().keys().collect::<Vec<_>>(), ["ONLY"]);
    let r = s
        .run(
            "import os; print(os.environ.get('ONLY'), os.environ.get('FIRST'))",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "this None\n");
    let err = s.set_env("BAD=NAME", "x").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);

    // A PATH that hides the interpreter: the kernel cannot start, and the error says why.
    s.set_env("PATH", "/nowhere").unwrap();
    s.execute("1").await.unwrap(); // the running kernel is unaffected
    s.restart_kernel().await.unwrap();
    let err = s.execute("1").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
    assert!(err.to_string().contains("PATH"), "{err}");
    assert!(s.unset_env("PATH"));
    let r = s.execute("print(6 * 7)").await.unwrap();
    assert_eq!(r.stdout, "42\n", "{r:?}");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn usage_and_run_figures_are_real_numbers() {
    let s = python().await.open().await.unwrap();
    let r = s
        .run("x = bytearray(64 << 20)\nn = sum(range(5_000_000))\nopen('f.bin', 'wb').write(bytes(3 << 20))", &[])
        .await
        .unwrap();
    let usage = r.usage.expect("per-run figures");
    assert!(usage.cpu.unwrap().as_millis() > 50, "{usage:?}");
    assert!(usage.memory_peak_bytes.unwrap() > 64 << 20, "{usage:?}");
    let u = s.usage().await.unwrap();
    assert!(u.cpu.as_millis() > 50, "{u:?}");
    assert_eq!(u.memory_limit_bytes, 512 << 20);
    assert!(u.memory_peak_bytes.unwrap() > 64 << 20, "{u:?}");
    assert!(u.disk_used_bytes >= 3 << 20, "{u:?}");
    assert_eq!(
        u.disk_limit_bytes.map(|d| d > 900 << 20),
        Some(true),
        "{u:?}"
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn packages_install_list_upgrade_and_uninstall() {
    let ca = ca_bundle().expect("a CA bundle");
    let s = python()
        .await
        .extra_ca_certificates(&ca)
        .open()
        .await
        .unwrap();
    s.install_packages(&[PackageSpec::new("tabulate").version("0.8.10")], false)
        .await
        .unwrap();
    let version = |list: Vec<sandpit::Package>| {
        list.into_iter()
            .find(|p| p.name == "tabulate")
            .and_then(|p| p.version)
    };
    assert_eq!(
        version(s.packages().await.unwrap()).as_deref(),
        Some("0.8.10")
    );
    assert!(s.is_installed("tabulate").await.unwrap());
    s.install_packages(&[PackageSpec::new("tabulate")], true)
        .await
        .unwrap();
    let upgraded = version(s.packages().await.unwrap()).unwrap();
    assert_ne!(upgraded, "0.8.10", "upgraded");
    s.uninstall_package("tabulate").await.unwrap();
    assert!(!s.is_installed("tabulate").await.unwrap());
    let r = s.run("import tabulate", &[]).await.unwrap();
    assert_ne!(r.exit_code, 0);
    let err = s.uninstall_package("tabulate").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
    s.install_requirements("tabulate==0.9.0\n# a comment\n")
        .await
        .unwrap();
    let r = s
        .run("import tabulate; print(tabulate.__version__)", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "0.9.0\n", "{}", r.stderr);
    let err = s
        .install_packages(
            &[PackageSpec::new("surely-no-such-package-sandpit-4711")],
            false,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::LibraryInstall { .. }), "{err}");
    s.close().await.unwrap();

    let go = crate::support::target("docker")
        .await
        .unwrap()
        .builder(Language::Go)
        .open()
        .await
        .unwrap();
    let err = go
        .uninstall_package("github.com/google/uuid")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "nothing installed: {err}");
    let err = go.install_requirements("x").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unsupported, "{err}");
    go.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn another_process_adopts_a_session_with_its_files() {
    let s = python()
        .await
        .env("KEPT", "yes")
        .tied_to_process(false)
        .open()
        .await
        .unwrap();
    s.files().write_text("state.txt", "saved").await.unwrap();
    let id = s.id().to_string();
    // Another engine connection, as a restarted server would have.
    let fresh = sandpit::connect_env().await.unwrap();
    let adopted = sandpit::adopt(&fresh, &id).await.unwrap();
    assert_eq!(adopted.container_name(), s.container_name());
    assert_eq!(
        adopted.files().read_text("state.txt").await.unwrap(),
        "saved"
    );
    let r = adopted
        .run("import os; print(os.environ['KEPT'])", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "yes\n");
    adopted.close().await.unwrap();
    assert_eq!(crate::support::containers_of(&engine().await, &id).await, 0);
    // The first handle finds its container gone.
    let err = s.run("print(1)", &[]).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Gone, "{err}");
    let _ = s.close().await;
    let err = sandpit::adopt(&fresh, "nonexistent0").await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound, "{err}");
}
