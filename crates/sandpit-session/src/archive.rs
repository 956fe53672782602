//! The one place tar archives are made and read: files and folders for the engine's copy API,
//! build contexts, and the checked unpacking of what comes back.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, Result};

/// Owner of files Sandpit places for user code (the sandbox user).
pub(crate) const SANDBOX_OWNER: (u64, u64) = (1000, 1000);
/// Owner root.
pub(crate) const ROOT_OWNER: (u64, u64) = (0, 0);

/// Builds a tar archive in memory, entry by entry.
pub(crate) struct ArchiveBuilder {
    tar: tar::Builder<Vec<u8>>,
}

impl ArchiveBuilder {
    pub(crate) fn new() -> Self {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        ArchiveBuilder { tar }
    }

    fn header(kind: tar::EntryType, owner: (u64, u64), mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_uid(owner.0);
        h.set_gid(owner.1);
        h.set_mode(mode);
        h.set_size(size);
        h.set_mtime(0);
        h
    }

    /// A file entry holding `data`.
    pub(crate) fn file(
        &mut self,
        path: &str,
        data: &[u8],
        owner: (u64, u64),
        mode: u32,
    ) -> Result<&mut Self> {
        let mut h = Self::header(tar::EntryType::Regular, owner, mode, data.len() as u64);
        self.tar
            .append_data(&mut h, path.trim_start_matches('/'), data)
            .map_err(|e| Error::io("packing", path, e))?;
        Ok(self)
    }

    /// A hard link `path` to the entry `target` (extracted as one `link(2)`: atomic).
    pub(crate) fn hard_link(&mut self, path: &str, target: &str) -> Result<&mut Self> {
        let mut h = Self::header(tar::EntryType::Link, ROOT_OWNER, 0o755, 0);
        self.tar
            .append_link(&mut h, path.trim_start_matches('/'), target)
            .map_err(|e| Error::io("packing", path, e))?;
        Ok(self)
    }

    /// A host file or folder (not following symlinks) under the name `name`, every entry
    /// owned by `owner` with its mode and time kept, skipping paths `skip` accepts (relative
    /// to `host`).
    pub(crate) fn host_path(
        &mut self,
        host: &Path,
        name: &Path,
        owner: Option<(u64, u64)>,
        skip: &dyn Fn(&Path) -> bool,
    ) -> Result<&mut Self> {
        let meta = std::fs::symlink_metadata(host).map_err(|e| Error::io("reading", host, e))?;
        self.append_host(host, name, Path::new(""), &meta, owner, skip)?;
        Ok(self)
    }

    fn append_host(
        &mut self,
        host: &Path,
        name: &Path,
        rel: &Path,
        meta: &std::fs::Metadata,
        owner: Option<(u64, u64)>,
        skip: &dyn Fn(&Path) -> bool,
    ) -> Result<()> {
        use std::os::unix::fs::MetadataExt;
        let owner = owner.unwrap_or((meta.uid() as u64, meta.gid() as u64));
        let ft = meta.file_type();
        let packing = |e| Error::io("packing", host, e);
        if ft.is_dir() {
            if !name.as_os_str().is_empty() {
                let mut h = Self::header(tar::EntryType::Directory, owner, meta.mode() & 0o7777, 0);
                h.set_mtime(meta.mtime().max(0) as u64);
                self.tar
                    .append_data(&mut h, name, std::io::empty())
                    .map_err(packing)?;
            }
            let mut entries: Vec<_> = std::fs::read_dir(host)
                .map_err(|e| Error::io("reading", host, e))?
                .collect::<std::io::Result<_>>()
                .map_err(|e| Error::io("reading", host, e))?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let child_rel = rel.join(entry.file_name());
                if skip(&child_rel) {
                    continue;
                }
                let path = entry.path();
                let meta =
                    std::fs::symlink_metadata(&path).map_err(|e| Error::io("reading", &path, e))?;
                self.append_host(
                    &path,
                    &name.join(entry.file_name()),
                    &child_rel,
                    &meta,
                    Some(owner),
                    skip,
                )?;
            }
        } else if ft.is_symlink() {
            let target = std::fs::read_link(host).map_err(|e| Error::io("reading", host, e))?;
            let mut h = Self::header(tar::EntryType::Symlink, owner, meta.mode() & 0o7777, 0);
            h.set_mtime(meta.mtime().max(0) as u64);
            self.tar
                .append_link(&mut h, name, &target)
                .map_err(packing)?;
        } else if ft.is_file() {
            let mut h = Self::header(
                tar::EntryType::Regular,
                owner,
                meta.mode() & 0o7777,
                meta.len(),
            );
            h.set_mtime(meta.mtime().max(0) as u64);
            let file = std::fs::File::open(host).map_err(|e| Error::io("opening", host, e))?;
            self.tar.append_data(&mut h, name, file).map_err(packing)?;
        } else {
            return Err(Error::InvalidPath {
                path: host.display().to_string(),
                reason: "only regular files, folders and symlinks can be copied".into(),
            });
        }
        Ok(())
    }

    /// The finished archive.
    pub(crate) fn finish(self) -> Result<Vec<u8>> {
        self.tar
            .into_inner()
            .map_err(|e| Error::io("packing", "the archive", e))
    }
}

