//! Taking, reading, listing, deleting and restoring snapshots in an [`ObjectStorage`].
//!
//! A snapshot `NAME` is two objects: `NAME/workdir.tar.gz` (the workdir, re-packed and
//! compressed while it streams from the engine to the store) and `NAME/manifest.json`,
//! written last, so a snapshot without a manifest does not exist.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures_util::StreamExt;
use sandpit::engine::{Body, EngineError, EngineErrorKind};
use sandpit::{Engine, Language, LanguageExt, SandboxSession, SessionBuilder};
use tokio::sync::mpsc;

use crate::entries::{pack, unpack_checked, Counts, PackError};
use crate::error::{Error, Result};
use crate::key::{archive_key, check_key, manifest_key, ARCHIVE, MANIFEST};
use crate::manifest::{
    ArchiveInfo, Manifest, RestoreReport, SourceInfo, FORMAT, FORMAT_VERSION, KERNEL_STATE_NOTE,
};
use crate::pipe::{hex, ChannelReader, ChannelWriter, Hashing, Sink, DEPTH};
use crate::storage::ObjectStorage;

/// How to open the session a snapshot is restored into.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// An image instead of the snapshot's (a template image made with `keep_template`, say).
    pub image: Option<String>,
    /// The image above has the snapshot's libraries already: do not install them again.
    pub libraries_in_image: bool,
}

/// A session opened from a snapshot.
#[derive(Debug)]
pub struct Restored {
    /// The new session, with the snapshot's files, libraries and environment.
    pub session: SandboxSession,
    /// The snapshot's manifest.
    pub manifest: Manifest,
    /// What was restored; its `kernel_state` says memory was not.
    pub report: RestoreReport,
}

/// One snapshot found by [`SnapshotStore::list`]: its name and its manifest, or why the
/// manifest cannot be read.
#[derive(Debug)]
pub struct Listed {
    /// The snapshot's name.
    pub name: String,
    /// Its manifest.
    pub manifest: Result<Manifest>,
}

/// Snapshots in one store.
///
/// ```no_run
/// # async fn demo(session: sandpit::SandboxSession) -> sandpit_snapshot::Result<()> {
/// use sandpit::{Language, LanguageExt, SandboxSession};
/// use sandpit_snapshot::{RestoreOptions, SnapshotStore};
///
/// let store = SnapshotStore::open("s3://my-bucket/snapshots")?;
/// let manifest = store.snapshot(&session, "project/v1").await?;
/// session.close().await?;
/// let restored = store
///     .restore("project/v1", SandboxSession::builder(), &RestoreOptions::default())
///     .await?;
/// println!("{} files back; {}", restored.report.files, restored.report.kernel_state);
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct SnapshotStore {
    storage: ObjectStorage,
}

impl SnapshotStore {
    /// Snapshots in the store `url` names (see [`ObjectStorage::open`]).
    pub fn open(url: &str) -> Result<SnapshotStore> {
        Ok(SnapshotStore::new(ObjectStorage::open(url)?))
    }

    /// Snapshots in `storage`.
    pub fn new(storage: ObjectStorage) -> SnapshotStore {
        SnapshotStore { storage }
    }

    /// The object storage underneath.
    pub fn storage(&self) -> &ObjectStorage {
        &self.storage
    }

