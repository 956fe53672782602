//! The warm pool hands out ready sessions at once and never the same one twice.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use sandpit::{Error, ErrorKind, PoolConfig, SessionPool, WhenExhausted};

use crate::support::{containers_of, engine, python};

#[tokio::test(flavor = "multi_thread")]
async fn acquire_is_immediate_and_sessions_are_never_reused() {
    let pool = SessionPool::new(
        python().await,
        PoolConfig {
            idle: 2,
            max_size: 4,
            ..Default::default()
        },
    )
    .unwrap();
    pool.warm_up(Duration::from_secs(60)).await.unwrap();
    assert_eq!(pool.idle_count(), 2);

    let t = Instant::now();
    let a = pool.acquire().await.unwrap();
    let took = t.elapsed();
    assert!(took < Duration::from_millis(50), "acquire took {took:?}");
    let r = a
        .run("open('secret.txt', 'w').write('mine'); print('ok')", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "ok\n");
    let first_id = a.id().to_string();
    a.release().await.unwrap();
    assert_eq!(
        containers_of(&engine().await, &first_id).await,
        0,
        "a released session is closed"
    );

    let mut ids = HashSet::new();
    let mut held = Vec::new();
    for _ in 0..4 {
        let s = pool.acquire().await.unwrap();
        let r = s
            .run("import os; print(os.path.exists('secret.txt'))", &[])
            .await
            .unwrap();
        assert_eq!(r.stdout, "False\n", "a used session's state was handed out");
        assert!(ids.insert(s.id().to_string()));
        held.push(s);
    }
    assert!(!ids.contains(&first_id));
    drop(held); // dropped handles close in the background and free their slots
    pool.warm_up(Duration::from_secs(60)).await.unwrap();
    pool.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn an_exhausted_pool_fails_or_waits_as_configured() {
    let pool = SessionPool::new(
        python().await,
        PoolConfig {
            idle: 1,
            max_size: 1,
            when_exhausted: WhenExhausted::Fail,
            ..Default::default()
        },
    )
    .unwrap();
    // Let the filler claim the only slot first: a session on its way is waited for, not "exhausted".
    tokio::time::sleep(Duration::from_millis(50)).await;
    let held = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, Error::PoolExhausted { max_size: 1 }), "{err}");
    assert_eq!(err.kind(), ErrorKind::Exhausted);
    drop(held);
    pool.close().await.unwrap();

    let pool = SessionPool::new(
        python().await,
        PoolConfig {
            idle: 0,
            max_size: 1,
            when_exhausted: WhenExhausted::Wait(Duration::from_millis(500)),
            ..Default::default()
        },
    )
    .unwrap();
    let held = pool.acquire().await.unwrap();
    let err = pool.acquire().await.unwrap_err();
    assert!(matches!(err, Error::Timeout { .. }), "{err}");
    held.release().await.unwrap();
    let again = pool.acquire().await.unwrap();
    again.release().await.unwrap();
    pool.close().await.unwrap();
    assert!(SessionPool::new(
        python().await,
        PoolConfig {
            idle: 3,
            max_size: 2,
            ..Default::default()
        }
    )
    .is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_named_idle_member_is_handed_out_once() {
    let pool = SessionPool::new(
        python().await,
        PoolConfig {
            idle: 2,
            max_size: 4,
            ..Default::default()
        },
    )
    .unwrap();
    let mut changes = pool.idle_changes();
    pool.warm_up(Duration::from_secs(60)).await.unwrap();
    let ids = pool.idle_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    changes.borrow_and_update();
    let claimed = pool
        .acquire_id(&ids[1])
        .expect("an idle member is handed out");
    assert_eq!(claimed.id(), ids[1]);
    assert!(
        changes.has_changed().unwrap(),
        "taking a member is a change"
    );
    assert!(pool.acquire_id(&ids[1]).is_none(), "never twice");
    assert!(pool.acquire_id("no-such-session").is_none());
    assert!(!pool.idle_ids().contains(&ids[1]));
    let other = pool.acquire().await.unwrap();
    assert_eq!(other.id(), ids[0], "acquire takes what is left");
    claimed.release().await.unwrap();
    other.release().await.unwrap();
    pool.close().await.unwrap();
}
