//! Running code: output, exit codes, stdin, arguments, state, commands, limits.

use std::time::Duration;

use sandpit::{Error, RunOptions};

use crate::support::{containers_of, engine, python};

#[tokio::test(flavor = "multi_thread")]
async fn stdout_stderr_and_exit_code_come_back_apart() {
    let s = python().await.open().await.unwrap();
    let r = s
        .run(
            "import sys\nprint('out ✓ héllo')\nprint('err', file=sys.stderr)\nsys.exit(7)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "out ✓ héllo\n");
    assert_eq!(r.stderr, "err\n");
    assert_eq!(r.exit_code, 7);
    assert!(!r.timed_out && !r.truncated && r.compile.is_none());
    let r = s.run("raise ValueError('boom')", &[]).await.unwrap();
    assert_eq!(r.exit_code, 1);
    assert!(r.stderr.contains("ValueError: boom"), "{}", r.stderr);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn stdin_and_arguments_reach_the_program() {
    let s = python().await.open().await.unwrap();
    let r = s
        .run_with(
            "import sys\nprint(sys.argv[1:])\nprint(sys.stdin.read()[::-1])",
            RunOptions::new()
                .stdin("abc\u{e9}")
                .args(["x y", "--flag", "$HOME"]),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "['x y', '--flag', '$HOME']\n\u{e9}cba\n");
    // Without stdin the program reads an empty input instead of hanging.
    let r = s
        .run("import sys; print(repr(sys.stdin.read()))", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "''\n");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn state_persists_between_runs_and_commands() {
    let s = python().await.open().await.unwrap();
    s.run("open('state.txt', 'w').write('kept')", &[])
        .await
        .unwrap();
    let r = s.run("print(open('state.txt').read())", &[]).await.unwrap();
    assert_eq!(r.stdout, "kept\n");
    let c = s
        .execute_command("cat state.txt; echo; id -u; pwd; echo oops >&2; exit 4")
        .await
        .unwrap();
    assert_eq!(c.stdout, "kept\n1000\n/sandbox\n");
    assert_eq!(c.stderr, "oops\n");
    assert_eq!(c.exit_code, 4);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn large_sources_and_large_output_arrive_whole() {
    let s = python().await.open().await.unwrap();
    // Over the inline limit: the source goes up as a tar archive.
    let code = format!("data = '{}'\nprint(len(data))\n", "x".repeat(300_000));
    let r = s.run(&code, &[]).await.unwrap();
    assert_eq!(r.stdout, "300000\n");
    let r = s
        .run("import sys; sys.stdout.write('é' * (512 * 1024))", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout.len(), 1024 * 1024);
    assert!(!r.truncated);
    assert_eq!(r.stdout.chars().count(), 512 * 1024);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn output_past_the_limit_is_truncated_and_flagged() {
    let s = python().await.output_limit(1000).open().await.unwrap();
    let r = s
        .run("print('a' * 5000); print('done')", &[])
        .await
        .unwrap();
    assert!(r.truncated);
    assert_eq!(r.stdout, "a".repeat(1000));
    assert_eq!(r.exit_code, 0);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn eight_sessions_in_parallel_keep_their_own_state() {
    let builder = python().await;
    let mut tasks = Vec::new();
    for i in 0..8 {
        let b = builder.clone();
        tasks.push(tokio::spawn(async move {
            let s = b.open().await.unwrap();
            s.run(&format!("open('n', 'w').write('{i}')"), &[])
                .await
                .unwrap();
            tokio::time::sleep(Duration::from_millis(50)).await;
            let r = s.run("print(open('n').read())", &[]).await.unwrap();
            s.close().await.unwrap();
            (i, r.stdout, s.id().to_string())
        }));
    }
    let engine = engine().await;
    for t in tasks {
        let (i, out, id) = t.await.unwrap();
        assert_eq!(out, format!("{i}\n"));
        assert_eq!(containers_of(&engine, &id).await, 0);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_killed_from_outside_gives_session_gone() {
    let s = python().await.open().await.unwrap();
    let engine = engine().await;
    engine
        .signal_container(s.container_name(), "KILL")
        .await
        .unwrap();
    let err = tokio::time::timeout(Duration::from_secs(20), s.run("print(1)", &[]))
        .await
        .expect("no hang")
        .unwrap_err();
    assert!(matches!(err, Error::SessionGone { .. }), "{err}");
    assert!(err.to_string().contains("open a new session"), "{err}");
    s.close().await.unwrap();
    assert_eq!(containers_of(&engine, s.id()).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn closed_sessions_refuse_work_and_close_twice_is_fine() {
    let s = python().await.open().await.unwrap();
    s.close().await.unwrap();
    s.close().await.unwrap();
    let err = s.run("print(1)", &[]).await.unwrap_err();
    assert!(matches!(err, Error::SessionClosed { .. }), "{err}");
}
