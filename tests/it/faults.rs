//! Faults found when Sandpit was tried as a new user would, each pinned by a test.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sandpit::engine::Engine;
use sandpit::{ErrorKind, Language, LanguageExt, RunOptions, SandboxSession};

use crate::flaky::FlakyEngine;
use crate::support::{containers_of, engine};

async fn flaky_python() -> (FlakyEngine, SandboxSession) {
    let flaky = FlakyEngine::new(engine().await);
    let s = SandboxSession::builder()
        .language(Language::Python)
        .engine(Engine::new(flaky.clone()))
        .open()
        .await
        .unwrap();
    (flaky, s)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_close_that_failed_is_retried_by_the_next_close() {
    let (flaky, s) = flaky_python().await;
    let real = engine().await;
    flaky.fail("remove_container", 1);
    let err = s.close().await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Internal, "{err}");
    assert!(
        !s.is_closed(),
        "a close that failed must not count as closed"
    );
    assert_eq!(containers_of(&real, s.id()).await, 1);
    s.close().await.unwrap();
    assert!(s.is_closed());
    assert_eq!(containers_of(&real, s.id()).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failed_volume_removal_still_frees_the_disk_and_a_retry_removes_the_volume() {
    let (flaky, s) = flaky_python().await;
    let real = engine().await;
    assert!(s.has_disk_limit(), "this test needs a loop-backed workdir");
    let label = format!("sandpit.session={}", s.id());
    let disks = sandpit_disks(s.id());
    assert_eq!(disks.len(), 1, "the session's disk image: {disks:?}");
    flaky.fail("remove_volume", 1);
    let err = s.close().await.unwrap_err();
    assert!(
        err.to_string().contains("remove_volume failed on purpose"),
        "{err}"
    );
    assert_eq!(containers_of(&real, s.id()).await, 0);
    assert!(!disks[0].exists(), "the loop disk was skipped");
    assert_eq!(real.list_volumes(&label).await.unwrap().len(), 1);
    s.close().await.unwrap();
    assert_eq!(real.list_volumes(&label).await.unwrap().len(), 0);
}

/// The disk images of session `id`, under every engine's folder.
fn sandpit_disks(id: &str) -> Vec<std::path::PathBuf> {
    let root = std::path::Path::new("/var/lib/sandpit/disks");
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .map(|area| area.path().join(format!("{id}.img")))
        .filter(|p| p.exists())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_a_run_stream_stops_the_run() {
    let s = crate::support::python().await.open().await.unwrap();
    let mut stream = s.run_stream(
        "import time\nprint('started', flush=True)\ntime.sleep(120)",
        RunOptions::new().timeout(Duration::from_secs(300)),
    );
    let mut seen = String::new();
    while !seen.contains("started\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(60), stream.next())
            .await
            .unwrap_or_else(|_| panic!("the run did not start within 60 s; so far: {seen:?}"))
            .unwrap_or_else(|| panic!("the run ended before it printed; so far: {seen:?}"));
        seen.push_str(&chunk.text());
    }
    drop(stream);
    let count = "cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\\0' ' ' | grep -c 'main[.]py'";
    let started = Instant::now();
    loop {
        let out = s.execute_command(count).await.unwrap();
        if out.stdout.trim() == "0" {
            break;
        }
        // A bound against a run that never stops, not a speed target.
        assert!(
            started.elapsed() < Duration::from_secs(45),
            "the run goes on {:?} after its stream was dropped: {} processes",
            started.elapsed(),
            out.stdout
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_an_execute_interrupts_the_code_and_the_kernel_keeps_its_state() {
    let s = crate::support::python().await.open().await.unwrap();
    s.execute("kept = 41").await.unwrap();
    let call = s.execute("import time\nwhile True: time.sleep(0.1)");
    // The caller goes away after a moment (an HTTP client that disconnected, say).
    assert!(tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .is_err());
    let r = s.execute("print(kept + 1)").await.unwrap();
    assert_eq!(r.stdout, "42\n", "{r:?}");
    assert!(!r.state_lost);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_seeds_plot_example_saves_the_plot_it_showed() {
    // The LLM Python Code Sandbox's own example: plot in one call, save in the next.
    let s = crate::support::python().await.open().await.unwrap();
    let plot = "import numpy as np\nimport matplotlib.pyplot as plt\nx = np.linspace(0, 10, 100)\nplt.figure(figsize=(10, 6))\nplt.plot(x, np.sin(x), label='Sine Function')\nplt.plot(x, np.cos(x), label='Cosine Function')\nplt.title('Trigonometric Functions Demo')\nplt.grid(True)\nplt.legend()\nplt.tight_layout()\n";
    let r = s.execute(plot).await.unwrap();
    assert!(r.success(), "{r:?}");
    assert_eq!(r.images().len(), 1, "the plot comes back once");
    let r = s
        .execute("plt.savefig('trigonometric_functions.png', dpi=300, bbox_inches='tight')\nprint('saved')")
        .await
        .unwrap();
    assert_eq!(r.stdout, "saved\n", "{r:?}");
    assert!(
        r.images().is_empty(),
        "an unchanged figure is not sent again"
    );
    // The saved file holds the plot: lines in two colours, not a blank canvas.
    let r = s
        .execute("import matplotlib.image as mi\na = mi.imread('trigonometric_functions.png')\nprint(a.shape[1] > 2000, round(float(a[..., :3].std()), 2) > 0.05)")
        .await
        .unwrap();
    assert_eq!(r.stdout, "True True\n", "{r:?}");
    // A figure that changes comes back again; a new one comes back too.
    let r = s
        .execute("plt.plot(x, x / 10)\nplt.figure()\nplt.plot([1, 2])")
        .await
        .unwrap();
    assert_eq!(r.images().len(), 2, "{r:?}");
    s.close().await.unwrap();
}
