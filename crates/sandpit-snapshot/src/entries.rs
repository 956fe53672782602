//! The archive's entries, checked one by one: a snapshot re-packs the engine's tar of the
//! workdir (paths made relative to it, owner the sandbox user, set-id bits dropped, entries a
//! restore would refuse left out and listed); a restore checks every entry again before it
//! reaches the engine and refuses the whole snapshot on the first bad one. Both run on a
//! blocking thread and stream: memory stays a few buffers.

use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use sandpit::archive::link_stays_inside;

use crate::manifest::Skipped;
use crate::pipe::Sink;

/// Owner of every restored entry: the sandbox user.
const SANDBOX_OWNER: u64 = 1000;

/// What an accepted entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    Dir,
    File,
    Symlink(PathBuf),
    HardLink(PathBuf),
}

/// A refused entry: `skippable` ones a snapshot may leave out; a restore refuses them all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub reason: String,
    pub skippable: bool,
}

fn refuse(reason: impl Into<String>) -> Refusal {
    Refusal {
        reason: reason.into(),
        skippable: false,
    }
}

fn skip(reason: impl Into<String>) -> Refusal {
    Refusal {
        reason: reason.into(),
        skippable: true,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Dir,
    File,
    Link,
}

/// Remembers the entries accepted so far, so that no later entry writes through a symlink,
/// replaces a folder, or hard-links to something that is not a file of the archive.
#[derive(Debug, Default)]
pub(crate) struct Checker {
    seen: HashMap<PathBuf, Seen>,
}

/// A path's parts when every one is a plain name (`.` parts dropped).
pub(crate) fn plain_parts(path: &Path) -> Result<Vec<OsString>, Refusal> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(s) => parts.push(s.to_owned()),
            Component::CurDir => {}
            _ => return Err(refuse("its path is absolute or climbs out with `..`")),
        }
    }
    Ok(parts)
}

impl Checker {
    /// Checks one entry at `rel` (relative, plain parts) of tar type `kind` with link target
    /// `link` (already relative to the workdir for hard links).
    pub(crate) fn check(
        &mut self,
        rel: &Path,
        kind: tar::EntryType,
        link: Option<&Path>,
    ) -> Result<Kind, Refusal> {
        let mut ancestor = PathBuf::new();
        let parts: Vec<Component> = rel.components().collect();
        for c in &parts[..parts.len().saturating_sub(1)] {
            ancestor.push(c);
            match self.seen.get(&ancestor) {
                Some(Seen::Link) => {
                    return Err(refuse(format!(
                        "it lies under {}, a symlink: writing through it is refused",
                        ancestor.display()
                    )))
                }
                Some(Seen::File) => {
                    return Err(refuse(format!(
                        "it lies under {}, which is a file",
                        ancestor.display()
                    )))
                }
                Some(Seen::Dir) | None => {}
            }
        }
        let accepted = match kind {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
            tar::EntryType::Symlink => {
                let target = link.ok_or_else(|| refuse("a symlink without a target"))?;
                if !link_stays_inside(rel, target) {
                    return Err(skip(format!(
                        "a symlink to {}, outside the workdir",
                        target.display()
                    )));
                }
                Kind::Symlink(target.to_path_buf())
            }
            tar::EntryType::Link => {
                let target = link.ok_or_else(|| refuse("a hard link without a target"))?;
                if self.seen.get(target) != Some(&Seen::File) {
                    return Err(skip(format!(
                        "a hard link to {}, which is not a file before it in the workdir",
                        target.display()
                    )));
                }
                Kind::HardLink(target.to_path_buf())
            }
            tar::EntryType::GNUSparse => return Err(skip("a sparse file (not supported)")),
            tar::EntryType::Char | tar::EntryType::Block => {
                return Err(skip("a device (never part of a snapshot)"))
            }
            tar::EntryType::Fifo => return Err(skip("a named pipe (never part of a snapshot)")),
            other => {
                return Err(skip(format!(
                    "an entry of tar type {:?}",
                    other.as_byte() as char
                )))
            }
        };
        match (self.seen.get(rel), &accepted) {
            (None, _) => {}
            (Some(Seen::Dir), Kind::Dir) => return Ok(accepted),
            (Some(_), _) => return Err(refuse("the path appears twice in the archive")),
        }
        let mut ancestor = PathBuf::new();
        for c in &parts[..parts.len().saturating_sub(1)] {
            ancestor.push(c);
            self.seen.entry(ancestor.clone()).or_insert(Seen::Dir);
        }
        let seen = match accepted {
            Kind::Dir => Seen::Dir,
            Kind::File | Kind::HardLink(_) => Seen::File,
            Kind::Symlink(_) => Seen::Link,
        };
        self.seen.insert(rel.to_path_buf(), seen);
        Ok(accepted)
    }
}

