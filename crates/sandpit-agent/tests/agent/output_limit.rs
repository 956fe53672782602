use crate::helpers::*;

#[test]
fn output_past_the_limit_is_read_and_dropped() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["/bin/sh", "-c", "head -c 3000000 /dev/zero; echo tail >&2"]);
    spec.output_limit = Some(1000);
    let (call, _) = agent.spawn(spec);
    let ran = agent.collect(call);
    assert_eq!(ran.stdout.len(), 1000);
    assert_eq!(ran.stderr, b"tail\n", "each stream has its own limit");
    assert!(ran.exit().truncated);
    assert_eq!(ran.exit().code, Some(0), "the program was never blocked");
}

#[test]
fn output_within_the_limit_is_not_truncated() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["/bin/sh", "-c", "printf 12345"]);
    spec.output_limit = Some(5);
    let (call, _) = agent.spawn(spec);
    let ran = agent.collect(call);
    assert_eq!(ran.out(), "12345");
    assert!(!ran.exit().truncated);
}
