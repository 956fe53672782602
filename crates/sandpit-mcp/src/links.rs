//! Signed, expiring download links: a file of a session, handed to a remote MCP client as a
//! URL instead of its bytes. The token is `BASE64URL(grant).BASE64URL(HMAC-SHA256(grant))`,
//! the grant naming the session, the path, the key that may read it and the expiry; the
//! server's secret lives in its data folder, so links survive a restart.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};
use sandpit_service::{now, ErrorKind, ServiceError};
use serde::{Deserialize, Serialize};

/// How long a download link works.
pub const LINK_LIFETIME: Duration = Duration::from_secs(30 * 60);

/// The file holding the signing secret, in the data folder.
pub const SECRET_FILE: &str = "download-signing.key";

/// What a download token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The session.
    #[serde(rename = "s")]
    pub session: String,
    /// The file, relative to the workdir.
    #[serde(rename = "p")]
    pub path: String,
    /// The id of the key that may read it (the session's owner).
    #[serde(rename = "k")]
    pub key: String,
    /// Unix seconds after which the link no longer works.
    #[serde(rename = "e")]
    pub expires: u64,
}

/// Signs and checks download tokens.
pub struct Signer {
    key: hmac::Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer")
    }
}

impl Signer {
    /// A signer with a fresh random secret (links die with the process).
    pub fn random() -> Result<Signer, ServiceError> {
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| ServiceError::internal("the system's random source failed"))?;
        Ok(Signer::from_secret(&secret))
    }

    /// A signer with `secret`.
    pub fn from_secret(secret: &[u8]) -> Signer {
        Signer {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
        }
    }

    /// The signer whose secret is kept in `data_dir` (made, readable by the owner only, on
    /// first use).
    pub fn load_or_create(data_dir: &Path) -> Result<Signer, ServiceError> {
        let path = data_dir.join(SECRET_FILE);
        match std::fs::read(&path) {
            Ok(secret) if secret.len() >= 32 => return Ok(Signer::from_secret(&secret)),
            Ok(_) => {
                return Err(ServiceError::internal(format!(
                    "{} is shorter than 32 bytes: remove it and a new one is made (links handed out so far stop working)",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(ServiceError::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        }
        let mut secret = [0u8; 32];
        SystemRandom::new()
            .fill(&mut secret)
            .map_err(|_| ServiceError::internal("the system's random source failed"))?;
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(data_dir)?;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut f = options.open(&path)?;
            f.write_all(&secret)?;
            f.sync_all()
        };
        match write() {
            Ok(()) => Ok(Signer::from_secret(&secret)),
            // Another process made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Signer::load_or_create(data_dir)
            }
            Err(e) => Err(ServiceError::internal(format!(
                "cannot write the download signing secret {}: {e}",
                path.display()
            ))),
        }
    }

    /// The token for `grant`.
    pub fn sign(&self, grant: &Grant) -> String {
        let payload = serde_json::to_vec(grant).unwrap_or_default();
        let tag = hmac::sign(&self.key, &payload);
        format!("{}.{}", B64.encode(&payload), B64.encode(tag.as_ref()))
    }

    /// A grant for `key` to read `path` of `session` for [`LINK_LIFETIME`], as a token.
    pub fn grant(&self, session: &str, path: &str, key: &str) -> (String, Grant) {
        let grant = Grant {
            session: session.to_string(),
            path: path.to_string(),
            key: key.to_string(),
            expires: now() + LINK_LIFETIME.as_secs(),
        };
        (self.sign(&grant), grant)
    }

    /// The session a token names, read without checking its signature: only to route the
    /// download to the node that signed it (which checks it).
    pub fn session_named(token: &str) -> Option<String> {
        let payload = B64.decode(token.split_once('.')?.0).ok()?;
        serde_json::from_slice::<Grant>(&payload)
            .ok()
            .map(|g| g.session)
    }

    /// The grant a token carries, when its signature holds and it has not expired.
    pub fn verify(&self, token: &str) -> Result<Grant, ServiceError> {
        let bad = || {
            ServiceError::new(
                ErrorKind::NotFound,
                "this download link is not valid: ask for the file again (read_file) to get a new one",
            )
        };
        let (payload, tag) = token.split_once('.').ok_or_else(bad)?;
        let payload = B64.decode(payload).map_err(|_| bad())?;
        let tag = B64.decode(tag).map_err(|_| bad())?;
        hmac::verify(&self.key, &payload, &tag).map_err(|_| bad())?;
        let grant: Grant = serde_json::from_slice(&payload).map_err(|_| bad())?;
        if now() >= grant.expires {
            return Err(ServiceError::new(
                ErrorKind::Gone,
                "this download link has expired: ask for the file again (read_file) to get a new one",
            ));
        }
        Ok(grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_holds_only_with_its_signature_and_before_its_expiry() {
        let signer = Signer::from_secret(&[7u8; 32]);
        let (token, grant) = signer.grant("abc", "data/x.bin", "key1");
        assert_eq!(signer.verify(&token).unwrap(), grant);

        let other = Signer::from_secret(&[8u8; 32]);
        assert_eq!(other.verify(&token).unwrap_err().kind, ErrorKind::NotFound);

        // Another path under the same signature.
        let (payload, tag) = token.split_once('.').unwrap();
        let mut forged = grant.clone();
        forged.path = "secret.txt".into();
        let forged = format!("{}.{tag}", B64.encode(serde_json::to_vec(&forged).unwrap()));
        assert_ne!(payload, forged.split_once('.').unwrap().0);
        assert!(signer.verify(&forged).is_err());

        let expired = Grant {
            expires: now() - 1,
            ..grant
        };
        assert_eq!(
            signer.verify(&signer.sign(&expired)).unwrap_err().kind,
            ErrorKind::Gone
        );
        assert!(signer.verify("garbage").is_err());
    }

    #[test]
    fn the_secret_is_kept_in_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let a = Signer::load_or_create(dir.path()).unwrap();
        let b = Signer::load_or_create(dir.path()).unwrap();
        let (token, _) = a.grant("s", "p", "k");
        assert!(
            b.verify(&token).is_ok(),
            "a second load reads the same secret"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SECRET_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
