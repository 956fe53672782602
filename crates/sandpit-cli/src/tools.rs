//! `sandpit tools --format openai|anthropic`: the tool definitions for function calling, as
//! the JSON array a model API's `tools` parameter takes.

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
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse()
}

pub fn tools(args: ToolsArgs) -> Result<u8> {
    let value = tools::render(args.format);
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
