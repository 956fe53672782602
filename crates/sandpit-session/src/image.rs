//! Images: make sure one exists (local, pull, or build), build from Dockerfiles, and
//! provide the Debian base where no registry serves it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::models::{BuildInfo, ImageSummary};
use bollard::query_parameters::{
    BuildImageOptions, CreateImageOptions, ListImagesOptions, RemoveImageOptions,
};
use futures_util::{Stream, StreamExt};

use crate::connection::Engine;
use crate::error::{chain, status_code, Error, Result};
use crate::runner::ImageSpec;

/// The base every default image is built `FROM`.
pub const BASE_IMAGE: &str = "debian:bookworm-slim";

/// Builds a Debian root filesystem tar with debootstrap (kept in `images/base/`).
const ROOTFS_SCRIPT: &str = include_str!("../../../images/base/rootfs.sh");

/// Receives one line of build progress at a time.
pub type Progress = Arc<dyn Fn(&str) + Send + Sync>;

/// A progress sink that only logs at debug level.
pub fn quiet() -> Progress {
    Arc::new(|line: &str| tracing::debug!(target: "sandpit::build", "{line}"))
}

/// True when the engine has `image` locally.
pub async fn image_exists(engine: &Engine, image: &str) -> Result<bool> {
    match engine.docker().inspect_image(image).await {
        Ok(_) => Ok(true),
        Err(e) if status_code(&e) == Some(404) => Ok(false),
        Err(e) if crate::error::is_transport(&e) => Err(engine.connection().classify(e)),
        Err(e) => Err(Error::InspectImage {
            image: image.to_string(),
            source: e,
        }),
    }
}

/// Pulls `image`; the error says why when it cannot be had.
pub async fn pull_image(engine: &Engine, image: &str, progress: &Progress) -> Result<()> {
    let (name, tag) = split_reference(image);
    let options = CreateImageOptions {
        from_image: Some(name.to_string()),
        tag: Some(tag.to_string()),
        ..Default::default()
    };
    let mut stream = engine.docker().create_image(Some(options), None, None);
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(status) = info.status {
                    progress(&status);
                }
            }
            Err(e) => {
                return Err(Error::ImageNotFound {
                    image: image.to_string(),
                    reason: engine_message(&e),
                })
            }
        }
    }
    Ok(())
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
    let context = tar_single_file("Dockerfile", spec.dockerfile.as_bytes(), 0o644)?;
    let mut args = HashMap::new();
    args.insert("BASE_IMAGE".to_string(), BASE_IMAGE.to_string());
    build_from_context(
        engine,
        context,
        "Dockerfile",
        &spec.tag,
        Some(args),
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
    let context = tokio::task::spawn_blocking(move || tar_context(&dir))
        .await
        .map_err(|e| Error::InvalidInput(format!("packing the build context panicked: {e}")))??;
    build_from_context(engine, context, &name, tag, None, progress).await
}

async fn build_from_context(
    engine: &Engine,
    context: Vec<u8>,
    dockerfile: &str,
    tag: &str,
    buildargs: Option<HashMap<String, String>>,
    progress: &Progress,
) -> Result<()> {
    let options = BuildImageOptions {
        dockerfile: dockerfile.to_string(),
        t: Some(tag.to_string()),
        rm: true,
        forcerm: true,
        buildargs,
        ..Default::default()
    };
    let stream =
        engine
            .docker()
            .build_image(options, None, Some(bollard::body_full(context.into())));
    consume_build(stream, tag, progress).await
}