/// What went through a re-pack.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Counts {
    pub files: u64,
    pub dirs: u64,
    pub symlinks: u64,
    pub hard_links: u64,
    pub content_bytes: u64,
}

/// Why a re-pack stopped.
#[derive(Debug)]
pub(crate) enum PackError {
    /// Reading or writing failed (the other side stopped, the engine or store failed).
    Io(std::io::Error),
    /// The input holds something refused.
    Refused { path: String, reason: String },
}

impl std::fmt::Display for PackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PackError::Io(e) => write!(f, "{e}"),
            PackError::Refused { path, reason } => write!(f, "the entry {path}: {reason}"),
        }
    }
}

impl From<std::io::Error> for PackError {
    fn from(e: std::io::Error) -> Self {
        PackError::Io(e)
    }
}

fn header(kind: tar::EntryType, mode: u32, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(kind);
    h.set_uid(SANDBOX_OWNER);
    h.set_gid(SANDBOX_OWNER);
    // Set-id bits are dropped; the sticky bit and permissions stay.
    h.set_mode(mode & 0o1777);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// An entry's header facts kept across a re-pack.
struct Meta {
    mode: u32,
    mtime: u64,
    size: u64,
}

impl Meta {
    fn of(entry: &tar::Entry<impl Read>, kind: &Kind) -> Meta {
        let h = entry.header();
        Meta {
            mode: h.mode().unwrap_or(match kind {
                Kind::Dir => 0o755,
                _ => 0o644,
            }),
            mtime: h.mtime().unwrap_or(0),
            size: h.size().unwrap_or(0),
        }
    }
}

/// Writes one accepted entry, its data read from `data`.
fn append(
    out: &mut tar::Builder<impl Write>,
    rel: &Path,
    kind: &Kind,
    meta: Meta,
    data: &mut dyn Read,
    counts: &mut Counts,
) -> std::io::Result<()> {
    let Meta { mode, mtime, size } = meta;
    match kind {
        Kind::Dir => {
            counts.dirs += 1;
            let mut h = header(tar::EntryType::Directory, mode, mtime, 0);
            out.append_data(&mut h, rel, std::io::empty())
        }
        Kind::File => {
            counts.files += 1;
            counts.content_bytes += size;
            let mut h = header(tar::EntryType::Regular, mode, mtime, size);
            out.append_data(&mut h, rel, data.take(size))
        }
        Kind::Symlink(target) => {
            counts.symlinks += 1;
            let mut h = header(tar::EntryType::Symlink, mode, mtime, 0);
            out.append_link(&mut h, rel, target)
        }
        Kind::HardLink(target) => {
            counts.hard_links += 1;
            let mut h = header(tar::EntryType::Link, mode, mtime, 0);
            out.append_link(&mut h, rel, target)
        }
    }
}

/// Re-packs the engine's tar of the workdir (entries under `top/`, the workdir's name) into
/// `out` as a gzip-compressed tar of paths relative to the workdir. Entries a restore would
/// refuse (symlinks out, devices, pipes) are left out and returned.
pub(crate) fn pack<W: Sink>(
    input: impl Read,
    out: W,
    top: &str,
) -> Result<(Counts, Vec<Skipped>, W), PackError> {
    // The fastest level: on incompressible data (most big workdirs: archives, images,
    // models) it is about five times faster than level 3 and no larger.
    let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Complete);
    match pack_entries(&mut builder, input, top) {
        Ok((counts, skipped)) => {
            let gz = builder.into_inner()?;
            let out = gz.finish()?;
            Ok((counts, skipped, out))
        }
        Err(e) => {
            builder.get_mut().get_mut().poison(&e.to_string());
            Err(e)
        }
    }
}