    /// Writes the session's workdir (streamed: memory stays a few MiB whatever its size) and
    /// a manifest (language, image, libraries, environment, sizes, SHA-256) under `name`.
    /// A snapshot of that name is a conflict ([`Error::Exists`]). Files a restore would
    /// refuse (symlinks leading out of the workdir, devices, pipes) are left out and listed in
    /// the manifest's `skipped`. The memory of the session's processes is not saved.
    pub async fn snapshot(&self, session: &SandboxSession, name: &str) -> Result<Manifest> {
        check_key(name)?;
        if session.is_closed() {
            return Err(sandpit::Error::SessionClosed {
                session: session.id().to_string(),
            }
            .into());
        }
        if self.storage.size(&manifest_key(name)).await?.is_some() {
            return Err(Error::Exists {
                store: self.storage.url().to_string(),
                key: name.to_string(),
            });
        }
        let workdir = session.workdir().to_string();
        let top = workdir
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        if top.is_empty() {
            return Err(Error::Mismatch(format!(
                "the session's workdir {workdir:?} is the root folder; only a folder can be snapshotted"
            )));
        }
        let engine = session.engine().clone();
        let container = session.container_name().to_string();
        let failed: Arc<Mutex<Option<Error>>> = Arc::default();

        let (in_tx, in_rx) = mpsc::channel(DEPTH);
        let pump = {
            let (engine, container, workdir, failed) = (
                engine.clone(),
                container.clone(),
                workdir.clone(),
                failed.clone(),
            );
            AbortOnDrop(tokio::spawn(async move {
                let mut stream = engine.download_archive(&container, &workdir);
                while let Some(item) = stream.next().await {
                    let item = match item {
                        Ok(bytes) => Ok(bytes),
                        Err(e) => {
                            let message = e.message.clone();
                            *failed.lock().expect("failure slot") = Some(
                                engine_error(&engine, &container, &workdir, e, false)
                                    .await
                                    .into(),
                            );
                            Err(std::io::Error::other(message))
                        }
                    };
                    let stop = item.is_err();
                    if in_tx.send(item).await.is_err() || stop {
                        break;
                    }
                }
            }))
        };
        let (out_tx, out_rx) = mpsc::channel(DEPTH);
        let packer = tokio::task::spawn_blocking(move || {
            let out = Hashing::new(ChannelWriter::new(out_tx));
            let (counts, skipped, mut out) = pack(ChannelReader::new(in_rx), out, &top)?;
            if let Err(e) = out.flush() {
                out.poison(&e.to_string());
                return Err(PackError::Io(e));
            }
            let sha256 = hex(out.digest.finish());
            Ok((counts, skipped, sha256, out.count))
        });
        let archive = archive_key(name);
        let started = Instant::now();
        let (uploaded, packed) = tokio::join!(
            self.storage.put_stream(&archive, receiver_stream(out_rx)),
            packer
        );
        drop(pump);
        let packed = packed.map_err(|e| {
            sandpit::Error::Internal(format!("the snapshot's packing thread failed: {e}"))
        })?;
        let (counts, skipped, sha256, size) = match (packed, uploaded) {
            (Ok(p), Ok(_)) => p,
            (Err(p), uploaded) => {
                let slot = failed.lock().expect("failure slot").take();
                let e = match (slot, p, uploaded) {
                    (Some(engine_failed), _, _) => engine_failed,
                    (None, PackError::Io(e), Err(u))
                        if e.kind() == std::io::ErrorKind::BrokenPipe =>
                    {
                        u
                    }
                    (None, PackError::Io(e), _) => Error::Session(sandpit::Error::Internal(
                        format!("the engine's archive of {workdir} cannot be read: {e}"),
                    )),
                    (None, PackError::Refused { path, reason }, _) => {
                        Error::Session(sandpit::Error::InvalidPath {
                            path: format!("{workdir}/{path}"),
                            reason,
                        })
                    }
                };
                let _ = self.storage.delete(&archive).await;
                return Err(e);
            }
            (Ok(_), Err(u)) => {
                let _ = self.storage.delete(&archive).await;
                return Err(u);
            }
        };
        tracing::debug!(
            "snapshot {name}: {} bytes packed in {:?}",
            size,
            started.elapsed()
        );
        let info = session.engine_info();
        let manifest = Manifest {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            name: name.to_string(),
            created_at: sandpit::time::rfc3339(SystemTime::now()),
            language: session.runner().language().name().to_string(),
            image: session.image().to_string(),
            libraries: session.installed_libraries(),
            env: session.env_vars(),
            workdir: workdir.clone(),
            archive: ArchiveInfo {
                object: ARCHIVE.into(),
                compression: "gzip".into(),
                size_bytes: size,
                sha256,
                content_bytes: counts.content_bytes,
                files: counts.files,
                dirs: counts.dirs,
                symlinks: counts.symlinks,
                hard_links: counts.hard_links,
            },
            skipped,
            source: SourceInfo {
                session: session.id().to_string(),
                engine: format!("{} {}", info.kind, info.version),
                runtime: session.runtime().map(String::from),
            },
            kernel_state: KERNEL_STATE_NOTE.into(),
        };
        let json = serde_json::to_vec_pretty(&manifest).map_err(|e| {
            sandpit::Error::Internal(format!("the manifest cannot be written as JSON: {e}"))
        })?;
        if let Err(e) = self
            .storage
            .put(&manifest_key(name), Bytes::from(json))
            .await
        {
            let _ = self.storage.delete(&archive).await;
            return Err(e);
        }
        Ok(manifest)
    }

