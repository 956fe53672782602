//! Opening: connect, provide the image, create the container with labels and limits, start it,
//! run the language's setup, install the libraries asked for.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_engine::{Engine, EngineInfo, VolumeSpec};

use crate::archive::{ArchiveBuilder, ROOT_OWNER};
use crate::builder::SessionBuilder;
use crate::close::{remove_container, remove_volume};
use crate::disk::{loop_disks_available, LoopDisk};
use crate::error::{Error, Result};
use crate::exec::{exec, ExecSpec};
use crate::image::{build_dockerfile, ensure_default_image, ensure_image, quiet, remove_image};
use crate::labels;
use crate::policy::RuntimeChoice;
use crate::session::{CloseProgress, Inner, SandboxSession};
use crate::settings::{
    container_spec, network_plan, ContainerPlan, NetworkPlan, CA_PATH, SANDBOX_UID,
};

/// A root-owned folder where Sandpit places files for user code (stdin), which user code
/// can read but not fill.
pub(crate) const IO_DIR: &str = "/var/lib/sandpit-io";

impl SessionBuilder {
    /// Opens the session: connect, make sure the image exists, create and start the container,
    /// run the language's setup and install the libraries given with [`Self::libraries`].
    pub async fn open(self) -> Result<SandboxSession> {
        open(self).await
    }
}

/// What the engine can do for this session, learned while the image is checked.
struct Prepared {
    info: EngineInfo,
    runtime: Option<String>,
    gvisor: bool,
    hotplug: bool,
    volume: Option<String>,
    disk: Option<LoopDisk>,
}

