use sandpit_agent::protocol::{ErrorKind, EventBody, Op};

use crate::helpers::*;

fn refusal(
    agent: &mut Agent,
    spec: sandpit_agent::protocol::Spawn,
) -> sandpit_agent::protocol::AgentError {
    match agent.ask(Op::Spawn(spec)) {
        EventBody::Error(e) => e,
        other => panic!("an error expected, got {other:?}"),
    }
}

#[test]
fn a_missing_program_cannot_be_executed() {
    let mut agent = Agent::start();
    let e = refusal(&mut agent, spawn_spec(&["no-such-program-here"]));
    assert_eq!(e.kind, ErrorKind::CannotExec);
    assert!(e.message.contains("no-such-program-here"), "{}", e.message);
    assert!(e.message.contains("not found in PATH"), "{}", e.message);
}

#[test]
fn a_file_that_is_not_executable_cannot_be_executed() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let file = dir.path().join("plain");
    std::fs::write(&file, "data").unwrap();
    let e = refusal(&mut agent, spawn_spec(&[file.to_str().unwrap()]));
    assert_eq!(e.kind, ErrorKind::CannotExec);
    assert_eq!(e.errno, Some(libc::EACCES), "{}", e.message);
}

#[test]
fn a_missing_working_folder_is_not_found() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["true"]);
    spec.cwd = "/no/such/folder".into();
    let e = refusal(&mut agent, spec);
    assert_eq!(e.kind, ErrorKind::NotFound);
    assert!(e.message.contains("/no/such/folder"), "{}", e.message);
}

#[test]
fn an_empty_argv_is_an_invalid_request() {
    let mut agent = Agent::start();
    let e = refusal(&mut agent, spawn_spec(&[]));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}
