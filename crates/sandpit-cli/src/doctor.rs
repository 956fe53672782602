//! `sandpit doctor`: is everything needed there?

use anyhow::Result;
use sandpit::image::{image_exists, BASE_IMAGE};
use sandpit::{Endpoint, Language, RuntimeKind};

use crate::connect::ConnectionArgs;
use crate::EXIT_SANDPIT_FAILED;

pub async fn doctor(conn: &ConnectionArgs) -> Result<u8> {
    let connection = conn.connection()?;
    println!("engine endpoint: {}", connection.endpoint());
    let engine = match sandpit::connect(&connection).await {
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
    let info = engine.info().await?;
    println!(
        "engine: {} {} (API {}, negotiated {})",
        info.kind, info.version, info.api_version, info.negotiated_api_version
    );
    println!(
        "host: {}, kernel {}, storage {} on {}, cgroups v{}",
        info.os,
        info.kernel,
        info.storage_driver,
        if info.backing_filesystem.is_empty() {
            "?"
        } else {
            &info.backing_filesystem
        },
        info.cgroup_version
    );
    let runtimes: Vec<String> = info
        .runtimes
        .iter()
        .map(|r| {
            let mut notes = Vec::new();
            if r.name == info.default_runtime {
                notes.push("default");
            }
            if r.kind == RuntimeKind::Gvisor {
                notes.push("gVisor: libraries only at open, no network later");
            }
            if notes.is_empty() {
                r.name.clone()
            } else {
                format!("{} ({})", r.name, notes.join("; "))
            }
        })
        .collect();
    println!("runtimes: {}", runtimes.join(", "));
    let caps = &info.capabilities;
    println!(
        "workdir disk limit: {}",
        if sandpit::loop_disks_available(&info) {
            "a loop-mounted disk per session (writes past it fail with ENOSPC)"
        } else if caps.storage_quota {
            "the storage driver's quota"
        } else if caps.shares_host {
            "NONE — install e2fsprogs and util-linux (mkfs.ext4, debugfs, losetup) for loop disks"
        } else {
            "none (a remote engine on a storage driver without quotas)"
        }
    );
    println!(
        "installs after open: {}",
        if caps.network_hotplug {
            "the network is attached only while they run"
        } else {
            "not possible (no network hot-plug); give libraries at open"
        }
    );
    println!(
        "keep_template (commit): {}; pause: {}",
        yes(caps.commit),
        yes(caps.pause)
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

fn yes(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}
