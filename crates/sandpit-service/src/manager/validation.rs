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
