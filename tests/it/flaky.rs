//! An engine that fails chosen calls on purpose and passes every other call to the real
//! engine: the engine trait is the seam where tests plug in.

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use sandpit::engine::{
    Attached, Body, BuildRequest, ByteStream, ContainerEngine, ContainerSpec, ContainerState,
    ContainerStats, ContainerSummary, Endpoint, Engine, EngineError, EngineInfo, EngineResult,
    ExecRequest, ExecStatus, ExecStream, ImageSummary, ImportRequest, Progress, VolumeSpec,
    VolumeSummary,
};

/// Fails the next `n` calls of the operations it was told to; the rest reach the real engine.
#[derive(Clone)]
pub struct FlakyEngine {
    real: Engine,
    failures: Arc<Mutex<HashMap<&'static str, usize>>>,
}

impl FlakyEngine {
    pub fn new(real: Engine) -> Self {
        FlakyEngine {
            real,
            failures: Arc::default(),
        }
    }

    /// The next `times` calls of `operation` (a trait method's name) fail with a 500.
    pub fn fail(&self, operation: &'static str, times: usize) {
        self.failures.lock().unwrap().insert(operation, times);
    }

    fn check(&self, operation: &'static str) -> EngineResult<()> {
        let mut failures = self.failures.lock().unwrap();
        match failures.get_mut(operation) {
            Some(n) if *n > 0 => {
                *n -= 1;
                Err(EngineError::from_status(
                    500,
                    format!("{operation} failed on purpose"),
                ))
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl ContainerEngine for FlakyEngine {
    fn endpoint(&self) -> &Endpoint {
        self.real.endpoint()
    }
    async fn info(&self) -> EngineResult<EngineInfo> {
        self.real.info().await
    }
    async fn ping(&self) -> EngineResult<()> {
        self.real.ping().await
    }
    async fn image_exists(&self, image: &str) -> EngineResult<bool> {
        self.real.image_exists(image).await
    }
    async fn pull_image(&self, image: &str, progress: &Progress) -> EngineResult<()> {
        self.real.pull_image(image, progress).await
    }
    async fn build_image(&self, request: BuildRequest, progress: &Progress) -> EngineResult<()> {
        self.real.build_image(request, progress).await
    }
    async fn import_image(&self, request: ImportRequest) -> EngineResult<()> {
        self.real.import_image(request).await
    }
    async fn remove_image(&self, image: &str) -> EngineResult<()> {
        self.real.remove_image(image).await
    }
    async fn list_images(&self) -> EngineResult<Vec<ImageSummary>> {
        self.real.list_images().await
    }
    async fn create_container(&self, spec: &ContainerSpec) -> EngineResult<()> {
        self.check("create_container")?;
        self.real.create_container(spec).await
    }
    async fn start_container(&self, name: &str) -> EngineResult<()> {
        self.real.start_container(name).await
    }
    async fn inspect_container(&self, name: &str) -> EngineResult<ContainerState> {
        self.real.inspect_container(name).await
    }
    async fn remove_container(&self, name: &str) -> EngineResult<()> {
        self.check("remove_container")?;
        self.real.remove_container(name).await
    }
    async fn list_containers(&self, label: &str) -> EngineResult<Vec<ContainerSummary>> {
        self.real.list_containers(label).await
    }
    async fn signal_container(&self, name: &str, signal: &str) -> EngineResult<()> {
        self.real.signal_container(name, signal).await
    }
    async fn pause_container(&self, name: &str) -> EngineResult<()> {
        self.real.pause_container(name).await
    }
    async fn unpause_container(&self, name: &str) -> EngineResult<()> {
        self.real.unpause_container(name).await
    }
    async fn commit_container(&self, name: &str, reference: &str) -> EngineResult<()> {
        self.real.commit_container(name, reference).await
    }
    async fn container_stats(&self, name: &str) -> EngineResult<ContainerStats> {
        self.real.container_stats(name).await
    }
    async fn attach_container(&self, name: &str) -> EngineResult<Attached> {
        self.check("attach_container")?;
        self.real.attach_container(name).await
    }
    async fn start_exec(&self, container: &str, request: &ExecRequest) -> EngineResult<ExecStream> {
        self.check("start_exec")?;
        self.real.start_exec(container, request).await
    }
    async fn inspect_exec(&self, id: &str) -> EngineResult<ExecStatus> {
        self.real.inspect_exec(id).await
    }
    async fn upload_archive(&self, container: &str, dir: &str, archive: Body) -> EngineResult<()> {
        self.real.upload_archive(container, dir, archive).await
    }
    fn download_archive(&self, container: &str, path: &str) -> ByteStream {
        self.real.download_archive(container, path)
    }
    async fn connect_network(&self, container: &str, network: &str) -> EngineResult<()> {
        self.real.connect_network(container, network).await
    }
    async fn disconnect_network(&self, container: &str, network: &str) -> EngineResult<()> {
        self.real.disconnect_network(container, network).await
    }
    async fn create_volume(&self, spec: &VolumeSpec) -> EngineResult<()> {
        self.real.create_volume(spec).await
    }
    async fn remove_volume(&self, name: &str) -> EngineResult<()> {
        self.check("remove_volume")?;
        self.real.remove_volume(name).await
    }
    async fn list_volumes(&self, label: &str) -> EngineResult<Vec<VolumeSummary>> {
        self.real.list_volumes(label).await
    }
    async fn reconnect(&self) -> EngineResult<Engine> {
        Ok(Engine::new(FlakyEngine {
            real: self.real.reconnect().await?,
            failures: self.failures.clone(),
        }))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}