    /// The manifest of snapshot `name`: [`Error::NotFound`] when there is none,
    /// [`Error::Corrupt`] or [`Error::UnknownVersion`] when it cannot be used.
    pub async fn manifest(&self, name: &str) -> Result<Manifest> {
        check_key(name)?;
        let bytes = match self.storage.get(&manifest_key(name)).await {
            Ok(b) => b,
            Err(Error::NotFound { store, .. }) => {
                return Err(Error::NotFound {
                    store,
                    key: name.to_string(),
                    what: "its manifest".into(),
                })
            }
            Err(e) => return Err(e),
        };
        let manifest = Manifest::parse(name, &bytes)?;
        if manifest.name != name {
            tracing::debug!(
                "snapshot {name} was taken as {}; it was moved since",
                manifest.name
            );
        }
        Ok(manifest)
    }

    /// Every snapshot whose name starts with the folder `prefix` (`""`: all), by name; a
    /// manifest that cannot be read is listed with why.
    pub async fn list(&self, prefix: &str) -> Result<Vec<Listed>> {
        if !prefix.is_empty() {
            check_key(prefix)?;
        }
        let objects = self.storage.list(prefix).await?;
        let names: Vec<String> = objects
            .iter()
            .filter_map(|o| o.key.strip_suffix(&format!("/{MANIFEST}")))
            .map(str::to_string)
            .collect();
        let listed = futures_util::stream::iter(names)
            .map(|name| async move {
                let manifest = self.manifest(&name).await;
                Listed { name, manifest }
            })
            .buffered(8)
            .collect()
            .await;
        Ok(listed)
    }

    /// Removes snapshot `name` (manifest first, so a half-removed snapshot is simply gone);
    /// [`Error::NotFound`] when there is none.
    pub async fn delete(&self, name: &str) -> Result<()> {
        check_key(name)?;
        let manifest = self.storage.size(&manifest_key(name)).await?;
        let archive = self.storage.size(&archive_key(name)).await?;
        if manifest.is_none() && archive.is_none() {
            return Err(Error::NotFound {
                store: self.storage.url().to_string(),
                key: name.to_string(),
                what: "its manifest".into(),
            });
        }
        self.storage.delete(&manifest_key(name)).await?;
        self.storage.delete(&archive_key(name)).await
    }

    /// A URL the snapshot's archive can be downloaded from for `expires` (presigned on S3).
    pub async fn download_url(&self, name: &str, expires: Duration) -> Result<String> {
        check_key(name)?;
        self.storage
            .presigned_url(&archive_key(name), expires)
            .await
            .map_err(|e| match e {
                Error::NotFound { store, .. } => Error::NotFound {
                    store,
                    key: name.to_string(),
                    what: "its archive".into(),
                },
                e => e,
            })
    }

    /// Opens a new session from snapshot `name`: `builder` (engine, policy, limits) gets the
    /// snapshot's language, image (or `options.image`), libraries (installed again unless the
    /// image has them) and environment; then the files come back with their modes. On any
    /// failure the new session is closed and nothing of it remains.
    pub async fn restore(
        &self,
        name: &str,
        builder: SessionBuilder,
        options: &RestoreOptions,
    ) -> Result<Restored> {
        let started = Instant::now();
        let manifest = self.manifest(name).await?;
        let builder = prepare_builder(&manifest, builder, options)?;
        let session = builder.open().await?;
        match self.restore_into(&session, name, &manifest).await {
            Ok(counts) => {
                let libraries = if options.image.is_some() && options.libraries_in_image {
                    manifest.libraries.clone()
                } else {
                    session.installed_libraries()
                };
                let report = report(name, &manifest, &counts, libraries, started.elapsed());
                Ok(Restored {
                    session,
                    manifest,
                    report,
                })
            }
            Err(e) => {
                if let Err(closing) = session.close().await {
                    tracing::warn!("closing the session of a failed restore: {closing}");
                }
                Err(e)
            }
        }
    }

