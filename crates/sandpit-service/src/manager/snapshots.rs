//! Snapshots for the transports (HTTP, MCP): each key's snapshots live under its own folder
//! of the store (`<key id>/<name>`), so a key sees and restores only its own. A restore is a
//! `create` with `from_snapshot`: the session opens with the snapshot's language, image,
//! libraries and environment merged with the request, then the files come back.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use sandpit::Language;
use sandpit_snapshot::{
    merged_env, snapshot_image, snapshot_language, SnapshotInfo, SnapshotStore,
};

use super::{Manager, Owner};
use crate::config::ServiceConfig;
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::types::{CreateSession, RestoredFrom, SessionInfo};

/// A restore under way (boxed: `create` and `restore` call each other).
pub type Restoring<'a> =
    Pin<Box<dyn Future<Output = ServiceResult<(SessionInfo, bool)>> + Send + 'a>>;

/// How long a download URL of `GET /v1/snapshots/{name}` stays valid.
const DOWNLOAD_URL_LIFETIME: Duration = Duration::from_secs(3600);

impl From<sandpit_snapshot::Error> for ServiceError {
    fn from(e: sandpit_snapshot::Error) -> Self {
        match e {
            sandpit_snapshot::Error::Session(e) => e.into(),
            e => ServiceError::new(e.kind().into(), e.to_string()),
        }
    }
}

/// The store the config names, opened (nothing is sent until it is used).
pub(super) fn open_store(config: &ServiceConfig) -> ServiceResult<Option<SnapshotStore>> {
    match config.snapshots.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(url) => SnapshotStore::open(url)
            .map(Some)
            .map_err(|e| ServiceError::invalid(format!("snapshots: {e}"))),
    }
}

/// The store key of `owner`'s snapshot `name` (one part: letters, digits, `.`, `_`, `-`).
fn owner_key(owner: &Owner, name: &str) -> ServiceResult<String> {
    if name.contains('/') {
        return Err(ServiceError::invalid(format!(
            "invalid snapshot name {name:?}: a name is one part, without `/`"
        )));
    }
    sandpit_snapshot::check_key(name)?;
    Ok(format!("{}/{name}", owner.0))
}

impl Manager {
    /// The snapshot store; `Unsupported` when the server has none.
    pub fn snapshot_store(&self) -> ServiceResult<&SnapshotStore> {
        self.shared.snapshots.as_ref().ok_or_else(|| {
            ServiceError::new(
                ErrorKind::Unsupported,
                "snapshots are not configured on this server: start it with --snapshots URL (file:///folder or s3://bucket/prefix), SANDPIT_SNAPSHOTS or `snapshots` in its config file",
            )
        })
    }

