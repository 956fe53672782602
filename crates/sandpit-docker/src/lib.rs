//! Sandpit's engine over the Docker API, through bollard: Docker Engine and Podman's
//! Docker-compatible service. The only crate of the workspace that names bollard; callers who
//! need raw engine access get the client from [`DockerEngine::docker`].
#![deny(missing_docs)]

mod connect;
mod errors;
mod info;
mod spec;
mod stats;

use std::any::Any;
use std::collections::HashMap;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest, VolumeCreateRequest};
use bollard::query_parameters::{
    AttachContainerOptions, BuildImageOptions, CommitContainerOptions, CreateContainerOptions,
    CreateImageOptions, DownloadFromContainerOptions, KillContainerOptions, ListContainersOptions,
    ListImagesOptions, ListVolumesOptions, RemoveContainerOptions, RemoveImageOptions,
    RemoveVolumeOptions, StatsOptions, UploadToContainerOptions,
};
use bollard::Docker;
use futures_util::{StreamExt, TryStreamExt};
use sandpit_engine::split_reference;
use sandpit_engine::{
    Attached, Body, BuildRequest, ByteStream, Connection, ContainerEngine, ContainerSpec,
    ContainerState, ContainerStats, ContainerStatus, ContainerSummary, Endpoint, Engine,
    EngineError, EngineErrorKind, EngineInfo, EngineKind, EngineResult, ExecChunk, ExecRequest,
    ExecStatus, ExecStream, ImageSummary, ImportRequest, Progress, StreamKind, VolumeSpec,
    VolumeSummary,
};
use tokio::sync::OnceCell;

pub use bollard;

/// An engine that speaks the Docker API: Docker Engine, or Podman's compatible service.
pub struct DockerEngine {
    docker: Docker,
    connection: Connection,
    info: OnceCell<EngineInfo>,
}

impl std::fmt::Debug for DockerEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerEngine")
            .field("endpoint", &self.connection.endpoint().to_string())
            .field("api_version", &self.docker.client_version().to_string())
            .finish()
    }
}

impl DockerEngine {
    /// Connects and negotiates the API version, failing within the connection's timeout.
    pub async fn connect(connection: &Connection) -> EngineResult<DockerEngine> {
        let docker = connect::connect(connection).await?;
        Ok(DockerEngine {
            docker,
            connection: connection.clone(),
            info: OnceCell::new(),
        })
    }

    /// Connects and wraps the result as an [`Engine`].
    pub async fn connect_engine(connection: &Connection) -> EngineResult<Engine> {
        Ok(Engine::new(Self::connect(connection).await?))
    }

    /// The bollard client, for operations Sandpit does not wrap.
    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The Docker engine behind `engine`, when it is one.
    pub fn of(engine: &Engine) -> Option<&DockerEngine> {
        engine.downcast_ref::<DockerEngine>()
    }

    /// How the engine was reached.
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    fn err(&self, e: bollard::errors::Error) -> EngineError {
        errors::classify(self.connection.endpoint(), e)
    }

    /// An attached stream's frames as output chunks.
    fn chunks(
        &self,
        output: impl futures_util::Stream<Item = Result<LogOutput, bollard::errors::Error>>
            + Send
            + 'static,
    ) -> impl futures_util::Stream<Item = EngineResult<ExecChunk>> + Send + 'static {
        let endpoint = self.connection.endpoint().clone();
        output.filter_map(move |item| {
            let mapped = match item {
                Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                    Some(Ok(ExecChunk {
                        stream: StreamKind::Stdout,
                        data: message,
                    }))
                }
                Ok(LogOutput::StdErr { message }) => Some(Ok(ExecChunk {
                    stream: StreamKind::Stderr,
                    data: message,
                })),
                Ok(LogOutput::StdIn { .. }) => None,
                Err(e) => Some(Err(errors::classify(&endpoint, e))),
            };
            std::future::ready(mapped)
        })
    }

    fn label_filter(label: &str) -> HashMap<String, Vec<String>> {
        HashMap::from([("label".to_string(), vec![label.to_string()])])
    }
}

