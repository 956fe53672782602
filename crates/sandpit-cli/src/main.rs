//! The `sandpit` command line: thin, one file per subcommand.

mod bench;
mod bench_calls;
mod bench_languages;
mod bench_peer;
mod cluster;
mod connect;
mod doctor;
mod gc;
mod images;
mod keys;
mod mcp;
mod progress;
mod raw;
mod run;
mod serve;
mod snapshot;
mod tools;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status when Sandpit itself failed (engine unreachable, image missing, bad arguments).
pub const EXIT_SANDPIT_FAILED: u8 = 125;
/// Exit status when the program ran past its timeout.
pub const EXIT_TIMED_OUT: u8 = 124;

/// Run untrusted code in Docker sandboxes.
#[derive(Debug, Parser)]
#[command(name = "sandpit", version, about)]
struct Cli {
    #[command(flatten)]
    connection: connect::ConnectionArgs,

    /// Log more (repeat for debug output, e.g. image build steps).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a program in a fresh sandbox and exit with its exit status.
    Run(Box<run::RunArgs>),
    /// Build or list the default images.
    #[command(subcommand)]
    Images(images::ImagesCommand),
    /// Check the engine, its API version, TLS and the images.
    Doctor,
    /// Measure open, run and close against the raw engine calls.
    Bench(bench::BenchArgs),
    /// Remove containers, volumes and disks left by processes that died without closing.
    Gc,
    /// Serve the HTTP API: sessions, runs, files, packages, keys.
    Serve(serve::ServeArgs),
    /// Make, list and revoke the server's API keys (or a cluster's, with --cluster).
    Keys(keys::KeysArgs),
    /// A cluster's nodes: status, drain, undrain.
    Cluster(cluster::ClusterArgs),
    /// Snapshots in object storage: list, show, rm, take, restore, bench.
    Snapshot(snapshot::SnapshotArgs),
    /// Serve MCP on stdin/stdout (for Claude Desktop, Cursor and other MCP clients).
    Mcp(mcp::McpArgs),
    /// Print the tool definitions for function calling (OpenAI or Anthropic format).
    Tools(tools::ToolsArgs),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() {
                EXIT_SANDPIT_FAILED
            } else {
                0
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    let filter = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SANDPIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("sandpit: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_SANDPIT_FAILED);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Run(args) => run::run(&cli.connection, *args).await,
            Command::Images(cmd) => images::images(&cli.connection, cmd).await,
            Command::Doctor => doctor::doctor(&cli.connection).await,
            Command::Bench(args) => bench::bench(&cli.connection, args).await,
            Command::Gc => gc::gc(&cli.connection).await,
            Command::Serve(args) => serve::serve(&cli.connection, args).await,
            Command::Keys(args) => keys::keys(args).await,
            Command::Cluster(args) => cluster::cluster(args).await,
            Command::Snapshot(args) => snapshot::snapshot(&cli.connection, args).await,
            Command::Mcp(args) => mcp::mcp(&cli.connection, args).await,
            Command::Tools(args) => tools::tools(args),
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("sandpit: {}", one_line(&e));
            ExitCode::from(EXIT_SANDPIT_FAILED)
        }
    }
}

/// A build progress line cut to a readable length (a Dockerfile step can be pages long).
pub fn progress_line(line: &str) -> String {
    const MAX: usize = 160;
    match line.char_indices().nth(MAX) {
        Some((at, _)) => format!("{} …", &line[..at]),
        None => line.to_string(),
    }
}

/// The error and its causes on one line, each once.
fn one_line(e: &anyhow::Error) -> String {
    sandpit::one_line(e.as_ref())
}