    /// Writes snapshot `name`'s files into `session`'s workdir, checking every entry (no
    /// absolute path, no `..`, no symlink out, no write through a symlink, no device) and the
    /// archive's size and SHA-256 against `manifest`. A bad entry or checksum fails the
    /// upload, but entries before it may have reached the workdir: restore into a new
    /// session and close it on failure, as [`Self::restore`] does.
    pub async fn restore_into(
        &self,
        session: &SandboxSession,
        name: &str,
        manifest: &Manifest,
    ) -> Result<RestoreCounts> {
        if session.is_closed() {
            return Err(sandpit::Error::SessionClosed {
                session: session.id().to_string(),
            }
            .into());
        }
        let workdir = session.workdir().to_string();
        if session.has_disk_limit() {
            let limit = session.policy().disk;
            if manifest.archive.content_bytes > limit {
                return Err(Error::Mismatch(format!(
                    "snapshot {name:?} holds {} bytes of files, more than the session's {limit}-byte disk: open it with a larger disk",
                    manifest.archive.content_bytes
                )));
            }
        }
        let corrupt = |reason: String| Error::Corrupt {
            key: name.to_string(),
            reason,
        };
        let (size, mut stream) = match self.storage.get_stream(&archive_key(name)).await {
            Ok(got) => got,
            Err(Error::NotFound { .. }) => {
                return Err(corrupt(format!(
                    "its archive {ARCHIVE} is missing from the store"
                )))
            }
            Err(e) => return Err(e),
        };
        let expected = manifest.archive.clone();
        if size != expected.size_bytes {
            return Err(corrupt(format!(
                "its archive holds {size} bytes, the manifest says {}: it was cut short or replaced",
                expected.size_bytes
            )));
        }
        let failed: Arc<Mutex<Option<Error>>> = Arc::default();
        let (in_tx, in_rx) = mpsc::channel(DEPTH);
        let pump = {
            let failed = failed.clone();
            AbortOnDrop(tokio::spawn(async move {
                while let Some(item) = stream.next().await {
                    let item = match item {
                        Ok(bytes) => Ok(bytes),
                        Err(e) => {
                            let message = e.to_string();
                            *failed.lock().expect("failure slot") = Some(e);
                            Err(std::io::Error::other(message))
                        }
                    };
                    let stop = item.is_err();
                    if in_tx.send(item).await.is_err() || stop {
                        break;
                    }
                }
            }))
        };
        let (out_tx, out_rx) = mpsc::channel(DEPTH);
        let checker = tokio::task::spawn_blocking(
            move || -> std::result::Result<Counts, Checked> {
                let input = Hashing::new(ChannelReader::new(in_rx));
                let (counts, mut builder, input) =
                    unpack_checked(input, ChannelWriter::new(out_tx)).map_err(Checked::Pack)?;
                let sha256 = hex(input.digest.finish());
                let found = (
                    counts.files,
                    counts.dirs,
                    counts.symlinks,
                    counts.hard_links,
                    counts.content_bytes,
                );
                let said = (
                    expected.files,
                    expected.dirs,
                    expected.symlinks,
                    expected.hard_links,
                    expected.content_bytes,
                );
                let problem = if input.count != expected.size_bytes {
                    Some(format!(
                        "its archive gave {} bytes, the manifest says {}",
                        input.count, expected.size_bytes
                    ))
                } else if sha256 != expected.sha256 {
                    Some(format!(
                    "its archive's SHA-256 is {sha256}, the manifest says {}: the archive was changed after the snapshot",
                    expected.sha256
                ))
                } else if found != said {
                    Some(format!(
                    "its archive holds (files, folders, symlinks, hard links, bytes) {found:?}, the manifest says {said:?}"
                ))
                } else {
                    None
                };
                if let Some(problem) = problem {
                    builder.get_mut().poison(&problem);
                    return Err(Checked::Mismatch(problem));
                }
                let mut out = builder.into_inner().map_err(|e| Checked::Pack(e.into()))?;
                out.flush().map_err(|e| Checked::Pack(e.into()))?;
                Ok(counts)
            },
        );
        let body = Body::Stream(Box::pin(receiver_stream(out_rx).map(|item| {
            item.map_err(|e| EngineError::new(EngineErrorKind::InvalidRequest, e.to_string()))
        })));
        let engine = session.engine().clone();
        let container = session.container_name().to_string();
        let (uploaded, checked) =
            tokio::join!(engine.upload_archive(&container, &workdir, body), checker);
        drop(pump);
        let checked = checked.map_err(|e| {
            sandpit::Error::Internal(format!("the restore's checking thread failed: {e}"))
        })?;
        match (checked, uploaded) {
            (Ok(counts), Ok(())) => Ok(RestoreCounts {
                files: counts.files,
                dirs: counts.dirs,
                symlinks: counts.symlinks,
                hard_links: counts.hard_links,
                content_bytes: counts.content_bytes,
            }),
            (Ok(_), Err(e)) => Err(engine_error(&engine, &container, &workdir, e, true)
                .await
                .into()),
            (Err(Checked::Mismatch(reason)), _) => Err(corrupt(reason)),
            (Err(Checked::Pack(p)), uploaded) => {
                if let Some(e) = failed.lock().expect("failure slot").take() {
                    return Err(e);
                }
                match p {
                    PackError::Refused { path, reason } => Err(corrupt(format!(
                        "its archive holds the entry {path}: {reason} (a restore never writes outside the workdir)"
                    ))),
                    PackError::Io(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                        match uploaded {
                            Err(u) => Err(engine_error(&engine, &container, &workdir, u, true)
                                .await
                                .into()),
                            Ok(()) => Err(corrupt(format!("its archive cannot be read ({e})"))),
                        }
                    }
                    PackError::Io(e) => {
                        Err(corrupt(format!("its archive cannot be read ({e})")))
                    }
                }
            }
        }
    }
}

