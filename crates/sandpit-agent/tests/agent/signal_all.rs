use std::process::Command;
use std::time::Duration;

use sandpit_agent::protocol::{EventBody, Ids, Op, Rlimit, RlimitKind, SignalAll};

use crate::helpers::*;

/// A uid no other process on this machine uses: its process limit counts only the test's.
const BOMB_USER: Ids = Ids {
    uid: 43117,
    gid: 43117,
};

#[test]
fn signal_all_reaches_only_the_agent_s_descendants() {
    let mut outsider = Command::new("sleep").arg("1000").spawn().unwrap();
    let mut agent = Agent::start();
    let (_call, inside) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    let answer = agent.ask(Op::SignalAll(SignalAll {
        signal: libc::SIGKILL,
        uid: None,
        wait_ms: Some(3000),
    }));
    assert_eq!(answer, EventBody::Signalled { count: 1, left: 0 });
    assert!(!exists(inside));
    assert!(
        outsider.try_wait().unwrap().is_none(),
        "a process outside the agent was signalled"
    );
    outsider.kill().unwrap();
    outsider.wait().unwrap();
}

/// Processes of `uid` now.
fn count_of(uid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find(|l| l.starts_with("Uid:"))
                        .map(|l| l.split_whitespace().nth(1) == Some(&uid.to_string()))
                })
                .unwrap_or(false)
        })
        .count()
}

/// Whether a process of the bomb's user can fork now.
fn can_fork(agent: &mut Agent, spec: &sandpit_agent::protocol::Spawn) -> bool {
    let mut probe = spec.clone();
    probe.argv = ["/bin/sh", "-c", "(true) && echo forked"]
        .map(String::from)
        .to_vec();
    let (call, _) = agent.spawn(probe);
    agent.collect(call).out() == "forked\n"
}

#[test]
fn signal_all_clears_a_fork_bomb_at_its_process_limit() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["bash", "-c", "while :; do sleep 1000 & done"]);
    spec.user = BOMB_USER;
    spec.rlimits = vec![Rlimit {
        resource: RlimitKind::Nproc,
        value: 40,
    }];
    agent.spawn(spec.clone());
    let full = (0..200).any(|_| {
        std::thread::sleep(Duration::from_millis(25));
        count_of(BOMB_USER.uid) >= 40
    });
    assert!(full, "the bomb never filled the process limit");
    assert!(!can_fork(&mut agent, &spec), "the limit should be full");
    let answer = agent.ask(Op::SignalAll(SignalAll {
        signal: libc::SIGKILL,
        uid: Some(BOMB_USER.uid),
        wait_ms: Some(5000),
    }));
    let EventBody::Signalled { count, left } = answer else {
        panic!("{answer:?}")
    };
    assert!(count >= 40, "only {count} processes were reached");
    assert_eq!(left, 0);
    assert_eq!(count_of(BOMB_USER.uid), 0);
    assert!(can_fork(&mut agent, &spec), "the limit has room again");
}

#[test]
fn stop_and_continue_reach_one_user_s_processes() {
    let mut agent = Agent::start();
    let mut spec = spawn_spec(&["sleep", "1000"]);
    spec.user = USER;
    let (_c1, user_pid) = agent.spawn(spec);
    let (_c2, root_pid) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    let answer = agent.ask(Op::SignalAll(SignalAll {
        signal: libc::SIGSTOP,
        uid: Some(USER.uid),
        wait_ms: None,
    }));
    assert_eq!(answer, EventBody::Signalled { count: 1, left: 0 });
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(state(user_pid), 'T');
    assert_ne!(state(root_pid), 'T');
    agent.ask(Op::SignalAll(SignalAll {
        signal: libc::SIGCONT,
        uid: Some(USER.uid),
        wait_ms: None,
    }));
    std::thread::sleep(Duration::from_millis(100));
    assert_ne!(state(user_pid), 'T');
}

fn state(pid: u32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    stat.rsplit(')')
        .next()
        .unwrap()
        .trim_start()
        .chars()
        .next()
        .unwrap()
}
