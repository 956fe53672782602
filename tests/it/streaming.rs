//! Output arrives while the program still runs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sandpit::{CommandOptions, RunOptions, StreamKind};

use crate::support::python;

const PRINT_SLEEP_PRINT: &str =
    "import sys, time\nprint('first', flush=True)\nprint('err', file=sys.stderr, flush=True)\ntime.sleep(2)\nprint('second')";

#[tokio::test(flavor = "multi_thread")]
async fn chunks_arrive_before_the_program_ends() {
    let s = python().await.open().await.unwrap();
    let started = Instant::now();
    let seen: Arc<Mutex<Vec<(Duration, StreamKind, String)>>> = Arc::default();
    let log = seen.clone();
    let r = s
        .run_with(
            PRINT_SLEEP_PRINT,
            RunOptions::new().on_output(move |c| {
                log.lock()
                    .unwrap()
                    .push((started.elapsed(), c.stream, c.text()))
            }),
        )
        .await
        .unwrap();
    let ended = started.elapsed();
    assert_eq!(r.stdout, "first\nsecond\n");
    let seen = seen.lock().unwrap().clone();
    // Chunk boundaries follow the program's writes (print writes text and newline apart).
    let first = seen
        .iter()
        .find(|(_, _, t)| t.contains("first"))
        .expect("first chunk");
    assert!(
        ended - first.0 > Duration::from_millis(1500),
        "first chunk came at {:?}, run ended at {ended:?}",
        first.0
    );
    let text = |kind: StreamKind| {
        seen.iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, t)| t.as_str())
            .collect::<String>()
    };
    assert_eq!(text(StreamKind::Stderr), "err\n", "{seen:?}");
    assert_eq!(text(StreamKind::Stdout), "first\nsecond\n", "{seen:?}");

    // The same through the Stream API.
    let mut stream = s.run_stream(PRINT_SLEEP_PRINT, RunOptions::new());
    let t = Instant::now();
    // stdout and stderr are separate pipes: their relative order is not fixed.
    let mut stdout = String::new();
    while !stdout.contains("first\n") {
        let c = stream.next().await.expect("a chunk");
        if c.stream == StreamKind::Stdout {
            stdout.push_str(&c.text());
        }
    }
    let first_at = t.elapsed();
    while let Some(c) = stream.next().await {
        if c.stream == StreamKind::Stdout {
            stdout.push_str(&c.text());
        }
    }
    assert!(t.elapsed() - first_at > Duration::from_millis(1500));
    assert_eq!(stdout, "first\nsecond\n");
    let result = stream.result().await.unwrap();
    assert_eq!(result.stdout, "first\nsecond\n");

    // Commands stream too.
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let l = lines.clone();
    let out = s
        .execute_command_with(
            "echo a; sleep 1; echo b",
            CommandOptions::new().on_output(move |c| l.lock().unwrap().push(c.text())),
        )
        .await
        .unwrap();
    assert_eq!(out.stdout, "a\nb\n");
    assert_eq!(lines.lock().unwrap().concat(), "a\nb\n");
    s.close().await.unwrap();
}
