//! A process that dies holding a session leaves a labelled container that `sandpit gc` removes.

use std::time::{Duration, Instant};

use crate::support::{engine, sandpit_bin, sandpit_cli};

#[tokio::test(flavor = "multi_thread")]
async fn gc_removes_the_container_of_a_killed_process() {
    let engine = engine().await;
    let mut child = std::process::Command::new(sandpit_bin())
        .args([
            "run",
            "--lang",
            "python",
            "-c",
            "import time; time.sleep(120)",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let owner_prefix = format!(":{}:", child.id());
    let find = || async {
        let all = engine
            .list_containers("sandpit.managed=true")
            .await
            .unwrap();
        all.into_iter()
            .filter(|c| {
                c.labels
                    .get("sandpit.process")
                    .is_some_and(|o| o.contains(&owner_prefix))
            })
            .map(|c| c.id)
            .collect::<Vec<_>>()
    };
    let t = Instant::now();
    let mut ids = find().await;
    while ids.is_empty() && t.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(200)).await;
        ids = find().await;
    }
    assert_eq!(ids.len(), 1, "the child's session container did not appear");
    child.kill().unwrap(); // SIGKILL: no close, no drop
    child.wait().unwrap();
    assert_eq!(
        find().await.len(),
        1,
        "the container outlives its killed owner"
    );

    let (code, out, err) = sandpit_cli(&["gc"], None);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("owner process"), "{out}");
    assert!(find().await.is_empty(), "gc left the container");
}
