//! Opening: connect, provide the image, create the container with labels and limits, start it,
//! run the language's setup.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptions, UploadToContainerOptions};

use crate::builder::SessionBuilder;
use crate::close::remove_container;
use crate::connection::{Connection, Engine};
use crate::error::{is_transport, Error, Result};
use crate::exec::{exec, ExecSpec};
use crate::image::{build_dockerfile, ensure_default_image, ensure_image, quiet, remove_image};
use crate::labels;
use crate::session::{Inner, SandboxSession};

/// PID 1 of every session: sleeps, reaps, and exits at once on SIGTERM.
pub(crate) const KEEPALIVE: &str =
    "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

/// Where extra CA certificates go inside the container.
pub const CA_PATH: &str = "/etc/sandpit/ca.pem";

/// Environment variables pointed at the extra CA certificates.
pub const CA_ENV: &[&str] = &[
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
];

pub(crate) async fn open(b: SessionBuilder) -> Result<SandboxSession> {
    let runner = b.runner.clone().ok_or_else(|| {
        Error::InvalidInput(
            "no language chosen: call .language(Language::Python) or .runner(..) on the builder"
                .into(),
        )
    })?;
    if !b.workdir.starts_with('/') {
        return Err(Error::InvalidInput(format!(
            "workdir {:?} must be an absolute path such as /sandbox",
            b.workdir
        )));
    }
    if b.image.is_some() && b.dockerfile.is_some() {
        return Err(Error::InvalidInput(
            "both an image and a Dockerfile were given: choose one".into(),
        ));
    }
    if b.timeout.is_zero() {
        return Err(Error::InvalidInput(
            "the timeout must be longer than zero".into(),
        ));
    }
    if b.output_limit == 0 {
        return Err(Error::InvalidInput(
            "the output limit must be at least one byte".into(),
        ));
    }
    let extra_ca = match &b.extra_ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .map_err(|e| Error::io("reading the CA certificates", path, e))?;
            if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
                return Err(Error::InvalidInput(format!(
                    "{} holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)",
                    path.display()
                )));
            }
            Some(pem)
        }
        None => None,
    };

    let engine = match &b.engine {
        Some(engine) => engine.clone(),
        None => match &b.connection {
            Some(c) => c.connect().await?,
            None => Connection::from_env()?.connect().await?,
        },
    };

    let id = crate::ids::random_hex(12);
    let language = runner.language();
    let progress = b.progress.clone().unwrap_or_else(quiet);
    let (image, built_image) = if let Some(dockerfile) = &b.dockerfile {
        let tag = format!("sandpit-build/{language}-{id}:latest");
        build_dockerfile(&engine, dockerfile, &tag, &progress).await?;
        (tag, true)
    } else if let Some(image) = &b.image {
        ensure_image(&engine, image, &progress).await?;
        (image.clone(), false)
    } else {
        let spec = runner.default_image();
        ensure_default_image(&engine, &spec, &progress).await?;
        (spec.tag, false)
    };

    let container = format!("sandpit-{language}-{id}");
    let created = create_and_start(&engine, &b, &id, &container, &image, extra_ca.as_deref()).await;
    if let Err(e) = created {
        let _ = remove_container(&engine, &container).await;
        if built_image && !b.keep_template {
            let _ = remove_image(&engine, &image).await;
        }
        return Err(e);
    }

    let session = SandboxSession {
        inner: Arc::new(Inner {
            engine,
            id,
            container,
            runner: runner.clone(),
            image,
            built_image,
            keep_template: b.keep_template,
            template_tag: b.template_tag.clone(),
            workdir: b.workdir.clone(),
            env: b.env.clone(),
            timeout: b.timeout,
            install_timeout: b.install_timeout,
            output_limit: b.output_limit,
            closed: AtomicBool::new(false),
            installed: Mutex::new(HashSet::new()),
            install_lock: tokio::sync::Mutex::new(()),
        }),
    };
    for step in runner.setup() {
        let out = exec(
            &session.inner.engine,
            &session.inner.container,
            ExecSpec {
                argv: step.argv.clone(),
                user: step.user,
                env: step.env.clone(),
                workdir: session.inner.workdir.clone(),
                timeout: b.install_timeout,
                output_limit: session.inner.output_limit,
                inline_file: None,
                stdin_path: None,
            },
        )
        .await;
        let failure = match out {
            Ok(o) if o.success() => None,
            Ok(o) => Some(Error::Setup {
                command: step.display(),
                exit_code: o.exit_code,
                message: if o.stderr.trim().is_empty() {
                    o.stdout
                } else {
                    o.stderr
                },
            }),
            Err(e) => Some(e),
        };
        if let Some(e) = failure {
            let _ = session.close().await;
            return Err(e);
        }
    }
    Ok(session)
}