async fn consume_build(
    stream: impl Stream<Item = std::result::Result<BuildInfo, bollard::errors::Error>>,
    tag: &str,
    progress: &Progress,
) -> Result<()> {
    futures_util::pin_mut!(stream);
    let mut last_lines: Vec<String> = Vec::new();
    while let Some(item) = stream.next().await {
        match item {
            Ok(info) => {
                if let Some(text) = info.stream.as_deref() {
                    for line in text.lines().filter(|l| !l.trim().is_empty()) {
                        tracing::debug!(target: "sandpit::build", "{line}");
                        progress(line);
                        last_lines.push(line.to_string());
                        if last_lines.len() > 5 {
                            last_lines.remove(0);
                        }
                    }
                }
                if let Some(status) = info.status.as_deref() {
                    progress(status);
                }
                let error = info.error_detail.and_then(|d| d.message);
                if let Some(message) = error {
                    return Err(Error::BuildImage {
                        image: tag.to_string(),
                        message: build_message(&message, &last_lines),
                    });
                }
            }
            Err(e) => {
                return Err(Error::BuildImage {
                    image: tag.to_string(),
                    message: build_message(&engine_message(&e), &last_lines),
                })
            }
        }
    }
    Ok(())
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
    let (repo, tag) = split_reference(reference);
    let file = tokio::fs::File::open(tarball)
        .await
        .map_err(|e| Error::io("opening", tarball, e))?;
    let chunks = futures_util::stream::unfold(file, |mut file| async move {
        let mut buf = vec![0u8; 1 << 20];
        match tokio::io::AsyncReadExt::read(&mut file, &mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), file))
            }
            Err(e) => Some((Err(e), file)),
        }
    });
    let options = CreateImageOptions {
        from_src: Some("-".into()),
        repo: Some(repo.to_string()),
        tag: Some(tag.to_string()),
        // A bare import has no config; give it the slim image's.
        changes: vec![
            "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            "CMD [\"bash\"]".into(),
        ],
        ..Default::default()
    };
    let mut stream =
        engine
            .docker()
            .create_image(Some(options), Some(bollard::body_try_stream(chunks)), None);
    while let Some(item) = stream.next().await {
        if let Err(e) = item {
            return Err(Error::BaseImage {
                image: reference.to_string(),
                reason: format!("import failed: {}", engine_message(&e)),
            });
        }
    }
    Ok(())
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
    let options = RemoveImageOptions {
        force: false,
        noprune: false,
        ..Default::default()
    };
    match engine
        .docker()
        .remove_image(image, Some(options), None)
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if status_code(&e) == Some(404) => Ok(()),
        Err(e) if tolerate_in_use && status_code(&e) == Some(409) => Ok(()),
        Err(e) => Err(Error::RemoveImage {
            image: image.to_string(),
            source: e,
        }),
    }
}

/// Images whose reference starts with `prefix` (e.g. `sandpit/`).
pub async fn list_images(engine: &Engine, prefix: &str) -> Result<Vec<ImageSummary>> {
    let images = engine
        .docker()
        .list_images(Some(ListImagesOptions::default()))
        .await
        .map_err(Error::ListImages)?;
    Ok(images
        .into_iter()
        .filter(|i| i.repo_tags.iter().any(|t| t.starts_with(prefix)))
        .collect())
}

/// Splits `name[:tag]` into name and tag (default `latest`), minding registry ports.
pub fn split_reference(reference: &str) -> (&str, &str) {
    let slash = reference.rfind('/').map(|i| i + 1).unwrap_or(0);
    match reference[slash..].rfind(':') {
        Some(i) => (&reference[..slash + i], &reference[slash + i + 1..]),
        None => (reference, "latest"),
    }
}

/// The engine's own message for an error, without bollard's wrapping.
pub(crate) fn engine_message(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.clone(),
        bollard::errors::Error::DockerStreamError { error } => error.clone(),
        other => chain(other),
    }
}

fn tar_single_file(name: &str, data: &[u8], mode: u32) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(mode);
    header.set_mtime(0);
    header.set_cksum();
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| Error::io("packing", name, e))?;
    builder
        .into_inner()
        .map_err(|e| Error::io("packing", name, e))
}

fn tar_context(dir: &Path) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    builder.follow_symlinks(false);
    let ignore = read_dockerignore(dir);
    let mut stack: Vec<PathBuf> = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let entries = std::fs::read_dir(&abs).map_err(|e| Error::io("reading", &abs, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("reading", &abs, e))?;
            let rel_child = rel.join(entry.file_name());
            let rel_str = rel_child.to_string_lossy();
            if ignore
                .iter()
                .any(|p| rel_str == p.as_str() || rel_str.starts_with(&format!("{p}/")))
            {
                continue;
            }
            let ty = entry
                .file_type()
                .map_err(|e| Error::io("reading", entry.path(), e))?;
            if ty.is_dir() {
                builder
                    .append_dir(&rel_child, entry.path())
                    .map_err(|e| Error::io("packing", entry.path(), e))?;
                stack.push(rel_child);
            } else {
                builder
                    .append_path_with_name(entry.path(), &rel_child)
                    .map_err(|e| Error::io("packing", entry.path(), e))?;
            }
        }
    }
    builder
        .into_inner()
        .map_err(|e| Error::io("packing", dir, e))
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

#[cfg(test)]
mod tests {
    use super::split_reference;

    #[test]
    fn splits_references() {
        assert_eq!(
            split_reference("debian:bookworm-slim"),
            ("debian", "bookworm-slim")
        );
        assert_eq!(
            split_reference("sandpit/python"),
            ("sandpit/python", "latest")
        );
        assert_eq!(split_reference("reg:5000/a/b"), ("reg:5000/a/b", "latest"));
        assert_eq!(split_reference("reg:5000/a/b:v1"), ("reg:5000/a/b", "v1"));
    }
}
