//! keep_template commits the session's state; built images are removed unless kept.

use crate::per_target;
use crate::support::{ca_bundle, containers_of, engine, image_exists, python, Target};

per_target!(
    a_template_keeps_installed_packages_and_files,
    [docker, podman],
    |t: Target| async move { template(&t).await }
);

async fn template(t: &Target) {
    let engine = t.engine.clone();
    let tag = format!(
        "sandpit-test/template-{}-{}:latest",
        t.name,
        std::process::id()
    );
    let ca = ca_bundle().expect("a CA bundle");
    let s1 = t
        .builder(sandpit::Language::Python)
        .extra_ca_certificates(&ca)
        .keep_template(true)
        .template_tag(&tag)
        .open()
        .await
        .unwrap();
    let r = s1
        .run(
            "import tabulate\nopen('note.txt', 'w').write('from session 1')",
            &["tabulate"],
        )
        .await
        .unwrap();
    assert!(r.success(), "{}", r.stderr);
    s1.close().await.unwrap();
    assert_eq!(containers_of(&engine, s1.id()).await, 0);
    assert!(image_exists(&engine, &tag).await);

    let s2 = t
        .builder(sandpit::Language::Python)
        .image(&tag)
        .open()
        .await
        .unwrap();
    let r = s2
        .run(
            "import tabulate; print(open('note.txt').read(), tabulate.__name__)",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "from session 1 tabulate\n", "{}", r.stderr);
    s2.close().await.unwrap();
    // A session on an existing image leaves the image alone.
    assert!(image_exists(&engine, &tag).await);
    sandpit::image::remove_image(&engine, &tag).await.unwrap();
    assert!(!image_exists(&engine, &tag).await);
    // The default image is never removed by a session.
    assert!(image_exists(&engine, "sandpit/python:latest").await);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_image_built_from_a_dockerfile_is_removed_at_close_unless_kept() {
    let engine = engine().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM sandpit/python:latest\nCOPY greeting.txt /opt/greeting.txt\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("greeting.txt"), "built from a Dockerfile").unwrap();

    let s = python()
        .await
        .dockerfile(dir.path().join("Dockerfile"))
        .open()
        .await
        .unwrap();
    let image = s.image().to_string();
    assert!(image_exists(&engine, &image).await);
    let r = s
        .run("print(open('/opt/greeting.txt').read())", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "built from a Dockerfile\n");
    s.close().await.unwrap();
    assert!(
        !image_exists(&engine, &image).await,
        "{image} should be removed"
    );

    let kept = format!("sandpit-test/kept-{}:latest", std::process::id());
    let s = python()
        .await
        .dockerfile(dir.path().join("Dockerfile"))
        .keep_template(true)
        .template_tag(&kept)
        .open()
        .await
        .unwrap();
    let built = s.image().to_string();
    s.close().await.unwrap();
    assert!(image_exists(&engine, &kept).await);
    sandpit::image::remove_image(&engine, &kept).await.unwrap();
    sandpit::image::remove_image(&engine, &built).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broken_dockerfile_fails_with_the_builds_error_line() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("Dockerfile"),
        "FROM sandpit/python:latest\nRUN echo about to fail && exit 3\n",
    )
    .unwrap();
    let err = python()
        .await
        .dockerfile(dir.path().join("Dockerfile"))
        .open()
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(text.contains("building image"), "{text}");
    assert!(text.contains("returned a non-zero code: 3"), "{text}");
}