async fn create_and_start(
    engine: &Engine,
    b: &SessionBuilder,
    id: &str,
    container: &str,
    image: &str,
    extra_ca: Option<&[u8]>,
) -> Result<()> {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .saturating_add(b.lifetime)
        .as_secs();
    let language = b
        .runner
        .as_ref()
        .map(|r| r.language().name())
        .unwrap_or("unknown");
    let labels = HashMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::SESSION.to_string(), id.to_string()),
        (labels::LANGUAGE.to_string(), language.to_string()),
        (labels::EXPIRES_AT.to_string(), expires.to_string()),
        (labels::OWNER.to_string(), owner()),
    ]);
    let mut env: Vec<String> = b.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    if extra_ca.is_some() {
        env.extend(CA_ENV.iter().map(|k| format!("{k}={CA_PATH}")));
    }
    let host_config = HostConfig {
        memory: b.memory,
        memory_swap: b.memory,
        network_mode: Some(b.network.mode()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec![String::new()]),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), KEEPALIVE.into()]),
        env: Some(env),
        working_dir: Some(b.workdir.clone()),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
    };
    let options = CreateContainerOptions {
        name: Some(container.to_string()),
        ..Default::default()
    };
    engine
        .docker()
        .create_container(Some(options), body)
        .await
        .map_err(|e| {
            if is_transport(&e) {
                engine.connection().classify(e)
            } else {
                Error::CreateContainer {
                    image: image.to_string(),
                    source: e,
                }
            }
        })?;

    // Files the container needs before it starts: the workdir for the sandbox user, CA certificates.
    if b.workdir != "/sandbox" || b.image.is_some() || b.dockerfile.is_some() || extra_ca.is_some()
    {
        let archive = prestart_archive(&b.workdir, extra_ca)?;
        engine
            .docker()
            .upload_to_container(
                container,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_full(archive.into()),
            )
            .await
            .map_err(|e| Error::Upload {
                container: container.to_string(),
                path: "/".into(),
                source: e,
            })?;
    }

    engine
        .docker()
        .start_container(container, None)
        .await
        .map_err(|e| {
            if is_transport(&e) {
                engine.connection().classify(e)
            } else {
                Error::StartContainer {
                    container: container.to_string(),
                    source: e,
                }
            }
        })
}

fn prestart_archive(workdir: &str, extra_ca: Option<&[u8]>) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = |name: &str, uid: u64| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mode(0o755);
        h.set_size(0);
        builder
            .append_data(&mut h, name, std::io::empty())
            .map_err(|e| Error::io("packing", name, e))
    };
    dir(workdir.trim_start_matches('/'), 1000)?;
    if let Some(pem) = extra_ca {
        dir("etc/sandpit", 0)?;
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_size(pem.len() as u64);
        builder
            .append_data(&mut h, CA_PATH.trim_start_matches('/'), pem)
            .map_err(|e| Error::io("packing", CA_PATH, e))?;
    }
    builder
        .into_inner()
        .map_err(|e| Error::io("packing", workdir, e))
}

fn owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "unknown".into());
    format!("{host}:{}", std::process::id())
}
