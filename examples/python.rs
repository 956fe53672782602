//! Open a Python session, run code, print what it produced, close it.
//!
//! cargo run -p sandpit --example python

use sandpit::{Language, LanguageExt, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    // The local engine (or DOCKER_HOST); sandpit/python:latest is built on first use.
    let session = SandboxSession::builder()
        .language(Language::Python)
        .on_progress(|line| eprintln!("[image] {line}"))
        .open()
        .await?;

    let code = r#"
import sys, platform
print("hello from Python", platform.python_version())
print("this goes to stderr", file=sys.stderr)
sys.exit(3)
"#;
    // A program that fails is still an Ok(RunResult): only Sandpit's own failures are Err.
    let result = session.run(code, &[]).await;

    // Close explicitly, also when the run failed; dropping the session is only a safety net.
    session.close().await?;
    let result = result?;

    print!("stdout: {}", result.stdout);
    print!("stderr: {}", result.stderr);
    println!("exit code: {}", result.exit_code);
    println!("took {} ms", result.duration.as_millis());
    Ok(())
}
