//! `sandpit cluster status|drain|undrain --cluster etcd://...`: a cluster's nodes, straight
//! from its registry.

use anyhow::Result;
use clap::{Args, Subcommand};
use sandpit_cluster::Admin;

/// Cluster subcommands.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// The cluster's registry: etcd://HOST:2379[,HOST:2379...] [env: SANDPIT_CLUSTER]
    #[arg(long, value_name = "URL", global = true, env = "SANDPIT_CLUSTER")]
    cluster: Option<String>,
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// Nodes, their leases, sessions per node and load
    Status {
        /// One JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// Stop placing new sessions on NODE (its sessions stay)
    Drain {
        /// The node's name
        node: String,
    },
    /// Place new sessions on NODE again
    Undrain {
        /// The node's name
        node: String,
    },
}

pub async fn cluster(args: ClusterArgs) -> Result<u8> {
    let Some(url) = args.cluster else {
        anyhow::bail!(
            "name the cluster's registry: --cluster etcd://HOST:2379 (or SANDPIT_CLUSTER)"
        );
    };
    let admin = Admin::connect(&url).await?;
    match args.command {
        ClusterCommand::Status { json } => {
            let nodes = admin.status().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&nodes)?);
                return Ok(0);
            }
            println!(
                "{:<16} {:<9} {:<28} {:>6} {:>9} {:>14} {:>14}  ENGINE",
                "NODE", "STATE", "ADVERTISE", "LEASE", "SESSIONS", "LOAD", "MEMORY"
            );
            for n in nodes {
                println!(
                    "{:<16} {:<9} {:<28} {:>6} {:>9} {:>14} {:>14}  {}",
                    n.name,
                    n.state,
                    n.advertise,
                    n.lease_ttl
                        .map(|t| format!("{t}s"))
                        .unwrap_or_else(|| "-".into()),
                    n.sessions,
                    format!("{}/{}", n.open, n.max_sessions),
                    format!("{}/{} MiB", n.memory_reserved >> 20, n.memory_bytes >> 20),
                    n.engine
                );
            }
        }
        ClusterCommand::Drain { node } => {
            admin.drain(&node).await?;
            eprintln!("sandpit: node {node} takes no new sessions (its sessions stay)");
        }
        ClusterCommand::Undrain { node } => {
            admin.undrain(&node).await?;
            eprintln!("sandpit: node {node} takes new sessions again");
        }
    }
    Ok(0)
}
