use std::time::Duration;

use sandpit_agent::protocol::{Credit, EventBody, Op, INITIAL_WINDOW};

use crate::helpers::*;

#[test]
fn output_stops_at_an_empty_window_and_resumes_on_credit() {
    let mut agent = Agent::start();
    let total = 3 * INITIAL_WINDOW;
    let (call, _) = agent.spawn(spawn_spec(&["head", "-c", &total.to_string(), "/dev/zero"]));
    let mut got = 0u64;
    while got < INITIAL_WINDOW {
        match agent.next_event(call) {
            (EventBody::Output { .. }, data) => got += data.len() as u64,
            other => panic!("output expected, got {other:?}"),
        }
    }
    assert_eq!(got, INITIAL_WINDOW, "never more than the window");
    assert!(
        agent.try_next(call, Duration::from_millis(500)).is_none(),
        "nothing may come while the window is empty"
    );
    agent.send_on(call, Op::Credit(Credit { bytes: total }), &[]);
    let ran = agent.collect(call);
    assert_eq!(got + ran.stdout.len() as u64, total);
    assert_eq!(ran.exit().code, Some(0));
}
