//! `sandpit tools --format openai|anthropic`: the tool definitions for function calling, as
//! the JSON array a model API's `tools` parameter takes: the tools the library's toolbox
//! offers, and with `--snapshots` the snapshot tools of a server that has a store.

use std::io::Write as _;

use anyhow::Result;
use clap::Args;
use sandpit::tools::{self, Format};

/// Arguments of `sandpit tools`.
#[derive(Debug, Args)]
pub struct ToolsArgs {
    /// openai (`{"type": "function", "function": {...}}`) or anthropic (`{name, description, input_schema}`)
    #[arg(long, short, default_value = "openai", value_parser = parse_format)]
    format: Format,
    /// One line instead of indented JSON
    #[arg(long)]
    compact: bool,
    /// Add snapshot_session and list_snapshots, for a server started with --snapshots (the
    /// library's toolbox has no snapshot store)
    #[arg(long)]
    snapshots: bool,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub fn tools(args: ToolsArgs) -> Result<u8> {
    let value = tools::render_all(&tools::offered(args.snapshots), args.format);
    let text = if args.compact {
        serde_json::to_string(&value)?
    } else {
        serde_json::to_string_pretty(&value)?
    };
    // A reader that stops early (`| head`) is not an error.
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|_| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(0),
    }
}
