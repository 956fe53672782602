//! What every Sandpit transport shares: sessions with an owner, a lifetime and an idle
//! timeout ([`Manager`]); API keys kept hashed in the embedded store ([`Store`]); the request
//! and answer types with their JSON Schemas ([`types`]); the settings ([`ServiceConfig`]);
//! counters ([`Metrics`]); an error with a kind each transport maps ([`ServiceError`]); and
//! the seams a cluster node plugs into ([`Registry`], [`KeyStore`]).
#![deny(missing_docs)]

mod config;
mod error;
mod keys;
mod manager;
mod metrics;
mod registry;
mod store;

/// The request and answer types (they live in the `sandpit` crate, beside the tools).
pub use sandpit::api as types;

pub use config::{
    default_data_dir, etcd_endpoints, ClusterConfig, E2bConfig, E2bTemplate, PeerTls, ServiceConfig,
};
pub use error::{ErrorKind, ServiceError, ServiceResult, Subject};
pub use keys::{key_hash, mint_key, KeyStore, NewKey};
pub use manager::{pool_name, seconds, Busy, Entry, Manager, Owner, Program, SERVER_LABEL};
pub use metrics::Metrics;
pub use registry::{Ownership, Registry, EPOCH_LABEL, NODE_LABEL};
pub use store::{now, KeyFormat, KeyInfo, SessionRecord, Store};

/// Snapshots of sessions in object storage (the store, manifests, the API's snapshot types).
pub use sandpit_snapshot as snapshots;

/// The labels Sandpit puts on containers.
pub use sandpit::labels;
