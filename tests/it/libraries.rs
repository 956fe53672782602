//! Libraries from PyPI through the extra CA certificates, once per session.

use std::time::Instant;

use sandpit::Error;

use crate::support::{ca_bundle, python};

#[tokio::test(flavor = "multi_thread")]
async fn a_pypi_package_installs_once_and_imports() {
    let ca =
        ca_bundle().expect("a CA bundle (SANDPIT_CA_BUNDLE or /etc/ssl/certs/ca-certificates.crt)");
    let s = python()
        .await
        .extra_ca_certificates(&ca)
        .open()
        .await
        .unwrap();
    let r = s
        .run(
            "import tabulate, os; print(tabulate.__name__, os.environ['PIP_CERT'])",
            &["tabulate"],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "tabulate /etc/sandpit/ca.pem\n", "{}", r.stderr);
    assert_eq!(s.installed_libraries(), vec!["tabulate".to_string()]);
    // The second run does not reinstall: no pip process, so it is as fast as a plain run.
    let t = Instant::now();
    let r = s
        .run("import tabulate; print('again')", &["tabulate"])
        .await
        .unwrap();
    assert_eq!(r.stdout, "again\n");
    let second = t.elapsed();
    let t = Instant::now();
    s.run("print('plain')", &[]).await.unwrap();
    let plain = t.elapsed();
    assert!(
        second < plain * 3 + std::time::Duration::from_millis(300),
        "second {second:?} vs plain {plain:?}"
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_package_is_an_error_naming_it_with_pips_message() {
    let ca = ca_bundle().expect("a CA bundle");
    let s = python()
        .await
        .extra_ca_certificates(&ca)
        .open()
        .await
        .unwrap();
    let err = s
        .run("print(1)", &["sandpit-no-such-package-4242"])
        .await
        .unwrap_err();
    match &err {
        Error::LibraryInstall {
            libraries, message, ..
        } => {
            assert_eq!(libraries, "sandpit-no-such-package-4242");
            assert!(message.contains("No matching distribution"), "{message}");
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    assert!(err.to_string().contains("sandpit-no-such-package-4242"));
    // Option injection is refused before pip runs.
    let err = s
        .run("print(1)", &["--index-url=http://evil"])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_file_that_is_not_a_certificate_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.pem");
    std::fs::write(&bad, "not a cert").unwrap();
    let err = python()
        .await
        .extra_ca_certificates(&bad)
        .open()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");
}
