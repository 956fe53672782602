//! Opening: connect, provide the image, create the container with labels and limits, start it,
//! run the language's setup.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountType, NetworkDisconnectRequest, ResourcesUlimits,
    VolumeCreateRequest,
};
use bollard::query_parameters::{CreateContainerOptions, UploadToContainerOptions};

use crate::builder::{Network, SessionBuilder};
use crate::close::{remove_container, remove_volume};
use crate::connection::{Connection, Engine};
use crate::disk::{loop_disks_available, LoopDisk};
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

/// A root-owned folder where Sandpit places files for user code (stdin), which user code
/// can read but not fill.
pub(crate) const IO_DIR: &str = "/var/lib/sandpit-io";

/// Capabilities kept for root setup steps (package installs). User code runs as uid 1000 with
/// no-new-privileges, so it can never hold them.
const INSTALL_CAPS: &[&str] = &["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETUID", "SETGID"];

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
    b.policy.validate().map_err(Error::InvalidInput)?;
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
    // The workdir's disk is prepared while the image is checked (the engine mounts it at create).
    let local = matches!(
        engine.connection().endpoint(),
        crate::connection::Endpoint::Unix(_)
    );
    let volume = (local && loop_disks_available()).then(|| format!("sandpit-disk-{id}"));
    let labels = session_labels(&id, language.name(), b.lifetime);
    let disk_task = volume.as_ref().map(|_| {
        let (id, size) = (id.clone(), b.policy.disk);
        tokio::task::spawn_blocking(move || LoopDisk::create(&id, size))
    });
    let progress = b.progress.clone().unwrap_or_else(quiet);
    let image_step = async {
        if let Some(dockerfile) = &b.dockerfile {
            let tag = format!("sandpit-build/{language}-{id}:latest");
            build_dockerfile(&engine, dockerfile, &tag, &progress).await?;
            Ok((tag, true))
        } else if let Some(image) = &b.image {
            ensure_image(&engine, image, &progress).await?;
            Ok((image.clone(), false))
        } else {
            let spec = runner.default_image();
            ensure_default_image(&engine, &spec, &progress).await?;
            Ok((spec.tag, false))
        }
    };
    let volume_step = async {
        match &volume {
            Some(v) => create_volume(&engine, v, &id, &labels).await,
            None => Ok(()),
        }
    };
    let (provided, volume_made): (Result<(String, bool)>, Result<()>) =
        tokio::join!(image_step, volume_step);
    let (image, built_image) = match (provided, volume_made) {
        (Ok(v), Ok(())) => v,
        (provided, volume_made) => {
            if let Some(v) = &volume {
                let _ = remove_volume(&engine, v).await;
            }
            if let Some(task) = disk_task {
                if let Ok(Ok(disk)) = task.await {
                    let _ = tokio::task::spawn_blocking(move || disk.destroy()).await;
                }
            }
            if let Ok((image, true)) = &provided {
                let _ = remove_image(&engine, image).await;
            }
            return Err(provided
                .err()
                .or(volume_made.err())
                .expect("one step failed"));
        }
    };

    let container = format!("sandpit-{language}-{id}");
    let created = create_and_start(
        &engine,
        &b,
        &container,
        &image,
        extra_ca.as_deref(),
        volume.as_deref(),
        disk_task,
        labels,
    )
    .await;
    let disk = match created {
        Ok(disk) => disk,
        Err(e) => {
            let _ = remove_container(&engine, &container).await;
            if let Some(v) = &volume {
                let _ = remove_volume(&engine, v).await;
            }
            let paths = LoopDisk::paths(&id);
            let _ = tokio::task::spawn_blocking(move || paths.destroy()).await;
            if built_image && !b.keep_template {
                let _ = remove_image(&engine, &image).await;
            }
            return Err(e);
        }
    };

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
            policy: b.policy.clone(),
            volume,
            disk,
            oom_seen: std::sync::atomic::AtomicU64::new(0),
            kernel: tokio::sync::Mutex::new(None),
            closed: AtomicBool::new(false),
            installed: Mutex::new(HashSet::new()),
            install_lock: tokio::sync::RwLock::new(()),
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
                sink: None,
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

