//! Background processes: started, streamed, written to, signalled, listed, attached to again,
//! and kept across a new connection (another process adopting the session, as a server does
//! after a restart).

use std::time::Duration;

use sandpit::{Language, ProcessEvent, ProcessHandle, Signal, SpawnOptions, StreamKind};

use crate::per_target;
use crate::support::{containers_of, Target};

/// Reads events until `until` says stop or the process ends; the text of stdout seen.
async fn read_until(handle: &mut ProcessHandle, until: impl Fn(&str) -> bool) -> (String, bool) {
    let mut out = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let next = tokio::time::timeout_at(deadline, handle.next_event())
            .await
            .expect("the process said nothing for 30 s")
            .unwrap();
        match next {
            Some(ProcessEvent::Output(chunk)) if chunk.stream == StreamKind::Stdout => {
                out.push_str(&chunk.text());
                if until(&out) {
                    return (out, false);
                }
            }
            Some(ProcessEvent::Output(_)) => {}
            Some(ProcessEvent::Exited(_)) | None => return (out, true),
        }
    }
}

per_target!(
    a_background_process_takes_input_streams_and_is_killed,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let mut p = s
            .spawn(
                SpawnOptions::new(["python3", "-u", "-c", "import sys\nfor line in sys.stdin:\n    print(line.strip().upper(), flush=True)"])
                    .stdin()
                    .tag("upper"),
            )
            .await
            .unwrap();
        s.write_stdin(p.pid(), b"hello\n").await.unwrap();
        let (out, ended) = read_until(&mut p, |o| o.contains("HELLO")).await;
        assert!(!ended, "{out}");
        let listed = s.processes().await.unwrap();
        assert!(
            listed
                .iter()
                .any(|i| i.pid == p.pid() && i.running && i.tag.as_deref() == Some("upper")),
            "{listed:?}"
        );
        s.signal_process(p.pid(), Signal::Kill).await.unwrap();
        let end = loop {
            match p.next_event().await.unwrap() {
                Some(ProcessEvent::Exited(exit)) => break exit,
                Some(_) => continue,
                None => panic!("no end reported"),
            }
        };
        assert_eq!((end.exit_code, end.signal), (137, Some(9)), "{end:?}");
        s.close().await.unwrap();
        assert_eq!(containers_of(&t.engine, s.id()).await, 0);
    }
);

per_target!(
    closing_stdin_ends_a_reader,
    [docker, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let mut p = s
            .spawn(SpawnOptions::new(["wc", "-c"]).stdin())
            .await
            .unwrap();
        s.write_stdin(p.pid(), b"12345").await.unwrap();
        s.close_stdin(p.pid()).await.unwrap();
        let (out, ended) = read_until(&mut p, |_| false).await;
        assert!(ended);
        assert_eq!(out.trim(), "5");
        s.close().await.unwrap();
    }
);

per_target!(
    a_detached_process_keeps_running_and_is_attached_again,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let p = s
            .spawn(SpawnOptions::new([
                "sh",
                "-c",
                "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done",
            ]))
            .await
            .unwrap();
        let pid = p.pid();
        drop(p);
        tokio::time::sleep(Duration::from_millis(500)).await;
        // What it wrote while nobody listened is kept (the first lines went to the handle
        // dropped above), then it goes on: the lines come in order, none missing.
        let mut again = s.attach_process(pid).await.unwrap();
        let (out, ended) = read_until(&mut again, |o| o.lines().count() >= 8).await;
        assert!(!ended, "{out}");
        let ticks: Vec<u32> = out
            .lines()
            .map(|l| l.trim_start_matches("tick ").parse().unwrap())
            .collect();
        assert!(ticks.windows(2).all(|w| w[1] == w[0] + 1), "{out}");
        assert!(
            ticks[0] <= 3,
            "the lines written while nobody listened are kept: {out}"
        );
        s.signal_process(pid, Signal::Term).await.unwrap();
        let (_, ended) = read_until(&mut again, |_| false).await;
        assert!(ended);
        s.close().await.unwrap();
    }
);

per_target!(
    another_process_adopts_a_session_with_a_background_process_still_running,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t
            .builder(Language::Python)
            .tied_to_process(false)
            .open()
            .await
            .unwrap();
        s.files().write_text("kept.txt", "files too").await.unwrap();
        let p = s
            .spawn(SpawnOptions::new([
                "sh",
                "-c",
                "while true; do date +%s%N; sleep 0.2; done",
            ]))
            .await
            .unwrap();
        let pid = p.pid();
        drop(p);
        // Another Sandpit process takes over the session: it connects anew, and the agent keeps
        // the background process for it.
        let adopted = sandpit::adopt(&t.engine, s.id()).await.unwrap();
        std::mem::forget(s);
        let listed = adopted.processes().await.unwrap();
        assert!(
            listed.iter().any(|i| i.pid == pid && i.running),
            "{listed:?}"
        );
        let mut attached = adopted.attach_process(pid).await.unwrap();
        let (out, ended) = read_until(&mut attached, |o| o.lines().count() >= 3).await;
        assert!(!ended, "{out}");
        assert_eq!(
            adopted.files().read_text("kept.txt").await.unwrap(),
            "files too"
        );
        adopted.signal_process(pid, Signal::Kill).await.unwrap();
        adopted.close().await.unwrap();
        assert_eq!(containers_of(&t.engine, adopted.id()).await, 0);
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn unknown_processes_and_bad_requests_are_clear_errors() {
    let s = crate::support::python().await.open().await.unwrap();
    let err = s.signal_process(999_999, Signal::Term).await.unwrap_err();
    assert!(
        matches!(err, sandpit::Error::ProcessNotFound { pid: 999_999 }),
        "{err}"
    );
    assert_eq!(err.kind(), sandpit::ErrorKind::NotFound);
    let err = s.attach_process(999_999).await.unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::NotFound, "{err}");
    let err = s.write_stdin(999_999, b"x").await.unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::NotFound, "{err}");
    let err = s
        .spawn(SpawnOptions::new(Vec::<String>::new()))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::InvalidInput, "{err}");
    let err = s
        .spawn(SpawnOptions::new(["/no/such/program"]))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::InvalidInput, "{err}");
    let err = s
        .spawn(SpawnOptions::new(["true"]).cwd("relative"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::InvalidInput, "{err}");
    s.close().await.unwrap();
}
