//! A snapshot's manifest: what the archive holds and what a restore needs besides files.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `format` field of every manifest.
pub const FORMAT: &str = "sandpit-snapshot";
/// The manifest and archive format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;
/// What a snapshot never holds, said on every snapshot and restore.
pub const KERNEL_STATE_NOTE: &str = "not included: a snapshot holds the workdir's files, the libraries and the environment; the memory of running processes (a kernel's variables, imports and open files) is not saved, so a restored session starts with a fresh kernel";

/// A snapshot's manifest (`<name>/manifest.json` in the store).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Manifest {
    /// Always `sandpit-snapshot`.
    pub format: String,
    /// The format's version ([`FORMAT_VERSION`] when written by this crate).
    pub version: u32,
    /// The snapshot's name in its store.
    pub name: String,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The session's language.
    pub language: String,
    /// The image the session ran.
    pub image: String,
    /// Libraries installed in the session.
    pub libraries: Vec<String>,
    /// The session's environment.
    pub env: BTreeMap<String, String>,
    /// The session's workdir (files are stored relative to it).
    pub workdir: String,
    /// The workdir's archive.
    pub archive: ArchiveInfo,
    /// Workdir entries left out, with why.
    #[serde(default)]
    pub skipped: Vec<Skipped>,
    /// Where the snapshot came from.
    pub source: SourceInfo,
    /// What about the processes' memory ([`KERNEL_STATE_NOTE`]).
    pub kernel_state: String,
}

/// The workdir's archive: a gzip-compressed tar, paths relative to the workdir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ArchiveInfo {
    /// Its object, beside the manifest (`workdir.tar.gz`).
    pub object: String,
    /// `gzip`.
    pub compression: String,
    /// Its size in the store, in bytes.
    pub size_bytes: u64,
    /// SHA-256 of the stored bytes, lowercase hex.
    pub sha256: String,
    /// Bytes of file content in it (uncompressed).
    pub content_bytes: u64,
    /// Regular files.
    pub files: u64,
    /// Folders.
    pub dirs: u64,
    /// Symbolic links (each pointing inside the workdir).
    pub symlinks: u64,
    /// Hard links (each to a file of the archive).
    pub hard_links: u64,
}

/// A workdir entry a snapshot left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Skipped {
    /// Its path, relative to the workdir.
    pub path: String,
    /// Why.
    pub reason: String,
}

/// Where a snapshot was taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SourceInfo {
    /// The session's id.
    pub session: String,
    /// The engine (`docker 27.5.1`, `podman 5.4.2`).
    pub engine: String,
    /// The OCI runtime, when not the engine's default.
    pub runtime: Option<String>,
}

impl Manifest {
    /// Reads a manifest, checking its format and version first so that a manifest of another
    /// version says so rather than failing on a field.
    pub fn parse(key: &str, bytes: &[u8]) -> Result<Manifest> {
        let corrupt = |reason: String| Error::Corrupt {
            key: key.to_string(),
            reason,
        };
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(format!("its manifest is not JSON ({e})")))?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(corrupt(format!(
                "its manifest is not a Sandpit snapshot manifest (no \"format\": \"{FORMAT}\")"
            )));
        }
        match value.get("version") {
            Some(v) if v.as_u64() == Some(u64::from(FORMAT_VERSION)) => {}
            Some(v) => {
                return Err(Error::UnknownVersion {
                    key: key.to_string(),
                    found: v.to_string(),
                    supported: FORMAT_VERSION,
                })
            }
            None => return Err(corrupt("its manifest has no version".into())),
        }
        let manifest: Manifest = serde_json::from_value(value)
            .map_err(|e| corrupt(format!("its manifest is incomplete ({e})")))?;
        if manifest.archive.compression != "gzip" {
            return Err(corrupt(format!(
                "its archive's compression {:?} is not gzip",
                manifest.archive.compression
            )));
        }
        if manifest.archive.sha256.len() != 64
            || !manifest
                .archive
                .sha256
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        {
            return Err(corrupt("its manifest's checksum is not SHA-256 hex".into()));
        }
        if manifest.archive.object != crate::key::ARCHIVE {
            return Err(corrupt(format!(
                "its manifest names the archive {:?}, not {}",
                manifest.archive.object,
                crate::key::ARCHIVE
            )));
        }
        Ok(manifest)
    }
}

