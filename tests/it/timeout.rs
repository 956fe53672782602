//! Timeouts kill the process tree in the container and leave the session usable.

use std::time::{Duration, Instant};

use sandpit::RunOptions;

use crate::support::python;

#[tokio::test(flavor = "multi_thread")]
async fn an_infinite_loop_is_killed_and_the_session_still_works() {
    let s = python().await.open().await.unwrap();
    let started = Instant::now();
    let r = s
        .run_with(
            "print('before', flush=True)\nwhile True: pass",
            RunOptions::new().timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(r.timed_out);
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(r.stdout, "before\n");
    let ps = s
        .execute_command("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '[m]ain.py' || true")
        .await
        .unwrap();
    assert_eq!(ps.stdout.trim(), "0", "the loop still runs");
    let r = s.run("print('after')", &[]).await.unwrap();
    assert_eq!(r.stdout, "after\n");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn forked_children_die_with_the_timeout() {
    let s = python().await.open().await.unwrap();
    let code = "import os, time\nfor _ in range(3):\n    if os.fork() == 0:\n        while True: time.sleep(0.1)\ntime.sleep(100)";
    let r = s
        .run_with(code, RunOptions::new().timeout(Duration::from_secs(2)))
        .await
        .unwrap();
    assert!(r.timed_out);
    // Only PID 1, its sleep, and this command's shell remain.
    let c = s
        .execute_command("for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '[m]ain.py' || true")
        .await
        .unwrap();
    assert_eq!(c.stdout.trim(), "0", "children survived the timeout");
    s.close().await.unwrap();
}
