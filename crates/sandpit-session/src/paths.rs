//! Paths inside the sandbox: resolved against the workdir, `..` refused, memory folders named.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Resolves a container path against the workdir and refuses `..` and empty paths.
pub(crate) fn container_path(workdir: &str, path: &str) -> Result<String> {
    if path.trim().is_empty() {
        return Err(Error::InvalidPath {
            path: path.into(),
            reason: "the container path is empty".into(),
        });
    }
    let joined = if path.starts_with('/') {
        PathBuf::from(path)
    } else {
        Path::new(workdir).join(path)
    };
    let mut parts: Vec<String> = Vec::new();
    for c in joined.components() {
        match c {
            Component::RootDir | Component::CurDir => {}
            Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
            Component::ParentDir => {
                return Err(Error::InvalidPath {
                    path: path.into(),
                    reason: "`..` is not allowed in container paths; give the path plainly".into(),
                })
            }
            Component::Prefix(_) => {
                return Err(Error::InvalidPath {
                    path: path.into(),
                    reason: "not a Unix path".into(),
                })
            }
        }
    }
    if parts.is_empty() {
        return Err(Error::InvalidPath {
            path: path.into(),
            reason: "copying onto / is not allowed; name a file or folder".into(),
        });
    }
    Ok(format!("/{}", parts.join("/")))
}

/// Splits `/a/b/c` into (`/a/b`, `c`).
pub(crate) fn parent_and_name(path: &str) -> (String, String) {
    let (parent, name) = path.rsplit_once('/').unwrap_or(("", path));
    let parent = if parent.is_empty() { "/" } else { parent };
    (parent.to_string(), name.to_string())
}

/// Folders that are memory filesystems inside the sandbox: the engine's copy API writes
/// beneath them, where the code would never see the files.
pub(crate) const MEMORY_FOLDERS: &[&str] = &["/tmp", "/var/tmp", "/run/lock", "/home/sandbox"];

/// Refuses destinations inside a memory folder.
pub(crate) fn refuse_memory_folders(dest: &str) -> Result<()> {
    for dir in MEMORY_FOLDERS {
        if dest == *dir || dest.starts_with(&format!("{dir}/")) {
            return Err(Error::InvalidPath {
                path: dest.to_string(),
                reason: format!(
                    "{dir} is a memory filesystem inside the sandbox that copies cannot reach; copy into the workdir instead"
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_paths_resolve_and_refuse_escapes() {
        assert_eq!(
            container_path("/sandbox", "a.txt").unwrap(),
            "/sandbox/a.txt"
        );
        assert_eq!(container_path("/sandbox", "/tmp/./x").unwrap(), "/tmp/x");
        assert!(container_path("/sandbox", "../etc/passwd").is_err());
        assert!(container_path("/sandbox", "/").is_err());
        assert!(container_path("/sandbox", "").is_err());
    }

    #[test]
    fn memory_folders_are_refused() {
        assert!(refuse_memory_folders("/tmp/x").is_err());
        assert!(refuse_memory_folders("/home/sandbox").is_err());
        assert!(refuse_memory_folders("/tmpfoo").is_ok());
        assert!(refuse_memory_folders("/sandbox/a").is_ok());
    }
}