async fn open(b: SessionBuilder) -> Result<SandboxSession> {
    let runner = b.runner.clone().ok_or_else(|| {
        Error::InvalidInput(
            "no language chosen: call .language(Language::Python) or .runner(..) on the builder"
                .into(),
        )
    })?;
    validate(&b)?;
    for lib in &b.libraries {
        runner
            .check_library(lib.trim())
            .map_err(Error::InvalidInput)?;
    }
    let extra_ca = read_extra_ca(&b)?;
    let engine = match &b.engine {
        Some(engine) => engine.clone(),
        None => match &b.connection {
            Some(c) => crate::connect(c).await?,
            None => crate::connect_env().await?,
        },
    };

    let id = crate::ids::random_hex(12);
    let language = runner.language();
    let t0 = std::time::Instant::now();
    let log_id = id.clone();
    let step = move |what: &str| tracing::debug!(target: "sandpit::open", "{log_id}: {what} after {:?}", t0.elapsed());
    let mut labels = session_labels(&id, language.name(), &b);
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
    // The workdir's disk is prepared while the image is checked (the engine mounts it at create).
    let prepare_step = prepare(&engine, &b, &id, &labels);
    let (provided, prepared): (Result<(String, bool)>, Result<Prepared>) =
        tokio::join!(image_step, prepare_step);
    step("image checked and disk prepared");
    let (prepared, (mut image, built_image)) = match (prepared, provided) {
        (Ok(p), Ok(i)) => (p, i),
        (prepared, provided) => {
            if let Ok(p) = &prepared {
                discard_disk(&engine, p).await;
            }
            if let Ok((image, true)) = &provided {
                let _ = remove_image(&engine, image).await;
            }
            return Err(prepared.err().or(provided.err()).expect("one step failed"));
        }
    };

    // From here a caller that stops waiting (a dropped future) leaves nothing behind: the
    // guard hands what exists so far to the drop worker.
    let mut guard = OpenGuard {
        engine: engine.clone(),
        plan: Some(crate::close::ClosePlan {
            container: format!("sandpit-{language}-{id}"),
            commit_to: None,
            remove_image: (built_image && !b.keep_template).then(|| image.clone()),
            workdir: b.workdir.clone(),
            volume: prepared.volume.clone(),
            disk: prepared.disk.clone(),
        }),
    };

    // Without network hot-plug (gVisor), libraries go into an image first.
    let libraries: Vec<String> = b.libraries.iter().map(|l| l.trim().to_string()).collect();
    let libraries_in_image = !libraries.is_empty() && !prepared.hotplug;
    if libraries_in_image {
        match crate::library_image::library_image(
            &engine,
            &image,
            runner.as_ref(),
            &libraries,
            extra_ca.as_deref(),
            &b,
            &progress,
        )
        .await
        {
            Ok(tag) => image = tag,
            Err(e) => {
                guard.disarm();
                discard_disk(&engine, &prepared).await;
                return Err(e);
            }
        }
    }
    let network = network_plan(
        &b.policy.network,
        prepared.hotplug,
        !libraries.is_empty() && !libraries_in_image,
        b.late_installs,
    );

    let saved = crate::adopt::SavedConfig {
        image: image.clone(),
        built_image,
        keep_template: b.keep_template,
        template_tag: b.template_tag.clone(),
        workdir: b.workdir.clone(),
        env: b.env.clone(),
        timeout_ms: b.timeout.as_millis() as u64,
        install_timeout_ms: b.install_timeout.as_millis() as u64,
        output_limit: b.output_limit,
        policy: b.policy.clone(),
        late_installs: b.late_installs,
        libraries: libraries.clone(),
        created: crate::adopt::now_secs(),
    };
    labels.insert(
        labels::CONFIG.to_string(),
        serde_json::to_string(&saved).map_err(|e| Error::Internal(e.to_string()))?,
    );
    let container = format!("sandpit-{language}-{id}");
    let created = create_and_start(
        &engine,
        &b,
        &prepared,
        &network,
        &container,
        &image,
        extra_ca.as_deref(),
        labels.clone(),
    )
    .await;
    step("created and started");
    if let Err(e) = created {
        guard.disarm();
        let _ = remove_container(&engine, &container).await;
        discard_disk(&engine, &prepared).await;
        if built_image && !b.keep_template {
            let _ = remove_image(&engine, &image).await;
        }
        return Err(e);
    }

    let installed: HashSet<String> = if libraries_in_image {
        libraries.iter().cloned().collect()
    } else {
        HashSet::new()
    };
    // The session's own drop takes over from the guard.
    guard.disarm();
    let session = SandboxSession {
        inner: Arc::new(Inner {
            engine,
            info: prepared.info,
            id,
            container,
            runner: runner.clone(),
            image,
            built_image,
            keep_template: b.keep_template,
            template_tag: b.template_tag.clone(),
            workdir: b.workdir.clone(),
            env: RwLock::new(b.env.clone()),
            timeout: b.timeout,
            install_timeout: b.install_timeout,
            output_limit: b.output_limit,
            policy: b.policy.clone(),
            runtime: prepared.runtime,
            gvisor: prepared.gvisor,
            network_hotplug: prepared.hotplug,
            late_installs: b.late_installs,
            created: SystemTime::now(),
            labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
            volume: prepared.volume,
            disk: prepared.disk,
            oom_seen: AtomicU64::new(0),
            kernel: Arc::new(tokio::sync::Mutex::new(None)),
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            close_progress: tokio::sync::Mutex::new(CloseProgress::default()),
            installed: Mutex::new(installed),
            install_lock: tokio::sync::RwLock::new(()),
        }),
    };
    if let Err(e) = finish_setup(&session, &libraries, libraries_in_image, &network).await {
        let _ = session.close().await;
        return Err(e);
    }
    step("set up");
    Ok(session)
}

/// Cleans up after an open that was abandoned half-way.
struct OpenGuard {
    engine: Engine,
    plan: Option<crate::close::ClosePlan>,
}

impl OpenGuard {
    fn disarm(&mut self) {
        self.plan = None;
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if let Some(plan) = self.plan.take() {
            tracing::debug!(
                "an open of {} was abandoned; removing what it made",
                plan.container
            );
            crate::drop_worker::submit(self.engine.clone(), plan, false);
        }
    }
}

fn validate(b: &SessionBuilder) -> Result<()> {
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
    for (key, _) in b.env.iter().chain(&b.labels) {
        if key.is_empty() || key.contains('=') || key.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "{key:?} is not a valid environment variable or label name"
            )));
        }
    }
    b.policy.validate().map_err(Error::InvalidInput)
}

fn read_extra_ca(b: &SessionBuilder) -> Result<Option<Vec<u8>>> {
    let Some(path) = &b.extra_ca else {
        return Ok(None);
    };
    let pem = std::fs::read(path).map_err(|e| Error::io("reading the CA certificates", path, e))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(Error::InvalidInput(format!(
            "{} holds no PEM certificate (no -----BEGIN CERTIFICATE----- line)",
            path.display()
        )));
    }
    Ok(Some(pem))
}

