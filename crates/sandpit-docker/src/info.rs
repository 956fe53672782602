//! What the engine is and can do, read from `/version` and `/info`.

use bollard::models::{SystemInfo, SystemVersion};
use sandpit_engine::{Capabilities, Endpoint, EngineInfo, EngineKind, RuntimeInfo, RuntimeKind};

/// Reads the engine's identity and capabilities from its own answers.
pub(crate) fn engine_info(
    endpoint: &Endpoint,
    negotiated: String,
    version: SystemVersion,
    info: SystemInfo,
) -> EngineInfo {
    let kind = engine_kind(&version);
    let mut runtimes: Vec<RuntimeInfo> = info
        .runtimes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, r)| {
            let path = r.path.unwrap_or_else(|| name.clone());
            let kind = runtime_kind(&name, &path);
            RuntimeInfo {
                network_hotplug: kind == RuntimeKind::Native,
                name,
                path,
                kind,
            }
        })
        .collect();
    runtimes.sort_by(|a, b| a.name.cmp(&b.name));
    let default_runtime = info.default_runtime.unwrap_or_else(|| "runc".into());
    if kind == EngineKind::Podman {
        // Podman's compatible API ignores a container's runtime and lists runtimes that are not
        // installed: only its default can be relied on.
        runtimes.retain(|r| r.name == default_runtime);
    }
    let backing_filesystem = info
        .driver_status
        .unwrap_or_default()
        .into_iter()
        .find(|pair| pair.first().is_some_and(|k| k == "Backing Filesystem"))
        .and_then(|pair| pair.get(1).cloned())
        .unwrap_or_default();
    let storage_driver = info.driver.unwrap_or_default();
    let capabilities = Capabilities {
        shares_host: matches!(endpoint, Endpoint::Unix(_)) && running_as_root(),
        // overlay2 limits a container's layer only on xfs (with pquota).
        storage_quota: kind == EngineKind::Docker
            && storage_driver == "overlay2"
            && backing_filesystem == "xfs",
        network_hotplug: true,
        commit: true,
        pause: true,
        // Podman's tmpfs takes no uid=/gid= options.
        tmpfs_owner: kind == EngineKind::Docker,
        attach_reopens_stdin: kind == EngineKind::Docker,
    };
    EngineInfo {
        version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        negotiated_api_version: negotiated,
        os: info.operating_system.or(version.os).unwrap_or_default(),
        kernel: info
            .kernel_version
            .or(version.kernel_version)
            .unwrap_or_default(),
        arch: uname_arch(info.architecture.or(version.arch).unwrap_or_default()),
        storage_driver,
        backing_filesystem,
        cgroup_version: info
            .cgroup_version
            .map(|v| v.to_string())
            .unwrap_or_default(),
        default_runtime,
        runtimes,
        capabilities,
        kind,
    }
}

fn engine_kind(version: &SystemVersion) -> EngineKind {
    let podman = version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.to_ascii_lowercase().contains("podman"))
        || version
            .platform
            .as_ref()
            .is_some_and(|p| p.name.to_ascii_lowercase().contains("podman"));
    if podman {
        EngineKind::Podman
    } else {
        EngineKind::Docker
    }
}

fn runtime_kind(name: &str, path: &str) -> RuntimeKind {
    let binary = path.rsplit('/').next().unwrap_or(path);
    if name == "runsc" || binary == "runsc" {
        RuntimeKind::Gvisor
    } else {
        RuntimeKind::Native
    }
}

fn running_as_root() -> bool {
    extern "C" {
        fn geteuid() -> u32;
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { geteuid() == 0 }
}

/// An architecture as `uname -m` names it: Go's names (`amd64`, `arm64`), which Podman and
/// Docker's version answer use, are translated.
fn uname_arch(arch: String) -> String {
    match arch.as_str() {
        "amd64" => "x86_64".into(),
        "arm64" => "aarch64".into(),
        _ => arch,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{SystemVersionComponents as ComponentVersion, SystemVersionPlatform};

    #[test]
    fn podman_is_told_from_docker_by_its_components() {
        let podman = SystemVersion {
            components: Some(vec![ComponentVersion {
                name: "Podman Engine".into(),
                version: "4.3.1".into(),
                details: None,
            }]),
            ..Default::default()
        };
        assert_eq!(engine_kind(&podman), EngineKind::Podman);
        let docker = SystemVersion {
            platform: Some(SystemVersionPlatform {
                name: "Docker Engine - Community".into(),
            }),
            components: Some(vec![ComponentVersion {
                name: "Engine".into(),
                version: "20.10.24".into(),
                details: None,
            }]),
            ..Default::default()
        };
        assert_eq!(engine_kind(&docker), EngineKind::Docker);
    }

    #[test]
    fn runsc_is_gvisor_by_name_or_binary() {
        assert_eq!(runtime_kind("runsc", "/usr/bin/runsc"), RuntimeKind::Gvisor);
        assert_eq!(
            runtime_kind("gvisor", "/usr/local/bin/runsc"),
            RuntimeKind::Gvisor
        );
        assert_eq!(runtime_kind("runc", "runc"), RuntimeKind::Native);
    }
}
