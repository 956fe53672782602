//! Images: make sure one exists (local, pull, or build), build from Dockerfiles, and
//! provide the Debian base where no registry serves it.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub use sandpit_engine::{split_reference, ImageSummary, Progress};
use sandpit_engine::{BuildRequest, Engine, ImportRequest};

use crate::archive::{ArchiveBuilder, ROOT_OWNER};
use crate::error::{Error, Result};
use crate::runner::ImageSpec;

/// The base every default image is built `FROM`.
pub const BASE_IMAGE: &str = "debian:bookworm-slim";

/// Builds a Debian root filesystem tar with debootstrap (kept in `images/base/`).
const ROOTFS_SCRIPT: &str = include_str!("../../../images/base/rootfs.sh");

/// A progress sink that only logs at debug level.
pub fn quiet() -> Progress {
    Arc::new(|line: &str| tracing::debug!(target: "sandpit::build", "{line}"))
}

/// True when the engine has `image` locally.
pub async fn image_exists(engine: &Engine, image: &str) -> Result<bool> {
    engine.image_exists(image).await.map_err(|e| {
        Error::engine(e, |cause| Error::InspectImage {
            image: image.to_string(),
            cause,
        })
    })
}

/// Pulls `image`; the error says why when it cannot be had.
pub async fn pull_image(engine: &Engine, image: &str, progress: &Progress) -> Result<()> {
    engine.pull_image(image, progress).await.map_err(|e| {
        Error::engine(e, |cause| Error::ImageNotFound {
            image: image.to_string(),
            reason: cause.message,
        })
    })
}

/// Makes sure `image` exists: local, else pulled; else [`Error::ImageNotFound`].
pub async fn ensure_image(engine: &Engine, image: &str, progress: &Progress) -> Result<()> {
    if image_exists(engine, image).await? {
        return Ok(());
    }
    progress(&format!("pulling {image}"));
    pull_image(engine, image, progress).await
}

/// Makes sure a default image exists, building it (and the Debian base) when missing.
/// Returns true when it had to build.
pub async fn ensure_default_image(
    engine: &Engine,
    spec: &ImageSpec,
    progress: &Progress,
) -> Result<bool> {
    if image_exists(engine, &spec.tag).await? {
        return Ok(false);
    }
    build_default_image(engine, spec, progress).await?;
    Ok(true)
}

/// Builds a default image from its embedded Dockerfile, providing the base first.
pub async fn build_default_image(
    engine: &Engine,
    spec: &ImageSpec,
    progress: &Progress,
) -> Result<()> {
    ensure_base_image(engine, progress).await?;
    progress(&format!("building {} from its Dockerfile", spec.tag));
    let mut context = ArchiveBuilder::new();
    context.file("Dockerfile", spec.dockerfile.as_bytes(), ROOT_OWNER, 0o644)?;
    let args = HashMap::from([("BASE_IMAGE".to_string(), BASE_IMAGE.to_string())]);
    build_from_context(
        engine,
        context.finish()?,
        "Dockerfile",
        &spec.tag,
        args,
        progress,
    )
    .await
}

/// Builds `tag` from a Dockerfile on the host; its folder is the build context.
pub async fn build_dockerfile(
    engine: &Engine,
    dockerfile: &Path,
    tag: &str,
    progress: &Progress,
) -> Result<()> {
    if !dockerfile.is_file() {
        return Err(Error::InvalidPath {
            path: dockerfile.display().to_string(),
            reason: "no Dockerfile there; pass the path of an existing file".into(),
        });
    }
    let dockerfile = dockerfile
        .canonicalize()
        .map_err(|e| Error::io("reading", dockerfile, e))?;
    let dir = dockerfile.parent().unwrap_or(Path::new("/")).to_path_buf();
    let name = dockerfile
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "Dockerfile".into());
    let context = tokio::task::spawn_blocking(move || {
        let ignore = read_dockerignore(&dir);
        let skip = |rel: &Path| {
            let rel = rel.to_string_lossy();
            ignore
                .iter()
                .any(|p| rel == p.as_str() || rel.starts_with(&format!("{p}/")))
        };
        let mut b = ArchiveBuilder::new();
        b.host_path(&dir, Path::new(""), None, &skip)?;
        b.finish()
    })
    .await
    .map_err(|e| Error::join("packing the build context", e))??;
    build_from_context(engine, context, &name, tag, HashMap::new(), progress).await
}

async fn build_from_context(
    engine: &Engine,
    context: Vec<u8>,
    dockerfile: &str,
    tag: &str,
    build_args: HashMap<String, String>,
    progress: &Progress,
) -> Result<()> {
    // The last lines of output explain a failure better than the engine's one-line error.
    let last_lines: Arc<Mutex<Vec<String>>> = Arc::default();
    let keep = last_lines.clone();
    let outer = progress.clone();
    let tracking: Progress = Arc::new(move |line: &str| {
        tracing::debug!(target: "sandpit::build", "{line}");
        outer(line);
        let mut last = keep.lock().expect("build lines");
        last.push(line.to_string());
        if last.len() > 5 {
            last.remove(0);
        }
    });
    let request = BuildRequest {
        context: context.into(),
        dockerfile: dockerfile.to_string(),
        tag: tag.to_string(),
        build_args,
    };
    engine.build_image(request, &tracking).await.map_err(|e| {
        Error::engine(e, |cause| Error::BuildImage {
            image: tag.to_string(),
            message: build_message(&cause.message, &last_lines.lock().expect("build lines")),
        })
    })
}

