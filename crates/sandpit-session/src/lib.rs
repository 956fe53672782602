//! Sandboxed code execution sessions on a container engine.
//!
//! A [`SandboxSession`] is one container: opened from a [`SessionBuilder`], driven by a
//! language [`Runner`], closed explicitly with [`SandboxSession::close`] or, as a safety net,
//! when dropped. [`with_session`] always closes. Every engine call goes through the
//! [`ContainerEngine`] trait; [`connect`] reaches Docker or Podman on the local socket or a
//! remote engine over TCP + TLS ([`Connection`]).
#![deny(missing_docs)]

mod adopt;
mod agent;
mod agent_binary;
pub mod archive;
mod artifacts;
mod background;
mod builder;
mod capped;
mod close;
mod command;
mod copy;
pub mod debian;
mod disk;
mod drop_worker;
mod env;
mod error;
mod files;
mod gc;
mod ids;
pub mod image;
mod install;
mod kernel;
pub mod labels;
mod language;
mod launch;
mod library_image;
mod open;
mod output;
mod packages;
mod paths;
mod pause;
mod policy;
mod pool;
mod reset;
mod restart;
mod run;
mod runner;
mod session;
mod settings;
mod state;
mod step;
pub mod time;
mod usage;

pub use background::{ProcessEvent, ProcessExit, ProcessHandle, ProcessInfo, Signal, SpawnOptions};
pub use builder::{parse_size, SessionBuilder};
pub use command::CommandOptions;
pub use disk::loop_disks_available;
pub use drop_worker::wait_for_drops;
pub use error::{Error, ErrorKind, Result};
pub use files::{glob_match, FileInfo, FileKind, Files, ListOptions, MAX_READ};
pub use gc::{gc, GcReport};
pub use kernel::{
    ContextInfo, ExecuteOptions, ExecuteResult, ExecutionError, MimeBundle, DEFAULT_CONTEXT,
};
pub use language::{Language, UnknownLanguage};
pub use output::{Artifact, ExecOutput, OutputChunk, OutputSink, RunResult, RunUsage, StreamKind};
pub use packages::PackageSpec;
pub use policy::{Network, RuntimeChoice, SecurityPolicy};
pub use pool::{PoolConfig, PooledSession, SessionPool, WhenExhausted};
pub use run::{RunOptions, RunStream};
pub use runner::{
    check_package_spec, Command, ImageSpec, KernelSpec, Package, RunPlan, Runner, User,
};
pub use sandpit_engine::{
    docker_cert_path, one_line, Capabilities, Connection, ContainerEngine, Endpoint, Engine,
    EngineError, EngineErrorKind, EngineInfo, EngineKind, RuntimeInfo, RuntimeKind, TlsFiles,
    DEFAULT_SOCKET,
};
pub use session::{with_session, SandboxSession};
pub use usage::SessionUsage;

/// The engine seam: the trait every engine implements and its request and answer types.
pub use sandpit_engine as engine;
pub use settings::{CA_ENV, CA_PATH};

/// Connects to the engine at `connection` (Docker or Podman, through the Docker API) and
/// negotiates the API version, failing within the connection's timeout.
pub async fn connect(connection: &Connection) -> Result<Engine> {
    sandpit_docker::DockerEngine::connect_engine(connection)
        .await
        .map_err(|e| {
            Error::engine(e, |cause| match cause.kind {
                EngineErrorKind::InvalidRequest => Error::InvalidConnection(cause.message),
                _ => Error::EngineUnreachable {
                    reason: cause.message,
                },
            })
        })
}

/// Connects to the engine the environment names (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
/// `DOCKER_CERT_PATH`, as the docker CLI reads them).
pub async fn connect_env() -> Result<Engine> {
    connect(&Connection::from_env()?).await
}
