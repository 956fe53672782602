//! `sandpit-agent`: PID 1 of every Sandpit sandbox (see the library's documentation).

mod agent;

fn main() {
    agent::run()
}
