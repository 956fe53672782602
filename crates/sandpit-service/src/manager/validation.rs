//! Checks of request fields shared by the operations.

use std::time::Duration;

use crate::error::{ServiceError, ServiceResult};

/// Seconds from a request, checked.
pub fn seconds(what: &str, secs: f64) -> ServiceResult<Duration> {
    if !(secs > 0.0 && secs.is_finite() && secs <= 86_400.0) {
        return Err(ServiceError::invalid(format!(
            "{what} {secs}: give seconds between 0 and 86400"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub(super) fn check_name(name: &str) -> ServiceResult<()> {
    if name.is_empty() || name.len() > 128 || name.chars().any(|c| c.is_control()) {
        return Err(ServiceError::invalid(
            "a session name is 1 to 128 printable characters",
        ));
    }
    Ok(())
}

/// An idle timeout no longer than the longest lifetime (a session cannot idle past its end).
pub(super) fn check_idle(idle: u64, max_lifetime: u64) -> ServiceResult<()> {
    if idle == 0 || idle > max_lifetime {
        return Err(ServiceError::invalid(format!(
            "idle_timeout {idle} s: give between 1 s and {max_lifetime} s (the longest lifetime)"
        )));
    }
    Ok(())
}

pub(super) fn check_meta(key: &str) -> ServiceResult<()> {
    if key.is_empty()
        || key.len() > 128
        || !key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(ServiceError::invalid(format!(
            "metadata key {key:?}: use letters, digits, _, - and ."
        )));
    }
    // Metadata become container labels: Sandpit's own (owner, session, expiry) are not the
    // caller's to set.
    if key.starts_with("sandpit.") {
        return Err(ServiceError::invalid(format!(
            "metadata key {key:?}: keys starting with `sandpit.` are reserved for Sandpit's own labels"
        )));
    }
    Ok(())
}

/// An image reference as the engine reads one (`name[:tag][@digest]`), so a malformed one is
/// bad input rather than an engine failure.
pub(super) fn check_image(image: &str) -> ServiceResult<()> {
    let ok = !image.is_empty()
        && image.len() <= 255
        && !image.starts_with(['-', '.', '/', ':', '@'])
        && image
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/' | ':' | '@'))
        && !image.contains("..")
        && !image.contains("//");
    if !ok {
        return Err(ServiceError::invalid(format!(
            "image {image:?} is not an image reference such as sandpit/python:latest"
        )));
    }
    Ok(())
}

/// Top-level folders a workdir may not lie in: the system's own (a volume mounted there would
/// hide what the image needs) and `/tmp`, a scratch mount of every sandbox.
const SYSTEM_FOLDERS: [&str; 14] = [
    "bin", "boot", "dev", "etc", "lib", "lib32", "lib64", "proc", "run", "sbin", "sys", "tmp",
    "usr", "var",
];

/// The sandbox user's scratch home, mounted in every sandbox.
const SCRATCH_HOME: &str = "/home/sandbox";

/// A workdir: an absolute, plain path (no `.`, `..` or empty parts, printable) outside the
/// system's own folders.
pub(super) fn check_workdir(dir: &str) -> ServiceResult<()> {
    let parts: Vec<&str> = dir.strip_prefix('/').unwrap_or("").split('/').collect();
    let plain = dir.starts_with('/')
        && dir.len() <= 255
        && parts
            .iter()
            .all(|p| !p.is_empty() && *p != "." && *p != ".." && !p.chars().any(char::is_control))
        && !dir.contains(':')
        && !SYSTEM_FOLDERS.contains(&parts[0])
        && dir != SCRATCH_HOME
        && !dir.starts_with(&format!("{SCRATCH_HOME}/"));
    if !plain {
        return Err(ServiceError::invalid(format!(
            "workdir {dir:?}: give an absolute folder such as /home/user, outside the system's folders ({}) and {SCRATCH_HOME}",
            SYSTEM_FOLDERS.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workdirs_are_plain_folders_of_the_user() {
        for ok in ["/home/user", "/sandbox", "/workspace/project"] {
            check_workdir(ok).unwrap();
        }
        for bad in [
            "",
            "/",
            "home/user",
            "/home/../etc",
            "/etc",
            "/usr/local/x",
            "/a//b",
            "/x:y",
            "/a/./b",
        ] {
            assert!(check_workdir(bad).is_err(), "{bad:?} passed");
        }
    }
}