/// A snapshot as the API shows it: the manifest's facts under the caller's name for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotInfo {
    /// Its name (for the server: within the key's own snapshots).
    pub name: String,
    /// When it was taken (RFC 3339).
    pub created_at: String,
    /// The session's language.
    pub language: String,
    /// The image the session ran.
    pub image: String,
    /// Libraries a restore installs.
    pub libraries: Vec<String>,
    /// The environment a restore sets.
    pub env: BTreeMap<String, String>,
    /// The archive's size in the store, in bytes.
    pub size_bytes: u64,
    /// Bytes of file content (uncompressed).
    pub content_bytes: u64,
    /// Regular files in it.
    pub files: u64,
    /// SHA-256 of the archive, lowercase hex.
    pub sha256: String,
    /// The format's version.
    pub format_version: u32,
    /// The session it was taken from.
    pub source_session: String,
    /// Workdir entries left out, with why.
    pub skipped: Vec<Skipped>,
    /// What about the processes' memory: not part of a snapshot.
    pub kernel_state: String,
    /// A URL to download the archive from, valid for an hour (on `GET /v1/snapshots/{name}`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub download_url: Option<String>,
}

impl SnapshotInfo {
    /// The manifest's facts, shown under `name`.
    pub fn of(name: impl Into<String>, m: &Manifest) -> SnapshotInfo {
        SnapshotInfo {
            name: name.into(),
            created_at: m.created_at.clone(),
            language: m.language.clone(),
            image: m.image.clone(),
            libraries: m.libraries.clone(),
            env: m.env.clone(),
            size_bytes: m.archive.size_bytes,
            content_bytes: m.archive.content_bytes,
            files: m.archive.files,
            sha256: m.archive.sha256.clone(),
            format_version: m.version,
            source_session: m.source.session.clone(),
            skipped: m.skipped.clone(),
            kernel_state: m.kernel_state.clone(),
            download_url: None,
        }
    }
}

/// `POST /v1/sessions/{id}/snapshots`: take a snapshot of the session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSnapshot {
    /// Its name: letters, digits, `.`, `_` and `-` (default: the session's id and the time).
    #[serde(default)]
    pub name: Option<String>,
}

/// `GET /v1/snapshots`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SnapshotList {
    /// The key's snapshots, by name.
    pub snapshots: Vec<SnapshotInfo>,
}

/// How a session was restored from a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RestoreReport {
    /// The snapshot's name.
    pub snapshot: String,
    /// Regular files written.
    pub files: u64,
    /// Bytes of file content written.
    pub content_bytes: u64,
    /// Libraries installed again (or found in the image).
    pub libraries: Vec<String>,
    /// Environment variables set.
    pub env: Vec<String>,
    /// Milliseconds the restore took, opening the session included.
    pub duration_ms: u64,
    /// What about the processes' memory: not restored.
    pub kernel_state: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: FORMAT_VERSION,
            name: "a/b".into(),
            created_at: "2026-01-01T00:00:00Z".into(),
            language: "python".into(),
            image: "sandpit/python:latest".into(),
            libraries: vec!["six".into()],
            env: BTreeMap::from([("K".into(), "v".into())]),
            workdir: "/sandbox".into(),
            archive: ArchiveInfo {
                object: crate::key::ARCHIVE.into(),
                compression: "gzip".into(),
                size_bytes: 10,
                sha256: "0".repeat(64),
                content_bytes: 3,
                files: 1,
                dirs: 0,
                symlinks: 0,
                hard_links: 0,
            },
            skipped: vec![],
            source: SourceInfo {
                session: "s".into(),
                engine: "docker 27".into(),
                runtime: None,
            },
            kernel_state: KERNEL_STATE_NOTE.into(),
        }
    }

    #[test]
    fn manifests_round_trip_and_bad_ones_say_why() {
        let m = sample();
        let bytes = serde_json::to_vec(&m).unwrap();
        assert_eq!(Manifest::parse("a/b", &bytes).unwrap(), m);

        let err = Manifest::parse("a/b", b"{oops").unwrap_err();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        assert!(err.to_string().contains("not JSON"), "{err}");

        let mut v = serde_json::to_value(&m).unwrap();
        v["version"] = 99.into();
        v["archive"] = serde_json::json!({"something": "new"});
        let err = Manifest::parse("a/b", &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(matches!(err, Error::UnknownVersion { .. }), "{err}");
        assert!(err.to_string().contains("format 99"), "{err}");

        let mut v = serde_json::to_value(&m).unwrap();
        v["archive"]["sha256"] = "xyz".into();
        let err = Manifest::parse("a/b", &serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert!(err.to_string().contains("checksum"), "{err}");

        let err = Manifest::parse("a/b", br#"{"format": "other"}"#).unwrap_err();
        assert!(err.to_string().contains("not a Sandpit snapshot"), "{err}");
    }
}
