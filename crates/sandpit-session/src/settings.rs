//! What a session's container looks like, as plain functions of its settings: limits,
//! privileges, mounts, network. No engine calls here.

use std::collections::HashMap;

use sandpit_engine::{ContainerSpec, Resources, TmpfsMount, Ulimit, VolumeMount};

use crate::policy::{Network, SecurityPolicy};

/// Where extra CA certificates go inside the container.
pub const CA_PATH: &str = "/etc/sandpit/ca.pem";

/// Environment variables pointed at the extra CA certificates.
pub const CA_ENV: &[&str] = &[
    "PIP_CERT",
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
];

/// Capabilities kept for root: package installs, and the agent (PID 1), which signals every
/// process, hands folders to the sandbox user and starts user code as uid 1000. User code runs
/// as uid 1000 with no-new-privileges, so it can never hold them.
pub(crate) const INSTALL_CAPS: &[&str] = &[
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "SETUID",
    "SETGID",
    "KILL",
];

/// The sandbox user.
pub(crate) const SANDBOX_UID: u32 = 1000;

/// The network a container is created with, and what happens to it before user code runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetworkPlan {
    /// The mode at create time.
    pub create_with: String,
    /// Disconnect the default network before the container starts.
    pub detach_before_start: bool,
    /// Disconnect it once the libraries given at open are installed.
    pub detach_after_open_install: bool,
}

/// How the container gets the network user code may see, while keeping a way to install
/// libraries: a container created with network `none` can never be given another network.
pub(crate) fn network_plan(
    network: &Network,
    hotplug: bool,
    libraries_at_open: bool,
    late_installs: bool,
) -> NetworkPlan {
    let plan = |create_with: &str, before: bool, after: bool| NetworkPlan {
        create_with: create_with.to_string(),
        detach_before_start: before,
        detach_after_open_install: after,
    };
    match network {
        Network::None if !hotplug => plan("none", false, false),
        // No user code runs before the open-time install ends; detach after it.
        Network::None if libraries_at_open => plan("bridge", false, true),
        Network::None if late_installs => plan("bridge", true, false),
        Network::None => plan("none", false, false),
        other => plan(&other.mode(), false, false),
    }
}

/// Inputs of [`container_spec`].
#[derive(Debug, Clone)]
pub(crate) struct ContainerPlan<'a> {
    pub name: &'a str,
    pub image: &'a str,
    pub workdir: &'a str,
    pub extra_ca: bool,
    pub labels: HashMap<String, String>,
    pub policy: &'a SecurityPolicy,
    pub network: &'a NetworkPlan,
    /// The workdir's own volume, when it has one.
    pub volume: Option<&'a str>,
    /// Ask the storage driver for a layer size limit (no volume, and the engine can).
    pub storage_quota: bool,
    pub runtime: Option<String>,
    /// The runtime is gVisor: each process in the sandbox costs the host about ten threads,
    /// so the host's pids limit is wider and gVisor's own process limit (`nproc`) holds user
    /// code to the policy's count.
    pub gvisor: bool,
    /// Built to be reset and reused: a read-only root filesystem, and memory folders (the
    /// workdir among them) as the only places code can write.
    pub recyclable: bool,
}

/// Processes per sandboxed process on the host under gVisor (its threads), with room to spare.
const GVISOR_HOST_PIDS_PER_PROCESS: i64 = 16;
/// `nproc` where the host counts it per user across containers (not under gVisor): a bound that
/// never binds before the pids limit, but Podman needs one stated.
const HOST_NPROC: u64 = 32768;

/// A memory folder of the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scratch {
    /// Where it is mounted.
    pub path: String,
    /// It belongs to the sandbox user (else to root, open to all with the sticky bit).
    pub owned: bool,
    /// Programs may run from it (a recyclable sandbox's workdir: compiled languages build there).
    pub exec: bool,
}

/// The memory folders uid 1000 can write: the workdir too in a recyclable sandbox.
pub(crate) fn scratch_folders(workdir: &str, recyclable: bool) -> Vec<Scratch> {
    let folder = |path: &str, owned: bool, exec: bool| Scratch {
        path: path.to_string(),
        owned,
        exec,
    };
    let mut v = vec![
        folder("/tmp", false, false),
        folder("/var/tmp", false, false),
        folder("/run/lock", false, false),
        folder("/home/sandbox", true, false),
    ];
    if recyclable {
        v.push(folder(workdir, true, true));
    } else if workdir != "/sandbox" {
        // The default images' workdir, writable by uid 1000, is not the session's disk here.
        v.push(folder("/sandbox", true, false));
    }
    v
}