fn pack_entries(
    builder: &mut tar::Builder<impl Write>,
    input: impl Read,
    top: &str,
) -> Result<(Counts, Vec<Skipped>), PackError> {
    let mut archive = tar::Archive::new(input);
    let mut checker = Checker::default();
    let mut counts = Counts::default();
    let mut skipped = Vec::new();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let refused = |r: Refusal| PackError::Refused {
            path: shown.clone(),
            reason: r.reason,
        };
        let parts = plain_parts(&raw).map_err(refused)?;
        let Some((first, rest)) = parts.split_first() else {
            continue;
        };
        if first.to_str() != Some(top) {
            return Err(refused(refuse(format!(
                "the engine's archive of the workdir holds an entry outside {top}/"
            ))));
        }
        if rest.is_empty() {
            continue; // the workdir itself
        }
        let rel: PathBuf = rest.iter().collect();
        let kind = entry.header().entry_type();
        let link = match kind {
            tar::EntryType::Symlink => entry.link_name()?.map(|l| l.into_owned()),
            tar::EntryType::Link => match entry.link_name()? {
                // Hard link targets are archive paths: under `top/` too.
                Some(l) => {
                    let target = plain_parts(&l).map_err(refused)?;
                    match target.split_first() {
                        Some((f, r)) if f.to_str() == Some(top) && !r.is_empty() => {
                            Some(r.iter().collect())
                        }
                        _ => None,
                    }
                }
                None => None,
            },
            _ => None,
        };
        match checker.check(&rel, kind, link.as_deref()) {
            Ok(accepted) => {
                let meta = Meta::of(&entry, &accepted);
                append(builder, &rel, &accepted, meta, &mut entry, &mut counts)?;
            }
            Err(r) if r.skippable => skipped.push(Skipped {
                path: rel.display().to_string(),
                reason: r.reason,
            }),
            Err(r) => {
                return Err(PackError::Refused {
                    path: rel.display().to_string(),
                    reason: r.reason,
                })
            }
        }
    }
    // Read what follows the end marker, so the engine's stream ends (or says it failed).
    std::io::copy(&mut archive.into_inner(), &mut std::io::sink())?;
    Ok((counts, skipped))
}

/// Checks every entry of a snapshot's compressed archive read from `input` and writes the
/// accepted ones as a plain tar to `out`, paths relative to the workdir. The first refused
/// entry stops it. The end marker is written only after the whole input was read (so a
/// checksum failure found at the end still fails the upload), by the caller, who checks the
/// input first: this returns the tar builder unfinished.
pub(crate) fn unpack_checked<R: Read, W: Sink>(
    input: R,
    out: W,
) -> Result<(Counts, tar::Builder<W>, R), PackError> {
    let mut builder = tar::Builder::new(out);
    builder.mode(tar::HeaderMode::Complete);
    match unpack_entries(&mut builder, input) {
        Ok((counts, input)) => Ok((counts, builder, input)),
        Err(e) => {
            builder.get_mut().poison(&e.to_string());
            Err(e)
        }
    }
}

