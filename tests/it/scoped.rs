//! Scoped sessions: the drop fallback and the closure helper leave nothing behind.

use std::time::Duration;

use sandpit::{wait_for_drops, with_session, Error, Language, LanguageExt, SandboxSession};

use crate::support::{containers_of, engine, python};

#[tokio::test(flavor = "multi_thread")]
async fn a_dropped_guard_removes_its_container_on_a_multi_thread_runtime() {
    let s = python().await.open().await.unwrap();
    let id = s.id().to_string();
    let engine = engine().await;
    assert_eq!(containers_of(&engine, &id).await, 1);
    // The drop returns at once; the one drop worker removes the container meanwhile.
    let started = std::time::Instant::now();
    drop(s);
    assert!(
        started.elapsed() < Duration::from_millis(50),
        "the drop blocked"
    );
    let idle = tokio::task::spawn_blocking(|| wait_for_drops(Duration::from_secs(30)))
        .await
        .unwrap();
    assert!(idle, "the drop worker did not finish");
    assert_eq!(containers_of(&engine, &id).await, 0);
}

#[test]
fn a_dropped_guard_removes_its_container_on_a_current_thread_runtime() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let id = rt.block_on(async {
        let s = SandboxSession::builder()
            .language(Language::Python)
            .open()
            .await
            .unwrap();
        let id = s.id().to_string();
        s.run("print(1)", &[]).await.unwrap();
        drop(s); // inside the runtime: the fallback must not deadlock or block it
                 // The runtime keeps working while the worker removes the container.
        tokio::time::sleep(Duration::from_millis(10)).await;
        id
    });
    assert!(wait_for_drops(Duration::from_secs(30)));
    let left = rt.block_on(async { containers_of(&engine().await, &id).await });
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_closure_helper_closes_after_success_and_after_failure() {
    let engine = engine().await;
    let (out, id) = with_session(python().await, |s| async move {
        let r = s.run("print(6 * 7)", &[]).await?;
        Ok::<_, Error>((r.stdout, s.id().to_string()))
    })
    .await
    .unwrap();
    assert_eq!(out, "42\n");
    assert_eq!(containers_of(&engine, &id).await, 0);

    let mut seen = String::new();
    let seen_ref = &mut seen;
    let err = with_session(python().await, |s| async move {
        *seen_ref = s.id().to_string();
        Err::<(), _>(Error::InvalidInput("the closure failed on purpose".into()))
    })
    .await
    .unwrap_err();
    assert!(err.to_string().contains("on purpose"));
    assert!(!seen.is_empty());
    assert_eq!(containers_of(&engine, &seen).await, 0);
}