fn build_message(error: &str, last_lines: &[String]) -> String {
    let error = error.trim();
    match last_lines.last() {
        Some(line) if !error.contains(line.trim()) => {
            format!("{error} (last output: {})", line.trim())
        }
        _ => error.to_string(),
    }
}

/// Makes sure `debian:bookworm-slim` exists: local, else pulled, else built with debootstrap.
pub async fn ensure_base_image(engine: &Engine, progress: &Progress) -> Result<()> {
    if image_exists(engine, BASE_IMAGE).await? {
        return Ok(());
    }
    progress(&format!("{BASE_IMAGE} is missing; trying to pull it"));
    match pull_image(engine, BASE_IMAGE, progress).await {
        Ok(()) => return Ok(()),
        Err(e) => progress(&format!("pull failed ({e}); building it with debootstrap")),
    }
    build_base_image(engine, progress).await
}

/// Builds `debian:bookworm-slim` on this host with debootstrap and imports it.
pub async fn build_base_image(engine: &Engine, progress: &Progress) -> Result<()> {
    let base_err = |reason: String| Error::BaseImage {
        image: BASE_IMAGE.to_string(),
        reason,
    };
    let dir = std::env::temp_dir().join(format!("sandpit-base-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let script = dir.join("rootfs.sh");
    let tarball = dir.join("rootfs.tar");
    let result = async {
        std::fs::write(&script, ROOTFS_SCRIPT).map_err(|e| Error::io("writing", &script, e))?;
        let mut child = tokio::process::Command::new("sh")
            .arg(&script)
            .arg(&tarball)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| base_err(format!("cannot run sh: {e}")))?;
        let stderr = child.stderr.take().expect("piped stderr");
        let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
        let mut last = String::new();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::debug!(target: "sandpit::build", "{line}");
            progress(&line);
            last = line;
        }
        let status = child
            .wait()
            .await
            .map_err(|e| base_err(format!("debootstrap did not finish: {e}")))?;
        if !status.success() {
            return Err(base_err(if last.is_empty() {
                format!("building the root filesystem failed ({status})")
            } else {
                last
            }));
        }
        progress(&format!("importing {BASE_IMAGE}"));
        import_rootfs(engine, &tarball, BASE_IMAGE).await
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Imports a root filesystem tar as image `reference` (`docker import`).
pub async fn import_rootfs(engine: &Engine, tarball: &Path, reference: &str) -> Result<()> {
    let file = tokio::fs::File::open(tarball)
        .await
        .map_err(|e| Error::io("opening", tarball, e))?;
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 1 << 20];
        match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((
                Err(sandpit_engine::EngineError::new(
                    sandpit_engine::EngineErrorKind::Server,
                    format!("reading the root filesystem: {e}"),
                )),
                file,
            )),
        }
    });
    let request = ImportRequest {
        rootfs: Box::pin(chunks),
        reference: reference.to_string(),
        // A bare import has no config; give it the slim image's.
        changes: vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "CMD [\"bash\"]".into(),
        ],
    };
    engine.import_image(request).await.map_err(|e| {
        Error::engine(e, |cause| Error::BaseImage {
            image: reference.to_string(),
            reason: format!("import failed: {}", cause.message),
        })
    })
}

/// Removes an image; one that is already gone is fine. An image still used by a container
/// is an error.
pub async fn remove_image(engine: &Engine, image: &str) -> Result<()> {
    remove_image_if_unused(engine, image, false).await
}

/// Removes an image unless a container still uses it (then, with `tolerate_in_use`, nothing
/// happens: a session's built image shared by another session stays).
pub(crate) async fn remove_image_if_unused(
    engine: &Engine,
    image: &str,
    tolerate_in_use: bool,
) -> Result<()> {
    match engine.remove_image(image).await {
        Ok(()) => Ok(()),
        Err(e) if e.is_not_found() => Ok(()),
        Err(e) if tolerate_in_use && e.is_conflict() => Ok(()),
        Err(e) => Err(Error::engine(e, |cause| Error::RemoveImage {
            image: image.to_string(),
            cause,
        })),
    }
}

/// Images whose reference starts with `prefix` (e.g. `sandpit/`).
pub async fn list_images(engine: &Engine, prefix: &str) -> Result<Vec<ImageSummary>> {
    let images = engine
        .list_images()
        .await
        .map_err(|e| Error::engine(e, Error::ListImages))?;
    Ok(images
        .into_iter()
        .filter(|i| i.tags.iter().any(|t| t.starts_with(prefix)))
        .collect())
}

/// Plain path entries of `.dockerignore` (no globs), plus `.git`.
fn read_dockerignore(dir: &Path) -> Vec<String> {
    let mut out = vec![".git".to_string()];
    if let Ok(text) = std::fs::read_to_string(dir.join(".dockerignore")) {
        out.extend(
            text.lines()
                .map(|l| l.trim().trim_start_matches("./").trim_end_matches('/'))
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(String::from),
        );
    }
    out
}