/// The engine's word for a container's status; one Sandpit does not know is taken as ended.
fn status_of(word: Option<&str>) -> ContainerStatus {
    let word = word.unwrap_or_default();
    ContainerStatus::parse(word).unwrap_or_else(|| {
        tracing::debug!("the engine reported a container status Sandpit does not know: {word:?}");
        ContainerStatus::Exited
    })
}

#[async_trait]
impl ContainerEngine for DockerEngine {
    fn endpoint(&self) -> &Endpoint {
        self.connection.endpoint()
    }

    async fn info(&self) -> EngineResult<EngineInfo> {
        self.info
            .get_or_try_init(|| async {
                let (version, info) = tokio::join!(self.docker.version(), self.docker.info());
                let (version, info) = (
                    version.map_err(|e| self.err(e))?,
                    info.map_err(|e| self.err(e))?,
                );
                Ok(info::engine_info(
                    self.connection.endpoint(),
                    self.docker.client_version().to_string(),
                    version,
                    info,
                ))
            })
            .await
            .cloned()
    }

    async fn ping(&self) -> EngineResult<()> {
        let timeout = self.connection.connect_timeout_value();
        match tokio::time::timeout(timeout, self.docker.ping()).await {
            Ok(r) => r.map(|_| ()).map_err(|e| self.err(e)),
            Err(_) => Err(EngineError::new(
                EngineErrorKind::Unreachable,
                format!("{}: no answer within {timeout:?}", self.endpoint()),
            )),
        }
    }

    async fn image_exists(&self, image: &str) -> EngineResult<bool> {
        match self.docker.inspect_image(image).await {
            Ok(_) => Ok(true),
            Err(e) => match self.err(e) {
                e if e.is_not_found() => Ok(false),
                e => Err(e),
            },
        }
    }

