//! Every example in `examples/` runs to success against the real engine.

use std::path::PathBuf;
use std::process::Command;

use crate::support::{ca_bundle, TlsEngine};

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir")
        .join("examples")
        .join(name);
    assert!(
        bin.is_file(),
        "{} is missing: build the examples first (cargo build --workspace --all-targets, as scripts/test.sh does)",
        bin.display()
    );
    bin
}

fn run(name: &str, envs: &[(&str, String)]) -> String {
    let mut cmd = Command::new(example(name));
    if let Some(ca) = ca_bundle() {
        cmd.env("SANDPIT_CA_BUNDLE", ca);
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run example");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "example {name} failed ({}):\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn the_python_examples_run() {
    for name in ["python", "scoped", "libraries", "keep_template", "copy"] {
        let out = run(name, &[]);
        assert!(!out.trim().is_empty(), "example {name} printed nothing");
    }
}

#[test]
fn the_language_examples_run() {
    for name in ["java", "javascript", "cpp", "go", "ruby"] {
        let out = run(name, &[]);
        assert!(!out.trim().is_empty(), "example {name} printed nothing");
    }
}

#[test]
fn the_tls_example_runs_against_a_tls_engine() {
    let tls = TlsEngine::start();
    let out = run(
        "tls",
        &[
            ("SANDPIT_TLS_HOST", tls.addr.clone()),
            ("SANDPIT_TLS_DIR", tls.dir.path().display().to_string()),
        ],
    );
    assert!(out.contains("connected to"), "{out}");
}
