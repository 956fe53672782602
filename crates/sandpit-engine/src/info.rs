//! What an engine says about itself and its objects.

use std::collections::HashMap;

use serde::Serialize;

/// Which engine answers on the endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// Docker Engine (moby).
    Docker,
    /// Podman's Docker-compatible service.
    Podman,
}

impl std::fmt::Display for EngineKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EngineKind::Docker => "Docker",
            EngineKind::Podman => "Podman",
        })
    }
}

/// What kind of isolation an OCI runtime gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeKind {
    /// Namespaces and cgroups on the host kernel (runc, crun).
    Native,
    /// A user-space kernel between the code and the host (gVisor's runsc).
    Gvisor,
}

/// One OCI runtime the engine offers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuntimeInfo {
    /// The name to ask for it by (`runc`, `runsc`).
    pub name: String,
    /// The binary.
    pub path: String,
    /// Its isolation.
    pub kind: RuntimeKind,
    /// True when a network can be attached to a running container of this runtime.
    pub network_hotplug: bool,
}

/// What differs between engines, reported by the engine rather than guessed by callers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Capabilities {
    /// The engine runs on this host and sees its block devices: a session's workdir can be a
    /// loop-mounted filesystem of its own (a disk limit with real ENOSPC on any storage).
    pub shares_host: bool,
    /// The storage driver can limit a container's writable layer (`storage_opt size`).
    pub storage_quota: bool,
    /// Networks can be connected to and disconnected from containers (native runtimes).
    pub network_hotplug: bool,
    /// Containers can be committed to images.
    pub commit: bool,
    /// Containers can be frozen and thawed.
    pub pause: bool,
    /// A tmpfs mount can be owned by a given uid at mount time.
    pub tmpfs_owner: bool,
    /// A container's standard input stays open when an attached client goes away, so a new
    /// client can attach to it again (Docker); Podman closes it.
    pub attach_reopens_stdin: bool,
}

/// The engine's identity and abilities.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EngineInfo {
    /// Docker or Podman.
    pub kind: EngineKind,
    /// The engine's version, e.g. `20.10.24`.
    pub version: String,
    /// The API version the engine speaks at most.
    pub api_version: String,
    /// The API version negotiated for this client.
    pub negotiated_api_version: String,
    /// The host's operating system.
    pub os: String,
    /// The host's kernel.
    pub kernel: String,
    /// The host's architecture as `uname -m` names it (`x86_64`, `aarch64`); empty when the
    /// engine does not say.
    pub arch: String,
    /// The storage driver, e.g. `overlay2`.
    pub storage_driver: String,
    /// The filesystem under the storage driver, e.g. `extfs` or `xfs`.
    pub backing_filesystem: String,
    /// `1` or `2`.
    pub cgroup_version: String,
    /// The runtimes offered.
    pub runtimes: Vec<RuntimeInfo>,
    /// The runtime used when none is asked for.
    pub default_runtime: String,
    /// What the engine can do.
    pub capabilities: Capabilities,
}

impl EngineInfo {
    /// The runtime named `name`, if the engine offers it.
    pub fn runtime(&self, name: &str) -> Option<&RuntimeInfo> {
        self.runtimes.iter().find(|r| r.name == name)
    }

    /// The first runtime of `kind` the engine offers.
    pub fn runtime_of_kind(&self, kind: RuntimeKind) -> Option<&RuntimeInfo> {
        self.runtimes.iter().find(|r| r.kind == kind)
    }
}

/// A container's state.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerState {
    /// True while it runs (also when paused).
    pub running: bool,
    /// True while frozen.
    pub paused: bool,
    /// Where it is in its life.
    pub status: ContainerStatus,
    /// The main process's exit code, once it exited.
    pub exit_code: Option<i64>,
    /// True when the main process was killed for memory.
    pub oom_killed: bool,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// The OCI runtime it runs under.
    pub runtime: Option<String>,
}

/// Where a container is in its life, as the engine says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerStatus {
    /// Made, never started.
    #[default]
    Created,
    /// Its main process runs.
    Running,
    /// Frozen.
    Paused,
    /// Being started again.
    Restarting,
    /// Its main process ended.
    Exited,
    /// Being removed.
    Removing,
    /// Removal failed half-way; it can only be removed.
    Dead,
}

impl ContainerStatus {
    /// The engine's word for a status (`created`, `running`, ...); `None` for a word it does not
    /// know. Podman's `stopped` and `configured` are Docker's `exited` and `created`.
    pub fn parse(word: &str) -> Option<ContainerStatus> {
        Some(match word {
            "created" | "configured" | "initialized" => ContainerStatus::Created,
            "running" => ContainerStatus::Running,
            "paused" => ContainerStatus::Paused,
            "restarting" => ContainerStatus::Restarting,
            "exited" | "stopped" | "stopping" => ContainerStatus::Exited,
            "removing" => ContainerStatus::Removing,
            "dead" => ContainerStatus::Dead,
            _ => return None,
        })
    }

    /// True for a container on its way out (being removed, or dead).
    pub fn is_going(self) -> bool {
        matches!(self, ContainerStatus::Removing | ContainerStatus::Dead)
    }
}

/// One container in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainerSummary {
    /// The engine's id.
    pub id: String,
    /// Its name, without a leading `/`.
    pub name: String,
    /// Its image.
    pub image: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// Where it is in its life.
    pub status: ContainerStatus,
    /// Unix seconds when it was made.
    pub created: i64,
}

/// One volume in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VolumeSummary {
    /// Its name.
    pub name: String,
    /// Labels.
    pub labels: HashMap<String, String>,
    /// When it was made (RFC 3339), when the engine says.
    pub created_at: Option<String>,
}

/// One image in a listing.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImageSummary {
    /// The engine's id.
    pub id: String,
    /// Its `repo:tag` references.
    pub tags: Vec<String>,
    /// Bytes.
    pub size: i64,
}

/// Resource usage of a container at one moment.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct ContainerStats {
    /// CPU time used since start, in nanoseconds.
    pub cpu_ns: u64,
    /// Memory in use now, in bytes, without inactive page cache (as `docker stats` shows it).
    pub memory_bytes: u64,
    /// Memory charged to the container's cgroup, page cache included.
    pub memory_usage_bytes: u64,
    /// Page cache charged to the container, in bytes.
    pub memory_cache_bytes: u64,
    /// Most memory used since start, where the engine knows it.
    pub memory_peak_bytes: Option<u64>,
    /// The memory limit.
    pub memory_limit_bytes: u64,
    /// Processes and threads now.
    pub pids: u64,
    /// Bytes received over the network.
    pub net_rx_bytes: u64,
    /// Bytes sent over the network.
    pub net_tx_bytes: u64,
}

/// An exec's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecStatus {
    /// True while it runs.
    pub running: bool,
    /// Its exit code, once it exited.
    pub exit_code: Option<i64>,
    /// Its process id on the engine's host; `0` or `None` when it never started.
    pub pid: Option<i64>,
}
