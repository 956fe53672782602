//! Opening: connect, provide the image, create the container with the agent as its PID 1,
//! limits, security options and labels, start it, say hello to the agent, place Sandpit's own
//! files, run the language's setup, install the libraries asked for. What an open made so far
//! is undone by one guard when it fails or is abandoned.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_agent::protocol::{FileOp, PROTOCOL_VERSION};
use sandpit_engine::{Engine, EngineInfo, VolumeSpec};

use crate::agent::{volume, Agent, Pending};
use crate::builder::SessionBuilder;
use crate::close::ClosePlan;
use crate::disk::{loop_disks_available, LoopDisk};
use crate::error::{Error, Result};
use crate::image::{build_dockerfile, ensure_default_image, ensure_image, quiet};
use crate::labels;
use crate::policy::RuntimeChoice;
use crate::runner::User;
use crate::session::{CloseProgress, Inner, SandboxSession};
use crate::settings::{
    container_spec, network_plan, ContainerPlan, NetworkPlan, CA_PATH, SANDBOX_UID, SANDPIT_ETC,
};
use crate::step::Step;

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

/// Undoes what an open made so far: explicitly ([`OpenGuard::undo`]) when a step fails, through
/// the drop worker when the open is abandoned (its future dropped); released once the session
/// exists and its own close takes over.
struct OpenGuard {
    engine: Engine,
    plan: Option<ClosePlan>,
}

impl OpenGuard {
    fn new(engine: &Engine, container: &str, workdir: &str) -> Self {
        OpenGuard {
            engine: engine.clone(),
            plan: Some(ClosePlan {
                container: container.to_string(),
                commit_to: None,
                remove_image: None,
                workdir: workdir.to_string(),
                volume: None,
                disk: None,
            }),
        }
    }

    fn plan(&mut self) -> &mut ClosePlan {
        self.plan.as_mut().expect("an armed guard has a plan")
    }

    /// Removes what was made, now.
    async fn undo(mut self) {
        if let Some(plan) = self.plan.take() {
            if let Err(e) = plan
                .execute(&self.engine, &mut CloseProgress::default())
                .await
            {
                tracing::warn!("undoing the open of {}: {e}", plan.container);
            }
        }
    }

