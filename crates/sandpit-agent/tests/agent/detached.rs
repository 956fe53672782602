use std::time::Duration;

use sandpit_agent::protocol::{
    Attach, EventBody, Input, Op, SignalProcess, SignalScope, StdinMode, Stream,
};

use crate::helpers::*;

/// Starts `sh -c LINE` detached with a stdin pipe, then opens a new connection; its pid.
fn detached_then_new_connection(agent: &mut Agent, line: &str) -> u32 {
    let mut spec = spawn_spec(&["/bin/sh", "-c", line]);
    spec.detached = true;
    spec.stdin = StdinMode::Pipe;
    spec.tag = Some("server".into());
    let (call, pid) = agent.spawn(spec);
    let (body, data) = agent.next_event(call);
    assert!(matches!(body, EventBody::Output { .. }), "{body:?}");
    assert_eq!(data, b"ready\n");
    let reply = agent.hello();
    assert_eq!(reply.processes.len(), 1, "{reply:?}");
    assert_eq!(reply.processes[0].pid, pid);
    pid
}

#[test]
fn a_detached_process_survives_a_new_connection_and_is_listed() {
    let mut agent = Agent::start();
    let pid = detached_then_new_connection(&mut agent, "echo ready; exec cat");
    let EventBody::Processes { processes } = agent.ask(Op::List) else {
        panic!("Processes")
    };
    assert_eq!(processes.len(), 1);
    let p = &processes[0];
    assert_eq!(
        (p.pid, p.running, p.detached, p.stdin_open),
        (pid, true, true, true)
    );
    assert_eq!(p.tag.as_deref(), Some("server"));
    assert_eq!(p.argv[0], "/bin/sh");
}

#[test]
fn attach_delivers_what_was_kept_then_live_output() {
    let mut agent = Agent::start();
    let pid = detached_then_new_connection(
        &mut agent,
        "echo ready; sleep 0.2; echo while-away; exec cat",
    );
    std::thread::sleep(Duration::from_millis(600));
    let call = agent.send(Op::Attach(Attach { pid }));
    assert_eq!(agent.next_event(call).0, EventBody::Started { pid });
    let (body, kept) = agent.next_event(call);
    assert_eq!(
        body,
        EventBody::Output {
            pid,
            stream: Stream::Stdout
        }
    );
    assert_eq!(kept, b"while-away\n");
    let input = agent.send_with(Op::Input(Input { pid, eof: false }), b"echoed\n");
    assert_eq!(agent.next_event(input).0, EventBody::Done);
    let (_, live) = agent.next_event(call);
    assert_eq!(live, b"echoed\n");
}

#[test]
fn a_detached_process_is_signalled() {
    let mut agent = Agent::start();
    let pid = detached_then_new_connection(&mut agent, "echo ready; exec cat");
    let call = agent.send(Op::Attach(Attach { pid }));
    assert_eq!(agent.next_event(call).0, EventBody::Started { pid });
    let answer = agent.ask(Op::Signal(SignalProcess {
        pid,
        signal: libc::SIGTERM,
        scope: SignalScope::Process,
    }));
    assert_eq!(answer, EventBody::Signalled { count: 1, left: 0 });
    let ran = agent.collect(call);
    assert_eq!(ran.exit().signal, Some(libc::SIGTERM));
}

#[test]
fn a_detached_process_that_ended_unheard_stays_until_attached_once() {
    let mut agent = Agent::start();
    let pid = detached_then_new_connection(&mut agent, "echo ready; read line; echo bye; exit 4");
    let input = agent.send_with(Op::Input(Input { pid, eof: true }), b"go\n");
    assert_eq!(agent.next_event(input).0, EventBody::Done);
    assert!(gone_within(pid, Duration::from_secs(5)));
    let call = agent.send(Op::Attach(Attach { pid }));
    assert_eq!(agent.next_event(call).0, EventBody::Started { pid });
    let ran = agent.collect(call);
    assert_eq!(ran.out(), "bye\n");
    assert_eq!(ran.exit().code, Some(4));
    let EventBody::Error(e) = agent.ask(Op::Attach(Attach { pid })) else {
        panic!("forgotten after its end was delivered")
    };
    assert_eq!(e.kind, sandpit_agent::protocol::ErrorKind::NotFound);
}

#[test]
fn a_new_connection_kills_processes_not_detached() {
    let mut agent = Agent::start();
    let (_call, pid) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    let reply = agent.hello();
    assert!(reply.processes.is_empty());
    assert!(gone_within(pid, Duration::from_secs(3)));
}

#[test]
fn a_process_started_alone_keeps_its_output_from_the_first_byte() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&[
        "/bin/sh",
        "-c",
        "echo first; sleep 0.2; echo second; exec sleep 30",
    ]);
    spec.detached = true;
    spec.start_only = true;
    let (call, pid) = agent.spawn(spec);
    std::thread::sleep(Duration::from_millis(600));
    // The start call said Started and nothing more: the output waited for an attach.
    let EventBody::Processes { processes } = agent.ask(Op::List) else {
        panic!("Processes")
    };
    assert_eq!((processes.len(), processes[0].pid), (1, pid));
    let attach = agent.send(Op::Attach(Attach { pid }));
    assert_ne!(attach, call);
    assert_eq!(agent.next_event(attach).0, EventBody::Started { pid });
    let mut kept = Vec::new();
    while kept.len() < b"first\nsecond\n".len() {
        let (body, data) = agent.next_event(attach);
        assert!(matches!(body, EventBody::Output { .. }), "{body:?}");
        kept.extend(data);
    }
    assert_eq!(kept, b"first\nsecond\n");
}
