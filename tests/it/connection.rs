//! Reaching engines: TLS with generated certificates, wrong CAs, unreachable engines.

use std::time::{Duration, Instant};

use sandpit::{Connection, Error, Language, LanguageExt, SandboxSession};

use crate::support::{containers_of, engine, TlsEngine};

#[tokio::test(flavor = "multi_thread")]
async fn a_session_over_tls_runs_code() {
    let tls = TlsEngine::start();
    let engine_tls = sandpit::connect(&tls.connection()).await.unwrap();
    assert!(!engine_tls
        .info()
        .await
        .unwrap()
        .negotiated_api_version
        .is_empty());
    let s = SandboxSession::builder()
        .language(Language::Python)
        .connection(tls.connection())
        .open()
        .await
        .unwrap();
    let r = s.run("print('over tls')", &[]).await.unwrap();
    assert_eq!(r.stdout, "over tls\n");
    let r = s.run("import time; time.sleep(5)", &[]).await;
    assert!(r.is_ok());
    s.close().await.unwrap();
    assert_eq!(containers_of(&engine().await, s.id()).await, 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_wrong_ca_is_a_clear_tls_error() {
    let tls = TlsEngine::start();
    let d = tls.dir.path().to_path_buf();
    let wrong = Connection::tls(
        &tls.addr,
        tls.other_ca(),
        d.join("cert.pem"),
        d.join("key.pem"),
    );
    let err = sandpit::connect(&wrong).await.unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("TLS") && text.contains("CA certificate"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_engines_fail_fast_and_clearly() {
    let t = Instant::now();
    let err = sandpit::connect(&Connection::unix("/nonexistent/docker.sock"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EngineUnreachable { .. }), "{err}");
    assert!(err.to_string().contains("does not exist"), "{err}");

    let err = sandpit::connect(&Connection::tcp("127.0.0.1:1"))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EngineUnreachable { .. }), "{err}");

    // A listener on loopback that accepts and never answers: the connect timeout bounds the wait.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in silent.incoming().take(4) {
            held.push(conn);
        }
        std::thread::sleep(Duration::from_secs(30));
    });
    let t2 = Instant::now();
    let err =
        sandpit::connect(&Connection::tcp(&silent_addr).connect_timeout(Duration::from_secs(2)))
            .await
            .unwrap_err();
    assert!(matches!(err, Error::EngineUnreachable { .. }), "{err}");
    assert!(err.to_string().contains("no answer within"), "{err}");
    assert!(
        t2.elapsed() < Duration::from_secs(4),
        "took {:?}",
        t2.elapsed()
    );
    assert!(
        t.elapsed() < Duration::from_secs(8),
        "took {:?}",
        t.elapsed()
    );

    let err = sandpit::connect(&Connection::tls(
        "127.0.0.1:2376",
        "/nope/ca.pem",
        "/nope/cert.pem",
        "/nope/key.pem",
    ))
    .await
    .unwrap_err();
    assert!(err.to_string().contains("/nope/ca.pem"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_goes_away_mid_session_is_a_clear_error_not_a_hang() {
    let tls = TlsEngine::start();
    let s = SandboxSession::builder()
        .language(Language::Python)
        .connection(tls.connection())
        .open()
        .await
        .unwrap();
    s.execute("x = 1").await.unwrap();
    let container = s.container_name().to_string();
    drop(tls); // the engine's endpoint disappears
    let t = Instant::now();
    let err = s.run("print(1)", &[]).await.unwrap_err();
    assert!(matches!(err, Error::EngineUnreachable { .. }), "{err}");
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    let err = s.execute("x").await.unwrap_err();
    assert!(matches!(err, Error::EngineUnreachable { .. }), "{err}");
    // Closing cannot reach it either, and says so; the labelled container is left for gc.
    assert!(s.close().await.is_err());
    let local = engine().await;
    assert_eq!(containers_of(&local, s.id()).await, 1);
    local.remove_container(&container).await.unwrap();
}
