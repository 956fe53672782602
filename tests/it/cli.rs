//! The `sandpit` command line, as users and the test suites call it.

use crate::per_target;
use crate::support::{sandpit_bin, sandpit_cli, Target};

#[test]
fn run_gives_the_programs_output_and_exit_status() {
    let (code, out, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "python",
            "-c",
            "import sys; print('hi', sys.argv[1:]); print('e', file=sys.stderr); sys.exit(3)",
            "--",
            "a",
            "b c",
        ],
        None,
    );
    assert_eq!(code, 3, "{err}");
    assert_eq!(out, "hi ['a', 'b c']\n");
    assert_eq!(err, "e\n");
}

#[test]
fn code_comes_from_a_file_or_standard_input_and_stdin_file_feeds_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("prog.py");
    std::fs::write(&src, "import sys\nprint(sys.stdin.read().strip()[::-1])\n").unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, "olleh\n").unwrap();
    let (code, out, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "py",
            src.to_str().unwrap(),
            "--stdin-file",
            input.to_str().unwrap(),
        ],
        None,
    );
    assert_eq!((code, out.as_str()), (0, "hello\n"), "{err}");
    let (code, out, err) = sandpit_cli(&["run", "--lang", "python"], Some("print(2 ** 10)\n"));
    assert_eq!((code, out.as_str()), (0, "1024\n"), "{err}");
}

#[test]
fn json_output_has_the_documented_shape() {
    let (code, out, err) = sandpit_cli(
        &["run", "--lang", "python", "--json", "-c", "print('j')"],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stdout"], "j\n");
    assert_eq!(v["stderr"], "");
    assert_eq!(v["exit_code"], 0);
    assert_eq!(v["timed_out"], false);
    assert_eq!(v["truncated"], false);
    assert!(v["duration_ms"].as_u64().is_some());
    assert!(v["compile"].is_null());
}

#[test]
fn a_timeout_exits_124() {
    let t = std::time::Instant::now();
    let (code, _, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "python",
            "--timeout",
            "2",
            "-c",
            "while True: pass",
        ],
        None,
    );
    assert_eq!(code, 124, "{err}");
    assert!(err.contains("timeout"), "{err}");
    assert!(t.elapsed() < std::time::Duration::from_secs(15));
}

#[test]
fn sandpit_failures_exit_125_with_one_clear_line() {
    let (code, _, err) = sandpit_cli(&["run", "--lang", "cobol", "-c", "x"], None);
    assert_eq!(code, 125);
    assert!(
        err.contains("unknown language") && err.contains("python"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, _, err) = sandpit_cli(
        &[
            "--host",
            "unix:///nonexistent.sock",
            "run",
            "--lang",
            "python",
            "-c",
            "print(1)",
        ],
        None,
    );
    assert_eq!(code, 125);
    assert!(
        err.starts_with("sandpit: cannot reach the container engine"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    let (code, _, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "python",
            "--image",
            "sandpit-test/nope:1",
            "-c",
            "print(1)",
        ],
        None,
    );
    assert_eq!(code, 125);
    assert!(err.contains("sandpit-test/nope:1"), "{err}");

    let (code, _, err) = sandpit_cli(&["run", "--lang", "python", "/nonexistent/prog.py"], None);
    assert_eq!(code, 125);
    assert!(err.contains("/nonexistent/prog.py"), "{err}");
}

#[test]
fn doctor_and_images_list_report_the_engine_and_images() {
    let (code, out, err) = sandpit_cli(&["doctor"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("engine reachable: yes"), "{out}");
    assert!(out.contains("API"), "{out}");
    assert!(out.contains("sandpit/python:latest: present"), "{out}");
    let (code, out, _) = sandpit_cli(&["images", "list"], None);
    assert_eq!(code, 0);
    assert!(out.contains("sandpit/python:latest"), "{out}");
    let (code, out, _) = sandpit_cli(&["--host", "unix:///nonexistent.sock", "doctor"], None);
    assert_eq!(code, 125);
    assert!(out.contains("engine reachable: NO"), "{out}");
    assert!(sandpit_bin().is_file());
}

#[test]
fn doctor_over_tls_says_tls_is_ok() {
    let tls = crate::support::TlsEngine::start();
    let d = tls.dir.path();
    let host = format!("tcp://{}", tls.addr);
    let (code, out, err) = sandpit_cli(
        &[
            "--host",
            &host,
            "--tlsverify",
            "--tlscacert",
            d.join("ca.pem").to_str().unwrap(),
            "--tlscert",
            d.join("cert.pem").to_str().unwrap(),
            "--tlskey",
            d.join("key.pem").to_str().unwrap(),
            "doctor",
        ],
        None,
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("TLS: ok"), "{out}");
}

per_target!(
    the_cli_runs_and_names_every_engine_and_runtime,
    [docker, gvisor, podman],
    |t: Target| async move {
        let args = t.run_args(&["-l", "python", "-c", "import os; print(os.uname().release)"]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = sandpit_cli(&args, None);
        assert_eq!(code, 0, "{err}");
        // gVisor's own kernel says 4.4.0; the others share the host's.
        assert_eq!(out.trim() == "4.4.0", t.is_gvisor(), "{out}");

        let host = t.engine.endpoint().to_string();
        let (code, out, err) = sandpit_cli(&["--host", &host, "doctor"], None);
        assert_eq!(code, 0, "{err}");
        let kind = if t.name == "podman" {
            "Podman"
        } else {
            "Docker"
        };
        assert!(out.contains(&format!("engine: {kind} ")), "{out}");
        if t.is_gvisor() {
            assert!(out.contains("runsc (gVisor"), "{out}");
        }
    }
);

#[test]
fn the_language_comes_from_the_file_extension() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.rb");
    std::fs::write(&file, "puts 'from ruby'").unwrap();
    let (code, out, err) = sandpit_cli(&["run", file.to_str().unwrap()], None);
    assert_eq!((code, out.as_str()), (0, "from ruby\n"), "{err}");
    let odd = dir.path().join("notes.txt");
    std::fs::write(&odd, "x").unwrap();
    let (code, _, err) = sandpit_cli(&["run", odd.to_str().unwrap()], None);
    assert_eq!(code, 125);
    assert!(err.contains(".txt") && err.contains("--lang"), "{err}");
}
