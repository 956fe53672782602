//! `sandpit serve`: the HTTP API (and MCP over HTTP) on the engine the flags name.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use sandpit_service::{Manager, ServiceConfig, Store};

use crate::connect::ConnectionArgs;

/// Arguments of `sandpit serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:9501; env: SANDPIT_ADDR]
    #[arg(long)]
    addr: Option<String>,
    /// Where keys and sessions are kept [default: ~/.local/share/sandpit; env: SANDPIT_DATA_DIR]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Settings file (TOML); SANDPIT_* variables and these flags override it
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Serve the Piston and LLM Python Code Sandbox routes to clients that send no key
    #[arg(long)]
    allow_anonymous: bool,
    /// Where snapshots go: file:///folder or s3://bucket/prefix (credentials and endpoint from
    /// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL) [env: SANDPIT_SNAPSHOTS]
    #[arg(long, value_name = "URL")]
    snapshots: Option<String>,
}

/// The settings the flags, the environment and the file give.
pub fn config(args: &ServeArgs) -> Result<ServiceConfig> {
    let mut config = ServiceConfig::load(args.config.as_deref())?;
    if let Some(addr) = &args.addr {
        config.addr = addr.clone();
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    if args.allow_anonymous {
        config.allow_anonymous = true;
    }
    if let Some(url) = &args.snapshots {
        config.snapshots = Some(url.clone());
    }
    config.validate()?;
    Ok(config)
}

pub async fn serve(conn: &ConnectionArgs, args: ServeArgs) -> Result<u8> {
    let config = config(&args)?;
    let store = Store::open(&config.data_dir)?;
    let engine = conn.engine().await?;
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let manager = Manager::start(config.clone(), engine, store).await?;
    let warm = manager.clone();
    tokio::spawn(async move { warm.warm_pools().await });
    eprintln!(
        "sandpit: listening on http://{addr} (data in {}; {} sessions adopted); API docs at http://{addr}/docs",
        config.data_dir.display(),
        manager.open_count()
    );
    sandpit_http::serve(listener, manager, shutdown_signal()).await?;
    eprintln!("sandpit: stopped; open sessions stay for the next start");
    Ok(0)
}

/// SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
