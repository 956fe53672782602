//! Closing: commit to the template when asked, remove the container, its workdir volume and
//! disk, and an image the session built itself.

use std::sync::atomic::Ordering;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{
    CommitContainerOptions, CreateContainerOptions, DownloadFromContainerOptions,
    RemoveContainerOptions, RemoveVolumeOptions, UploadToContainerOptions,
};
use futures_util::StreamExt;

use crate::connection::Engine;
use crate::disk::LoopDisk;
use crate::error::{status_code, Error, Result};
use crate::image::{remove_image_if_unused, split_reference};
use crate::session::{Inner, SandboxSession};

/// What closing a session does; shared by `close()`, the drop fallback and `gc`.
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

    pub(crate) async fn execute(&self, engine: &Engine) -> Result<()> {
        let committed = match &self.commit_to {
            Some(tag) => self.commit(engine, tag).await,
            None => Ok(()),
        };
        let removed = remove_container(engine, &self.container).await;
        if removed.is_ok() {
            if let Some(volume) = &self.volume {
                remove_volume(engine, volume).await?;
            }
        }
        if let Some(disk) = self.disk.clone() {
            let _ = tokio::task::spawn_blocking(move || disk.destroy()).await;
        }
        removed?;
        committed?;
        if let Some(image) = &self.remove_image {
            remove_image_if_unused(engine, image, true).await?;
        }
        Ok(())
    }

    /// Commits the container; a workdir on its own volume is not part of the container's layer,
    /// so its content is copied into the committed image in a second, throwaway container.
    async fn commit(&self, engine: &Engine, reference: &str) -> Result<()> {
        let workdir_archive = match &self.volume {
            Some(_) => Some(download(engine, &self.container, &self.workdir).await?),
            None => None,
        };
        commit(engine, &self.container, reference).await?;
        let Some(archive) = workdir_archive else {
            return Ok(());
        };
        let helper = format!("{}-template", self.container);
        let fail = |source| Error::Commit {
            container: helper.clone(),
            image: reference.to_string(),
            source,
        };
        engine
            .docker()
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(helper.clone()),
                    ..Default::default()
                }),
                ContainerCreateBody {
                    image: Some(reference.to_string()),
                    labels: Some(std::collections::HashMap::from([(
                        crate::labels::MANAGED.to_string(),
                        "true".to_string(),
                    )])),
                    ..Default::default()
                },
            )
            .await
            .map_err(fail)?;
        let (parent, _) = crate::copy::parent_and_name(&self.workdir);
        let result = async {
            engine
                .docker()
                .upload_to_container(
                    &helper,
                    Some(UploadToContainerOptions {
                        path: parent,
                        ..Default::default()
                    }),
                    bollard::body_full(archive.into()),
                )
                .await
                .map_err(fail)?;
            commit(engine, &helper, reference).await
        }
        .await;
        remove_container(engine, &helper).await?;
        result
    }
}

async fn download(engine: &Engine, container: &str, path: &str) -> Result<Vec<u8>> {
    let mut stream = engine.docker().download_from_container(
        container,
        Some(DownloadFromContainerOptions {
            path: path.to_string(),
        }),
    );
    let mut out = Vec::new();
    while let Some(chunk) = stream.next().await {
        out.extend_from_slice(&chunk.map_err(|e| Error::Download {
            container: container.to_string(),
            path: path.to_string(),
            source: e,
        })?);
    }
    Ok(out)
}

async fn commit(engine: &Engine, container: &str, reference: &str) -> Result<()> {
    let (repo, tag) = split_reference(reference);
    let options = CommitContainerOptions {
        container: Some(container.to_string()),
        repo: Some(repo.to_string()),
        tag: Some(tag.to_string()),
        pause: true,
        comment: Some("sandpit keep_template".into()),
        ..Default::default()
    };
    engine
        .docker()
        .commit_container(options, bollard::models::ContainerConfig::default())
        .await
        .map_err(|e| Error::Commit {
            container: container.to_string(),
            image: reference.to_string(),
            source: e,
        })?;
    Ok(())
}

/// Force-removes a container (no stop wait); one that is already gone is fine.
pub(crate) async fn remove_container(engine: &Engine, container: &str) -> Result<()> {
    let options = RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    };
    match engine
        .docker()
        .remove_container(container, Some(options))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        // 409: removal already in progress by someone else.
        Err(e) if status_code(&e) == Some(409) => Ok(()),
        Err(e) if crate::error::is_transport(&e) => Err(engine.connection().classify(e)),
        Err(e) => Err(Error::RemoveContainer {
            container: container.to_string(),
            source: e,
        }),
    }
}

/// Removes a volume; one that is already gone is fine.
pub(crate) async fn remove_volume(engine: &Engine, volume: &str) -> Result<()> {
    match engine
        .docker()
        .remove_volume(volume, Some(RemoveVolumeOptions { force: true }))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        Err(e) => Err(Error::Volume {
            volume: volume.to_string(),
            source: e,
        }),
    }
}

impl SandboxSession {
    /// Closes the session: with `keep_template`, commits the container (workdir included) to the
    /// template image; then removes the container, its workdir disk, and an image this session
    /// built itself (unless kept). Closing twice is a no-op; other handles see it closed.
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        ClosePlan::of(&self.inner).execute(&self.inner.engine).await
    }
}
