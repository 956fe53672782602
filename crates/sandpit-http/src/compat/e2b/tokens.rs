//! A sandbox's tokens: `envdAccessToken` (the process and file service, `X-Access-Token`) and
//! `trafficAccessToken` (the code interpreter's port, `E2B-Traffic-Access-Token`). Each is the
//! owner's key id and an HMAC of the sandbox id under a secret of the server, so nothing is
//! stored, they survive a restart, and the owner a token names is the one the sandbox must
//! have: another key's token finds nothing. Presigned file URLs carry E2B's v1 signature, a
//! SHA-256 over the path, the operation, the user and the access token.

use ring::hmac;
use sandpit_service::{Owner, ServiceError};

use crate::state::AppState;

/// What a token opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// The process and file service.
    Envd,
    /// The sandbox's ports (the code interpreter).
    Traffic,
}

impl Purpose {
    fn label(self) -> &'static str {
        match self {
            Purpose::Envd => "envd",
            Purpose::Traffic => "traffic",
        }
    }
}

fn key(state: &AppState) -> Result<hmac::Key, ServiceError> {
    let secret = state.manager.store().secret()?;
    Ok(hmac::Key::new(hmac::HMAC_SHA256, &secret))
}

fn message(purpose: Purpose, sandbox: &str, owner: &Owner) -> String {
    format!("e2b-{}\0{sandbox}\0{}", purpose.label(), owner.0)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The token of `purpose` for `owner`'s sandbox `sandbox`.
pub fn token(
    state: &AppState,
    purpose: Purpose,
    sandbox: &str,
    owner: &Owner,
) -> Result<String, ServiceError> {
    let tag = hmac::sign(&key(state)?, message(purpose, sandbox, owner).as_bytes());
    Ok(format!("{}.{}", owner.0, hex(tag.as_ref())))
}

/// The owner a token was made for, when it is a token of `purpose` for `sandbox`.
pub fn verify(
    state: &AppState,
    purpose: Purpose,
    sandbox: &str,
    token: &str,
) -> Result<Option<Owner>, ServiceError> {
    let Some((owner, tag)) = token.trim().rsplit_once('.') else {
        return Ok(None);
    };
    let Some(tag) = unhex(tag) else {
        return Ok(None);
    };
    let owner = Owner(owner.to_string());
    let valid = hmac::verify(
        &key(state)?,
        message(purpose, sandbox, &owner).as_bytes(),
        &tag,
    )
    .is_ok();
    Ok(valid.then_some(owner))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() != 64 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a presigned URL lets its holder do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// Download (`GET /files`).
    Read,
    /// Upload (`POST /files`).
    Write,
}

/// E2B's v1 file signature: `v1_` and the unpadded base64 of SHA-256 over
/// `path:operation:user:token[:expiration]` (`user` empty for the default user).
pub fn file_signature(
    path: &str,
    operation: Operation,
    user: &str,
    access_token: &str,
    expiration: Option<u64>,
) -> String {
    use base64::Engine as _;
    let operation = match operation {
        Operation::Read => "read",
        Operation::Write => "write",
    };
    let raw = match expiration {
        Some(e) => format!("{path}:{operation}:{user}:{access_token}:{e}"),
        None => format!("{path}:{operation}:{user}:{access_token}"),
    };
    let digest = ring::digest::digest(&ring::digest::SHA256, raw.as_bytes());
    format!(
        "v1_{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest.as_ref())
    )
}

/// True when two texts are equal, compared in time that does not depend on where they differ.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_sdks() {
        // Python: get_signature("/home/user/a.txt", "read", None, "tok", None)
        assert_eq!(
            file_signature("/home/user/a.txt", Operation::Read, "", "tok", None),
            "v1_Zkbb3914oLJLvMBzCAHQhm2ydBLxbSx2eQUR/kLdvIY"
        );
        let with_expiry = file_signature("a", Operation::Write, "user", "tok", Some(1700000000));
        assert!(with_expiry.starts_with("v1_"));
        assert_ne!(
            with_expiry,
            file_signature("a", Operation::Write, "user", "tok", None)
        );
    }

    #[test]
    fn comparison_is_exact() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }

    #[test]
    fn hex_parses_only_a_full_tag() {
        assert_eq!(unhex(&"ab".repeat(32)).unwrap().len(), 32);
        assert!(unhex("abc").is_none());
        assert!(unhex(&"zz".repeat(32)).is_none());
    }
}
