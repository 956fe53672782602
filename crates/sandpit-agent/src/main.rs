//! `sandpit-agent`: PID 1 of every Sandpit sandbox (see the library's documentation).
//!
//! `sandpit-agent` runs the agent; `sandpit-agent connect` relays its standard input and output
//! to a running agent's socket.

mod agent;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    match args.as_slice() {
        [] => agent::run(),
        [mode] if mode == "connect" => agent::connect::run(),
        _ => {
            eprintln!("usage: sandpit-agent            (the agent, as a sandbox's PID 1)");
            eprintln!("       sandpit-agent connect    (relay stdin/stdout to the running agent)");
            std::process::exit(2)
        }
    }
}
