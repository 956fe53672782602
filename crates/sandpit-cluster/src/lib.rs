//! Sandpit nodes sharing a registry in etcd. Each node keeps its own engine and the single
//! server's code path; etcd holds what they share:
//!
//! - node leases carrying each node's address, engine, capacity and load ([`Cluster`]);
//! - session records, written with a transaction that fails if the id exists (the service's
//!   [`sandpit_service::Registry`] seam);
//! - keys, hashed, and their revocations ([`ClusterKeys`], the service's key-store seam);
//! - drains and the epochs of nodes declared lost (their sessions answer 410 and their
//!   containers are fenced, never resurrected).
//!
//! Each node reads a watched local copy ([`View`]): requests never wait on etcd. Placement
//! is best-of-K ([`Placement`]); forwarding a request to the node that owns its session is
//! the HTTP layer's (it asks [`Cluster::lookup`]). A single server never reaches this crate.
#![deny(missing_docs)]

mod admin;
mod cache;
mod etcd;
mod keys;
pub mod layout;
mod node;
mod placement;
mod pool_members;
mod registry;
mod routing;

pub use admin::{Admin, NodeStatus};
pub use cache::View;
pub use keys::ClusterKeys;
pub use node::{Cluster, NodeSpec};
pub use placement::{choose, Placement, CHOICES};
pub use pool_members::ClaimedMember;
pub use routing::Route;
