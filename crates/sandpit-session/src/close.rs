//! Closing: commit to the template when asked, remove the container, remove a built image.

use std::sync::atomic::Ordering;

use bollard::query_parameters::{CommitContainerOptions, RemoveContainerOptions};

use crate::connection::Engine;
use crate::error::{status_code, Error, Result};
use crate::image::{remove_image, split_reference};
use crate::session::{Inner, SandboxSession};

/// What closing a session does; shared by `close()` and the drop fallback.
pub(crate) struct ClosePlan {
    pub container: String,
    pub commit_to: Option<String>,
    pub remove_image: Option<String>,
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
        }
    }

    pub(crate) async fn execute(&self, engine: &Engine) -> Result<()> {
        let committed = match &self.commit_to {
            Some(tag) => commit(engine, &self.container, tag).await,
            None => Ok(()),
        };
        remove_container(engine, &self.container).await?;
        committed?;
        if let Some(image) = &self.remove_image {
            remove_image(engine, image).await?;
        }
        Ok(())
    }
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

impl SandboxSession {
    /// Closes the session: with `keep_template`, commits the container to the template image;
    /// then removes the container, and an image this session built itself (unless kept).
    /// Closing twice is a no-op; other handles to the session see it closed.
    pub async fn close(&self) -> Result<()> {
        if self.inner.closed.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        ClosePlan::of(&self.inner).execute(&self.inner.engine).await
    }
}
