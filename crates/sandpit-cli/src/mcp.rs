//! `sandpit mcp`: an MCP server on standard input and output, for clients that start it
//! themselves (Claude Desktop, Cursor, ...). It runs its own session manager on the engine the
//! connection flags name, in a data folder of its own, and closes every session when the
//! client goes.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sandpit_service::{Manager, ServiceConfig, Store};

use crate::connect::ConnectionArgs;

/// Arguments of `sandpit mcp`.
#[derive(Debug, Args)]
pub struct McpArgs {
    /// Where the session records are kept [default: a temporary folder, removed at exit]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Settings file (TOML), as `sandpit serve` reads it: lifetimes, limits, warm pools,
    /// CA bundle; SANDPIT_* variables override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
}

pub async fn mcp(conn: &ConnectionArgs, args: McpArgs) -> Result<u8> {
    let mut config = ServiceConfig::load(args.config.as_deref())?;
    let temp = match &args.data_dir {
        Some(dir) => {
            config.data_dir = dir.clone();
            None
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("sandpit-mcp-")
                .tempdir()
                .context("cannot make a temporary data folder (give one with --data-dir)")?;
            config.data_dir = t.path().to_path_buf();
            Some(t)
        }
    };
    config.validate()?;
    let store = Store::open(&config.data_dir)?;
    let engine = conn.engine().await?;
    let manager = Manager::start(config.clone(), engine, store, None).await?;
    eprintln!(
        "sandpit: MCP server on stdio (engine {}, data in {}); sessions close when the client goes",
        manager.engine().endpoint(),
        config.data_dir.display()
    );
    sandpit_mcp::serve_stdio(manager, shutdown_signal()).await?;
    drop(temp);
    Ok(0)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
