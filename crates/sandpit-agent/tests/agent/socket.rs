use std::time::Duration;

use sandpit_agent::protocol::{EventBody, Ids, Op};

use crate::helpers::*;

/// Starts a detached and a non-detached process; their pids.
fn two_processes(agent: &mut Agent) -> (u32, u32) {
    let mut detached = spawn_spec(&["sleep", "1000"]);
    detached.detached = true;
    let (_, kept) = agent.spawn(detached);
    let (_, bound) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    (kept, bound)
}

#[test]
fn a_connection_on_the_socket_takes_over_with_its_hello() {
    let mut agent = Agent::start();
    let (kept, bound) = two_processes(&mut agent);
    let mut second = agent.connect_as(Ids::ROOT);
    let hello = second.hello();
    assert_eq!(
        hello.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [kept]
    );
    assert!(
        gone_within(bound, Duration::from_secs(3)),
        "the first connection's process lives on"
    );
    assert!(matches!(second.ask(Op::List), EventBody::Processes { .. }));
}

#[test]
fn the_replaced_connection_is_not_served() {
    let mut agent = Agent::start();
    let mut second = agent.connect_as(Ids::ROOT);
    second.hello();
    let call = agent.send(Op::List);
    assert!(
        agent.try_next(call, Duration::from_millis(500)).is_none(),
        "a replaced channel got an answer"
    );
}

#[test]
fn standard_input_takes_over_again_with_a_hello() {
    let mut agent = Agent::start();
    let mut second = agent.connect_as(Ids::ROOT);
    second.hello();
    agent.send_raw(&sandpit_agent::frame::resync_prefix());
    agent.hello();
    assert!(matches!(agent.ask(Op::List), EventBody::Processes { .. }));
    assert!(
        second.ends_within(Duration::from_secs(3)),
        "the socket connection was not dropped"
    );
}

#[test]
fn a_connection_that_has_not_said_hello_is_not_served() {
    let mut agent = Agent::start();
    let mut second = agent.connect_as(Ids::ROOT);
    let call = second.send(Op::List);
    assert!(second.try_next(call, Duration::from_millis(500)).is_none());
    assert!(
        matches!(agent.ask(Op::List), EventBody::Processes { .. }),
        "the current channel still serves"
    );
}

#[test]
fn a_user_s_connection_is_refused() {
    let mut agent = Agent::start();
    let mut intruder = agent.connect_as(USER);
    intruder.send(Op::Hello(sandpit_agent::protocol::Hello {
        version: sandpit_agent::protocol::PROTOCOL_VERSION,
        token: "x".into(),
    }));
    assert!(
        intruder.ends_within(Duration::from_secs(3)),
        "the relay of a uid 1000 peer was not cut off"
    );
    assert!(
        matches!(agent.ask(Op::List), EventBody::Processes { .. }),
        "the channel stays the host's"
    );
}

#[test]
fn the_relay_ends_when_its_input_ends_and_the_agent_goes_on() {
    let mut agent = Agent::start();
    let (kept, _) = two_processes(&mut agent);
    let mut second = agent.connect_as(Ids::ROOT);
    second.hello();
    second.close_input();
    assert!(second.ends_within(Duration::from_secs(3)));
    let mut third = agent.connect_as(Ids::ROOT);
    let hello = third.hello();
    assert_eq!(
        hello.processes.iter().map(|p| p.pid).collect::<Vec<_>>(),
        [kept]
    );
}

#[test]
fn the_agent_keeps_its_processes_when_its_input_ends() {
    let mut agent = Agent::start();
    let (kept, bound) = two_processes(&mut agent);
    agent.close_input();
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        exists(kept) && exists(bound),
        "processes died with the channel"
    );
    assert!(
        !agent.ends_within(Duration::from_millis(100)),
        "the agent exited"
    );
    let mut second = agent.connect_as(Ids::ROOT);
    assert_eq!(second.hello().processes.len(), 1);
}

#[test]
fn connect_without_an_agent_says_so() {
    // A network namespace of its own: no agent listens there.
    let out = std::process::Command::new("unshare")
        .args(["--net", env!("CARGO_BIN_EXE_sandpit-agent"), "connect"])
        .output()
        .expect("unshare runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot be reached"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
