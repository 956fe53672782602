//! `sandpit doctor`: is everything needed there?

use anyhow::Result;
use sandpit::image::{image_exists, BASE_IMAGE};
use sandpit::{Endpoint, Language};

use crate::connect::ConnectionArgs;
use crate::EXIT_SANDPIT_FAILED;

pub async fn doctor(conn: &ConnectionArgs) -> Result<u8> {
    let connection = conn.connection()?;
    println!("engine endpoint: {}", connection.endpoint());
    let engine = match connection.connect().await {
        Ok(engine) => engine,
        Err(e) => {
            println!("engine reachable: NO — {e}");
            return Ok(EXIT_SANDPIT_FAILED);
        }
    };
    println!("engine reachable: yes");
    if matches!(connection.endpoint(), Endpoint::Tcp { tls: Some(_), .. }) {
        println!("TLS: ok (engine certificate verified, client certificate accepted)");
    }
    let version = engine.version().await?;
    println!(
        "engine version: {} (API {}, negotiated {})",
        version.version.unwrap_or_default(),
        version.api_version.unwrap_or_default(),
        engine.api_version()
    );
    let mut missing = 0;
    let base = image_exists(&engine, BASE_IMAGE).await?;
    println!(
        "base image {BASE_IMAGE}: {}",
        if base {
            "present"
        } else {
            "missing (built on demand with debootstrap)"
        }
    );
    if !base {
        let debootstrap = std::process::Command::new("sh")
            .args(["-c", "command -v debootstrap"])
            .output()
            .is_ok_and(|o| o.status.success());
        println!(
            "debootstrap: {}",
            if debootstrap {
                "installed"
            } else {
                "MISSING — install it (apt-get install debootstrap) or load debian:bookworm-slim"
            }
        );
    }
    for language in Language::ALL {
        let tag = sandpit::runner(*language).default_image().tag;
        let present = image_exists(&engine, &tag).await?;
        if !present {
            missing += 1;
        }
        println!(
            "image {tag}: {}",
            if present {
                "present".to_string()
            } else {
                format!("missing (sandpit images build {language}, or built on first use)")
            }
        );
    }
    println!(
        "{}",
        if missing == 0 {
            "all good"
        } else {
            "usable; missing images are built on first use"
        }
    );
    Ok(0)
}
