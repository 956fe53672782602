//! Closing: commit to the template when asked, remove the container, its workdir volume and
//! disk, and an image the session built itself. A close that fails can be retried; a session
//! dropped without one goes to the drop worker.

use std::sync::atomic::Ordering;

use futures_util::TryStreamExt;
use sandpit_engine::{ContainerSpec, Engine};

use crate::disk::LoopDisk;
use crate::error::{Error, Result};
use crate::image::remove_image_if_unused;
use crate::session::{CloseProgress, Inner, SandboxSession};

/// What closing a session does; shared by `close()`, the drop worker and `gc`. Every step is
/// idempotent, so running a plan again after a failure finishes the job.
#[derive(Debug, Clone)]
pub(crate) struct ClosePlan {
    pub container: String,
    pub commit_to: Option<String>,
    pub remove_image: Option<String>,
    pub workdir: String,
    pub volume: Option<String>,
    pub disk: Option<LoopDisk>,
}

impl ClosePlan {
    pub(crate) fn of(inner: &Inner) -> Self {
        let commit_to = inner.keep_template.then(|| {
            inner
                .template_tag
                .clone()
                .unwrap_or_else(|| inner.image.clone())
        });
        let remove_image = (inner.built_image && !inner.keep_template).then(|| inner.image.clone());
        ClosePlan {
            container: inner.container.clone(),
            commit_to,
            remove_image,
            workdir: inner.workdir.clone(),
            volume: inner.volume.clone(),
            disk: inner.disk.clone(),
        }
    }

    /// Runs every step, also after one failed, and returns the first failure.
    pub(crate) async fn execute(
        &self,
        engine: &Engine,
        progress: &mut CloseProgress,
    ) -> Result<()> {
        let mut first: Option<Error> = None;
        let mut keep = |r: Result<()>| {
            if let Err(e) = r {
                first.get_or_insert(e);
            }
        };
        if let (Some(tag), false) = (&self.commit_to, progress.committed) {
            progress.committed = true;
            keep(self.commit(engine, tag).await);
        }
        let removed = remove_container(engine, &self.container).await;
        let container_gone = removed.is_ok();
        keep(removed);
        // A volume still mounted by a container cannot go; the disk under it must stay too.
        if container_gone {
            if let Some(volume) = &self.volume {
                keep(remove_volume(engine, volume).await);
            }
            if let Some(disk) = self.disk.clone() {
                keep(
                    tokio::task::spawn_blocking(move || disk.destroy())
                        .await
                        .map_err(|e| Error::join("removing the session's disk", e)),
                );
            }
        }
        if let Some(image) = &self.remove_image {
            keep(remove_image_if_unused(engine, image, true).await);
        }
        first.map_or(Ok(()), Err)
    }

    /// Commits the container; a workdir on its own volume is not part of the container's layer,
    /// so its content is copied into the committed image in a second, throwaway container.
    async fn commit(&self, engine: &Engine, reference: &str) -> Result<()> {
        let workdir_archive = match &self.volume {
            Some(_) => Some(crate::archive::owned_by(
                &download(engine, &self.container, &self.workdir).await?,
                crate::archive::SANDBOX_OWNER,
            )?),
            None => None,
        };
        commit(engine, &self.container, reference).await?;
        let Some(archive) = workdir_archive else {
            return Ok(());
        };
        let helper = format!("{}-template", self.container);
        let fail = |cause| Error::Commit {
            container: helper.clone(),
            image: reference.to_string(),
            cause,
        };
        let spec = ContainerSpec {
            name: helper.clone(),
            image: reference.to_string(),
            cmd: vec!["true".into()],
            network: "none".into(),
            labels: std::collections::HashMap::from([(
                crate::labels::MANAGED.to_string(),
                "true".to_string(),
            )]),
            ..Default::default()
        };
        engine
            .create_container(&spec)
            .await
            .map_err(|e| Error::engine(e, fail))?;
        let (parent, _) = crate::paths::parent_and_name(&self.workdir);
        let result = async {
            engine
                .upload_bytes(&helper, &parent, archive)
                .await
                .map_err(|e| Error::engine(e, fail))?;
            commit(engine, &helper, reference).await
        }
        .await;
        remove_container(engine, &helper).await?;
        result
    }
}

