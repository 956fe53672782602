//! `sandpit keys add|list|revoke`: the server's API keys, in the same data folder, or with
//! `--cluster` the cluster's (in its registry: every node accepts them).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use sandpit_cluster::Admin;
use sandpit_service::{KeyFormat, KeyInfo, ServiceConfig, Store};

/// Key subcommands.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The server's data folder [default: ~/.local/share/sandpit; env: SANDPIT_DATA_DIR]
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
    /// The cluster's keys instead: its registry at etcd://HOST:2379[,...] [env: SANDPIT_CLUSTER]
    #[arg(long, value_name = "URL", global = true, env = "SANDPIT_CLUSTER")]
    cluster: Option<String>,
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Make a key and print it once, on one line
    Add {
        /// A name to tell keys apart
        #[arg(long, default_value = "")]
        name: String,
        /// Write the key as E2B's SDKs expect one (`e2b_` and hex digits); it is an ordinary
        /// key everywhere else
        #[arg(long)]
        e2b: bool,
    },
    /// List keys: id, name, prefix, created, last used
    List,
    /// Revoke a key by its id
    Revoke {
        /// The key's id (from `keys list`)
        id: String,
    },
}

/// Where the keys are.
enum Keys {
    Local(Store),
    Cluster(Box<Admin>),
}

impl Keys {
    async fn add(&self, name: &str, format: KeyFormat) -> Result<(KeyInfo, String)> {
        Ok(match self {
            Keys::Local(store) => store.add_key(name, format)?,
            Keys::Cluster(admin) => admin.add_key(name, format).await?,
        })
    }

    async fn list(&self) -> Result<Vec<KeyInfo>> {
        Ok(match self {
            Keys::Local(store) => store.list_keys()?,
            Keys::Cluster(admin) => admin.list_keys().await?,
        })
    }

    async fn revoke(&self, id: &str) -> Result<KeyInfo> {
        Ok(match self {
            Keys::Local(store) => store.revoke_key(id)?,
            Keys::Cluster(admin) => admin.revoke_key(id).await?,
        })
    }
}

pub async fn keys(args: KeysArgs) -> Result<u8> {
    let keys = match (&args.cluster, args.data_dir) {
        (Some(url), _) => Keys::Cluster(Box::new(Admin::connect(url).await?)),
        (None, Some(d)) => Keys::Local(Store::open(&d)?),
        (None, None) => Keys::Local(Store::open(&ServiceConfig::load(None)?.data_dir)?),
    };
    match args.command {
        KeysCommand::Add { name, e2b } => {
            let format = if e2b {
                KeyFormat::E2b
            } else {
                KeyFormat::Sandpit
            };
            let (info, key) = keys.add(&name, format).await?;
            eprintln!(
                "sandpit: made key {} ({}); it is shown once, keep it:",
                info.id, info.name
            );
            println!("{key}");
        }
        KeysCommand::List => {
            println!(
                "{:<14} {:<20} {:<12} {:<20} LAST USED",
                "ID", "NAME", "PREFIX", "CREATED"
            );
            for k in keys.list().await? {
                println!(
                    "{:<14} {:<20} {:<12} {:<20} {}",
                    k.id,
                    k.name,
                    k.prefix,
                    date(k.created),
                    k.last_used.map(date).unwrap_or_else(|| "never".into())
                );
            }
        }
        KeysCommand::Revoke { id } => {
            let k = keys.revoke(&id).await?;
            eprintln!("sandpit: revoked key {} ({})", k.id, k.name);
        }
    }
    Ok(0)
}

fn date(secs: u64) -> String {
    sandpit::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}
