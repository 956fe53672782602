//! The trait every engine implements, and the cheap handle sessions hold.

use std::any::Any;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::Stream;
use serde::Serialize;
use tokio::io::AsyncWrite;

use crate::connection::Endpoint;
use crate::error::EngineError;
use crate::info::{
    ContainerState, ContainerStats, ContainerSummary, EngineInfo, ExecStatus, ImageSummary,
    VolumeSummary,
};
use crate::spec::{
    Body, BuildRequest, ByteStream, ContainerSpec, ExecRequest, ImportRequest, VolumeSpec,
};

/// Result of an engine call.
pub type EngineResult<T> = Result<T, EngineError>;

/// Receives one line of progress (pulls, builds) at a time.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// Which output stream bytes came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamKind {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// Bytes an exec wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecChunk {
    /// Where they came from.
    pub stream: StreamKind,
    /// The bytes.
    pub data: Bytes,
}

/// A started exec: its output as it comes, and its standard input when asked for.
pub struct ExecStream {
    /// The exec's id, for [`ContainerEngine::inspect_exec`].
    pub id: String,
    /// Output chunks; ends when the exec closes its output.
    pub output: Pin<Box<dyn Stream<Item = EngineResult<ExecChunk>> + Send>>,
    /// Standard input, when [`ExecRequest::stdin`] was set.
    pub input: Option<Pin<Box<dyn AsyncWrite + Send>>>,
}

impl std::fmt::Debug for ExecStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExecStream")
            .field("id", &self.id)
            .field("input", &self.input.is_some())
            .finish_non_exhaustive()
    }
}

/// A container's main process, attached: its output as it comes, and its standard input.
pub struct Attached {
    /// Output chunks; ends when the main process closes its output or the engine drops the
    /// connection.
    pub output: Pin<Box<dyn Stream<Item = EngineResult<ExecChunk>> + Send>>,
    /// Standard input (the container must have been created with
    /// [`crate::ContainerSpec::stdin_open`]).
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl std::fmt::Debug for Attached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attached").finish_non_exhaustive()
    }
}

/// One container engine: every call Sandpit makes goes through this trait, so an engine is
/// one implementation (the Docker API for Docker and Podman in `sandpit-docker`) and tests
/// can plug in their own.
///
/// Calls return [`EngineError`]s whose kind tells "not found" and "conflict" from an engine
/// out of reach; callers decide what each means for them.
#[async_trait]
pub trait ContainerEngine: Send + Sync + 'static {
    /// Where the engine is.
    fn endpoint(&self) -> &Endpoint;

    /// The engine's identity and capabilities (asked once, then remembered).
    async fn info(&self) -> EngineResult<EngineInfo>;

    /// Asks the engine whether it answers, bypassing anything remembered.
    async fn ping(&self) -> EngineResult<()>;

    /// True when the engine has `image` locally.
    async fn image_exists(&self, image: &str) -> EngineResult<bool>;

    /// Pulls `image` from its registry.
    async fn pull_image(&self, image: &str, progress: &Progress) -> EngineResult<()>;

    /// Builds an image from a tar context.
    async fn build_image(&self, request: BuildRequest, progress: &Progress) -> EngineResult<()>;

    /// Imports a root filesystem tar as an image.
    async fn import_image(&self, request: ImportRequest) -> EngineResult<()>;

    /// Removes an image (not forced: an image in use is a conflict).
    async fn remove_image(&self, image: &str) -> EngineResult<()>;

    /// Every image.
    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>>;

    /// Creates a container (not started).
    async fn create_container(&self, spec: &ContainerSpec) -> EngineResult<()>;

    /// Starts a created container.
    async fn start_container(&self, name: &str) -> EngineResult<()>;

    /// A container's state.
    async fn inspect_container(&self, name: &str) -> EngineResult<ContainerState>;

    /// Removes a container at once (forced, no stop wait), with its anonymous volumes.
    async fn remove_container(&self, name: &str) -> EngineResult<()>;

    /// Containers (running or not) carrying `label` (`key` or `key=value`).
    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>>;

    /// Sends a signal (`USR1`, `KILL`, ...) to a container's main process.
    async fn signal_container(&self, name: &str, signal: &str) -> EngineResult<()>;

    /// Freezes every process of a container.
    async fn pause_container(&self, name: &str) -> EngineResult<()>;

    /// Thaws a frozen container.
    async fn unpause_container(&self, name: &str) -> EngineResult<()>;

    /// Commits a container's filesystem (volumes excluded) to image `reference`.
    async fn commit_container(&self, name: &str, reference: &str) -> EngineResult<()>;

    /// One reading of a container's resource usage.
    async fn container_stats(&self, name: &str) -> EngineResult<ContainerStats>;

    /// Attaches to a container's main process (created or running): output from now on, and
    /// its standard input. Attach before start to miss nothing.
    async fn attach_container(&self, name: &str) -> EngineResult<Attached>;

    /// Starts a command in a running container and attaches to its output.
    async fn start_exec(&self, container: &str, request: &ExecRequest) -> EngineResult<ExecStream>;

    /// An exec's state and exit code.
    async fn inspect_exec(&self, id: &str) -> EngineResult<ExecStatus>;

    /// Unpacks a tar archive into folder `dir` of a container.
    async fn upload_archive(&self, container: &str, dir: &str, archive: Body) -> EngineResult<()>;

    /// A tar archive of `path` in a container, streamed.
    fn download_archive(&self, container: &str, path: &str) -> ByteStream;

    /// Connects a container to a network.
    async fn connect_network(&self, container: &str, network: &str) -> EngineResult<()>;

    /// Disconnects a container from a network.
    async fn disconnect_network(&self, container: &str, network: &str) -> EngineResult<()>;

    /// Creates a volume with the `local` driver.
    async fn create_volume(&self, spec: &VolumeSpec) -> EngineResult<()>;

    /// Removes a volume (forced).
    async fn remove_volume(&self, name: &str) -> EngineResult<()>;

    /// Volumes carrying `label`.
    async fn list_volumes(&self, label: &str) -> EngineResult<Vec<VolumeSummary>>;

    /// A new handle to the same engine with connections of its own, for use on another
    /// runtime (connections belong to the runtime that made them).
    async fn reconnect(&self) -> EngineResult<Engine>;

    /// The implementation itself, for callers that need what only it offers.
    fn as_any(&self) -> &dyn Any;
}

/// A connected engine. Cheap to clone; share one between sessions.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<dyn ContainerEngine>,
}

impl Engine {
    /// Wraps an implementation.
    pub fn new(engine: impl ContainerEngine) -> Self {
        Engine {
            inner: Arc::new(engine),
        }
    }

    /// The implementation as `T`, when it is one (e.g. `sandpit_docker::DockerEngine`).
    pub fn downcast_ref<T: 'static>(&self) -> Option<&T> {
        self.inner.as_any().downcast_ref::<T>()
    }

    /// Uploads bytes held in memory.
    pub async fn upload_bytes(
        &self,
        container: &str,
        dir: &str,
        archive: Vec<u8>,
    ) -> EngineResult<()> {
        self.inner
            .upload_archive(container, dir, Body::Full(Bytes::from(archive)))
            .await
    }
}

impl std::ops::Deref for Engine {
    type Target = dyn ContainerEngine;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("endpoint", &self.inner.endpoint().to_string())
            .finish()
    }
}