    /// Takes a snapshot of the owner's session `id` under `name` (default: the session's id
    /// and the time). The session's files, libraries and environment go to the store; the
    /// memory of its processes does not (the answer's `kernel_state` says so). A paused
    /// session is resumed first; a name the owner used already is a conflict.
    pub async fn snapshot(
        &self,
        owner: &Owner,
        id: &str,
        name: Option<&str>,
    ) -> ServiceResult<SnapshotInfo> {
        let store = self.snapshot_store()?.clone();
        let name = match name.map(str::trim) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("{id}-{}", crate::store::now()),
        };
        let key = owner_key(owner, &name)?;
        let busy = self.busy(owner, id).await?;
        let started = Instant::now();
        let taken = store.snapshot(busy.session(), &key).await;
        self.shared.metrics.run("snapshot", started.elapsed());
        match taken {
            Ok(manifest) => Ok(SnapshotInfo::of(name, &manifest)),
            Err(sandpit_snapshot::Error::Session(e)) => {
                let entry = self.get(owner, id)?;
                drop(busy);
                Err(self.failed(&entry, e).await)
            }
            Err(e) => Err(shown(e, &name)),
        }
    }

    /// The owner's snapshots, by name (manifests that cannot be read are left out, with a
    /// warning in the log).
    pub async fn snapshots(&self, owner: &Owner) -> ServiceResult<Vec<SnapshotInfo>> {
        let store = self.snapshot_store()?;
        let mut out = Vec::new();
        for listed in store.list(&owner.0).await? {
            let name = listed
                .name
                .strip_prefix(&format!("{}/", owner.0))
                .unwrap_or(&listed.name)
                .to_string();
            if name.contains('/') {
                continue;
            }
            match listed.manifest {
                Ok(m) => out.push(SnapshotInfo::of(name, &m)),
                Err(e) => tracing::warn!("snapshot {}: {e}", listed.name),
            }
        }
        Ok(out)
    }

    /// One of the owner's snapshots, with a URL to download its archive (valid an hour).
    pub async fn snapshot_info(&self, owner: &Owner, name: &str) -> ServiceResult<SnapshotInfo> {
        let store = self.snapshot_store()?;
        let key = owner_key(owner, name)?;
        let manifest = store.manifest(&key).await.map_err(|e| shown(e, name))?;
        let mut info = SnapshotInfo::of(name, &manifest);
        info.download_url = Some(
            store
                .download_url(&key, DOWNLOAD_URL_LIFETIME)
                .await
                .map_err(|e| shown(e, name))?,
        );
        Ok(info)
    }

    /// Removes one of the owner's snapshots.
    pub async fn delete_snapshot(&self, owner: &Owner, name: &str) -> ServiceResult<()> {
        let store = self.snapshot_store()?;
        let key = owner_key(owner, name)?;
        store.delete(&key).await.map_err(|e| shown(e, name))
    }

    /// Opens a session from the owner's snapshot `req.from_snapshot`: the snapshot's language
    /// (a different one in the request is refused), its image unless the request names one,
    /// its libraries and the request's, its environment under the request's; then its files.
    /// With a `name` the owner holds already, that session is answered as `create` does. The
    /// answer's `restored` says what came back and that kernel memory did not.
    pub fn restore<'a>(&'a self, owner: &'a Owner, req: CreateSession) -> Restoring<'a> {
        // Boxed: `create` comes back here for requests with `from_snapshot`.
        Box::pin(self.restore_session(owner, req))
    }

    async fn restore_session(
        &self,
        owner: &Owner,
        mut req: CreateSession,
    ) -> ServiceResult<(SessionInfo, bool)> {
        let Some(name) = req.from_snapshot.take() else {
            return Err(ServiceError::invalid("from_snapshot names no snapshot"));
        };
        let store = self.snapshot_store()?.clone();
        let key = owner_key(owner, &name)?;
        if let Some(existing) = req.name.as_deref().and_then(|n| self.find_named(owner, n)) {
            self.touch(&existing);
            return Ok((self.info(&existing, false).await?, false));
        }
        let started = Instant::now();
        let manifest = store.manifest(&key).await.map_err(|e| shown(e, &name))?;
        let language = snapshot_language(&manifest).map_err(|e| shown(e, &name))?;
        if !req.language.trim().is_empty() {
            let asked: Language = req
                .language
                .parse()
                .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?;
            if asked != language {
                return Err(ServiceError::invalid(format!(
                    "snapshot {name:?} is a {language} workspace, and the request asks for {asked}: leave language out or match it"
                )));
            }
        }
        req.language = language.name().to_string();
        if req.image.is_none() {
            req.image = snapshot_image(&manifest, language);
        }
        let mut libraries = manifest.libraries.clone();
        for l in std::mem::take(&mut req.libraries) {
            if !libraries.contains(&l) {
                libraries.push(l);
            }
        }
        req.libraries = libraries;
        req.env = merged_env(&manifest, &req.env);
        let (mut info, made) = self.create(owner, req).await?;
        if !made {
            // A session of that name appeared meanwhile: it is answered as it is.
            return Ok((info, false));
        }
        let entry = self.get(owner, &info.id)?;
        match store.restore_into(&entry.session, &key, &manifest).await {
            Ok(counts) => {
                self.shared.metrics.run("restore", started.elapsed());
                info.restored = Some(RestoredFrom {
                    snapshot: name,
                    files: counts.files,
                    content_bytes: counts.content_bytes,
                    libraries: entry.session.installed_libraries(),
                    kernel_state: sandpit_snapshot::KERNEL_STATE_NOTE.to_string(),
                    duration_ms: started.elapsed().as_millis() as u64,
                });
                Ok((info, made))
            }
            Err(e) => {
                if let Err(closing) = self.destroy(owner, &info.id).await {
                    tracing::warn!(
                        "closing session {} after its restore failed: {closing}",
                        info.id
                    );
                }
                Err(shown(e, &name))
            }
        }
    }
}

/// A snapshot error with the owner's name for the snapshot, not the store's key (which
/// holds the key's id and the store's URL).
fn shown(e: sandpit_snapshot::Error, name: &str) -> ServiceError {
    use sandpit_snapshot::Error as E;
    match e {
        E::NotFound { .. } => ServiceError::new(
            ErrorKind::NotFound,
            format!("no snapshot {name:?} (for this key): GET /v1/snapshots lists them"),
        ),
        E::Exists { .. } => ServiceError::new(
            ErrorKind::Conflict,
            format!("a snapshot {name:?} exists already (for this key): delete it first or choose another name"),
        ),
        E::Corrupt { reason, .. } => ServiceError::invalid(format!(
            "snapshot {name:?} is corrupt: {reason}; nothing of it was restored"
        )),
        E::UnknownVersion {
            found, supported, ..
        } => ServiceError::new(
            ErrorKind::Unsupported,
            format!("snapshot {name:?} is in format {found}, and this server reads format {supported}: restore it with the Sandpit that wrote it (or a newer one)"),
        ),
        e => e.into(),
    }
}
