//! What Sandpit asks an engine to make: containers, execs, volumes, images.

use std::collections::HashMap;
use std::pin::Pin;

use bytes::Bytes;
use futures_util::Stream;

use crate::error::EngineError;

/// A stream of bytes to or from the engine (archives, root filesystems).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, EngineError>> + Send>>;

/// A request body: whole, or streamed so that memory stays bounded.
pub enum Body {
    /// All bytes at once.
    Full(Bytes),
    /// Chunks as they come.
    Stream(ByteStream),
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Self {
        Body::Full(Bytes::from(v))
    }
}

impl std::fmt::Debug for Body {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Body::Full(b) => write!(f, "Body::Full({} bytes)", b.len()),
            Body::Stream(_) => f.write_str("Body::Stream"),
        }
    }
}

/// A memory filesystem mounted in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TmpfsMount {
    /// Where it is mounted.
    pub target: String,
    /// Its size in bytes.
    pub size: u64,
    /// The mode of its root, e.g. `0o1777`.
    pub mode: u32,
    /// `(uid, gid)` owning its root; `None` for root. Engines that cannot set it at mount
    /// time report so in [`crate::Capabilities::tmpfs_owner`].
    pub owner: Option<(u32, u32)>,
    /// Programs may run from it (engines mount tmpfs `noexec` otherwise).
    pub exec: bool,
}

/// A named volume mounted in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeMount {
    /// The volume's name.
    pub source: String,
    /// Where it is mounted.
    pub target: String,
    /// Mounted read-only.
    pub read_only: bool,
}

/// A resource limit (`ulimit`), soft and hard alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    /// `nofile`, `fsize`, ...
    pub name: String,
    /// The limit.
    pub value: u64,
}

/// Resource limits of a container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    /// Memory in bytes.
    pub memory: u64,
    /// Memory plus swap in bytes (equal to `memory`: no swap).
    pub memory_swap: u64,
    /// CPUs (fractions allowed).
    pub cpus: f64,
    /// Most processes and threads.
    pub pids: i64,
    /// Resource limits.
    pub ulimits: Vec<Ulimit>,
}

/// A container to create.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerSpec {
    /// Its name.
    pub name: String,
    /// The image.
    pub image: String,
    /// Replaces the image's entrypoint (`Some(vec![])` clears it).
    pub entrypoint: Option<Vec<String>>,
    /// The command.
    pub cmd: Vec<String>,
    /// `uid:gid` of the main process; `None` for the image's user.
    pub user: Option<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// The working directory.
    pub working_dir: Option<String>,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Limits.
    pub resources: Resources,
    /// Capabilities dropped (`ALL`).
    pub cap_drop: Vec<String>,
    /// Capabilities added back.
    pub cap_add: Vec<String>,
    /// Security options (`no-new-privileges`).
    pub security_opt: Vec<String>,
    /// The network mode: `none`, `bridge` (the engine's default network) or a network name.
    pub network: String,
    /// Memory filesystems.
    pub tmpfs: Vec<TmpfsMount>,
    /// Volumes.
    pub volumes: Vec<VolumeMount>,
    /// A size limit of the container's writable layer (needs a storage driver that can).
    pub storage_size: Option<u64>,
    /// The OCI runtime (`runc`, `runsc`); `None` for the engine's default.
    pub runtime: Option<String>,
    /// The root filesystem is mounted read-only (only mounts can be written).
    pub read_only_rootfs: bool,
    /// The main process's standard input stays open for attaching clients, across clients
    /// (where the engine can: Podman closes it when the first client goes).
    pub stdin_open: bool,
    /// The engine keeps no log of the main process's output: it is only read by attaching.
    pub no_logs: bool,
}

/// A command to start in a running container.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ExecRequest {
    /// Program and arguments.
    pub cmd: Vec<String>,
    /// `KEY=value` pairs.
    pub env: Vec<String>,
    /// `uid:gid`.
    pub user: String,
    /// The working directory.
    pub working_dir: Option<String>,
    /// Attach standard input (the returned [`crate::ExecStream`] then has an `input`).
    pub stdin: bool,
}

/// A volume to create.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeSpec {
    /// Its name.
    pub name: String,
    /// Driver options (`type`, `device`, `o`) of the engine's `local` driver.
    pub driver_opts: HashMap<String, String>,
    /// Labels.
    pub labels: HashMap<String, String>,
}

/// An image to build from a tar context.
#[derive(Debug)]
pub struct BuildRequest {
    /// The build context as a tar archive.
    pub context: Bytes,
    /// The Dockerfile's path inside the context.
    pub dockerfile: String,
    /// The tag to give the image.
    pub tag: String,
    /// `ARG` values.
    pub build_args: HashMap<String, String>,
}

/// A root filesystem to import as an image (`docker import`).
pub struct ImportRequest {
    /// The root filesystem as a tar stream.
    pub rootfs: ByteStream,
    /// The reference to give the image.
    pub reference: String,
    /// Dockerfile instructions applied to the import (`ENV ...`, `CMD ...`).
    pub changes: Vec<String>,
}

impl std::fmt::Debug for ImportRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportRequest")
            .field("reference", &self.reference)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}
