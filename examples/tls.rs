//! Run code on a remote engine over TLS (the engine runs `dockerd --tlsverify`).
//!
//! SANDPIT_TLS_HOST=127.0.0.1:2376 SANDPIT_TLS_DIR=/path/to/certs \
//!     cargo run -p sandpit --example tls
//!
//! SANDPIT_TLS_DIR holds ca.pem (signed the engine's certificate), cert.pem and key.pem
//! (the client's), laid out as for DOCKER_CERT_PATH.

use std::path::PathBuf;

use sandpit::{Connection, Language, LanguageExt, Network, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let (Ok(host), Ok(dir)) = (
        std::env::var("SANDPIT_TLS_HOST"),
        std::env::var("SANDPIT_TLS_DIR"),
    ) else {
        println!(
            "set SANDPIT_TLS_HOST=HOST:PORT and SANDPIT_TLS_DIR=FOLDER (with ca.pem, cert.pem, key.pem) to run this against a TLS engine"
        );
        return Ok(());
    };
    let dir = PathBuf::from(dir);
    let connection = Connection::tls(
        &host,
        dir.join("ca.pem"),
        dir.join("cert.pem"),
        dir.join("key.pem"),
    );

    // The remote engine needs the image too (built there on first use, or `docker load`ed).
    // Network::None: code that needs no network should not get one (and an engine started
    // with --bridge=none has no bridge to give).
    let session = SandboxSession::builder()
        .language(Language::Python)
        .connection(connection)
        .network(Network::None)
        .open()
        .await?;
    let info = session.engine_info();
    println!(
        "connected to {} at {} (API {})",
        info.kind,
        session.engine().endpoint(),
        info.negotiated_api_version
    );
    let result = session
        .run("import socket\nprint(socket.gethostname())", &[])
        .await;
    session.close().await?;
    print!("container hostname: {}", result?.stdout);
    Ok(())
}
