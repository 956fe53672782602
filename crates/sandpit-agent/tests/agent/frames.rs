use sandpit_agent::frame::{self, MAGIC};
use sandpit_agent::protocol::{ErrorKind, EventBody, Hello, Op, Request};

use crate::helpers::*;

#[test]
fn garbage_then_a_valid_frame_is_answered() {
    let mut agent = Agent::start();
    agent.send_raw(b"this is not a frame at all");
    agent.send_raw(&MAGIC);
    agent.send_raw(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}junk");
    agent.send_sync();
    assert!(matches!(agent.ask(Op::List), EventBody::Processes { .. }));
}

#[test]
fn an_unknown_operation_is_an_invalid_request() {
    let mut agent = Agent::start();
    let header = br#"{"call":77,"op":"fly","to":"moon"}"#;
    let mut bytes = MAGIC.to_vec();
    bytes.extend((header.len() as u32).to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(header);
    bytes.extend(frame::END);
    agent.send_raw(&bytes);
    let EventBody::Error(e) = agent.next_event(77).0 else {
        panic!("an error")
    };
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(e.message.contains("fly"), "{}", e.message);
}

#[test]
fn a_request_with_a_bad_argument_is_an_invalid_request() {
    let mut agent = Agent::start();
    let header = br#"{"call":78,"op":"spawn","argv":"not a list"}"#;
    let mut bytes = MAGIC.to_vec();
    bytes.extend((header.len() as u32).to_le_bytes());
    bytes.extend(0u32.to_le_bytes());
    bytes.extend(header);
    bytes.extend(frame::END);
    agent.send_raw(&bytes);
    let EventBody::Error(e) = agent.next_event(78).0 else {
        panic!("an error")
    };
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}

#[test]
fn a_hello_of_another_version_is_refused_with_both_versions() {
    let mut agent = Agent::start_silent();
    let answer = agent.ask(Op::Hello(Hello {
        version: 999,
        token: "x".into(),
    }));
    let EventBody::Error(e) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(
        e.message.contains("999") && e.message.contains('1'),
        "{}",
        e.message
    );
}

#[test]
fn a_second_request_on_a_call_in_flight_is_refused() {
    let mut agent = Agent::start();
    let (call, _) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    let mut bytes = Vec::new();
    frame::encode(
        &Request {
            call,
            op: Op::Spawn(spawn_spec(&["true"])),
        },
        &[],
        &mut bytes,
    );
    agent.send_raw(&bytes);
    let EventBody::Error(e) = agent.next_event(call).0 else {
        panic!("an error")
    };
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
}
