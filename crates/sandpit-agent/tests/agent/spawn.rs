use sandpit_agent::protocol::{EventBody, Ids, Op, Rlimit, RlimitKind};

use crate::helpers::*;

#[test]
fn output_and_exit_code_are_reported() {
    let mut agent = Agent::start();
    let ran = agent.sh("echo out; echo err >&2; exit 3");
    assert_eq!(ran.out(), "out\n");
    assert_eq!(ran.stderr, b"err\n");
    assert_eq!(ran.exit().code, Some(3));
    assert_eq!(ran.exit().signal, None);
    assert!(!ran.exit().timed_out);
}

#[test]
fn a_death_by_signal_is_reported() {
    let mut agent = Agent::start();
    let ran = agent.sh("kill -TERM $$");
    assert_eq!(ran.exit().signal, Some(libc::SIGTERM));
    assert_eq!(ran.exit().code, None);
}

#[test]
fn env_cwd_user_and_limits_apply() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&[
        "/bin/sh",
        "-c",
        "echo $GREETING; pwd; id -u; id -g; id -G; ulimit -n",
    ]);
    spec.env = vec![("GREETING".into(), "hi".into())];
    spec.cwd = "/tmp".into();
    spec.user = Ids {
        uid: 1000,
        gid: 1001,
    };
    spec.rlimits = vec![Rlimit {
        resource: RlimitKind::Nofile,
        value: 77,
    }];
    let (call, _) = agent.spawn(spec);
    let ran = agent.collect(call);
    assert_eq!(
        ran.out(),
        "hi\n/tmp\n1000\n1001\n1001\n77\n",
        "stderr: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
}

#[test]
fn a_program_is_found_in_the_path_of_the_request() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let tool = dir.path().join("only-here");
    std::fs::write(&tool, "#!/bin/sh\necho found\n").unwrap();
    std::fs::set_permissions(&tool, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut spec = spawn_spec(&["only-here"]);
    spec.env = vec![("PATH".into(), path_of(&dir))];
    let (call, _) = agent.spawn(spec);
    assert_eq!(agent.collect(call).out(), "found\n");
}

#[test]
fn nothing_of_the_agent_is_inherited() {
    let mut agent = Agent::start();
    // Only the three standard streams are open in the child.
    let ran = agent.run(&["ls", "/proc/self/fd"]);
    let mut fds: Vec<u32> = ran
        .out()
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    fds.sort();
    // ls's own descriptor for the listing shows up as 3.
    assert_eq!(fds, vec![0, 1, 2, 3], "{}", ran.out());
}

#[test]
fn cpu_time_and_memory_are_reported() {
    let mut agent = Agent::start();
    let ran = agent.sh("i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done");
    assert!(ran.exit().cpu_ns > 0, "{:?}", ran.exit());
    assert!(ran.exit().max_rss_bytes > 0, "{:?}", ran.exit());
}

#[test]
fn the_answer_to_spawn_starts_with_the_pid() {
    let mut agent = Agent::start();
    let call = agent.send(Op::Spawn(spawn_spec(&["/bin/sh", "-c", "echo $$"])));
    let EventBody::Started { pid } = agent.next_event(call).0 else {
        panic!("Started first")
    };
    assert_eq!(agent.collect(call).out().trim(), pid.to_string());
}