    fn release(mut self) {
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
    let container = format!("sandpit-{}-{id}", runner.language());
    let mut guard = OpenGuard::new(&engine, &container, &b.workdir);
    match build(&b, &engine, &id, &container, &mut guard).await {
        Ok((session, network)) => {
            // The session's own close takes over.
            guard.release();
            let libraries: Vec<String> = b.libraries.iter().map(|l| l.trim().to_string()).collect();
            if let Err(e) = finish_setup(&session, &libraries, &network, extra_ca.as_deref()).await
            {
                let _ = session.close().await;
                return Err(e);
            }
            Ok(session)
        }
        Err(e) => {
            guard.undo().await;
            Err(e)
        }
    }
}

/// Everything up to a running container whose agent said hello.
async fn build(
    b: &SessionBuilder,
    engine: &Engine,
    id: &str,
    container: &str,
    guard: &mut OpenGuard,
) -> Result<(SandboxSession, NetworkPlan)> {
    let runner = b.runner.clone().expect("checked by open");
    let language = runner.language();
    let t0 = std::time::Instant::now();
    let step = |what: &str| tracing::debug!(target: "sandpit::open", "{id}: {what} after {:?}", t0.elapsed());
    let mut labels = session_labels(id, language.name(), b);
    let progress = b.progress.clone().unwrap_or_else(quiet);
    let image_step = async {
        if let Some(dockerfile) = &b.dockerfile {
            let tag = format!("sandpit-build/{language}-{id}:latest");
            build_dockerfile(engine, dockerfile, &tag, &progress).await?;
            Ok((tag, true))
        } else if let Some(image) = &b.image {
            ensure_image(engine, image, &progress).await?;
            Ok((image.clone(), false))
        } else {
            let spec = runner.default_image();
            ensure_default_image(engine, &spec, &progress).await?;
            Ok((spec.tag, false))
        }
    };
    // The workdir's disk is prepared while the image is checked (the engine mounts it at create).
    let prepare_step = prepare(engine, b, id, &labels);
    let (provided, prepared): (Result<(String, bool)>, Result<Prepared>) =
        tokio::join!(image_step, prepare_step);
    if let Ok((image, true)) = &provided {
        guard.plan().remove_image = (!b.keep_template).then(|| image.clone());
    }
    if let Ok(p) = &prepared {
        guard.plan().volume = p.volume.clone();
        guard.plan().disk = p.disk.clone();
    }
    let (mut image, built_image) = provided?;
    let prepared = prepared?;
    step("image checked and disk prepared");

    // Without network hot-plug (gVisor) or a writable root (a recyclable sandbox), libraries
    // go into an image first.
    let libraries: Vec<String> = b.libraries.iter().map(|l| l.trim().to_string()).collect();
    let libraries_in_image = !libraries.is_empty() && (!prepared.hotplug || b.recyclable);
    if libraries_in_image {
        image = crate::library_image::library_image(
            engine,
            &image,
            runner.as_ref(),
            &libraries,
            b,
            &progress,
        )
        .await?;
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
        recyclable: b.recyclable,
    };
    labels.insert(
        labels::CONFIG.to_string(),
        serde_json::to_string(&saved).map_err(|e| Error::Internal(e.to_string()))?,
    );
    labels.insert(labels::AGENT.to_string(), PROTOCOL_VERSION.to_string());
    volume::ensure(engine, &image).await?;
    let spec = container_spec(&ContainerPlan {
        name: container,
        image: &image,
        workdir: &b.workdir,
        extra_ca: b.extra_ca.is_some(),
        labels: labels.clone(),
        policy: &b.policy,
        network: &network,
        volume: prepared.volume.as_deref(),
        storage_quota: prepared.info.capabilities.storage_quota,
        runtime: prepared.runtime.clone(),
        gvisor: prepared.gvisor,
        recyclable: b.recyclable,
    });
    engine.create_container(&spec).await.map_err(|e| {
        Error::engine(e, |cause| Error::CreateContainer {
            image: image.clone(),
            cause,
        })
    })?;
    if spec.storage_size.is_none() && prepared.volume.is_none() && !b.recyclable {
        tracing::warn!(
            "the {} engine cannot limit a container's disk and sessions get no loop disks here; the workdir of {container} has no disk limit",
            prepared.info.kind
        );
    }
    if network.detach_before_start {
        detach_default_network(engine, container).await?;
    }
    let agent = start(engine, container, &image).await?;
    step("created, started, the agent said hello");

    let session = SandboxSession {
        inner: Arc::new(Inner {
            engine: engine.clone(),
            info: prepared.info,
            id: id.to_string(),
            container: container.to_string(),
            runner: runner.clone(),
            image,
            built_image,
            keep_template: b.keep_template,
            template_tag: b.template_tag.clone(),
            workdir: b.workdir.clone(),
            env: RwLock::new(b.env.clone()),
            opening_env: b.env.clone(),
            timeout: b.timeout,
            install_timeout: b.install_timeout,
            output_limit: b.output_limit,
            policy: b.policy.clone(),
            runtime: prepared.runtime,
            gvisor: prepared.gvisor,
            recyclable: b.recyclable,
            network_hotplug: prepared.hotplug,
            late_installs: b.late_installs,
            created: SystemTime::now(),
            labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
            volume: prepared.volume,
            disk: prepared.disk,
            agent: RwLock::new(Some(agent)),
            reconnecting: tokio::sync::Mutex::new(()),
            contexts: crate::kernel::no_contexts(),
            closed: AtomicBool::new(false),
            paused: AtomicBool::new(false),
            close_progress: tokio::sync::Mutex::new(CloseProgress::default()),
            installed: Mutex::new(if libraries_in_image {
                libraries.iter().cloned().collect()
            } else {
                HashSet::new()
            }),
            install_lock: tokio::sync::RwLock::new(()),
        }),
    };
    Ok((session, network))
}

/// Attaches, starts the container and says hello to its agent. A container that found no agent
/// in the volume (another process was filling it, or it was removed and the engine made it anew,
/// empty) is started again once the volume is filled.
async fn start(engine: &Engine, container: &str, image: &str) -> Result<Agent> {
    for attempt in 0..2 {
        let pending = Pending::attach(engine, container).await?;
        let started = engine.start_container(container).await.map_err(|e| {
            Error::engine(e, |cause| Error::StartContainer {
                container: container.to_string(),
                cause,
            })
        });
        match started {
            Ok(()) => return pending.hello().await.map(|(agent, _)| agent),
            Err(e) if attempt == 0 && volume::missing_agent(&e) => {
                tracing::warn!("{container} found no agent in its volume; filling it again");
                volume::refill(engine, image).await?;
            }
            Err(e) => return Err(e),
        }
    }
    unreachable!("the second attempt returns")
}

/// What runs once the agent answers: Sandpit's own files, folders handed to the sandbox user
/// where the engine could not mount them so, the language's setup, and the libraries asked for.
async fn finish_setup(
    session: &SandboxSession,
    libraries: &[String],
    network: &NetworkPlan,
    extra_ca: Option<&[u8]>,
) -> Result<()> {
    let inner = &session.inner;
    if let Some(pem) = extra_ca {
        let rel = CA_PATH.trim_start_matches('/');
        session
            .write_file("/", User::Root, rel, pem, Some(0o644), CA_PATH)
            .await?;
    }
    debug_assert!(CA_PATH.starts_with(SANDPIT_ETC));
    session.hand_over_workdir().await?;
    session.hand_over_scratch_folders().await?;
    for step in inner.runner.setup() {
        let out = session
            .exec_step(Step::new(&step, inner.install_timeout))
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
    let pending: Vec<String> = libraries
        .iter()
        .filter(|l| !inner.installed.lock().expect("installed").contains(*l))
        .cloned()
        .collect();
    if !pending.is_empty() {
        session.install_while_opening(&pending).await?;
    }
    if network.detach_after_open_install {
        detach_default_network(&inner.engine, &inner.container).await?;
    }
    Ok(())
}

impl SandboxSession {
    /// Gives the workdir to the sandbox user where the image did not (a custom image or
    /// workdir); a read-only workdir stays root's.
    async fn hand_over_workdir(&self) -> Result<()> {
        let inner = &self.inner;
        if !inner.policy.workdir_writable || inner.recyclable {
            return Ok(());
        }
        let info = self
            .file_op(
                &inner.workdir,
                User::Root,
                FileOp::Stat {
                    path: String::new(),
                },
                &inner.workdir,
            )
            .await?;
        if matches!(&info, sandpit_agent::protocol::EventBody::File(f) if f.uid == SANDBOX_UID) {
            return Ok(());
        }
        let op = FileOp::Chown {
            path: String::new(),
            uid: SANDBOX_UID,
            gid: SANDBOX_UID,
        };
        self.file_op(&inner.workdir, User::Root, op, &inner.workdir)
            .await
            .map(|_| ())
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
    let agent_arch = crate::agent_binary::AGENT_ARCH;
    if !info.arch.is_empty() && info.arch != agent_arch {
        return Err(Error::Unsupported {
            what: "a sandbox on this engine".into(),
            reason: format!(
                "the engine runs on {}, and this Sandpit carries its sandbox agent for {agent_arch} only; build Sandpit with the agent for {} (see the README's section on other architectures)",
                info.arch, info.arch
            ),
        });
    }
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
    // A recyclable sandbox's workdir is memory: nothing of a run may outlive its reset.
    if b.recyclable || !loop_disks_available(&prepared.info) {
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
