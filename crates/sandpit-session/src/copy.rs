//! Files in and out of the container as tar streams, with every path checked.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Owner of files copied into the container (the sandbox user).
const SANDBOX_UID: u64 = 1000;

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

/// Packs a host file or folder (not following symlinks) as a tar whose top entry is `name`,
/// with every entry owned by the sandbox user and modes kept.
pub(crate) fn pack_host_path(host: &Path, name: &str) -> Result<Vec<u8>> {
    let meta = std::fs::symlink_metadata(host).map_err(|e| Error::io("reading", host, e))?;
    let mut builder = tar::Builder::new(Vec::new());
    append(&mut builder, host, Path::new(name), &meta)?;
    builder
        .into_inner()
        .map_err(|e| Error::io("packing", host, e))
}

fn append(
    builder: &mut tar::Builder<Vec<u8>>,
    host: &Path,
    name: &Path,
    meta: &std::fs::Metadata,
) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut header = tar::Header::new_gnu();
    header.set_uid(SANDBOX_UID);
    header.set_gid(SANDBOX_UID);
    header.set_mode(meta.mode() & 0o7777);
    header.set_mtime(meta.mtime().max(0) as u64);
    let ft = meta.file_type();
    if ft.is_dir() {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        builder
            .append_data(&mut header, name, std::io::empty())
            .map_err(|e| Error::io("packing", host, e))?;
        let mut entries: Vec<_> = std::fs::read_dir(host)
            .map_err(|e| Error::io("reading", host, e))?
            .collect::<std::io::Result<_>>()
            .map_err(|e| Error::io("reading", host, e))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let path = entry.path();
            let meta =
                std::fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
            append(builder, &path, &name.join(entry.file_name()), &meta)?;
        }
    } else if ft.is_symlink() {
        let target = std::fs::read_link(host).map_err(|e| Error::io("reading", host, e))?;
        header.set_entry_type(tar::EntryType::Symlink);
        header.set_size(0);
        builder
            .append_link(&mut header, name, &target)
            .map_err(|e| Error::io("packing", host, e))?;
    } else if ft.is_file() {
        header.set_entry_type(tar::EntryType::Regular);
        header.set_size(meta.len());
        let file = std::fs::File::open(host).map_err(|e| Error::io("opening", host, e))?;
        builder
            .append_data(&mut header, name, file)
            .map_err(|e| Error::io("packing", host, e))?;
    } else {
        return Err(Error::InvalidPath {
            path: host.display().to_string(),
            reason: "only regular files, folders and symlinks can be copied".into(),
        });
    }
    Ok(())
}

/// A tar holding one in-memory file (used for stdin and large sources).
pub(crate) fn pack_bytes(name: &str, data: &[u8], mode: u32) -> Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_uid(SANDBOX_UID);
    header.set_gid(SANDBOX_UID);
    header.set_mode(mode);
    header.set_size(data.len() as u64);
    builder
        .append_data(&mut header, name, data)
        .map_err(|e| Error::io("packing", name, e))?;
    builder
        .into_inner()
        .map_err(|e| Error::io("packing", name, e))
}