/// A tar of a host file or folder under the name `name`, owned by the sandbox user.
pub(crate) fn host_path(host: &Path, name: &str) -> Result<Vec<u8>> {
    let mut b = ArchiveBuilder::new();
    b.host_path(host, Path::new(name), Some(SANDBOX_OWNER), &|_| false)?;
    b.finish()
}

/// The same archive with every entry owned by `owner`. Podman's copy API writes the numeric
/// owner of a volume's files as 0 (only the names are right), so a workdir carried into a
/// template through it would come back as root's.
pub(crate) fn owned_by(archive: &[u8], owner: (u64, u64)) -> Result<Vec<u8>> {
    let fail = |e| Error::io("rewriting the owners in", "the workdir archive", e);
    let mut out = tar::Builder::new(Vec::new());
    out.follow_symlinks(false);
    let mut ar = tar::Archive::new(archive);
    for entry in ar.entries().map_err(fail)? {
        let mut entry = entry.map_err(fail)?;
        let path = entry.path().map_err(fail)?.into_owned();
        let link = entry.link_name().map_err(fail)?.map(|l| l.into_owned());
        let mut header = entry.header().clone();
        header.set_uid(owner.0);
        header.set_gid(owner.1);
        match link {
            Some(target) => out.append_link(&mut header, &path, &target),
            None => out.append_data(&mut header, &path, &mut entry),
        }
        .map_err(fail)?;
    }
    out.into_inner().map_err(fail)
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

/// True when a symlink at `rel` (a path relative to a folder) pointing at `link` stays inside
/// that folder, judged on the names alone (nothing is followed): an absolute or empty target,
/// or one whose `..`s climb above the folder, does not. Copies out of a sandbox and snapshot
/// restores both use it.
pub fn link_stays_inside(rel: &Path, link: &Path) -> bool {
    if link.is_absolute() || link.as_os_str().is_empty() {
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
    fn owners_are_rewritten_and_everything_else_kept() {
        let mut b = ArchiveBuilder::new();
        let long = format!("sandbox/{}/data.txt", "d".repeat(120));
        let mut dir = ArchiveBuilder::header(tar::EntryType::Directory, ROOT_OWNER, 0o755, 0);
        b.tar
            .append_data(&mut dir, "sandbox", std::io::empty())
            .unwrap();
        b.file(&long, b"content", ROOT_OWNER, 0o640).unwrap();
        let mut tar = b.tar;
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        tar.append_link(&mut h, "sandbox/link", "data.txt").unwrap();
        let original = tar.into_inner().unwrap();

        let rewritten = owned_by(&original, SANDBOX_OWNER).unwrap();
        let mut ar = tar::Archive::new(rewritten.as_slice());
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            let h = e.header().clone();
            assert_eq!((h.uid().unwrap(), h.gid().unwrap()), SANDBOX_OWNER);
            let path = e.path().unwrap().display().to_string();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut e, &mut body).unwrap();
            seen.push((path, h.mode().unwrap() & 0o7777, body, h.entry_type()));
        }
        assert_eq!(seen.len(), 3);
        assert_eq!(seen[1].0, long);
        assert_eq!((seen[1].1, seen[1].2.as_slice()), (0o640, &b"content"[..]));
        assert_eq!(seen[2].3, tar::EntryType::Symlink);
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
        assert!(!link_stays_inside(Path::new("a/link"), Path::new("")));
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
        let tar = host_path(src.path(), "top").unwrap();
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
