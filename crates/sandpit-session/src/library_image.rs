//! Libraries for sessions whose runtime cannot get a network while it runs (gVisor): they are
//! installed once into an image, in a helper container under the engine's default runtime,
//! and sessions start from that image. The image is kept and reused for the same base image
//! and libraries.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_engine::{Engine, Progress};

use crate::archive::{ArchiveBuilder, ROOT_OWNER};
use crate::builder::SessionBuilder;
use crate::close::remove_container;
use crate::error::{Error, Result};
use crate::exec::{exec, ExecSpec};
use crate::image::image_exists;
use crate::labels;
use crate::runner::Runner;
use crate::settings::{container_spec, ContainerPlan, NetworkPlan, CA_PATH};

/// How long the helper container may live if this process dies mid-install.
const HELPER_LIFETIME: Duration = Duration::from_secs(3600);

/// The tag of `base` with `libraries` installed, built when missing.
pub(crate) async fn library_image(
    engine: &Engine,
    base: &str,
    runner: &dyn Runner,
    libraries: &[String],
    extra_ca: Option<&[u8]>,
    b: &SessionBuilder,
    progress: &Progress,
) -> Result<String> {
    let tag = library_tag(base, runner.language().name(), libraries);
    if image_exists(engine, &tag).await? {
        return Ok(tag);
    }
    progress(&format!(
        "installing {} into {tag} (the session's runtime cannot reach a network later)",
        libraries.join(", ")
    ));
    let helper = format!("sandpit-libs-{}", crate::ids::random_hex(12));
    let expires = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .saturating_add(HELPER_LIFETIME)
        .as_secs();
    let network = NetworkPlan {
        create_with: "bridge".into(),
        detach_before_start: false,
        detach_after_open_install: false,
    };
    let mut policy = b.policy.clone();
    policy.runtime = crate::policy::RuntimeChoice::EngineDefault;
    let spec = container_spec(&ContainerPlan {
        name: &helper,
        image: base,
        workdir: &b.workdir,
        extra_ca: extra_ca.is_some(),
        labels: HashMap::from([
            (labels::MANAGED.to_string(), "true".to_string()),
            (labels::EXPIRES_AT.to_string(), expires.to_string()),
            (labels::PROCESS.to_string(), labels::this_process()),
        ]),
        policy: &policy,
        network: &network,
        volume: None,
        storage_quota: false,
        runtime: None,
        gvisor: false,
    });
    engine.create_container(&spec).await.map_err(|e| {
        Error::engine(e, |cause| Error::CreateContainer {
            image: base.to_string(),
            cause,
        })
    })?;
    let built = install_and_commit(engine, &helper, &tag, runner, libraries, extra_ca, b).await;
    remove_container(engine, &helper).await?;
    built.map(|()| tag)
}

async fn install_and_commit(
    engine: &Engine,
    helper: &str,
    tag: &str,
    runner: &dyn Runner,
    libraries: &[String],
    extra_ca: Option<&[u8]>,
    b: &SessionBuilder,
) -> Result<()> {
    let engine_error = |op: &'static str| {
        move |cause| match op {
            "upload" => Error::Upload {
                container: helper.to_string(),
                path: "/".into(),
                cause,
            },
            "start" => Error::StartContainer {
                container: helper.to_string(),
                cause,
            },
            _ => Error::Commit {
                container: helper.to_string(),
                image: tag.to_string(),
                cause,
            },
        }
    };
    if let Some(pem) = extra_ca {
        let mut archive = ArchiveBuilder::new();
        archive
            .dir("/etc/sandpit", ROOT_OWNER, 0o755)?
            .file(CA_PATH, pem, ROOT_OWNER, 0o644)?;
        engine
            .upload_bytes(helper, "/", archive.finish()?)
            .await
            .map_err(|e| Error::engine(e, engine_error("upload")))?;
    }
    engine
        .start_container(helper)
        .await
        .map_err(|e| Error::engine(e, engine_error("start")))?;
    for step in runner.setup().into_iter().chain(runner.install(libraries)) {
        let mut env = b.env.clone();
        env.extend(step.env.iter().cloned());
        let out = exec(
            engine,
            helper,
            ExecSpec {
                argv: step.argv.clone(),
                user: step.user,
                env,
                workdir: b.workdir.clone(),
                timeout: b.install_timeout,
                output_limit: b.output_limit,
                inline_file: None,
                stdin_path: None,
                stdin_data: None,
                sink: None,
                watch: false,
                nproc: None,
                stats: false,
            },
        )
        .await?;
        if !out.success() {
            let text = if out.stderr.trim().is_empty() {
                out.stdout
            } else {
                out.stderr
            };
            return Err(Error::LibraryInstall {
                libraries: libraries.join(", "),
                exit_code: out.exit_code,
                message: crate::install::tail(&text, 20),
            });
        }
    }
    engine
        .commit_container(helper, tag)
        .await
        .map_err(|e| Error::engine(e, engine_error("commit")))
}

/// A tag naming the base image and the set of libraries (order and repeats do not matter).
fn library_tag(base: &str, language: &str, libraries: &[String]) -> String {
    let mut libs: Vec<&str> = libraries.iter().map(|l| l.trim()).collect();
    libs.sort_unstable();
    libs.dedup();
    // FNV-1a: stable across builds, so every process finds the same image.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in base.bytes().chain([0]).chain(libs.join("\n").bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("sandpit-libs/{language}:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::library_tag;

    #[test]
    fn the_tag_depends_on_the_set_of_libraries_and_the_base() {
        let a = library_tag(
            "sandpit/python:latest",
            "python",
            &["six".into(), "attrs".into()],
        );
        let b = library_tag(
            "sandpit/python:latest",
            "python",
            &["attrs".into(), " six ".into(), "six".into()],
        );
        assert_eq!(a, b);
        assert!(a.starts_with("sandpit-libs/python:"));
        assert_ne!(
            a,
            library_tag("other:latest", "python", &["six".into(), "attrs".into()])
        );
        assert_ne!(
            a,
            library_tag("sandpit/python:latest", "python", &["six".into()])
        );
    }
}