/// Asks the engine what it can do, picks the runtime, and makes the workdir's disk.
async fn prepare(
    engine: &Engine,
    b: &SessionBuilder,
    id: &str,
    labels: &HashMap<String, String>,
) -> Result<Prepared> {
    let info = engine
        .info()
        .await
        .map_err(|e| Error::engine(e, Error::Info))?;
    let runtime = resolve_runtime(&info, &b.policy.runtime)?;
    let chosen = info.runtime(runtime.as_deref().unwrap_or(&info.default_runtime));
    let runtime_hotplug = chosen.is_none_or(|r| r.network_hotplug);
    let gvisor = chosen.is_some_and(|r| r.kind == sandpit_engine::RuntimeKind::Gvisor);
    let hotplug = info.capabilities.network_hotplug && runtime_hotplug;
    let mut prepared = Prepared {
        hotplug,
        gvisor,
        runtime,
        volume: None,
        disk: None,
        info,
    };
    if !loop_disks_available(&prepared.info) {
        return Ok(prepared);
    }
    let area = crate::disk::area(&prepared.info);
    let volume = format!("sandpit-disk-{id}");
    let (disk_id, size) = (id.to_string(), b.policy.disk);
    let disk = tokio::task::spawn_blocking(move || LoopDisk::create(&area, &disk_id, size))
        .await
        .map_err(|e| Error::join("preparing the workdir disk", e))??;
    let spec = VolumeSpec {
        name: volume.clone(),
        driver_opts: HashMap::from([
            ("type".to_string(), "ext4".to_string()),
            ("device".to_string(), disk.link.display().to_string()),
        ]),
        labels: labels.clone(),
    };
    if let Err(e) = engine.create_volume(&spec).await {
        tokio::task::spawn_blocking(move || disk.destroy())
            .await
            .ok();
        return Err(Error::engine(e, |cause| Error::Volume {
            volume: volume.clone(),
            cause,
        }));
    }
    prepared.volume = Some(volume);
    prepared.disk = Some(disk);
    Ok(prepared)
}

