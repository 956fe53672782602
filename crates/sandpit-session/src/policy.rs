//! What untrusted code may do: every switch maps to enforcement by the kernel or the engine
//! (capabilities, cgroups, rlimits, mounts, network attachment), never to scanning source text.

/// The network a session's container gets.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Network {
    /// No network at all: only the loopback interface.
    #[default]
    None,
    /// The engine's default network: outbound access.
    Bridge,
    /// A named network.
    Named(String),
}

impl Network {
    /// The engine's network mode for this choice.
    pub fn mode(&self) -> String {
        match self {
            Network::None => "none".into(),
            Network::Bridge => "bridge".into(),
            Network::Named(n) => n.clone(),
        }
    }
}

impl std::str::FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" => Ok(Network::None),
            "bridge" => Ok(Network::Bridge),
            "" => Err("the network name is empty: use none or bridge".into()),
            other => Ok(Network::Named(other.to_string())),
        }
    }
}

/// Which OCI runtime a session's container runs under.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RuntimeChoice {
    /// The engine's default runtime (runc, usually).
    #[default]
    EngineDefault,
    /// gVisor (`runsc`) when the engine offers it, else the default.
    PreferGvisor,
    /// This runtime by name; opening fails when the engine does not offer it.
    Named(String),
}

/// One MiB.
const MIB: u64 = 1 << 20;

/// Limits and permissions of a session. Start from a preset and adjust.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SecurityPolicy {
    /// The network user code sees. Library installs get the bridge only while they run.
    pub network: Network,
    /// Memory limit in bytes, with no extra swap.
    pub memory: u64,
    /// CPUs (fractions allowed).
    pub cpus: f64,
    /// Most processes and threads at once (cgroup pids limit).
    pub max_processes: i64,
    /// Largest file code may write, in bytes (RLIMIT_FSIZE).
    pub max_file_size: u64,
    /// Most open files per process (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Bytes code may write in the workdir; past it writes fail with ENOSPC.
    pub disk: u64,
    /// Size of each memory-backed scratch folder (/tmp, the home folder), counted in `memory`.
    pub scratch: u64,
    /// False makes the workdir read-only for user code (Sandpit can still place files there).
    pub workdir_writable: bool,
    /// False makes `execute_command` refuse shell commands.
    pub allow_commands: bool,
    /// The OCI runtime: the engine's default, gVisor when offered, or one by name.
    pub runtime: RuntimeChoice,
}

impl SecurityPolicy {
    /// The default: no network, 512 MiB, 1 CPU, 256 processes, 1 GiB disk, commands allowed.
    pub fn standard() -> Self {
        SecurityPolicy {
            network: Network::None,
            memory: 512 * MIB,
            cpus: 1.0,
            max_processes: 256,
            max_file_size: 1024 * MIB,
            max_open_files: 1024,
            disk: 1024 * MIB,
            scratch: 64 * MIB,
            workdir_writable: true,
            allow_commands: true,
            runtime: RuntimeChoice::EngineDefault,
        }
    }

    /// Tighter: 256 MiB, half a CPU, 64 processes, 256 MiB disk, 64 MiB files, no shell
    /// commands, and gVisor (`runsc`) as the runtime when the engine offers it.
    pub fn strict() -> Self {
        SecurityPolicy {
            network: Network::None,
            memory: 256 * MIB,
            cpus: 0.5,
            max_processes: 64,
            max_file_size: 64 * MIB,
            max_open_files: 256,
            disk: 256 * MIB,
            scratch: 32 * MIB,
            workdir_writable: true,
            allow_commands: false,
            runtime: RuntimeChoice::PreferGvisor,
        }
    }

    /// Looser, for trusted-ish code: bridge network, 2 GiB, 2 CPUs, 1024 processes, 4 GiB disk.
    pub fn permissive() -> Self {
        SecurityPolicy {
            network: Network::Bridge,
            memory: 2048 * MIB,
            cpus: 2.0,
            max_processes: 1024,
            max_file_size: 4096 * MIB,
            max_open_files: 4096,
            disk: 4096 * MIB,
            scratch: 256 * MIB,
            workdir_writable: true,
            allow_commands: true,
            runtime: RuntimeChoice::EngineDefault,
        }
    }

    /// A preset by name: `strict`, `standard` or `permissive`.
    pub fn preset(name: &str) -> Result<Self, String> {
        match name {
            "strict" => Ok(Self::strict()),
            "standard" => Ok(Self::standard()),
            "permissive" => Ok(Self::permissive()),
            other => Err(format!(
                "unknown policy {other:?}: choose strict, standard or permissive"
            )),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), String> {
        if self.memory < 16 * MIB {
            return Err(format!(
                "memory limit {} bytes is below the 16 MiB a sandbox needs",
                self.memory
            ));
        }
        if !(self.cpus > 0.0 && self.cpus.is_finite()) {
            return Err(format!("cpus must be a positive number, got {}", self.cpus));
        }
        if self.max_processes < 8 {
            return Err(format!(
                "max_processes {} is below the 8 a sandbox needs",
                self.max_processes
            ));
        }
        if self.disk < 4 * MIB {
            return Err(format!("disk limit {} bytes is below 4 MiB", self.disk));
        }
        if let RuntimeChoice::Named(name) = &self.runtime {
            if name.trim().is_empty() || name.contains(char::is_whitespace) {
                return Err(format!(
                    "runtime name {name:?} is not a runtime name such as runsc"
                ));
            }
        }
        if self.max_file_size == 0 || self.max_open_files < 16 || self.scratch < MIB {
            return Err(
                "max_file_size, max_open_files (>= 16) and scratch (>= 1 MiB) must be set".into(),
            );
        }
        Ok(())
    }
}

impl Default for SecurityPolicy {
    fn default() -> Self {
        Self::standard()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_order_from_strict_to_permissive() {
        let (s, d, p) = (
            SecurityPolicy::strict(),
            SecurityPolicy::standard(),
            SecurityPolicy::permissive(),
        );
        assert!(s.memory < d.memory && d.memory < p.memory);
        assert!(s.disk < d.disk && d.disk < p.disk);
        assert!(!s.allow_commands && d.allow_commands);
        assert_eq!(d.network, Network::None);
        assert_eq!(p.network, Network::Bridge);
        for policy in [s, d, p] {
            policy.validate().unwrap();
        }
        assert!(SecurityPolicy::preset("lax").is_err());
        let mut bad = SecurityPolicy::standard();
        bad.cpus = 0.0;
        assert!(bad.validate().is_err());
    }
}
