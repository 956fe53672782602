//! Snapshot names (keys): folders of the store, `/`-separated parts of letters, digits,
//! `.`, `_` and `-`.

use crate::error::{Error, Result};

/// The object holding a snapshot's manifest, inside the snapshot's folder.
pub const MANIFEST: &str = "manifest.json";
/// The object holding a snapshot's workdir archive, inside the snapshot's folder.
pub const ARCHIVE: &str = "workdir.tar.gz";

/// Checks one part of a name.
pub(crate) fn check_segment(part: &str) -> std::result::Result<(), String> {
    if part.is_empty() {
        return Err("it is empty".into());
    }
    if part.len() > 128 {
        return Err("a part is at most 128 characters".into());
    }
    if part == "." || part == ".." {
        return Err("`.` and `..` are not names".into());
    }
    if part.starts_with('.') {
        return Err("a part may not start with `.`".into());
    }
    if let Some(c) = part
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return Err(format!(
            "{c:?} is not allowed: use letters, digits, `.`, `_` and `-`"
        ));
    }
    Ok(())
}

/// Checks a snapshot's name: one or more parts separated by `/` (at most 8, 512 characters).
pub fn check_key(key: &str) -> Result<()> {
    let invalid = |reason: String| Error::InvalidName {
        name: key.to_string(),
        reason,
    };
    if key.is_empty() {
        return Err(invalid("a snapshot needs a name".into()));
    }
    if key.len() > 512 {
        return Err(invalid("a name is at most 512 characters".into()));
    }
    let parts: Vec<&str> = key.split('/').collect();
    if parts.len() > 8 {
        return Err(invalid("a name has at most 8 `/`-separated parts".into()));
    }
    for part in &parts {
        check_segment(part).map_err(|r| invalid(format!("part {part:?}: {r}")))?;
    }
    if matches!(*parts.last().unwrap_or(&""), MANIFEST | ARCHIVE) {
        return Err(invalid(format!(
            "{MANIFEST} and {ARCHIVE} are the names of a snapshot's own objects"
        )));
    }
    Ok(())
}

/// The manifest's object key of snapshot `key`.
pub(crate) fn manifest_key(key: &str) -> String {
    format!("{key}/{MANIFEST}")
}

/// The archive's object key of snapshot `key`.
pub(crate) fn archive_key(key: &str) -> String {
    format!("{key}/{ARCHIVE}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked() {
        for ok in ["a", "key_1/base-v2.0", "a/b/c"] {
            check_key(ok).unwrap();
        }
        for bad in [
            "",
            "/a",
            "a/",
            "a//b",
            "../a",
            "a/..",
            ".hidden",
            "a b",
            "a\\b",
            "ü",
            "x/manifest.json",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?} accepted");
        }
    }
}
