use std::time::Duration;

use crate::helpers::*;

/// Runs a tree whose grandchild escapes its process group and session as `user`, with a
/// timeout; asserts the escapee dies.
fn escapee_dies_at_the_timeout(user: sandpit_agent::protocol::Ids) {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let pidfile = dir.path().join("escaped");
    // The grandchild leaves the process group and session, and its parent exits.
    let line = format!(
        "(setsid sh -c 'echo $$ > {p}; exec sleep 1000' &) ; sleep 1000",
        p = pidfile.display()
    );
    let mut spec = spawn_spec(&["/bin/sh", "-c", &line]);
    spec.timeout_ms = Some(700);
    spec.user = user;
    let (call, _) = agent.spawn(spec);
    let ran = agent.collect(call);
    assert!(ran.exit().timed_out, "{:?}", ran.exit());
    assert_eq!(ran.exit().signal, Some(libc::SIGKILL));
    let escaped: u32 = std::fs::read_to_string(&pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(
        gone_within(escaped, Duration::from_secs(3)),
        "the escaped grandchild {escaped} still runs"
    );
}

#[test]
fn a_timeout_kills_a_tree_that_double_forked_and_left_its_session() {
    escapee_dies_at_the_timeout(sandpit_agent::protocol::Ids::ROOT);
}

#[test]
fn a_user_s_escaped_process_is_found_by_its_marker() {
    // The agent reads the escapee's environment as its user (it has no CAP_SYS_PTRACE).
    escapee_dies_at_the_timeout(USER);
}

#[test]
fn a_background_child_holding_the_pipes_does_not_hold_the_call() {
    let mut agent = Agent::start();
    let started = std::time::Instant::now();
    let ran = agent.sh("sleep 30 & echo done");
    assert_eq!(ran.out(), "done\n");
    assert_eq!(ran.exit().code, Some(0));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the call waited for the background child"
    );
}