    async fn pull_image(&self, image: &str, progress: &Progress) -> EngineResult<()> {
        let (name, tag) = split_reference(image);
        let options = CreateImageOptions {
            from_image: Some(name.to_string()),
            tag: Some(tag.to_string()),
            ..Default::default()
        };
        let mut stream = self.docker.create_image(Some(options), None, None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.err(e))?;
            if let Some(status) = info.status {
                progress(&status);
            }
        }
        Ok(())
    }

    async fn build_image(&self, request: BuildRequest, progress: &Progress) -> EngineResult<()> {
        let options = BuildImageOptions {
            dockerfile: request.dockerfile,
            t: Some(request.tag),
            rm: true,
            forcerm: true,
            buildargs: Some(request.build_args),
            ..Default::default()
        };
        let mut stream =
            self.docker
                .build_image(options, None, Some(bollard::body_full(request.context)));
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.err(e))?;
            if let Some(text) = info.stream.as_deref() {
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    progress(line);
                }
            }
            if let Some(status) = info.status.as_deref() {
                progress(status);
            }
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::new(EngineErrorKind::Server, message));
            }
        }
        Ok(())
    }

    async fn import_image(&self, request: ImportRequest) -> EngineResult<()> {
        // The whole reference in `repo` works on Docker and Podman alike; Podman reads bollard's
        // newline-joined `changes` as one broken instruction, so it gets none (they only set the
        // defaults a base image for builds does not need).
        let changes = match self.info().await?.kind {
            EngineKind::Podman => Vec::new(),
            EngineKind::Docker => request.changes,
        };
        let options = CreateImageOptions {
            from_src: Some("-".into()),
            repo: Some(request.reference.clone()),
            changes,
            ..Default::default()
        };
        let body = request.rootfs.map_err(|e| std::io::Error::other(e.message));
        let mut stream =
            self.docker
                .create_image(Some(options), Some(bollard::body_try_stream(body)), None);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| self.err(e))?;
            if let Some(message) = info.error_detail.and_then(|d| d.message) {
                return Err(EngineError::new(EngineErrorKind::Server, message));
            }
        }
        Ok(())
    }

    async fn remove_image(&self, image: &str) -> EngineResult<()> {
        let options = RemoveImageOptions {
            force: false,
            noprune: false,
            ..Default::default()
        };
        self.docker
            .remove_image(image, Some(options), None)
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>> {
        let images = self
            .docker
            .list_images(Some(ListImagesOptions::default()))
            .await
            .map_err(|e| self.err(e))?;
        Ok(images
            .into_iter()
            .map(|i| ImageSummary {
                id: i.id,
                tags: i.repo_tags,
                size: i.size,
            })
            .collect())
    }

    async fn create_container(&self, spec: &ContainerSpec) -> EngineResult<()> {
        let kind = self.info().await?.kind;
        self.docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(spec.name.clone()),
                    ..Default::default()
                }),
                spec::create_body(spec, &kind),
            )
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn start_container(&self, name: &str) -> EngineResult<()> {
        self.docker
            .start_container(name, None)
            .await
            .map_err(|e| self.err(e))
    }

    async fn inspect_container(&self, name: &str) -> EngineResult<ContainerState> {
        let info = self
            .docker
            .inspect_container(name, None)
            .await
            .map_err(|e| self.err(e))?;
        let state = info.state.unwrap_or_default();
        Ok(ContainerState {
            running: state.running.unwrap_or(false),
            paused: state.paused.unwrap_or(false),
            status: status_of(state.status.map(|s| s.to_string()).as_deref()),
            exit_code: state.exit_code,
            oom_killed: state.oom_killed.unwrap_or(false),
            labels: info.config.and_then(|c| c.labels).unwrap_or_default(),
            runtime: info.host_config.and_then(|h| h.runtime),
        })
    }

    async fn remove_container(&self, name: &str) -> EngineResult<()> {
        let options = RemoveContainerOptions {
            force: true,
            v: true,
            ..Default::default()
        };
        self.docker
            .remove_container(name, Some(options))
            .await
            .map_err(|e| self.err(e))
    }

    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        let containers = self
            .docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(Self::label_filter(label)),
                ..Default::default()
            }))
            .await
            .map_err(|e| self.err(e))?;
        Ok(containers
            .into_iter()
            .map(|c| ContainerSummary {
                name: c
                    .names
                    .as_ref()
                    .and_then(|n| n.first())
                    .map(|n| n.trim_start_matches('/').to_string())
                    .or(c.id.clone())
                    .unwrap_or_default(),
                id: c.id.unwrap_or_default(),
                image: c.image.unwrap_or_default(),
                labels: c.labels.unwrap_or_default(),
                status: status_of(c.state.map(|s| s.to_string()).as_deref()),
                created: c.created.unwrap_or(0),
            })
            .collect())
    }

    async fn signal_container(&self, name: &str, signal: &str) -> EngineResult<()> {
        self.docker
            .kill_container(
                name,
                Some(KillContainerOptions {
                    signal: signal.to_string(),
                }),
            )
            .await
            .map_err(|e| self.err(e))
    }

    async fn pause_container(&self, name: &str) -> EngineResult<()> {
        self.docker
            .pause_container(name)
            .await
            .map_err(|e| self.err(e))
    }

    async fn unpause_container(&self, name: &str) -> EngineResult<()> {
        self.docker
            .unpause_container(name)
            .await
            .map_err(|e| self.err(e))
    }

    async fn commit_container(&self, name: &str, reference: &str) -> EngineResult<()> {
        let (repo, tag) = split_reference(reference);
        let options = CommitContainerOptions {
            container: Some(name.to_string()),
            repo: Some(repo.to_string()),
            tag: Some(tag.to_string()),
            pause: true,
            comment: Some("sandpit".into()),
            ..Default::default()
        };
        self.docker
            .commit_container(options, bollard::models::ContainerConfig::default())
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn container_stats(&self, name: &str) -> EngineResult<ContainerStats> {
        let mut stream = self.docker.stats(
            name,
            Some(StatsOptions {
                stream: false,
                one_shot: true,
            }),
        );
        match stream.next().await {
            Some(Ok(s)) => Ok(stats::container_stats(s)),
            Some(Err(e)) => Err(self.err(e)),
            None => Err(EngineError::new(
                EngineErrorKind::Server,
                format!("the engine sent no stats for {name}"),
            )),
        }
    }

    async fn attach_container(&self, name: &str) -> EngineResult<Attached> {
        let options = AttachContainerOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            stream: true,
            logs: false,
            detach_keys: None,
        };
        let attached = self
            .docker
            .attach_container(name, Some(options))
            .await
            .map_err(|e| self.err(e))?;
        Ok(Attached {
            output: Box::pin(self.chunks(attached.output)),
            input: attached.input,
        })
    }

    async fn start_exec(&self, container: &str, request: &ExecRequest) -> EngineResult<ExecStream> {
        let created = self
            .docker
            .create_exec(
                container,
                CreateExecOptions {
                    attach_stdout: Some(true),
                    attach_stderr: Some(true),
                    attach_stdin: Some(request.stdin),
                    tty: Some(false),
                    env: Some(request.env.clone()),
                    cmd: Some(request.cmd.clone()),
                    user: Some(request.user.clone()),
                    working_dir: request.working_dir.clone(),
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| self.err(e))?;
        match self
            .docker
            .start_exec(&created.id, None)
            .await
            .map_err(|e| self.err(e))?
        {
            StartExecResults::Attached { output, input } => Ok(ExecStream {
                id: created.id,
                output: Box::pin(self.chunks(output)),
                input: request.stdin.then_some(input),
            }),
            StartExecResults::Detached => Err(EngineError::new(
                EngineErrorKind::Server,
                "the engine started the command detached",
            )),
        }
    }

    async fn inspect_exec(&self, id: &str) -> EngineResult<ExecStatus> {
        let info = self
            .docker
            .inspect_exec(id)
            .await
            .map_err(|e| self.err(e))?;
        Ok(ExecStatus {
            running: info.running.unwrap_or(false),
            exit_code: info.exit_code,
            pid: info.pid,
        })
    }

    async fn upload_archive(&self, container: &str, dir: &str, archive: Body) -> EngineResult<()> {
        let body = match archive {
            Body::Full(bytes) => bollard::body_full(bytes),
            Body::Stream(stream) => {
                bollard::body_try_stream(stream.map_err(|e| std::io::Error::other(e.message)))
            }
        };
        self.docker
            .upload_to_container(
                container,
                Some(UploadToContainerOptions {
                    path: dir.to_string(),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(|e| self.err(e))
    }

    fn download_archive(&self, container: &str, path: &str) -> ByteStream {
        let endpoint = self.connection.endpoint().clone();
        Box::pin(
            self.docker
                .download_from_container(
                    container,
                    Some(DownloadFromContainerOptions {
                        path: path.to_string(),
                    }),
                )
                .map_err(move |e| errors::classify(&endpoint, e)),
        )
    }

    async fn connect_network(&self, container: &str, network: &str) -> EngineResult<()> {
        self.docker
            .connect_network(
                network,
                NetworkConnectRequest {
                    container: container.to_string(),
                    endpoint_config: None,
                },
            )
            .await
            .map_err(|e| self.err(e))
    }

    async fn disconnect_network(&self, container: &str, network: &str) -> EngineResult<()> {
        self.docker
            .disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| self.err(e))
    }

    async fn create_volume(&self, spec: &VolumeSpec) -> EngineResult<()> {
        self.docker
            .create_volume(VolumeCreateRequest {
                name: Some(spec.name.clone()),
                driver: Some("local".into()),
                driver_opts: Some(spec.driver_opts.clone()),
                labels: Some(spec.labels.clone()),
                ..Default::default()
            })
            .await
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    async fn remove_volume(&self, name: &str) -> EngineResult<()> {
        self.docker
            .remove_volume(name, Some(RemoveVolumeOptions { force: true }))
            .await
            .map_err(|e| self.err(e))
    }

    async fn list_volumes(&self, label: &str) -> EngineResult<Vec<VolumeSummary>> {
        let volumes = self
            .docker
            .list_volumes(Some(ListVolumesOptions {
                filters: Some(Self::label_filter(label)),
            }))
            .await
            .map_err(|e| self.err(e))?
            .volumes
            .unwrap_or_default();
        Ok(volumes
            .into_iter()
            .map(|v| VolumeSummary {
                name: v.name,
                labels: v.labels,
                created_at: v.created_at.map(|d| d.to_string()),
            })
            .collect())
    }

    async fn reconnect(&self) -> EngineResult<Engine> {
        Self::connect_engine(&self.connection).await
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
