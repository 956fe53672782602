//! Stateful execution: state kept between calls, rich results, interrupts, crashes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandpit::{ExecuteOptions, Language, LanguageExt, SandboxSession};

use crate::support::{ca_bundle, python, TlsEngine};

#[tokio::test(flavor = "multi_thread")]
async fn python_keeps_state_and_returns_rich_results() {
    let s = python().await.open().await.unwrap();
    let r = s
        .execute("x = 41\nimport math\ndef double(v):\n    return 2 * v\nf = open('log.txt', 'w')")
        .await
        .unwrap();
    assert!(r.success(), "{:?}", r.error);
    assert!(r.kernel_started);
    let r = s
        .execute("print(x + 1)\nf.write('kept'); f.flush()\ndouble(x) + math.floor(0.5)")
        .await
        .unwrap();
    assert!(!r.kernel_started);
    assert_eq!(r.stdout, "42\n");
    assert_eq!(r.stdout_lines(), vec!["42"]);
    assert_eq!(r.results.len(), 1);
    assert_eq!(r.results[0].text(), Some("82"));

    let r = s
        .execute("import pandas as pd\npd.DataFrame({'a': [1, 2]})")
        .await
        .unwrap();
    let html = r.results[0].html().expect("a DataFrame has an HTML bundle");
    assert!(html.contains("<table"), "{html}");

    let r = s
        .execute(
            "import matplotlib.pyplot as plt\nplt.plot([1, 3, 2])\nplt.title('no show() needed');",
        )
        .await
        .unwrap();
    let images = r.images();
    assert_eq!(images.len(), 1, "{:?}", r.results);
    assert_eq!(&images[0][..8], b"\x89PNG\r\n\x1a\n");
    assert!(images[0].len() > 1000);

    // The kernel loads IPython without its terminal front end; the package still works whole.
    let r = s
        .execute("import IPython\nfrom IPython.display import display, HTML\ndisplay(HTML('<b>b</b>'))\nIPython.version_info[0] >= 7")
        .await
        .unwrap();
    assert_eq!(r.results[0].html(), Some("<b>b</b>"), "{:?}", r.error);
    assert_eq!(r.results[1].text(), Some("True"));

    let r = s.execute("1 / 0").await.unwrap();
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.name, "ZeroDivisionError");
    assert_eq!(e.value, "division by zero");
    assert!(
        e.traceback.iter().any(|l| l.contains("ZeroDivisionError")),
        "{:?}",
        e.traceback
    );
    assert!(!r.state_lost);
    let r = s.execute("import subprocess, sys\nsubprocess.run(['echo', 'from a child'])\nprint('to stderr', file=sys.stderr)\nf.close(); open('log.txt').read()").await.unwrap();
    assert_eq!(r.stdout, "from a child\n");
    assert_eq!(r.stderr, "to stderr\n");
    assert_eq!(r.results.last().unwrap().text(), Some("'kept'"));
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_timeout_interrupts_and_keeps_the_state() {
    let s = python().await.open().await.unwrap();
    s.execute("counter = 5").await.unwrap();
    let t = Instant::now();
    let r = s
        .execute_with(
            "while True:\n    counter += 0",
            ExecuteOptions::new().timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(6),
        "took {:?}",
        t.elapsed()
    );
    assert!(r.timed_out);
    assert_eq!(r.error.as_ref().unwrap().name, "KeyboardInterrupt");
    assert!(!r.state_lost);
    let r = s.execute("counter").await.unwrap();
    assert_eq!(r.results[0].text(), Some("5"));
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kernel_that_ignores_the_interrupt_is_restarted() {
    let s = python().await.open().await.unwrap();
    s.execute("y = 1").await.unwrap();
    let r = s
        .execute_with(
            "import signal\nsignal.signal(signal.SIGINT, signal.SIG_IGN)\nwhile True:\n    pass",
            ExecuteOptions::new().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(r.timed_out);
    assert!(r.state_lost);
    assert_eq!(r.error.as_ref().unwrap().name, "KernelRestarted");
    let r = s.execute("'y' in globals()").await.unwrap();
    assert_eq!(r.results[0].text(), Some("False"));
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_crashed_kernel_is_reported_and_restarted_on_the_next_call() {
    let s = python().await.open().await.unwrap();
    s.execute("z = 3").await.unwrap();
    let r = s.execute("import os\nos._exit(1)").await.unwrap();
    let e = r.error.as_ref().unwrap();
    assert_eq!(e.name, "KernelDied");
    assert!(e.value.contains("state is lost"), "{}", e.value);
    assert!(e.value.contains("exited with code 1"), "{}", e.value);
    assert!(r.state_lost);
    let r = s
        .execute("import ctypes; ctypes.string_at(0)")
        .await
        .unwrap();
    assert!(r.kernel_started, "the next call starts a fresh kernel");
    assert_eq!(
        r.error.as_ref().unwrap().name,
        "KernelDied",
        "a segfault kills the kernel too"
    );
    let value = &r.error.as_ref().unwrap().value;
    assert!(value.contains("signal 11"), "{value}");
    let r = s.execute("'z' in globals()").await.unwrap();
    assert!(r.kernel_started);
    assert_eq!(r.results[0].text(), Some("False"));
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn execute_streams_and_survives_an_install_without_seeing_the_network() {
    let ca = ca_bundle().expect("a CA bundle");
    let s = python()
        .await
        .extra_ca_certificates(&ca)
        .open()
        .await
        .unwrap();
    s.execute("kept = 'before the install'").await.unwrap();
    s.install(&["tabulate"]).await.unwrap();
    let r = s
        .execute("import tabulate\nprint(kept)\nsorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:])")
        .await
        .unwrap();
    assert_eq!(r.stdout, "before the install\n", "{:?}", r.error);
    assert_eq!(r.results[0].text(), Some("['lo']"));

    let started = Instant::now();
    let first: Arc<Mutex<Option<Duration>>> = Arc::default();
    let f = first.clone();
    let r = s
        .execute_with(
            "import time\nprint('early', flush=True)\ntime.sleep(2)\nprint('late')",
            ExecuteOptions::new().on_output(move |c| {
                if c.text().contains("early") {
                    f.lock().unwrap().get_or_insert(started.elapsed());
                }
            }),
        )
        .await
        .unwrap();
    let early = first.lock().unwrap().expect("streamed");
    assert!(started.elapsed() - early > Duration::from_millis(1500));
    assert_eq!(r.stdout, "early\nlate\n");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_kernel_works_over_a_remote_tls_engine() {
    let tls = TlsEngine::start();
    let s = SandboxSession::builder()
        .language(Language::Python)
        .connection(tls.connection())
        .open()
        .await
        .unwrap();
    s.execute("a = [1, 2, 3]").await.unwrap();
    let r = s.execute("sum(a)").await.unwrap();
    assert_eq!(r.results[0].text(), Some("6"));
    s.close().await.unwrap();
}