fn unpack_entries<R: Read>(
    builder: &mut tar::Builder<impl Write>,
    input: R,
) -> Result<(Counts, R), PackError> {
    let gz = flate2::read::GzDecoder::new(input);
    let mut archive = tar::Archive::new(gz);
    let mut checker = Checker::default();
    let mut counts = Counts::default();
    for entry in archive.entries()? {
        let mut entry = entry?;
        let raw = entry.path()?.into_owned();
        let shown = raw.display().to_string();
        let refused = |r: Refusal| PackError::Refused {
            path: shown.clone(),
            reason: r.reason,
        };
        let parts = plain_parts(&raw).map_err(refused)?;
        if parts.is_empty() {
            return Err(refused(refuse("an entry without a path")));
        }
        let rel: PathBuf = parts.iter().collect();
        let kind = entry.header().entry_type();
        let link = match kind {
            tar::EntryType::Symlink | tar::EntryType::Link => {
                entry.link_name()?.map(|l| l.into_owned())
            }
            _ => None,
        };
        let link = match (kind, link) {
            (tar::EntryType::Link, Some(l)) => Some(
                plain_parts(&l)
                    .map_err(refused)?
                    .iter()
                    .collect::<PathBuf>(),
            ),
            (_, l) => l,
        };
        let accepted = checker
            .check(&rel, kind, link.as_deref())
            .map_err(refused)?;
        let meta = Meta::of(&entry, &accepted);
        append(builder, &rel, &accepted, meta, &mut entry, &mut counts)?;
    }
    // The rest of the gzip member (its checksum and length are checked on the way), then
    // whatever follows it.
    let mut gz = archive.into_inner();
    std::io::copy(&mut gz, &mut std::io::sink())?;
    let mut input = gz.into_inner();
    std::io::copy(&mut input, &mut std::io::sink())?;
    Ok((counts, input))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw_entry(
        b: &mut tar::Builder<Vec<u8>>,
        name: &[u8],
        kind: tar::EntryType,
        link: &[u8],
        data: &[u8],
    ) {
        // Names are written as bytes: tar refuses to write `..` itself.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_size(data.len() as u64);
        h.set_mode(0o4755);
        let gnu = h.as_gnu_mut().unwrap();
        gnu.name[..name.len()].copy_from_slice(name);
        gnu.linkname[..link.len()].copy_from_slice(link);
        h.set_cksum();
        b.append(&h, data).unwrap();
    }

    /// An entry: name bytes, type, link target bytes, data.
    type Spec<'a> = (&'a [u8], tar::EntryType, &'a [u8], &'a [u8]);

    fn docker_tar(entries: &[Spec]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, link, data) in entries {
            raw_entry(&mut b, name, *kind, link, data);
        }
        b.into_inner().unwrap()
    }

    use tar::EntryType as T;

    #[test]
    fn pack_keeps_files_modes_and_inner_links_and_lists_what_it_leaves_out() {
        let input = docker_tar(&[
            (b"sandbox/", T::Directory, b"", b""),
            (b"sandbox/run.sh", T::Regular, b"", b"#!/bin/sh\n"),
            (b"sandbox/d/", T::Directory, b"", b""),
            (b"sandbox/d/link", T::Symlink, b"../run.sh", b""),
            (b"sandbox/d/hard", T::Link, b"sandbox/run.sh", b""),
            (b"sandbox/py", T::Symlink, b"/usr/bin/python3", b""),
            (b"sandbox/fifo", T::Fifo, b"", b""),
        ]);
        let (counts, skipped, packed) = pack(&input[..], Vec::new(), "sandbox").unwrap();
        assert_eq!(
            counts,
            Counts {
                files: 1,
                dirs: 1,
                symlinks: 1,
                hard_links: 1,
                content_bytes: 10
            }
        );
        let paths: Vec<&str> = skipped.iter().map(|s| s.path.as_str()).collect();
        assert_eq!(paths, ["py", "fifo"]);
        assert!(skipped[0].reason.contains("outside the workdir"));

        // The packed archive restores: relative paths, the sandbox user, no set-id bits.
        let (counts2, builder, _) = unpack_checked(&packed[..], Vec::new()).unwrap();
        assert_eq!(counts2, counts);
        let plain = builder.into_inner().unwrap();
        let mut ar = tar::Archive::new(&plain[..]);
        let mut seen = Vec::new();
        for e in ar.entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().uid().unwrap(), 1000);
            seen.push((
                e.path().unwrap().display().to_string(),
                e.header().mode().unwrap(),
            ));
        }
        assert_eq!(seen[0], ("run.sh".to_string(), 0o755));
        assert_eq!(seen.len(), 4);
    }

    #[test]
    fn a_restore_refuses_escaping_and_unsafe_entries() {
        let cases: &[(&[Spec], &str)] = &[
            (&[(b"../x", T::Regular, b"", b"x")], "climbs out"),
            (&[(b"/etc/x", T::Regular, b"", b"x")], "absolute"),
            (&[(b"l", T::Symlink, b"/etc", b"")], "outside the workdir"),
            (&[(b"l", T::Symlink, b"../..", b"")], "outside the workdir"),
            (
                &[
                    (b"l", T::Symlink, b"d", b""),
                    (b"l/x", T::Regular, b"", b"x"),
                ],
                "symlink",
            ),
            (&[(b"h", T::Link, b"/etc/passwd", b"")], "absolute"),
            (&[(b"h", T::Link, b"nothing", b"")], "not a file"),
            (&[(b"dev", T::Char, b"", b"")], "device"),
            (
                &[
                    (b"a/f", T::Regular, b"", b"x"),
                    (b"a", T::Symlink, b"b", b""),
                ],
                "twice",
            ),
        ];
        for (entries, says) in cases {
            let plain = docker_tar(entries);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&plain).unwrap();
            let packed = gz.finish().unwrap();
            match unpack_checked(&packed[..], Vec::new()) {
                Err(PackError::Refused { reason, .. }) => {
                    assert!(reason.contains(says), "{says}: {reason}")
                }
                Err(PackError::Io(e)) => panic!("{says}: io {e}"),
                Ok(_) => panic!("{says}: accepted"),
            }
        }
    }
}
