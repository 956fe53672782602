//! The key-store seam: where a server checks the keys requests present. A single server reads
//! its SQLite store ([`crate::Store`]); a cluster node reads the keys the cluster keeps in its
//! registry (a watched local copy), so a key made on one node works on every node.

use ring::digest::{digest, SHA256};
use ring::rand::{SecureRandom, SystemRandom};

use crate::error::{ServiceError, ServiceResult};
use crate::store::{now, KeyFormat, KeyInfo};

/// Checks presented keys. Both calls answer from local state (no network on the data path).
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// The key a request presented, when it is valid (known and not revoked).
    fn verify(&self, secret: &str) -> ServiceResult<Option<KeyInfo>>;
    /// The keys not revoked.
    fn list_keys(&self) -> ServiceResult<Vec<KeyInfo>>;
}

/// A key just made: its listing, the key itself (shown once, never stored) and its hash.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// As listed.
    pub info: KeyInfo,
    /// The key itself.
    pub secret: String,
    /// What is stored.
    pub hash: String,
}

/// Makes a key in `format` named `name` (trimmed; `unnamed` when empty; at most 100
/// characters).
pub fn mint_key(name: &str, format: KeyFormat) -> ServiceResult<NewKey> {
    let name = name.trim();
    if name.chars().count() > 100 {
        return Err(ServiceError::invalid(
            "a key's name is at most 100 characters",
        ));
    }
    let secret = format!("{}{}", format.prefix(), random_hex(20)?);
    let info = KeyInfo {
        id: format!("key_{}", random_hex(4)?),
        name: if name.is_empty() {
            "unnamed".into()
        } else {
            name.into()
        },
        prefix: secret[..10].to_string(),
        created: now(),
        last_used: None,
    };
    let hash = key_hash(&secret);
    Ok(NewKey { info, secret, hash })
}

/// The stored form of a key (SHA-256, hex).
pub fn key_hash(secret: &str) -> String {
    digest(&SHA256, secret.trim().as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `bytes` random bytes as hex.
pub fn random_hex(bytes: usize) -> ServiceResult<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ServiceError::internal("no randomness from the operating system"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
