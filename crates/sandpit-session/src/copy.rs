//! Files and folders in and out of the sandbox as tar streams through the engine's copy API.
//! Every path is checked.

use std::path::Path;
use std::time::Duration;

use futures_util::TryStreamExt;

use crate::archive;
use crate::error::{Error, Result};
use crate::paths::{container_path, parent_and_name, refuse_memory_folders};
use crate::runner::Command;
use crate::session::SandboxSession;
use crate::state::engine_error;
use crate::step::Step;

impl SandboxSession {
    pub(crate) async fn upload_archive(&self, parent: &str, archive: Vec<u8>) -> Result<()> {
        let inner = &self.inner;
        let upload_error = |e| match engine_error(&inner.container, e) {
            Error::Exec { container, cause } => Error::Upload {
                container,
                path: parent.to_string(),
                cause,
            },
            other => other,
        };
        match inner
            .engine
            .upload_bytes(&inner.container, parent, archive.clone())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if e.is_not_found() && self.container_running().await? => {
                // The destination folder is missing: create it as the sandbox user, then retry.
                let mkdir = Command::new(["mkdir", "-p", parent]);
                let out = self
                    .exec_step(Step::new(&mkdir, Duration::from_secs(30)))
                    .await?;
                if !out.success() {
                    return Err(Error::InvalidPath {
                        path: parent.to_string(),
                        reason: format!(
                            "the folder is missing and cannot be created: {}",
                            out.stderr.trim()
                        ),
                    });
                }
                inner
                    .engine
                    .upload_bytes(&inner.container, parent, archive)
                    .await
                    .map_err(upload_error)
            }
            Err(e) => Err(upload_error(e)),
        }
    }

    /// True while the container runs; [`Error::SessionGone`] when it no longer exists.
    pub(crate) async fn container_running(&self) -> Result<bool> {
        let inner = &self.inner;
        match inner.engine.inspect_container(&inner.container).await {
            Ok(state) => Ok(state.running),
            Err(e) => Err(engine_error(&inner.container, e)),
        }
    }

    /// Copies a host file or folder into the container at `container` (a full destination path,
    /// relative ones are under the workdir). Bytes and modes are kept; files belong to the sandbox
    /// user; symlinks are copied as symlinks, never followed.
    pub async fn copy_to_runtime(&self, host: impl AsRef<Path>, container: &str) -> Result<()> {
        self.check_open()?;
        let dest = container_path(&self.inner.workdir, container)?;
        refuse_memory_folders(&dest)?;
        let (parent, name) = parent_and_name(&dest);
        let host = host.as_ref().to_path_buf();
        if std::fs::symlink_metadata(&host).is_err() {
            return Err(Error::PathNotFound {
                path: host.display().to_string(),
                in_sandbox: false,
            });
        }
        let archive = tokio::task::spawn_blocking(move || archive::host_path(&host, &name))
            .await
            .map_err(|e| Error::join("packing the files", e))??;
        self.upload_archive(&parent, archive).await
    }

    /// Copies a file or folder from the container to `host` (which becomes that file or folder).
    /// Entries that would land outside `host` (absolute paths, `..`, escaping symlinks) are refused.
    pub async fn copy_from_runtime(&self, container: &str, host: impl AsRef<Path>) -> Result<()> {
        self.check_open()?;
        let src = container_path(&self.inner.workdir, container)?;
        let archive = self.download(&src).await?;
        let host = host.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || archive::unpack_to_host(&archive, &host, &src))
            .await
            .map_err(|e| Error::join("unpacking the files", e))?
    }

    /// A tar archive of `path` in the sandbox, in memory; a path that does not exist is
    /// [`Error::PathNotFound`].
    pub(crate) async fn download(&self, path: &str) -> Result<Vec<u8>> {
        let inner = &self.inner;
        let chunks: std::result::Result<Vec<bytes::Bytes>, _> = inner
            .engine
            .download_archive(&inner.container, path)
            .try_collect()
            .await;
        match chunks {
            Ok(chunks) => Ok(chunks.concat()),
            Err(e) if e.is_not_found() && self.container_running().await? => {
                Err(Error::PathNotFound {
                    path: path.to_string(),
                    in_sandbox: true,
                })
            }
            Err(e) => Err(match engine_error(&inner.container, e) {
                Error::Exec { container, cause } => Error::Download {
                    container,
                    path: path.to_string(),
                    cause,
                },
                other => other,
            }),
        }
    }
}
