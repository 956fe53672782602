use std::time::Duration;

use sandpit_agent::protocol::{EventBody, Op, SignalProcess, SignalScope};

use crate::helpers::*;

#[test]
fn cancelling_a_spawn_kills_its_process_and_answers_nothing() {
    let mut agent = Agent::start();
    let (call, pid) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    agent.send_on(call, Op::Cancel, &[]);
    assert!(gone_within(pid, Duration::from_secs(3)));
    assert!(
        agent.try_next(call, Duration::from_millis(300)).is_none(),
        "no event after a cancel"
    );
    let EventBody::Processes { processes } = agent.ask(Op::List) else {
        panic!("Processes")
    };
    assert!(processes.is_empty(), "{processes:?}");
}

#[test]
fn a_tree_kill_answers_once_the_tree_is_reaped() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let pidfile = dir.path().join("child");
    let line = format!("sleep 1000 & echo $! > {}; wait", pidfile.display());
    let (call, pid) = agent.spawn(spawn_spec(&["/bin/sh", "-c", &line]));
    let child = loop {
        if let Some(p) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<u32>().ok())
        {
            break p;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let answer = agent.ask(Op::Signal(SignalProcess {
        pid,
        signal: libc::SIGKILL,
        scope: SignalScope::Tree,
    }));
    assert_eq!(answer, EventBody::Signalled { count: 2, left: 0 });
    assert!(!exists(child) && !exists(pid));
    assert_eq!(agent.collect(call).exit().signal, Some(libc::SIGKILL));
}

#[test]
fn a_signal_to_an_unknown_process_is_not_found() {
    let mut agent = Agent::start();
    let EventBody::Error(e) = agent.ask(Op::Signal(SignalProcess {
        pid: 1,
        signal: libc::SIGKILL,
        scope: SignalScope::Tree,
    })) else {
        panic!("an error")
    };
    assert_eq!(e.kind, sandpit_agent::protocol::ErrorKind::NotFound);
}
