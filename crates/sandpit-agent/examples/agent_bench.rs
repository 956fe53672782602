//! Measures an agent: a `true` round trip and writing then reading 1 MiB.
//!
//! ```text
//! cargo run --release -p sandpit-agent --example agent_bench -- COMMAND [ARGS...]
//! ```
//! COMMAND starts an agent whose standard input and output become the channel: the binary
//! itself (`target/.../sandpit-agent`), or `docker start -ai CONTAINER` for one in a sandbox.
//! Prints medians and 90th percentiles; it asserts nothing.

use std::io::{Read, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use sandpit_agent::frame::{self, Decoder, MAX_PAYLOAD};
use sandpit_agent::protocol::*;

const ROUNDS: usize = 200;
const FILE_ROUNDS: usize = 30;

struct Channel {
    stdin: ChildStdin,
    stdout: ChildStdout,
    decoder: Decoder,
    next: u64,
}

impl Channel {
    fn send(&mut self, call: u64, op: Op, payload: &[u8]) {
        let mut bytes = Vec::new();
        frame::encode(&Request { call, op }, payload, &mut bytes);
        self.stdin.write_all(&bytes).expect("the agent reads");
    }

    fn call(&mut self, op: Op) -> u64 {
        self.next += 1;
        self.send(self.next, op, &[]);
        self.next
    }

    fn event(&mut self) -> (Event, Vec<u8>) {
        let mut buf = [0u8; 1 << 16];
        loop {
            if let Some(frame) = self.decoder.next_frame() {
                let Ok(frame) = frame else { continue };
                return (frame.message().expect("an event"), frame.payload);
            }
            let n = self.stdout.read(&mut buf).expect("the agent writes");
            assert!(n > 0, "the agent's output ended");
            self.decoder.push(&buf[..n]);
        }
    }

    /// Events of `call` up to its final one (others are dropped).
    fn finish(&mut self, call: u64) -> Vec<(EventBody, Vec<u8>)> {
        let mut out = Vec::new();
        loop {
            let (event, payload) = self.event();
            if event.call != call {
                continue;
            }
            let last = event.body.is_final();
            out.push((event.body, payload));
            if last {
                return out;
            }
        }
    }
}

fn spawn_true() -> Op {
    Op::Spawn(Spawn {
        argv: vec!["true".into()],
        env: Vec::new(),
        cwd: "/".into(),
        user: Ids::ROOT,
        rlimits: Vec::new(),
        stdin: StdinMode::Null,
        timeout_ms: None,
        output_limit: None,
        detached: false,
        tag: None,
        start_only: false,
    })
}

fn file(op: FileOp) -> Op {
    Op::File(FileRequest {
        root: "/tmp".into(),
        user: Ids::ROOT,
        op,
    })
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "{what}: median {:.3} ms, p90 {:.3} ms ({} rounds)",
        at(0.5),
        at(0.9),
        times.len()
    );
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some((program, rest)) = args.split_first() else {
        eprintln!("usage: agent_bench COMMAND [ARGS...]  (a command that starts an agent)");
        std::process::exit(2);
    };
    let mut child = Command::new(program)
        .args(rest)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let mut chan = Channel {
        stdin: child.stdin.take().expect("piped"),
        stdout: child.stdout.take().expect("piped"),
        // An agent that already served a connection sends a zero run first.
        decoder: Decoder::joining(),
        next: 0,
    };
    // The zero run lets the agent's decoder find the hello, whatever came before.
    chan.stdin
        .write_all(&frame::resync_prefix())
        .expect("the agent reads");
    let hello = chan.call(Op::Hello(Hello {
        version: PROTOCOL_VERSION,
        token: "bench".into(),
    }));
    match chan.finish(hello).remove(0).0 {
        EventBody::Hello(h) => println!("agent {} (openat2: {})", h.agent_version, h.openat2),
        other => panic!("hello answered with {other:?}"),
    }

    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let started = Instant::now();
        let call = chan.call(spawn_true());
        let events = chan.finish(call);
        times.push(started.elapsed());
        assert!(
            matches!(events.last(), Some((EventBody::Exited(_), _))),
            "{events:?}"
        );
    }
    report("spawn `true` round trip", times);

    let data = vec![0x5au8; 1 << 20];
    let mut times = Vec::new();
    for _ in 0..FILE_ROUNDS {
        let started = Instant::now();
        let call = chan.call(file(FileOp::Write {
            path: "agent-bench.bin".into(),
            mode: None,
            parents: false,
        }));
        let pieces: Vec<&[u8]> = data.chunks(MAX_PAYLOAD).collect();
        for (i, piece) in pieces.iter().enumerate() {
            chan.send(
                call,
                Op::WriteData(WriteData {
                    eof: i + 1 == pieces.len(),
                }),
                piece,
            );
        }
        assert!(matches!(chan.finish(call)[0].0, EventBody::File(_)));
        let call = chan.call(file(FileOp::Read {
            path: "agent-bench.bin".into(),
        }));
        let read: usize = chan.finish(call).iter().map(|(_, p)| p.len()).sum();
        assert_eq!(read, data.len());
        times.push(started.elapsed());
    }
    report("write then read 1 MiB", times);
    let call = chan.call(file(FileOp::Remove {
        path: "agent-bench.bin".into(),
    }));
    chan.finish(call);
    drop(chan);
    // The agent outlives its channel: ask the command to stop.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
}