/// Folders a reset empties besides the memory folders: the engine's own shared-memory and
/// message-queue filesystems.
pub(crate) const ENGINE_SCRATCH: &[&str] = &["/dev/shm", "/dev/mqueue"];

/// Where Sandpit's own files for the sandbox go (extra CA certificates); a root-owned memory
/// folder when the root filesystem is read-only.
pub(crate) const SANDPIT_ETC: &str = "/etc/sandpit";

/// The size of a recyclable sandbox's workdir: it lives in memory, so at most half of it.
pub(crate) fn recyclable_workdir_size(policy: &SecurityPolicy) -> u64 {
    policy.disk.min(policy.memory / 2)
}

/// The container for a session.
pub(crate) fn container_spec(p: &ContainerPlan) -> ContainerSpec {
    let policy = p.policy;
    // The session's own variables go with each command, not into the container: they can
    // change (and be removed) while the session lives.
    let mut env = vec!["HOME=/home/sandbox".to_string()];
    if p.extra_ca {
        env.extend(CA_ENV.iter().map(|k| format!("{k}={CA_PATH}")));
    }
    let mut tmpfs: Vec<TmpfsMount> = scratch_folders(p.workdir, p.recyclable)
        .into_iter()
        .map(|f| TmpfsMount {
            size: if f.path == p.workdir {
                recyclable_workdir_size(policy)
            } else {
                policy.scratch
            },
            mode: if f.owned { 0o755 } else { 0o1777 },
            owner: f.owned.then_some((SANDBOX_UID, SANDBOX_UID)),
            exec: f.exec,
            target: f.path,
        })
        .collect();
    if p.recyclable {
        tmpfs.push(TmpfsMount {
            target: SANDPIT_ETC.to_string(),
            size: 1 << 20,
            mode: 0o755,
            owner: None,
            exec: false,
        });
    }
    let mut volumes = vec![crate::agent::volume::mount()];
    if let Some(v) = p.volume {
        volumes.push(VolumeMount {
            source: v.to_string(),
            target: p.workdir.to_string(),
            read_only: !policy.workdir_writable,
        });
    }
    ContainerSpec {
        name: p.name.to_string(),
        image: p.image.to_string(),
        entrypoint: Some(vec![crate::agent::volume::AGENT_PATH.to_string()]),
        cmd: Vec::new(),
        user: Some("0:0".into()),
        env,
        working_dir: Some(p.workdir.to_string()),
        labels: p.labels.clone(),
        resources: Resources {
            memory: policy.memory,
            memory_swap: policy.memory,
            cpus: policy.cpus,
            pids: if p.gvisor {
                policy.max_processes * GVISOR_HOST_PIDS_PER_PROCESS + 256
            } else {
                policy.max_processes
            },
            ulimits: vec![
                Ulimit {
                    name: "nofile".into(),
                    value: policy.max_open_files,
                },
                Ulimit {
                    name: "fsize".into(),
                    value: policy.max_file_size,
                },
                Ulimit {
                    name: "nproc".into(),
                    value: if p.gvisor {
                        policy.max_processes as u64
                    } else {
                        HOST_NPROC
                    },
                },
            ],
        },
        cap_drop: vec!["ALL".into()],
        cap_add: INSTALL_CAPS.iter().map(|c| c.to_string()).collect(),
        security_opt: vec!["no-new-privileges".into()],
        network: p.network.create_with.clone(),
        tmpfs,
        volumes,
        storage_size: (p.volume.is_none() && p.storage_quota && !p.recyclable)
            .then_some(policy.disk),
        runtime: p.runtime.clone(),
        read_only_rootfs: p.recyclable,
        stdin_open: true,
        no_logs: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan<'a>(policy: &'a SecurityPolicy, network: &'a NetworkPlan) -> ContainerPlan<'a> {
        ContainerPlan {
            name: "sandpit-python-x",
            image: "sandpit/python:latest",
            workdir: "/sandbox",
            extra_ca: true,
            labels: HashMap::new(),
            policy,
            network,
            volume: Some("sandpit-disk-x"),
            storage_quota: true,
            runtime: None,
            gvisor: false,
            recyclable: false,
        }
    }

    #[test]
    fn user_code_never_gets_privileges() {
        let policy = SecurityPolicy::standard();
        let net = network_plan(&policy.network, true, false, true);
        let spec = container_spec(&plan(&policy, &net));
        assert_eq!(spec.cap_drop, vec!["ALL"]);
        assert!(spec.security_opt.contains(&"no-new-privileges".to_string()));
        assert_eq!(spec.user.as_deref(), Some("0:0"));
        assert_eq!(spec.resources.memory, spec.resources.memory_swap);
        assert_eq!(spec.resources.pids, 256);
        assert_eq!(
            spec.entrypoint.as_deref(),
            Some(&[crate::agent::volume::AGENT_PATH.to_string()][..])
        );
        assert!(spec.stdin_open && spec.no_logs && !spec.read_only_rootfs);
        assert!(spec
            .volumes
            .iter()
            .any(|v| v.target == crate::agent::volume::AGENT_DIR && v.read_only));
        assert!(spec
            .cap_add
            .iter()
            .all(|c| INSTALL_CAPS.contains(&c.as_str())));
        assert!(spec.env.contains(&format!("PIP_CERT={CA_PATH}")));
    }

    #[test]
    fn gvisor_counts_processes_itself() {
        let policy = SecurityPolicy::standard();
        let net = network_plan(&policy.network, false, false, true);
        let mut p = plan(&policy, &net);
        p.gvisor = true;
        let spec = container_spec(&p);
        assert!(spec.resources.pids > policy.max_processes * 10);
        let nproc = spec
            .resources
            .ulimits
            .iter()
            .find(|u| u.name == "nproc")
            .unwrap();
        assert_eq!(nproc.value, policy.max_processes as u64);
    }

    #[test]
    fn a_volume_workdir_needs_no_storage_quota_and_honours_read_only() {
        let mut policy = SecurityPolicy::standard();
        policy.workdir_writable = false;
        let net = network_plan(&policy.network, true, false, true);
        let spec = container_spec(&plan(&policy, &net));
        assert_eq!(spec.storage_size, None);
        assert!(spec
            .volumes
            .iter()
            .any(|v| v.target == "/sandbox" && v.read_only));
        let mut p = plan(&policy, &net);
        p.volume = None;
        assert_eq!(container_spec(&p).storage_size, Some(policy.disk));
        p.storage_quota = false;
        assert_eq!(container_spec(&p).storage_size, None);
    }

    #[test]
    fn scratch_folders_are_memory_and_the_home_belongs_to_the_user() {
        let policy = SecurityPolicy::standard();
        let net = network_plan(&policy.network, true, false, true);
        let spec = container_spec(&plan(&policy, &net));
        let home = spec
            .tmpfs
            .iter()
            .find(|t| t.target == "/home/sandbox")
            .unwrap();
        assert_eq!(home.owner, Some((1000, 1000)));
        let tmp = spec.tmpfs.iter().find(|t| t.target == "/tmp").unwrap();
        assert_eq!((tmp.mode, tmp.owner), (0o1777, None));
        assert!(!spec.tmpfs.iter().any(|t| t.target == "/sandbox"));
        assert!(scratch_folders("/work", false)
            .iter()
            .any(|f| f.path == "/sandbox" && f.owned));
    }

    #[test]
    fn a_recyclable_sandbox_writes_only_to_memory() {
        let policy = SecurityPolicy::standard();
        let net = network_plan(&policy.network, true, false, false);
        let mut p = plan(&policy, &net);
        p.recyclable = true;
        p.volume = None;
        let spec = container_spec(&p);
        assert!(spec.read_only_rootfs);
        assert_eq!(spec.storage_size, None);
        let workdir = spec.tmpfs.iter().find(|t| t.target == "/sandbox").unwrap();
        assert!(workdir.exec);
        assert_eq!(workdir.owner, Some((1000, 1000)));
        assert_eq!(workdir.size, policy.memory / 2);
        assert!(spec.tmpfs.iter().any(|t| t.target == SANDPIT_ETC));
    }

    #[test]
    fn networks_keep_a_way_to_install_only_where_one_is_needed() {
        let none = Network::None;
        // Late installs possible: on the bridge, detached before anything runs.
        let p = network_plan(&none, true, false, true);
        assert_eq!(
            (p.create_with.as_str(), p.detach_before_start),
            ("bridge", true)
        );
        // Libraries only at open: detached after they are in.
        let p = network_plan(&none, true, true, false);
        assert_eq!(
            (
                p.create_with.as_str(),
                p.detach_before_start,
                p.detach_after_open_install
            ),
            ("bridge", false, true)
        );
        // Nothing to install ever: no network at all, no detach call.
        assert_eq!(network_plan(&none, true, false, false).create_with, "none");
        // A runtime without hot-plug (gVisor) never gets one.
        let p = network_plan(&none, false, true, true);
        assert_eq!(
            (p.create_with.as_str(), p.detach_before_start),
            ("none", false)
        );
        assert_eq!(
            network_plan(&Network::Bridge, true, false, true).create_with,
            "bridge"
        );
    }
}
