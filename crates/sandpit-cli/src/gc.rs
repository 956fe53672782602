//! `sandpit gc`: remove what dead processes left behind.

use anyhow::Result;

use crate::connect::ConnectionArgs;

pub async fn gc(conn: &ConnectionArgs) -> Result<u8> {
    let engine = conn.engine().await?;
    let report = sandpit::gc(&engine).await?;
    for (name, reason) in &report.containers {
        println!("removed container {name} ({reason})");
    }
    for v in &report.volumes {
        println!("removed volume {v}");
    }
    for d in &report.disks {
        println!("removed disk of session {d}");
    }
    println!(
        "{} removed, {} live session container(s) kept",
        report.containers.len(),
        report.kept
    );
    Ok(0)
}
