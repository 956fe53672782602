//! What a session's container looks like, as plain functions of its settings: limits,
//! privileges, mounts, network. No engine calls here.

use std::collections::HashMap;

use sandpit_engine::{ContainerSpec, Resources, TmpfsMount, Ulimit, VolumeMount};

use crate::policy::{Network, SecurityPolicy};

/// PID 1 of every session: sleeps, reaps, exits at once on SIGTERM, and on SIGUSR1 kills every
/// other process in the sandbox, which needs no new process (a full process limit cannot stop
/// it): everything is frozen at once, its sleep thawed, and the rest killed one by one, so the
/// sleep lives on and PID 1 never has to fork again while killed processes still hold the
/// limit (a shell that cannot fork ends, and the container with it). bash when the image has it.
pub(crate) const KEEPALIVE: &str = r#"trap 'exit 0' TERM INT; trap 'for r in 1 2 3; do kill -STOP -1 2>/dev/null; kill -CONT $sp 2>/dev/null; for d in /proc/[0-9]*; do p=${d#/proc/}; [ "$p" = 1 ] || [ "$p" = "$sp" ] || kill -KILL "$p" 2>/dev/null; done; done' USR1; sleep 86400 & sp=$!; while :; do wait $sp; kill -0 $sp 2>/dev/null || { sleep 86400 & sp=$!; }; done"#;
const LAUNCH: &str = r#"command -v bash >/dev/null 2>&1 && exec bash -c "$1" sandpit-init; exec /bin/sh -c "$1" sandpit-init"#;

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

/// Capabilities kept for root: package installs, and PID 1's signal to every process. User code
/// runs as uid 1000 with no-new-privileges, so it can never hold them. (PID 1 runs as root: an
/// engine gives a non-root main user no capabilities, and execs as root inherit that.)
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
}

/// Processes per sandboxed process on the host under gVisor (its threads), with room to spare.
const GVISOR_HOST_PIDS_PER_PROCESS: i64 = 16;
/// `nproc` where the host counts it per user across containers (not under gVisor): a bound that
/// never binds before the pids limit, but Podman needs one stated.
const HOST_NPROC: u64 = 32768;

/// The memory folders uid 1000 can write besides the workdir: `(path, owned by the user)`.
pub(crate) fn scratch_folders(workdir: &str) -> Vec<(&'static str, bool)> {
    let mut v = vec![
        ("/tmp", false),
        ("/var/tmp", false),
        ("/run/lock", false),
        ("/home/sandbox", true),
    ];
    if workdir != "/sandbox" {
        // The default images' workdir, writable by uid 1000, is not the session's disk here.
        v.push(("/sandbox", true));
    }
    v
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
    let tmpfs = scratch_folders(p.workdir)
        .into_iter()
        .map(|(target, owned)| TmpfsMount {
            target: target.to_string(),
            size: policy.scratch,
            mode: if owned { 0o755 } else { 0o1777 },
            owner: owned.then_some((SANDBOX_UID, SANDBOX_UID)),
        })
        .collect();
    let volumes = p
        .volume
        .map(|v| {
            vec![VolumeMount {
                source: v.to_string(),
                target: p.workdir.to_string(),
                read_only: !policy.workdir_writable,
            }]
        })
        .unwrap_or_default();
    ContainerSpec {
        name: p.name.to_string(),
        image: p.image.to_string(),
        entrypoint: Some(Vec::new()),
        cmd: vec![
            "/bin/sh".into(),
            "-c".into(),
            LAUNCH.into(),
            "sandpit-init".into(),
            KEEPALIVE.into(),
        ],
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
        storage_size: (p.volume.is_none() && p.storage_quota).then_some(policy.disk),
        runtime: p.runtime.clone(),
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
        assert!(spec.volumes[0].read_only);
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
        assert!(scratch_folders("/work").contains(&("/sandbox", true)));
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
