use std::time::Duration;

use sandpit_agent::protocol::{ErrorKind, EventBody, Input, Op, StdinMode};

use crate::helpers::*;

#[test]
fn stdin_as_a_pipe_feeds_the_process() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["cat"]);
    spec.stdin = StdinMode::Pipe;
    let (call, pid) = agent.spawn(spec);
    let first = agent.send_with(Op::Input(Input { pid, eof: false }), b"hello ");
    assert_eq!(agent.ask_done(first), EventBody::Done);
    let last = agent.send_with(Op::Input(Input { pid, eof: true }), b"world");
    assert_eq!(agent.ask_done(last), EventBody::Done);
    let ran = agent.collect(call);
    assert_eq!(ran.out(), "hello world");
    assert_eq!(ran.exit().code, Some(0));
}

#[test]
fn stdin_by_default_ends_at_once() {
    let mut agent = Agent::start();
    let ran = agent.run(&["cat"]);
    assert_eq!(ran.out(), "");
    assert_eq!(ran.exit().code, Some(0));
}

#[test]
fn input_larger_than_a_pipe_is_queued_until_read() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["/bin/sh", "-c", "sleep 0.3; wc -c"]);
    spec.stdin = StdinMode::Pipe;
    let (call, pid) = agent.spawn(spec);
    let data = vec![b'x'; 200_000];
    let input = agent.send_with(Op::Input(Input { pid, eof: true }), &data);
    assert!(
        agent.try_next(input, Duration::from_millis(100)).is_none(),
        "Done only once it is in the pipe"
    );
    assert_eq!(agent.next_event(input).0, EventBody::Done);
    assert_eq!(agent.collect(call).out().trim(), "200000");
}

#[test]
fn input_to_an_unknown_process_is_not_found() {
    let mut agent = Agent::start();
    let EventBody::Error(e) = agent.ask(Op::Input(Input {
        pid: 999_999,
        eof: false,
    })) else {
        panic!("an error")
    };
    assert_eq!(e.kind, ErrorKind::NotFound);
}

#[test]
fn input_after_eof_is_not_found() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["sleep", "5"]);
    spec.stdin = StdinMode::Pipe;
    let (_call, pid) = agent.spawn(spec);
    assert_eq!(
        agent.ask(Op::Input(Input { pid, eof: true })),
        EventBody::Done
    );
    let EventBody::Error(e) = agent.ask(Op::Input(Input { pid, eof: false })) else {
        panic!("an error")
    };
    assert_eq!(e.kind, ErrorKind::NotFound, "{}", e.message);
}

impl Agent {
    fn ask_done(&mut self, call: u64) -> EventBody {
        self.next_event(call).0
    }
}

#[test]
fn input_past_sixteen_mebibytes_unread_is_busy() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["sleep", "1000"]);
    spec.stdin = StdinMode::Pipe;
    let (_call, pid) = agent.spawn(spec);
    let chunk = vec![b'x'; sandpit_agent::frame::MAX_PAYLOAD];
    let calls: Vec<u64> = (0..70)
        .map(|_| agent.send_with(Op::Input(Input { pid, eof: false }), &chunk))
        .collect();
    // 70 × 256 KiB is past 16 MiB and what the pipe holds: the last one cannot be queued.
    let (body, _) = agent.next_event(*calls.last().expect("sent"));
    let EventBody::Error(e) = body else {
        panic!("Busy expected, got {body:?}")
    };
    assert_eq!(e.kind, ErrorKind::Busy, "{}", e.message);
}
