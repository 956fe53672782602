use std::time::Duration;

use sandpit_agent::protocol::{ErrorKind, EventBody, Op, Reset, ResetReport};

use crate::helpers::*;

/// Fills a folder with a file, a nested folder and a symlink out.
fn litter(dir: &std::path::Path, outside: &std::path::Path) {
    std::fs::write(dir.join("file"), "x").unwrap();
    std::fs::create_dir_all(dir.join("nested/deeper")).unwrap();
    std::fs::write(dir.join("nested/deeper/f"), "x").unwrap();
    std::os::unix::fs::symlink(outside, dir.join("link-out")).unwrap();
}

#[test]
fn reset_kills_empties_and_removes_ipc_objects() {
    let mut agent = Agent::start();
    let (a, b, keep) = (open_tempdir(), open_tempdir(), open_tempdir());
    std::fs::write(keep.path().join("precious"), "x").unwrap();
    litter(a.path(), keep.path());
    litter(b.path(), keep.path());
    let made = agent.run(&["ipcmk", "-M", "4096"]);
    assert_eq!(
        made.exit().code,
        Some(0),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let mut left_behind = spawn_spec(&["sleep", "1000"]);
    left_behind.detached = true;
    let (_call, pid) = agent.spawn(left_behind);
    let answer = agent.ask(Op::Reset(Reset {
        clear: vec![path_of(&a), path_of(&b)],
        timeout_ms: 5000,
    }));
    let EventBody::ResetDone(ResetReport {
        killed,
        removed,
        ipc_removed,
        ..
    }) = answer
    else {
        panic!("{answer:?}")
    };
    assert_eq!((killed, removed, ipc_removed), (1, 10, 1));
    assert!(!exists(pid));
    for dir in [&a, &b] {
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
    assert!(
        keep.path().join("precious").exists(),
        "a symlink out was followed"
    );
    let EventBody::Processes { processes } = agent.ask(Op::List) else {
        panic!("Processes")
    };
    assert!(processes.is_empty(), "{processes:?}");
    let left = agent.run(&["ipcs", "-m"]);
    assert!(!left.out().contains("0x"), "{}", left.out());
}

#[test]
fn a_reset_past_its_deadline_is_dirty() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    for i in 0..200 {
        std::fs::write(dir.path().join(format!("f{i}")), "x").unwrap();
    }
    let answer = agent.ask(Op::Reset(Reset {
        clear: vec![path_of(&dir)],
        timeout_ms: 0,
    }));
    let EventBody::Error(e) = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(e.kind, ErrorKind::Dirty);
    assert!(
        e.message.contains("longer than allowed") || e.message.contains("still holds"),
        "{}",
        e.message
    );
}

#[test]
fn a_spawn_s_call_ends_when_a_reset_kills_its_process() {
    let mut agent = Agent::start();
    let (call, _) = agent.spawn(spawn_spec(&["sleep", "1000"]));
    let answer = agent.ask(Op::Reset(Reset {
        clear: vec![],
        timeout_ms: 5000,
    }));
    assert!(matches!(answer, EventBody::ResetDone(_)), "{answer:?}");
    let ran = agent.collect(call);
    assert_eq!(ran.exit().signal, Some(libc::SIGKILL));
    assert!(agent.try_next(call, Duration::from_millis(100)).is_none());
}
