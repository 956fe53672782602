//! Images: missing ones are a clear error naming them.

use sandpit::Error;

use crate::support::python;

#[tokio::test(flavor = "multi_thread")]
async fn a_missing_image_is_named_in_the_error() {
    let err = python()
        .await
        .image("sandpit-test/does-not-exist:v0")
        .open()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ImageNotFound { .. }), "{err}");
    assert!(
        err.to_string().contains("sandpit-test/does-not-exist:v0"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_custom_workdir_is_created_for_the_sandbox_user() {
    let s = python().await.workdir("/work/here").open().await.unwrap();
    let r = s
        .run(
            "import os; print(os.getcwd()); open('w', 'w').write('ok')",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "/work/here\n", "{}", r.stderr);
    // The image's own workdir is no longer a way around the disk limit.
    let r = s
        .execute_command("df --output=fstype /sandbox | tail -1")
        .await
        .unwrap();
    assert_eq!(r.stdout.trim(), "tmpfs");
    s.close().await.unwrap();
}