/// What a restore wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreCounts {
    /// Regular files.
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Symbolic links.
    pub symlinks: u64,
    /// Hard links.
    pub hard_links: u64,
    /// Bytes of file content.
    pub content_bytes: u64,
}

/// Why the checking side of a restore stopped.
enum Checked {
    Pack(PackError),
    Mismatch(String),
}

/// The report of a restore.
pub fn report(
    name: &str,
    manifest: &Manifest,
    counts: &RestoreCounts,
    libraries: Vec<String>,
    took: Duration,
) -> RestoreReport {
    RestoreReport {
        snapshot: name.to_string(),
        files: counts.files,
        content_bytes: counts.content_bytes,
        libraries,
        env: manifest.env.keys().cloned().collect(),
        duration_ms: took.as_millis() as u64,
        kernel_state: KERNEL_STATE_NOTE.into(),
    }
}

/// `builder` with the snapshot's language, image, libraries and environment.
pub fn prepare_builder(
    manifest: &Manifest,
    builder: SessionBuilder,
    options: &RestoreOptions,
) -> Result<SessionBuilder> {
    let language = snapshot_language(manifest)?;
    let mut b = builder.language(language);
    match &options.image {
        Some(image) => b = b.image(image.clone()),
        None => {
            if let Some(image) = snapshot_image(manifest, language) {
                b = b.image(image);
            }
        }
    }
    if !(options.image.is_some() && options.libraries_in_image) {
        b = b.libraries(manifest.libraries.iter().cloned());
    }
    for (k, v) in &manifest.env {
        b = b.env(k.clone(), v.clone());
    }
    Ok(b)
}

/// The snapshot's language.
pub fn snapshot_language(manifest: &Manifest) -> Result<Language> {
    manifest.language.parse().map_err(|_| Error::Corrupt {
        key: manifest.name.clone(),
        reason: format!(
            "its manifest names the language {:?}, which this Sandpit does not know",
            manifest.language
        ),
    })
}

/// The image a restore asks for: the snapshot's, unless it is the language's default (then
/// the default is used, built where missing) or an image Sandpit made for the libraries of
/// one engine (`sandpit-libs/...`, made again from the default where needed).
pub fn snapshot_image(manifest: &Manifest, language: Language) -> Option<String> {
    let default = sandpit::runner(language).default_image().tag;
    (manifest.image != default && !manifest.image.starts_with("sandpit-libs/"))
        .then(|| manifest.image.clone())
}

/// The environment of a snapshot merged under `over` (later wins).
pub fn merged_env(
    manifest: &Manifest,
    over: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut env = manifest.env.clone();
    env.extend(over.iter().map(|(k, v)| (k.clone(), v.clone())));
    env
}

/// A receiver as a stream.
fn receiver_stream(
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
}

/// An engine's failure while copying, as the session crate reports it.
async fn engine_error(
    engine: &Engine,
    container: &str,
    path: &str,
    e: EngineError,
    upload: bool,
) -> sandpit::Error {
    match e.kind {
        EngineErrorKind::Unreachable => sandpit::Error::EngineUnreachable { reason: e.message },
        EngineErrorKind::NotFound
            if engine
                .inspect_container(container)
                .await
                .is_err_and(|e| e.is_not_found()) =>
        {
            sandpit::Error::SessionGone {
                container: container.to_string(),
            }
        }
        _ if upload => sandpit::Error::Upload {
            container: container.to_string(),
            path: path.to_string(),
            cause: e,
        },
        _ => sandpit::Error::Download {
            container: container.to_string(),
            path: path.to_string(),
            cause: e,
        },
    }
}

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
