//! Running a real client (a Python or node script) against a real `sandpit serve`, and
//! reading what it printed: the compatibility suites (`compat`, `e2b*`) drive their APIs this
//! way.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::server::Server;

/// What a client script printed.
pub struct Ran {
    pub stdout: String,
    pub stderr: String,
    /// How it ended (an exit code, or the signal that killed it).
    pub status: std::process::ExitStatus,
}

/// Runs `program script` with `SANDPIT_URL` and `SANDPIT_KEY` set, within 10 minutes.
pub fn run_client(program: &Path, script: &Path, server: &Server, key: &str) -> Ran {
    run_script(
        program,
        script,
        &[("SANDPIT_URL", server.url.as_str()), ("SANDPIT_KEY", key)],
        Duration::from_secs(600),
    )
}

/// Runs `program script` in the script's folder with `env` set, within `limit`.
pub fn run_script(program: &Path, script: &Path, env: &[(&str, &str)], limit: Duration) -> Ran {
    let dir = script.parent().expect("the script's folder");
    let out_path = dir.join("stdout.txt");
    let err_path = dir.join("stderr.txt");
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .current_dir(dir)
        .env("NODE_EXTRA_CA_CERTS", "/etc/ssl/certs/ca-certificates.crt")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{} did not finish within {} s; it printed:\n{}\n{}",
                script.display(),
                limit.as_secs(),
                std::fs::read_to_string(&out_path).unwrap_or_default(),
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    Ran {
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        status,
    }
}

/// Compares a script's output with the expected lines, one by one.
pub fn expect_lines(what: &str, ran: &Ran, expected: &str, server: &Server) {
    expect_lines_of(what, ran, expected, &tail(&server.log(), 40));
}

/// [`expect_lines`] with the server's log (or logs) already in hand.
pub fn expect_lines_of(what: &str, ran: &Ran, expected: &str, log: &str) {
    let got: Vec<&str> = ran.stdout.lines().collect();
    let want: Vec<&str> = expected.trim().lines().collect();
    let context = || {
        format!(
            "\n--- {what} printed:\n{}\n--- its stderr:\n{}\n--- the server's log:\n{log}",
            ran.stdout, ran.stderr,
        )
    };
    for (i, line) in want.iter().enumerate() {
        assert_eq!(
            got.get(i).copied(),
            Some(*line),
            "{what}: line {} differs{}",
            i + 1,
            context()
        );
    }
    assert_eq!(got.len(), want.len(), "{what}: extra lines{}", context());
    assert!(
        ran.status.success(),
        "{what} exited with a failure ({}){}",
        ran.status,
        context()
    );
}

/// The last `n` lines of `text`.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A client script in a folder of its own.
pub fn script(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

/// Containers (running or not) carrying `label`.
pub fn containers_with(label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-aq", "--filter"])
        .arg(format!("label={label}"))
        .output()
        .expect("docker ps");
    assert!(
        out.status.success(),
        "docker ps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}