/// Creates the container (and its disk, in parallel), places pre-start files, detaches the
/// network when user code gets none, and starts it. Returns the disk when one was made.
#[allow(clippy::too_many_arguments)]
async fn create_and_start(
    engine: &Engine,
    b: &SessionBuilder,
    container: &str,
    image: &str,
    extra_ca: Option<&[u8]>,
    volume: Option<&str>,
    disk_task: Option<tokio::task::JoinHandle<Result<LoopDisk>>>,
    labels: HashMap<String, String>,
) -> Result<Option<LoopDisk>> {
    let policy = &b.policy;
    let disk = match disk_task {
        Some(task) => Some(task.await.map_err(|e| Error::Disk {
            reason: format!("the disk task panicked: {e}"),
        })??),
        None => None,
    };
    let mut mounts = Vec::new();
    if let Some(volume) = volume {
        mounts.push(Mount {
            target: Some(b.workdir.clone()),
            source: Some(volume.to_string()),
            typ: Some(MountType::VOLUME),
            read_only: Some(!policy.workdir_writable),
            ..Default::default()
        });
    }

    let mut env: Vec<String> = b.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push("HOME=/home/sandbox".into());
    if extra_ca.is_some() {
        env.extend(CA_ENV.iter().map(|k| format!("{k}={CA_PATH}")));
    }
    let scratch = |extra: &str| format!("rw,nosuid,nodev,size={},{extra}", policy.scratch);
    let mut tmpfs = HashMap::from([
        ("/tmp".to_string(), scratch("mode=1777")),
        ("/var/tmp".to_string(), scratch("mode=1777")),
        ("/run/lock".to_string(), scratch("mode=1777")),
        (
            "/home/sandbox".to_string(),
            scratch("uid=1000,gid=1000,mode=0755"),
        ),
    ]);
    if b.workdir != "/sandbox" {
        // The default images' workdir, writable by uid 1000, is not the session's disk here.
        tmpfs.insert(
            "/sandbox".to_string(),
            scratch("uid=1000,gid=1000,mode=0755"),
        );
    }
    let ulimit = |name: &str, value: u64| ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(value as i64),
        hard: Some(value as i64),
    };
    // Without an engine-side disk for the workdir, ask the storage driver for a size limit
    // (works on overlay2 over xfs with pquota); engines that cannot are retried without.
    let storage_opt = volume
        .is_none()
        .then(|| HashMap::from([("size".to_string(), policy.disk.to_string())]));
    let network_mode = match &policy.network {
        // Created on the bridge and detached before start, so installs can attach it later.
        Network::None => "bridge".to_string(),
        other => other.mode(),
    };
    let host_config = HostConfig {
        memory: Some(policy.memory as i64),
        memory_swap: Some(policy.memory as i64),
        nano_cpus: Some((policy.cpus * 1e9) as i64),
        pids_limit: Some(policy.max_processes),
        ulimits: Some(vec![
            ulimit("nofile", policy.max_open_files),
            ulimit("fsize", policy.max_file_size),
        ]),
        cap_drop: Some(vec!["ALL".into()]),
        cap_add: Some(INSTALL_CAPS.iter().map(|c| c.to_string()).collect()),
        security_opt: Some(vec!["no-new-privileges".into()]),
        privileged: Some(false),
        network_mode: Some(network_mode),
        tmpfs: Some(tmpfs),
        mounts: Some(mounts),
        storage_opt,
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
    let create = |body: ContainerCreateBody| {
        engine.docker().create_container(
            Some(CreateContainerOptions {
                name: Some(container.to_string()),
                ..Default::default()
            }),
            body,
        )
    };
    let create_error = |e: bollard::errors::Error| {
        if is_transport(&e) {
            engine.connection().classify(e)
        } else {
            Error::CreateContainer {
                image: image.to_string(),
                source: e,
            }
        }
    };
    match create(body.clone()).await {
        Ok(_) => {}
        Err(e)
            if body
                .host_config
                .as_ref()
                .is_some_and(|h| h.storage_opt.is_some())
                && e.to_string().contains("storage-opt") =>
        {
            tracing::warn!(
                "the engine cannot limit a container's disk ({}); the workdir has no disk limit. Run Sandpit as root on the engine's host for loop-backed workdir disks",
                crate::image::engine_message(&e)
            );
            let mut body = body;
            if let Some(h) = body.host_config.as_mut() {
                h.storage_opt = None;
            }
            create(body).await.map_err(create_error)?;
        }
        Err(e) => return Err(create_error(e)),
    }

    // Before it starts, together: the files the container needs (the workdir's owner where the
    // image may not have set it, CA certificates), and detaching the network user code must not see.
    let custom = b.workdir != "/sandbox" || b.image.is_some() || b.dockerfile.is_some();
    let workdir_owner = match (volume.is_some(), policy.workdir_writable) {
        (_, true) => custom.then_some(1000),
        (false, false) => Some(0),
        // A read-only mount takes no upload; the volume's root already belongs to uid 1000.
        (true, false) => None,
    };
    let upload = async {
        if workdir_owner.is_none() && extra_ca.is_none() {
            return Ok(());
        }
        let archive = prestart_archive(&b.workdir, workdir_owner, extra_ca)?;
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
            })
    };
    let detach = async {
        if policy.network != Network::None {
            return Ok(());
        }
        engine
            .docker()
            .disconnect_network(
                "bridge",
                NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| Error::Network {
                container: container.to_string(),
                source: e,
            })
    };
    let (uploaded, detached) = tokio::join!(upload, detach);
    uploaded?;
    detached?;

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
        })?;
    Ok(disk)
}

