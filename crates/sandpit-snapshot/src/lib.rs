//! Snapshots of Sandpit sessions in object storage.
//!
//! [`ObjectStorage`] is a store named by a URL: a folder (`file:///path`), or an S3 bucket
//! with a prefix (`s3://bucket/prefix`) on AWS, MinIO or any S3-compatible server (path-style
//! requests), credentials and endpoint read as the AWS tools read them. It puts, gets (whole
//! or streamed), lists by prefix, deletes and signs download URLs.
//!
//! [`SnapshotStore`] keeps snapshots in one: [`SnapshotStore::snapshot`] streams a session's
//! workdir from the engine into the store as a compressed tar (memory stays bounded whatever
//! its size) and writes a [`Manifest`] (language, image, libraries, environment, created,
//! sizes, SHA-256, format version); [`SnapshotStore::restore`] opens a new session with the
//! snapshot's language, image, libraries and environment and writes the files back with
//! their modes, checking every entry on the way (no absolute path, no `..`, no symlink out, no
//! device) and the archive's checksum. A corrupt, missing or unknown-version snapshot is a
//! clear [`Error`]. The memory of a session's processes (a kernel's variables) is never part
//! of a snapshot, and every manifest and restore report says so.
#![deny(missing_docs)]

mod entries;
mod error;
mod key;
mod manifest;
mod pipe;
mod snapshots;
mod storage;

pub use error::{Error, Result};
pub use key::{check_key, ARCHIVE, MANIFEST};
pub use manifest::{
    ArchiveInfo, CreateSnapshot, Manifest, RestoreReport, Skipped, SnapshotInfo, SnapshotList,
    SourceInfo, FORMAT, FORMAT_VERSION, KERNEL_STATE_NOTE,
};
pub use snapshots::{
    merged_env, prepare_builder, report, snapshot_image, snapshot_language, Listed, RestoreCounts,
    RestoreOptions, Restored, SnapshotStore,
};
pub use storage::{ObjectInfo, ObjectStorage, ObjectStream};
