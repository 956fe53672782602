//! Labels on every container Sandpit creates, so any process can find, adopt or clean up
//! what an earlier one left.

/// The session id.
pub const SESSION: &str = "sandpit.session";
/// The language name.
pub const LANGUAGE: &str = "sandpit.language";
/// Unix seconds after which the container may be removed by anyone.
pub const EXPIRES_AT: &str = "sandpit.expires-at";
/// `host:pid` of the process that opened the session.
pub const OWNER: &str = "sandpit.owner";
/// Marks every Sandpit container, whatever its session.
pub const MANAGED: &str = "sandpit.managed";
