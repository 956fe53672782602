//! Libraries for sessions that cannot get a network while they run (gVisor) or cannot write
//! outside memory (a recyclable sandbox): they are installed once into an image, in a helper
//! session under the engine's default runtime, and sessions start from that image. The image
//! is kept and reused for the same base image and libraries.

use std::time::Duration;

use sandpit_engine::{Engine, Progress};

use crate::builder::SessionBuilder;
use crate::error::Result;
use crate::image::image_exists;
use crate::policy::{Network, RuntimeChoice};
use crate::runner::Runner;

/// How long the helper session may live if this process dies mid-install.
const HELPER_LIFETIME: Duration = Duration::from_secs(3600);

/// The tag of `base` with `libraries` installed, built when missing: a helper session on the
/// engine's default runtime with the bridge network installs them, and its close commits it.
pub(crate) async fn library_image(
    engine: &Engine,
    base: &str,
    runner: &dyn Runner,
    libraries: &[String],
    b: &SessionBuilder,
    progress: &Progress,
) -> Result<String> {
    let tag = library_tag(base, runner.language().name(), libraries);
    if image_exists(engine, &tag).await? {
        return Ok(tag);
    }
    progress(&format!(
        "installing {} into {tag} (the session cannot reach a network later)",
        libraries.join(", ")
    ));
    let mut policy = b.policy.clone();
    policy.runtime = RuntimeChoice::EngineDefault;
    // Only the installs run here, with the network they need.
    policy.network = Network::Bridge;
    let mut helper = SessionBuilder {
        runner: b.runner.clone(),
        image: Some(base.to_string()),
        dockerfile: None,
        keep_template: true,
        template_tag: Some(tag.clone()),
        workdir: b.workdir.clone(),
        env: b.env.clone(),
        extra_ca: b.extra_ca.clone(),
        connection: None,
        engine: Some(engine.clone()),
        policy,
        lifetime: HELPER_LIFETIME,
        progress: b.progress.clone(),
        libraries: Vec::new(),
        late_installs: true,
        recyclable: false,
        tied_to_process: true,
        ..SessionBuilder::new()
    };
    helper.install_timeout = b.install_timeout;
    helper.output_limit = b.output_limit;
    // Boxed: opening a session may build a library image, which opens a session.
    let session = Box::pin(helper.open()).await?;
    match session.install(libraries).await {
        Ok(()) => session.close().await?,
        Err(e) => {
            session.discard().await?;
            return Err(e);
        }
    }
    Ok(tag)
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