async fn download(engine: &Engine, container: &str, path: &str) -> Result<Vec<u8>> {
    let chunks: Vec<bytes::Bytes> = engine
        .download_archive(container, path)
        .try_collect()
        .await
        .map_err(|e| {
            Error::engine(e, |cause| Error::Download {
                container: container.to_string(),
                path: path.to_string(),
                cause,
            })
        })?;
    Ok(chunks.concat())
}

async fn commit(engine: &Engine, container: &str, reference: &str) -> Result<()> {
    engine
        .commit_container(container, reference)
        .await
        .map_err(|e| {
            Error::engine(e, |cause| Error::Commit {
                container: container.to_string(),
                image: reference.to_string(),
                cause,
            })
        })
}

/// Force-removes a container (no stop wait); one that is already gone is fine.
pub(crate) async fn remove_container(engine: &Engine, container: &str) -> Result<()> {
    match engine.remove_container(container).await {
        Ok(()) => Ok(()),
        // 409: removal already in progress by someone else.
        Err(e) if e.is_not_found() || e.is_conflict() => Ok(()),
        Err(e) => Err(Error::engine(e, |cause| Error::RemoveContainer {
            container: container.to_string(),
            cause,
        })),
    }
}

/// Removes a volume; one that is already gone is fine.
pub(crate) async fn remove_volume(engine: &Engine, volume: &str) -> Result<()> {
    match engine.remove_volume(volume).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) => Err(Error::engine(e, |cause| Error::Volume {
            volume: volume.to_string(),
            cause,
        })),
    }
}

impl SandboxSession {
    /// Closes the session: with `keep_template`, commits the container (workdir included) to the
    /// template image; then removes the container, its workdir disk, and an image this session
    /// built itself (unless kept). Closing twice is a no-op; other handles see it closed. A
    /// close that failed (the engine was away) can be called again and finishes the job.
    pub async fn close(&self) -> Result<()> {
        let mut progress = self.inner.close_progress.lock().await;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let began = std::time::Instant::now();
        ClosePlan::of(&self.inner)
            .execute(&self.inner.engine, &mut progress)
            .await?;
        self.inner.closed.store(true, Ordering::SeqCst);
        tracing::debug!("{}: closed in {:?}", self.id(), began.elapsed());
        Ok(())
    }
}

impl SandboxSession {
    /// Closes without keeping a template, whatever the session was opened with (a helper
    /// whose work failed).
    pub(crate) async fn discard(&self) -> Result<()> {
        let mut progress = self.inner.close_progress.lock().await;
        if self.inner.closed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let plan = ClosePlan {
            commit_to: None,
            ..ClosePlan::of(&self.inner)
        };
        plan.execute(&self.inner.engine, &mut progress).await?;
        self.inner.closed.store(true, Ordering::SeqCst);
        Ok(())
    }

    /// Hands the close to the one drop worker and returns at once (the worker removes the
    /// container; before the process exits it waits for its work in hand). For callers that
    /// must not wait, such as a pool giving a session back.
    pub fn close_in_background(&self) {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let committed = self
            .inner
            .close_progress
            .try_lock()
            .map(|p| p.committed)
            .unwrap_or(false);
        crate::drop_worker::submit(
            self.inner.engine.clone(),
            ClosePlan::of(&self.inner),
            committed,
        );
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        tracing::warn!(
            session = %self.id,
            "session dropped without close(); the drop worker removes container {}",
            self.container
        );
        let committed = self.close_progress.get_mut().committed;
        crate::drop_worker::submit(self.engine.clone(), ClosePlan::of(self), committed);
    }
}
