//! Install a library from the Python package index, then use it.
//!
//! Where the package index is only reachable through a TLS-intercepting proxy (as on
//! Sandpit's build machines, and behind many corporate proxies), the container needs the
//! proxy's CA certificate: `extra_ca_certificates` copies a PEM bundle into the container
//! and points pip (and Python's ssl, requests, Node) at it.
//!
//! SANDPIT_CA_BUNDLE=/path/to/ca.pem cargo run -p sandpit --example libraries

use std::error::Error;

use sandpit::{Language, LanguageExt, SandboxSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let ca_bundle = std::env::var("SANDPIT_CA_BUNDLE")
        .unwrap_or_else(|_| "/etc/ssl/certs/ca-certificates.crt".into());

    let session = SandboxSession::builder()
        .language(Language::Python)
        .extra_ca_certificates(&ca_bundle)
        .open()
        .await?;

    // Libraries are installed once per session, before the code runs. The image already
    // carries Debian's six 1.16 (pulled in by its matplotlib), so pin a newer release:
    // pip then really fetches it from the package index into the session's venv.
    let code = "import six\nprint('six', six.__version__, 'from', six.__file__)";
    let result = session.run(code, &["six==1.17.0"]).await;
    session.close().await?;
    let result = result?;

    if !result.success() {
        return Err(format!("the program failed: {}", result.stderr).into());
    }
    print!("{}", result.stdout);
    Ok(())
}
