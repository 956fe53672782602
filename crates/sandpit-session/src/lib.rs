//! Sandboxed code execution sessions on a Docker engine.
//!
//! A [`SandboxSession`] is one container: opened from a [`SessionBuilder`], driven by a
//! language [`Runner`], closed explicitly with [`SandboxSession::close`] or, as a safety net,
//! when dropped. [`with_session`] always closes. The engine is the local socket by default,
//! or a remote one over TCP + TLS ([`Connection`]).
#![deny(missing_docs)]

mod builder;
mod close;
mod connection;
mod copy;
pub mod debian;
mod disk;
mod error;
mod exec;
mod gc;
mod ids;
pub mod image;
mod kernel;
pub mod labels;
mod language;
mod open;
mod output;
mod policy;
mod pool;
mod run;
mod runner;
mod session;

pub use builder::{parse_size, Network, SessionBuilder};
pub use connection::{docker_cert_path, Connection, Endpoint, Engine, TlsFiles, DEFAULT_SOCKET};
pub use disk::loop_disks_available;
pub use error::{Error, Result};
pub use gc::{gc, GcReport};
pub use kernel::{ExecuteOptions, ExecuteResult, ExecutionError, MimeBundle};
pub use language::{Language, UnknownLanguage};
pub use open::{CA_ENV, CA_PATH};
pub use output::{Artifact, ExecOutput, OutputChunk, OutputSink, RunResult, StreamKind};
pub use policy::SecurityPolicy;
pub use pool::{PoolConfig, PooledSession, SessionPool, WhenExhausted};
pub use run::{CommandOptions, RunOptions, RunStream};
pub use runner::{check_package_spec, Command, ImageSpec, KernelSpec, RunPlan, Runner, User};
pub use session::{with_session, SandboxSession};

/// The bollard version Sandpit is built on, for callers who need raw engine access.
pub use bollard;
