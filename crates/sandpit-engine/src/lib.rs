//! The seam between Sandpit's sessions and a container engine.
//!
//! [`ContainerEngine`] is every call a session makes (containers and their attached main
//! process, execs, archives in and out, networks, volumes, images, commit, stats); [`Engine`] is the
//! cheap handle sessions share. What differs between engines is reported in
//! [`EngineInfo::capabilities`], never guessed from the endpoint. `sandpit-docker` implements
//! the trait over the Docker API, for Docker and for Podman.
#![deny(missing_docs)]

mod connection;
mod engine;
mod error;
mod info;
mod reference;
mod spec;

pub use connection::{
    docker_cert_path, Connection, ConnectionError, Endpoint, TlsFiles, DEFAULT_SOCKET,
};
pub use engine::{
    Attached, ContainerEngine, Engine, EngineResult, ExecChunk, ExecStream, Progress, StreamKind,
};
pub use error::{one_line, EngineError, EngineErrorKind};
pub use info::{
    Capabilities, ContainerState, ContainerStats, ContainerStatus, ContainerSummary, EngineInfo,
    EngineKind, ExecStatus, ImageSummary, RuntimeInfo, RuntimeKind, VolumeSummary,
};
pub use reference::split_reference;
pub use spec::{
    Body, BuildRequest, ByteStream, ContainerSpec, ExecRequest, ImportRequest, Resources,
    TmpfsMount, Ulimit, VolumeMount, VolumeSpec,
};
