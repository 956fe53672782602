//! The agent's own cgroup (the sandbox's): version 1 or 2, each file `None` when missing
//! (gVisor shows no cgroup inside).

use std::path::{Path, PathBuf};

const MOUNT: &str = "/sys/fs/cgroup";

/// Where the sandbox's cgroup files are.
#[derive(Debug, Clone)]
pub enum Cgroup {
    /// The unified hierarchy: one folder.
    V2(PathBuf),
    /// One folder per controller.
    V1 {
        /// `memory`.
        memory: PathBuf,
        /// `cpuacct`.
        cpuacct: PathBuf,
        /// `pids`.
        pids: PathBuf,
    },
}

/// The folder of `path` (from `/proc/self/cgroup`) under `mount`, or `mount` itself when
/// the cgroup namespace or a bind mount shows the agent's cgroup there.
fn under(mount: &Path, path: &str) -> PathBuf {
    let nested = mount.join(path.trim_start_matches('/'));
    if nested.is_dir() {
        nested
    } else {
        mount.to_path_buf()
    }
}

impl Cgroup {
    /// Finds the agent's cgroup.
    pub fn find() -> Cgroup {
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        let path_of = |controller: &str| {
            own.lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    let (_, names, path) = (parts.next()?, parts.next()?, parts.next()?);
                    names
                        .split(',')
                        .any(|n| n == controller)
                        .then(|| path.to_string())
                })
                .next()
                .unwrap_or_else(|| "/".into())
        };
        let mount = Path::new(MOUNT);
        if mount.join("cgroup.controllers").exists() {
            return Cgroup::V2(under(mount, &path_of("")));
        }
        Cgroup::V1 {
            memory: under(&mount.join("memory"), &path_of("memory")),
            cpuacct: under(&mount.join("cpuacct"), &path_of("cpuacct")),
            pids: under(&mount.join("pids"), &path_of("pids")),
        }
    }

    /// Out-of-memory kills so far.
    pub fn oom_kills(&self) -> Option<u64> {
        match self {
            Cgroup::V2(dir) => keyed(&dir.join("memory.events"), "oom_kill"),
            Cgroup::V1 { memory, .. } => keyed(&memory.join("memory.oom_control"), "oom_kill"),
        }
    }

    /// CPU time used, in nanoseconds.
    pub fn cpu_ns(&self) -> Option<u64> {
        match self {
            Cgroup::V2(dir) => keyed(&dir.join("cpu.stat"), "usage_usec").map(|us| us * 1000),
            Cgroup::V1 { cpuacct, .. } => number(&cpuacct.join("cpuacct.usage")),
        }
    }

    /// Memory in use without inactive page cache.
    pub fn memory(&self) -> Option<u64> {
        let (current, stat, inactive) = match self {
            Cgroup::V2(dir) => (
                dir.join("memory.current"),
                dir.join("memory.stat"),
                "inactive_file",
            ),
            Cgroup::V1 { memory, .. } => (
                memory.join("memory.usage_in_bytes"),
                memory.join("memory.stat"),
                "total_inactive_file",
            ),
        };
        let current = number(&current)?;
        Some(current.saturating_sub(keyed(&stat, inactive).unwrap_or(0)))
    }

    /// The most memory used.
    pub fn memory_peak(&self) -> Option<u64> {
        match self {
            Cgroup::V2(dir) => number(&dir.join("memory.peak")),
            Cgroup::V1 { memory, .. } => number(&memory.join("memory.max_usage_in_bytes")),
        }
    }

    /// The memory limit (`None` when unlimited).
    pub fn memory_limit(&self) -> Option<u64> {
        let limit = match self {
            Cgroup::V2(dir) => number(&dir.join("memory.max")),
            Cgroup::V1 { memory, .. } => number(&memory.join("memory.limit_in_bytes")),
        }?;
        // Version 1 says "unlimited" with a number near the largest page-aligned i64.
        (limit < 1 << 62).then_some(limit)
    }

    /// Processes and threads.
    pub fn pids(&self) -> Option<u64> {
        match self {
            Cgroup::V2(dir) => number(&dir.join("pids.current")),
            Cgroup::V1 { pids, .. } => number(&pids.join("pids.current")),
        }
    }
}

/// A file holding one number (`None` for "max" or a missing file).
fn number(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The value of `key` in a file of `key value` lines.
fn keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok())
}
