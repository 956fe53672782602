//! `sandpit keys add|list|revoke`: the server's API keys, in the same data folder.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use sandpit_service::{KeyFormat, ServiceConfig, Store};

/// Key subcommands.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// The server's data folder [default: ~/.local/share/sandpit; env: SANDPIT_DATA_DIR]
    #[arg(long, value_name = "DIR", global = true)]
    data_dir: Option<PathBuf>,
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

pub fn keys(args: KeysArgs) -> Result<u8> {
    let data_dir = match args.data_dir {
        Some(d) => d,
        None => ServiceConfig::load(None)?.data_dir,
    };
    let store = Store::open(&data_dir)?;
    match args.command {
        KeysCommand::Add { name, e2b } => {
            let format = if e2b {
                KeyFormat::E2b
            } else {
                KeyFormat::Sandpit
            };
            let (info, key) = store.add_key(&name, format)?;
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
            for k in store.list_keys()? {
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
            let k = store.revoke_key(&id)?;
            eprintln!("sandpit: revoked key {} ({})", k.id, k.name);
        }
    }
    Ok(0)
}

fn date(secs: u64) -> String {
    sandpit::time::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
}
