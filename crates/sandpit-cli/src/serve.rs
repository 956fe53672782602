//! `sandpit serve`: the HTTP API (and MCP over HTTP) on the engine the flags name.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use std::sync::Arc;

use sandpit_cluster::{Cluster, NodeSpec};
use sandpit_service::{ClusterConfig, Manager, PeerTls, Registry, ServiceConfig, Store};

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
    /// Join the cluster whose registry is at etcd://HOST:2379[,HOST:2379...] (with
    /// --node-name and --advertise, or `[cluster]` in the config file) [env: SANDPIT_CLUSTER]
    #[arg(long, value_name = "URL")]
    cluster: Option<String>,
    /// This node's name in the cluster [env: SANDPIT_NODE_NAME]
    #[arg(long, value_name = "NAME")]
    node_name: Option<String>,
    /// The URL other nodes reach this one at, such as http://10.0.0.5:9501 [env: SANDPIT_ADVERTISE]
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
    /// mTLS between nodes: where this node listens for the others, such as 10.0.0.5:9502
    /// (with --peer-ca, --peer-cert and --peer-key; --advertise is then https:// on this
    /// address) [env: SANDPIT_PEER_ADDR]
    #[arg(long, value_name = "ADDR")]
    peer_addr: Option<String>,
    /// PEM: the CA that signs the nodes' certificates [env: SANDPIT_PEER_CA]
    #[arg(long, value_name = "FILE")]
    peer_ca: Option<PathBuf>,
    /// PEM: this node's certificate, for its advertise address [env: SANDPIT_PEER_CERT]
    #[arg(long, value_name = "FILE")]
    peer_cert: Option<PathBuf>,
    /// PEM: this node's private key [env: SANDPIT_PEER_KEY]
    #[arg(long, value_name = "FILE")]
    peer_key: Option<PathBuf>,
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
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let etcd = args.cluster.clone().or_else(|| env("SANDPIT_CLUSTER"));
    let node_name = args.node_name.clone().or_else(|| env("SANDPIT_NODE_NAME"));
    let advertise = args.advertise.clone().or_else(|| env("SANDPIT_ADVERTISE"));
    match (config.cluster.as_mut(), etcd) {
        (Some(cluster), etcd) => {
            if let Some(etcd) = etcd {
                cluster.etcd = etcd;
            }
            if let Some(name) = node_name {
                cluster.node_name = name;
            }
            if let Some(url) = advertise {
                cluster.advertise = url;
            }
        }
        (None, Some(etcd)) => {
            let (Some(node_name), Some(advertise)) = (node_name, advertise) else {
                anyhow::bail!(
                    "--cluster needs --node-name NAME and --advertise URL (the address other nodes reach this one at)"
                );
            };
            config.cluster = Some(ClusterConfig {
                etcd,
                node_name,
                advertise,
                labels: Default::default(),
                max_sessions: 200,
                lease_ttl: 5,
                tls: None,
            });
        }
        (None, None) => {
            if node_name.is_some() || advertise.is_some() {
                anyhow::bail!("--node-name and --advertise go with --cluster etcd://HOST:PORT");
            }
        }
    }
    peer_tls(args, &mut config)?;
    config.validate()?;
    Ok(config)
}

/// Lays the `--peer-*` flags (or their variables) over `[cluster.tls]`.
fn peer_tls(args: &ServeArgs, config: &mut ServiceConfig) -> Result<()> {
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let file =
        |flag: &Option<PathBuf>, var: &str| flag.clone().or_else(|| env(var).map(PathBuf::from));
    let addr = args.peer_addr.clone().or_else(|| env("SANDPIT_PEER_ADDR"));
    let ca = file(&args.peer_ca, "SANDPIT_PEER_CA");
    let cert = file(&args.peer_cert, "SANDPIT_PEER_CERT");
    let key = file(&args.peer_key, "SANDPIT_PEER_KEY");
    if addr.is_none() && ca.is_none() && cert.is_none() && key.is_none() {
        return Ok(());
    }
    let Some(cluster) = config.cluster.as_mut() else {
        anyhow::bail!(
            "--peer-addr, --peer-ca, --peer-cert and --peer-key go with --cluster etcd://HOST:PORT"
        );
    };
    let old = cluster.tls.take();
    let addr = addr.or_else(|| old.as_ref().map(|t| t.addr.clone()));
    let ca = ca.or_else(|| old.as_ref().map(|t| t.ca.clone()));
    let cert = cert.or_else(|| old.as_ref().map(|t| t.cert.clone()));
    let key = key.or_else(|| old.as_ref().map(|t| t.key.clone()));
    let (Some(addr), Some(ca), Some(cert), Some(key)) = (addr, ca, cert, key) else {
        anyhow::bail!(
            "mTLS between nodes takes all four: --peer-addr ADDR --peer-ca CA.pem --peer-cert CERT.pem --peer-key KEY.pem"
        );
    };
    cluster.tls = Some(PeerTls {
        addr,
        ca,
        cert,
        key,
    });
    Ok(())
}

pub async fn serve(conn: &ConnectionArgs, args: ServeArgs) -> Result<u8> {
    let config = config(&args)?;
    let store = Store::open(&config.data_dir)?;
    let engine = conn.engine().await?;
    let listener = tokio::net::TcpListener::bind(&config.addr)
        .await
        .with_context(|| format!("cannot listen on {}", config.addr))?;
    let addr = listener.local_addr()?;
    let cluster = match &config.cluster {
        Some(cluster_config) => {
            let info = engine
                .info()
                .await
                .context("asking the engine what it is")?;
            let spec = NodeSpec {
                engine: format!("{:?} {}", info.kind, info.version).to_lowercase(),
                runtimes: info.runtimes.iter().map(|r| r.name.clone()).collect(),
            };
            let cluster = Cluster::join(cluster_config.clone(), spec)
                .await
                .context("joining the cluster")?;
            Some(cluster)
        }
        None => None,
    };
    let registry = cluster.clone().map(|c| Arc::new(c) as Arc<dyn Registry>);
    let manager = Manager::start(config.clone(), engine, store, registry).await?;
    if let Some(cluster) = &cluster {
        cluster.attach(manager.clone());
        eprintln!(
            "sandpit: node {} of the cluster at {} (epoch {}), reached at {}",
            cluster.name(),
            config
                .cluster
                .as_ref()
                .map(|c| c.etcd.as_str())
                .unwrap_or_default(),
            cluster.epoch(),
            cluster.advertise()
        );
    }
    let warm = manager.clone();
    tokio::spawn(async move { warm.warm_pools().await });
    eprintln!(
        "sandpit: listening on http://{addr} (data in {}; {} sessions adopted); API docs at http://{addr}/docs",
        config.data_dir.display(),
        manager.open_count()
    );
    sandpit_http::serve(listener, manager, cluster, shutdown_signal()).await?;
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
