//! The native routes, one file per family.

pub mod files;
pub mod packages;
pub mod run;
pub mod sessions;
pub mod snapshots;
pub mod system;
