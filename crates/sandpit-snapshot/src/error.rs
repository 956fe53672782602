//! The crate's error: what went wrong with a store or a snapshot, in words a person can act on,
//! with a kind every transport maps.

use sandpit::ErrorKind;

/// A failed store or snapshot operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The store's URL or settings cannot work (unknown scheme, no bucket, no credentials).
    #[error("snapshot store {url}: {reason}")]
    Config {
        /// The URL as given.
        url: String,
        /// What is wrong and what to do.
        reason: String,
    },
    /// A snapshot name (key) that cannot be used.
    #[error("invalid snapshot name {name:?}: {reason}")]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No object or snapshot under that key.
    #[error("no snapshot {key:?} in {store} ({what} is missing)")]
    NotFound {
        /// The store.
        store: String,
        /// The snapshot's name.
        key: String,
        /// What was looked for (`its manifest`, `its archive`, `the object`).
        what: String,
    },
    /// A snapshot of that name exists already.
    #[error("snapshot {key:?} exists already in {store}: delete it first or choose another name")]
    Exists {
        /// The store.
        store: String,
        /// The snapshot's name.
        key: String,
    },
    /// The snapshot's manifest or archive is damaged, truncated, replaced, or holds an entry a
    /// restore refuses to write.
    #[error("snapshot {key:?} is corrupt: {reason}; nothing of it was restored")]
    Corrupt {
        /// The snapshot's name.
        key: String,
        /// What was found wrong.
        reason: String,
    },
    /// The snapshot was written in a format this Sandpit does not read.
    #[error("snapshot {key:?} is in format {found}, and this Sandpit reads format {supported}: restore it with the Sandpit that wrote it (or a newer one)")]
    UnknownVersion {
        /// The snapshot's name.
        key: String,
        /// The format found.
        found: String,
        /// The format this crate reads.
        supported: u32,
    },
    /// The object store failed (unreachable, refused the credentials, out of space).
    #[error("{operation} {key:?} in {store} failed: {message}")]
    Storage {
        /// The store.
        store: String,
        /// What was done (`writing`, `reading`, `listing`, `deleting`, `signing`).
        operation: &'static str,
        /// The object's key (relative to the store's prefix).
        key: String,
        /// The store's message, with its causes.
        message: String,
    },
    /// The snapshot does not fit the session asked for (language, disk).
    #[error("{0}")]
    Mismatch(String),
    /// The session (or its engine) failed.
    #[error(transparent)]
    Session(#[from] sandpit::Error),
}

impl Error {
    /// The kind, as the session crate's errors have (transports map it to a status).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Config { .. } | Error::InvalidName { .. } | Error::Mismatch(_) => {
                ErrorKind::InvalidInput
            }
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Exists { .. } => ErrorKind::Conflict,
            Error::Corrupt { .. } => ErrorKind::InvalidInput,
            Error::UnknownVersion { .. } => ErrorKind::Unsupported,
            Error::Storage { .. } => ErrorKind::Internal,
            Error::Session(e) => e.kind(),
        }
    }
}

/// Result of a store or snapshot operation.
pub type Result<T> = std::result::Result<T, Error>;

/// An error and its causes on one line, each once.
pub(crate) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}