/// Unpacks a tar from the engine so that its top entry becomes `dest`.
///
/// Refuses absolute paths, `..`, entries outside the top entry, hard links, device files,
/// and symlinks whose target would leave `dest`. Set-id bits are dropped.
pub(crate) fn unpack_to_host(archive: &[u8], dest: &Path, source: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let refuse = |entry: &str, reason: &str| Error::InvalidPath {
        path: format!("{source} ({entry})"),
        reason: format!("{reason}; nothing past this entry was written"),
    };
    let mut ar = tar::Archive::new(archive);
    let entries = ar
        .entries()
        .map_err(|e| Error::io("reading the archive of", source, e))?;
    let mut top: Option<String> = None;
    let mut dirs_modes: Vec<(PathBuf, u32)> = Vec::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| Error::io("reading the archive of", source, e))?;
        let raw = entry
            .path()
            .map_err(|e| Error::io("reading the archive of", source, e))?
            .into_owned();
        let shown = raw.display().to_string();
        let mut parts = Vec::new();
        for c in raw.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_owned()),
                Component::CurDir => {}
                _ => {
                    return Err(refuse(
                        &shown,
                        "the entry's path is absolute or climbs out with `..`",
                    ))
                }
            }
        }
        let Some(first) = parts.first() else { continue };
        let first = first.to_string_lossy().into_owned();
        match &top {
            None => top = Some(first),
            Some(t) if *t == first => {}
            Some(_) => {
                return Err(refuse(
                    &shown,
                    "the archive holds more than one top-level entry",
                ))
            }
        }
        let rel: PathBuf = parts[1..].iter().collect();
        let target = if rel.as_os_str().is_empty() {
            dest.to_path_buf()
        } else {
            dest.join(&rel)
        };
        let mode = entry.header().mode().unwrap_or(0o644) & 0o1777;
        let kind = entry.header().entry_type();
        match kind {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| Error::io("creating", &target, e))?;
                dirs_modes.push((target, mode));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                check_no_symlink_between(dest, &rel)?;
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
                }
                if std::fs::symlink_metadata(&target).is_ok_and(|m| m.file_type().is_symlink()) {
                    std::fs::remove_file(&target).map_err(|e| Error::io("replacing", &target, e))?;
                }
                let mut file = std::fs::File::create(&target).map_err(|e| Error::io("creating", &target, e))?;
                std::io::copy(&mut entry, &mut file).map_err(|e| Error::io("writing", &target, e))?;
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| Error::io("setting the mode of", &target, e))?;
            }
            tar::EntryType::Symlink => {
                let link = entry
                    .link_name()
                    .map_err(|e| Error::io("reading the archive of", source, e))?
                    .ok_or_else(|| refuse(&shown, "a symlink without a target"))?
                    .into_owned();
                if !link_stays_inside(&rel, &link) {
                    return Err(refuse(
                        &shown,
                        &format!("it is a symlink to {} which points outside the destination", link.display()),
                    ));
                }
                check_no_symlink_between(dest, &rel)?;
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("creating", parent, e))?;
                }
                let _ = std::fs::remove_file(&target);
                std::os::unix::fs::symlink(&link, &target).map_err(|e| Error::io("creating", &target, e))?;
            }
            _ => return Err(refuse(&shown, "only regular files, folders and symlinks are copied (hard links and devices are refused)")),
        }
    }
    if top.is_none() {
        return Err(Error::InvalidPath {
            path: source.into(),
            reason: "the engine returned an empty archive".into(),
        });
    }
    // Folder modes last, so a read-only folder does not block writing its contents.
    for (dir, mode) in dirs_modes.into_iter().rev() {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("setting the mode of", &dir, e))?;
    }
    Ok(())
}

/// A symlink at `rel` (relative to the destination) pointing at `link` stays inside it.
fn link_stays_inside(rel: &Path, link: &Path) -> bool {
    if link.is_absolute() {
        return false;
    }
    // Depth of the folder holding the link, then walk the target.
    let mut depth: i64 = rel.components().count() as i64 - 1;
    for c in link.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            Component::CurDir => {}
            _ => return false,
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

/// Refuses writing through a symlink created by an earlier entry.
fn check_no_symlink_between(dest: &Path, rel: &Path) -> Result<()> {
    let mut cur = dest.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        cur.push(c);
        if std::fs::symlink_metadata(&cur).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(Error::InvalidPath {
                path: rel.display().to_string(),
                reason: format!(
                    "{} is a symlink; writing through it is refused",
                    cur.display()
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
    fn symlink_targets_are_checked() {
        assert!(link_stays_inside(Path::new("a/link"), Path::new("b")));
        assert!(link_stays_inside(Path::new("a/link"), Path::new("../c")));
        assert!(!link_stays_inside(Path::new("link"), Path::new("../c")));
        assert!(!link_stays_inside(
            Path::new("a/link"),
            Path::new("/etc/passwd")
        ));
    }

    #[test]
    fn archives_with_escaping_entries_are_refused() {
        let dest = tempfile::tempdir().unwrap();
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        h.set_mode(0o644);
        // tar refuses to *write* `..`, so write the name bytes directly.
        h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"top/../../x\0");
        h.set_cksum();
        b.append(&h, &b"x"[..]).unwrap();
        let data = b.into_inner().unwrap();
        let err = unpack_to_host(&data, &dest.path().join("out"), "/c").unwrap_err();
        assert!(err.to_string().contains("climbs out"), "{err}");
        assert!(!dest.path().parent().unwrap().join("x").exists());
    }

    #[test]
    fn round_trip_keeps_bytes_and_modes() {
        use std::os::unix::fs::PermissionsExt;
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir(src.path().join("d")).unwrap();
        std::fs::write(src.path().join("d/run.sh"), b"#!/bin/sh\n\xff\x00").unwrap();
        std::fs::set_permissions(
            src.path().join("d/run.sh"),
            std::fs::Permissions::from_mode(0o751),
        )
        .unwrap();
        let tar = pack_host_path(src.path(), "top").unwrap();
        let out = tempfile::tempdir().unwrap();
        unpack_to_host(&tar, &out.path().join("copy"), "/x").unwrap();
        let copied = out.path().join("copy/d/run.sh");
        assert_eq!(std::fs::read(&copied).unwrap(), b"#!/bin/sh\n\xff\x00");
        assert_eq!(
            std::fs::metadata(&copied).unwrap().permissions().mode() & 0o777,
            0o751
        );
    }
}