fn session_labels(id: &str, language: &str, lifetime: Duration) -> HashMap<String, String> {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .saturating_add(lifetime)
        .as_secs();
    HashMap::from([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::SESSION.to_string(), id.to_string()),
        (labels::LANGUAGE.to_string(), language.to_string()),
        (labels::EXPIRES_AT.to_string(), expires.to_string()),
        (labels::OWNER.to_string(), crate::gc::owner()),
    ])
}

/// The workdir's volume: a local mount of the session's loop device (made meanwhile).
async fn create_volume(
    engine: &Engine,
    volume: &str,
    id: &str,
    labels: &HashMap<String, String>,
) -> Result<()> {
    let link = LoopDisk::paths(id).link;
    engine
        .docker()
        .create_volume(VolumeCreateRequest {
            name: Some(volume.to_string()),
            driver: Some("local".into()),
            driver_opts: Some(HashMap::from([
                ("type".to_string(), "ext4".to_string()),
                ("device".to_string(), link.display().to_string()),
            ])),
            labels: Some(labels.clone()),
            ..Default::default()
        })
        .await
        .map(|_| ())
        .map_err(|e| Error::Volume {
            volume: volume.to_string(),
            source: e,
        })
}

fn prestart_archive(
    workdir: &str,
    workdir_owner: Option<u64>,
    extra_ca: Option<&[u8]>,
) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut dir = |name: &str, uid: u64, mode: u32| -> Result<()> {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mode(mode);
        h.set_size(0);
        builder
            .append_data(&mut h, name, std::io::empty())
            .map_err(|e| Error::io("packing", name, e))
    };
    if let Some(uid) = workdir_owner {
        dir(workdir.trim_start_matches('/'), uid, 0o755)?;
    }
    if let Some(pem) = extra_ca {
        dir("etc/sandpit", 0, 0o755)?;
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
