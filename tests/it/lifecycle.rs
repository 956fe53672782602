//! Containers carry labels and limits; the builder refuses bad settings clearly.

use sandpit::{Error, SandboxSession};

use crate::support::{containers_of, engine, python};

#[tokio::test(flavor = "multi_thread")]
async fn containers_are_labelled_and_limited_as_asked() {
    let engine = engine().await;
    let s = python().await.memory(256 << 20).open().await.unwrap();
    let labels = engine
        .inspect_container(s.container_name())
        .await
        .unwrap()
        .labels;
    assert_eq!(
        labels.get("sandpit.session").map(String::as_str),
        Some(s.id())
    );
    assert_eq!(
        labels.get("sandpit.language").map(String::as_str),
        Some("python")
    );
    let expires: u64 = labels["sandpit.expires-at"].parse().unwrap();
    assert!(expires > 1_700_000_000);
    assert!(labels["sandpit.process"].contains(&format!(":{}:", std::process::id())));
    let stats = engine.container_stats(s.container_name()).await.unwrap();
    assert_eq!(stats.memory_limit_bytes, 256 << 20);
    assert_eq!(containers_of(&engine, s.id()).await, 1);
    s.close().await.unwrap();
    assert_eq!(containers_of(&engine, s.id()).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_builder_settings_are_refused_before_anything_is_created() {
    let err = SandboxSession::builder().open().await.unwrap_err();
    assert!(err.to_string().contains("no language chosen"), "{err}");
    let err = python().await.workdir("relative").open().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = python()
        .await
        .image("a")
        .dockerfile("b")
        .open()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("choose one"), "{err}");
    let err = python()
        .await
        .dockerfile("/nonexistent/Dockerfile")
        .open()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidPath { .. }), "{err}");
}
