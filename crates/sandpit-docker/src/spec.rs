//! Sandpit's container spec as the Docker API's create body: a plain function.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType, ResourcesUlimits,
};
use sandpit_engine::{ContainerSpec, EngineKind, TmpfsMount};

/// The create body for `spec` on an engine of `kind`.
pub(crate) fn create_body(spec: &ContainerSpec, kind: &EngineKind) -> ContainerCreateBody {
    let r = &spec.resources;
    let tmpfs: HashMap<String, String> = spec
        .tmpfs
        .iter()
        .map(|t| (t.target.clone(), tmpfs_options(t, kind)))
        .collect();
    let mounts: Vec<Mount> = spec
        .volumes
        .iter()
        .map(|v| Mount {
            target: Some(v.target.clone()),
            source: Some(v.source.clone()),
            typ: Some(MountType::VOLUME),
            read_only: Some(v.read_only),
            ..Default::default()
        })
        .collect();
    let host_config = HostConfig {
        memory: Some(r.memory as i64),
        memory_swap: Some(r.memory_swap as i64),
        nano_cpus: Some((r.cpus * 1e9) as i64),
        pids_limit: Some(r.pids),
        ulimits: Some(
            r.ulimits
                .iter()
                .map(|u| ResourcesUlimits {
                    name: Some(u.name.clone()),
                    soft: Some(u.value as i64),
                    hard: Some(u.value as i64),
                })
                .collect(),
        ),
        cap_drop: Some(spec.cap_drop.clone()),
        cap_add: Some(spec.cap_add.clone()),
        security_opt: Some(spec.security_opt.clone()),
        privileged: Some(false),
        network_mode: Some(spec.network.clone()),
        tmpfs: Some(tmpfs),
        mounts: Some(mounts),
        storage_opt: spec
            .storage_size
            .map(|s| HashMap::from([("size".to_string(), s.to_string())])),
        runtime: spec.runtime.clone(),
        readonly_rootfs: Some(spec.read_only_rootfs),
        log_config: spec.no_logs.then(|| HostConfigLogConfig {
            typ: Some("none".into()),
            config: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        entrypoint: spec.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![String::new()]
            } else {
                e.clone()
            }
        }),
        cmd: Some(spec.cmd.clone()),
        user: spec.user.clone(),
        env: Some(spec.env.clone()),
        working_dir: spec.working_dir.clone(),
        labels: Some(spec.labels.clone()),
        host_config: Some(host_config),
        open_stdin: Some(spec.stdin_open),
        stdin_once: Some(false),
        attach_stdin: Some(false),
        ..Default::default()
    }
}

/// tmpfs options. `noexec` is written out: Docker adds it by itself, Podman does not. Podman
/// takes no `uid=`/`gid=` (its capabilities say so, and the session hands the folder over
/// after start).
fn tmpfs_options(t: &TmpfsMount, kind: &EngineKind) -> String {
    let exec = if t.exec { "exec" } else { "noexec" };
    let mut options = format!("rw,nosuid,nodev,{exec},size={},mode={:o}", t.size, t.mode);
    if let (Some((uid, gid)), EngineKind::Docker) = (t.owner, kind) {
        options.push_str(&format!(",uid={uid},gid={gid}"));
    }
    options
}

#[cfg(test)]
mod tests {
    use super::*;
    use sandpit_engine::{Resources, VolumeMount};

    fn spec() -> ContainerSpec {
        ContainerSpec {
            name: "c".into(),
            image: "img".into(),
            entrypoint: Some(vec![]),
            cmd: vec!["sh".into()],
            network: "none".into(),
            resources: Resources {
                memory: 512 << 20,
                memory_swap: 512 << 20,
                cpus: 0.5,
                pids: 64,
                ulimits: vec![],
            },
            tmpfs: vec![TmpfsMount {
                target: "/home/sandbox".into(),
                size: 1 << 20,
                mode: 0o755,
                owner: Some((1000, 1000)),
                exec: false,
            }],
            volumes: vec![VolumeMount {
                source: "v".into(),
                target: "/sandbox".into(),
                read_only: true,
            }],
            runtime: Some("runsc".into()),
            ..Default::default()
        }
    }

    #[test]
    fn docker_gets_tmpfs_owners_and_podman_does_not() {
        let docker = create_body(&spec(), &EngineKind::Docker);
        let t = &docker.host_config.as_ref().unwrap().tmpfs.as_ref().unwrap()["/home/sandbox"];
        assert_eq!(
            t,
            "rw,nosuid,nodev,noexec,size=1048576,mode=755,uid=1000,gid=1000"
        );
        let podman = create_body(&spec(), &EngineKind::Podman);
        let t = &podman.host_config.as_ref().unwrap().tmpfs.as_ref().unwrap()["/home/sandbox"];
        assert_eq!(t, "rw,nosuid,nodev,noexec,size=1048576,mode=755");
    }

    #[test]
    fn limits_mounts_and_runtime_carry_over() {
        let body = create_body(&spec(), &EngineKind::Docker);
        let h = body.host_config.unwrap();
        assert_eq!(h.nano_cpus, Some(500_000_000));
        assert_eq!(h.pids_limit, Some(64));
        assert_eq!(h.runtime.as_deref(), Some("runsc"));
        assert_eq!(h.mounts.unwrap()[0].read_only, Some(true));
        assert_eq!(body.entrypoint, Some(vec![String::new()]));
        assert!(h.storage_opt.is_none());
    }
}