/// The runtime to ask the engine for: `None` for its default.
fn resolve_runtime(info: &EngineInfo, choice: &RuntimeChoice) -> Result<Option<String>> {
    match choice {
        RuntimeChoice::EngineDefault => Ok(None),
        RuntimeChoice::PreferGvisor => Ok(info
            .runtime_of_kind(sandpit_engine::RuntimeKind::Gvisor)
            .map(|r| r.name.clone())),
        RuntimeChoice::Named(name) => match info.runtime(name) {
            Some(r) => Ok(Some(r.name.clone())),
            None => Err(Error::InvalidInput(format!(
                "the {} engine offers no runtime {name:?}; it offers: {}",
                info.kind,
                info.runtimes
                    .iter()
                    .map(|r| r.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))),
        },
    }
}

async fn discard_disk(engine: &Engine, prepared: &Prepared) {
    if let Some(v) = &prepared.volume {
        let _ = remove_volume(engine, v).await;
    }
    if let Some(disk) = prepared.disk.clone() {
        tokio::task::spawn_blocking(move || disk.destroy())
            .await
            .ok();
    }
}

/// Creates the container, places pre-start files, detaches the network user code must not
/// see, and starts it.
#[allow(clippy::too_many_arguments)]
async fn create_and_start(
    engine: &Engine,
    b: &SessionBuilder,
    prepared: &Prepared,
    network: &NetworkPlan,
    container: &str,
    image: &str,
    extra_ca: Option<&[u8]>,
    labels: HashMap<String, String>,
) -> Result<()> {
    let policy = &b.policy;
    let spec = container_spec(&ContainerPlan {
        name: container,
        image,
        workdir: &b.workdir,
        extra_ca: extra_ca.is_some(),
        labels,
        policy,
        network,
        volume: prepared.volume.as_deref(),
        storage_quota: prepared.info.capabilities.storage_quota,
        runtime: prepared.runtime.clone(),
        gvisor: prepared.gvisor,
    });
    tracing::debug!(target: "sandpit::open", "{container}: creating");
    engine.create_container(&spec).await.map_err(|e| {
        Error::engine(e, |cause| Error::CreateContainer {
            image: image.to_string(),
            cause,
        })
    })?;
    if spec.storage_size.is_none() && prepared.volume.is_none() {
        tracing::warn!(
            "the {} engine cannot limit a container's disk and sessions get no loop disks here; the workdir of {container} has no disk limit",
            prepared.info.kind
        );
    }

    // Before it starts, together: the files the container needs (the workdir's owner where the
    // image may not have set it, CA certificates), and detaching the network user code must not see.
    let custom = b.workdir != "/sandbox" || b.image.is_some() || b.dockerfile.is_some();
    let workdir_owner = match (prepared.volume.is_some(), policy.workdir_writable) {
        (_, true) => custom.then_some((SANDBOX_UID as u64, SANDBOX_UID as u64)),
        (false, false) => Some(ROOT_OWNER),
        // A read-only mount takes no upload; the volume's root already belongs to uid 1000.
        (true, false) => None,
    };
    let upload = async {
        if workdir_owner.is_none() && extra_ca.is_none() {
            return Ok(());
        }
        let mut archive = ArchiveBuilder::new();
        if let Some(owner) = workdir_owner {
            archive.dir(&b.workdir, owner, 0o755)?;
        }
        if let Some(pem) = extra_ca {
            archive.dir("/etc/sandpit", ROOT_OWNER, 0o755)?;
            archive.file(CA_PATH, pem, ROOT_OWNER, 0o644)?;
        }
        engine
            .upload_bytes(container, "/", archive.finish()?)
            .await
            .map_err(|e| {
                Error::engine(e, |cause| Error::Upload {
                    container: container.to_string(),
                    path: "/".into(),
                    cause,
                })
            })
    };
    let detach = async {
        if !network.detach_before_start {
            return Ok(());
        }
        detach_default_network(engine, container).await
    };
    let (uploaded, detached) = tokio::join!(upload, detach);
    uploaded?;
    detached?;

    tracing::debug!(target: "sandpit::open", "{container}: created, files placed");
    engine.start_container(container).await.map_err(|e| {
        Error::engine(e, |cause| Error::StartContainer {
            container: container.to_string(),
            cause,
        })
    })
}

/// Takes the engine's default network away from a container.
pub(crate) async fn detach_default_network(engine: &Engine, container: &str) -> Result<()> {
    engine
        .disconnect_network(container, "bridge")
        .await
        .map_err(|e| {
            Error::engine(e, |cause| Error::Network {
                container: container.to_string(),
                cause,
            })
        })
}

/// What runs once the container is up: folders handed to the sandbox user where the engine
/// could not mount them so, the language's setup, and the libraries asked for.
async fn finish_setup(
    session: &SandboxSession,
    libraries: &[String],
    libraries_in_image: bool,
    network: &NetworkPlan,
) -> Result<()> {
    let inner = &session.inner;
    session.hand_over_scratch_folders().await?;
    for step in inner.runner.setup() {
        let out = exec(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv: step.argv.clone(),
                user: step.user,
                env: step.env.clone(),
                workdir: inner.workdir.clone(),
                timeout: inner.install_timeout,
                output_limit: inner.output_limit,
                inline_file: None,
                stdin_path: None,
                stdin_data: None,
                sink: None,
                watch: false,
                nproc: None,
                stats: false,
            },
        )
        .await?;
        if !out.success() {
            return Err(Error::Setup {
                command: step.display(),
                exit_code: out.exit_code,
                message: if out.stderr.trim().is_empty() {
                    out.stdout
                } else {
                    out.stderr
                },
            });
        }
    }
    if !libraries.is_empty() && !libraries_in_image {
        session.install_while_opening(libraries).await?;
    }
    if network.detach_after_open_install {
        detach_default_network(&inner.engine, &inner.container).await?;
    }
    Ok(())
}

fn session_labels(id: &str, language: &str, b: &SessionBuilder) -> HashMap<String, String> {
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .saturating_add(b.lifetime)
        .as_secs();
    // The caller's labels first: Sandpit's own always win.
    let mut labels: HashMap<String, String> = b
        .labels
        .iter()
        .map(|(k, v)| {
            let key = if k.starts_with("sandpit.") {
                k.clone()
            } else {
                format!("{}{k}", labels::META_PREFIX)
            };
            (key, v.clone())
        })
        .collect();
    labels.extend([
        (labels::MANAGED.to_string(), "true".to_string()),
        (labels::SESSION.to_string(), id.to_string()),
        (labels::LANGUAGE.to_string(), language.to_string()),
        (labels::EXPIRES_AT.to_string(), expires.to_string()),
    ]);
    if b.tied_to_process {
        labels.insert(labels::PROCESS.to_string(), labels::this_process());
    }
    labels
}
