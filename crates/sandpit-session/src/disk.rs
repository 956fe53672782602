//! The workdir's disk limit on an engine whose storage cannot limit a container's layer
//! (overlay2 on ext4): a sparse ext4 image per session, attached to a loop device on the
//! engine's host and mounted as a local volume. Writing past it fails with ENOSPC inside the
//! container; the host file never grows past the limit.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::error::{Error, Result};

/// Where disk images live (override with `SANDPIT_DISK_DIR`).
pub fn disk_dir() -> PathBuf {
    std::env::var_os("SANDPIT_DISK_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/sandpit/disks"))
}

/// The folder of `engine`'s disks under [`disk_dir`].
pub(crate) fn area(info: &sandpit_engine::EngineInfo) -> String {
    info.kind.to_string().to_ascii_lowercase()
}

/// True when sessions on this engine get loop-mounted workdir disks: the engine shares this
/// host (it says so in its capabilities) and the tools are installed.
pub fn loop_disks_available(info: &sandpit_engine::EngineInfo) -> bool {
    info.capabilities.shares_host
        && ["mkfs.ext4", "losetup", "debugfs"]
            .iter()
            .all(|t| which(t).is_some())
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].iter().map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A session's disk: image file, loop device, and the stable link the volume mounts.
#[derive(Debug, Clone)]
pub(crate) struct LoopDisk {
    pub image: PathBuf,
    pub link: PathBuf,
}

impl LoopDisk {
    /// The disk of session `id` on the engine whose disks live in `area` (one folder per engine
    /// kind, so that one engine's clean-up never takes another's disks).
    pub(crate) fn paths(area: &str, id: &str) -> LoopDisk {
        let dir = disk_dir().join(area);
        LoopDisk {
            image: dir.join(format!("{id}.img")),
            link: dir.join(format!("{id}.dev")),
        }
    }

    /// Makes a `size`-byte ext4 disk owned by uid 1000 at its root, with no lost+found (an
    /// empty volume lets the engine copy the image's workdir content in), and attaches it.
    /// The filesystem is formatted once per size; each session gets a sparse copy.
    pub(crate) fn create(area: &str, id: &str, size: u64) -> Result<LoopDisk> {
        let disk = Self::paths(area, id);
        if let Some(dir) = disk.image.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        }
        let golden = golden(size)?;
        let fail = |step: &str, detail: String| Error::Disk {
            reason: format!("{step} failed: {detail}"),
        };
        let result = (|| {
            run(Command::new("cp")
                .arg("--sparse=always")
                .arg(&golden)
                .arg(&disk.image))
            .map_err(|e| fail("copying the disk image", e))?;
            let dev = run(Command::new(tool("losetup"))
                .args(["-f", "--show"])
                .arg(&disk.image))
            .map_err(|e| fail("losetup", e))?;
            let _ = std::fs::remove_file(&disk.link);
            std::os::unix::fs::symlink(dev.trim(), &disk.link)
                .map_err(|e| Error::io("linking", &disk.link, e))?;
            Ok(())
        })();
        if let Err(e) = result {
            disk.destroy();
            return Err(e);
        }
        Ok(disk)
    }

    /// Detaches the loop device and deletes the image. Safe to call twice.
    pub(crate) fn destroy(&self) {
        if let Ok(dev) = std::fs::read_link(&self.link) {
            let _ = Command::new(tool("losetup")).arg("-d").arg(dev).output();
        } else {
            detach_loops_of(&self.image);
        }
        let _ = std::fs::remove_file(&self.link);
        let _ = std::fs::remove_file(&self.image);
    }
}

/// Detaches every loop device backed by `image` (after a crash the link may be gone).
fn detach_loops_of(image: &Path) {
    if let Ok(out) = Command::new(tool("losetup")).arg("-j").arg(image).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some(dev) = line.split(':').next() {
                let _ = Command::new(tool("losetup")).args(["-d", dev]).output();
            }
        }
    }
}

fn tool(name: &str) -> PathBuf {
    which(name).unwrap_or_else(|| PathBuf::from(name))
}

/// The formatted filesystem every disk of `size` bytes is copied from, made once.
fn golden(size: u64) -> Result<PathBuf> {
    let dir = disk_dir();
    let path = dir.join(format!("golden-{size}.fs"));
    if path.is_file() {
        return Ok(path);
    }
    std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
    let fail = |step: &str, detail: String| Error::Disk {
        reason: format!("{step} failed: {detail}"),
    };
    // Built under a unique name and renamed, so concurrent sessions never see half a file.
    let tmp = dir.join(format!("golden-{size}.{}.tmp", crate::ids::random_hex(8)));
    let made = (|| {
        let file = std::fs::File::create(&tmp).map_err(|e| Error::io("creating", &tmp, e))?;
        file.set_len(size)
            .map_err(|e| Error::io("sizing", &tmp, e))?;
        drop(file);
        run(Command::new(tool("mkfs.ext4"))
            .args([
                "-q",
                "-F",
                "-m",
                "0",
                "-E",
                "lazy_itable_init=1,lazy_journal_init=1,root_owner=1000:1000",
            ])
            .arg(&tmp))
        .map_err(|e| fail("mkfs.ext4", e))?;
        run(Command::new(tool("debugfs"))
            .args(["-w", "-R", "rmdir lost+found"])
            .arg(&tmp))
        .map_err(|e| fail("debugfs", e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming", &tmp, e))
    })();
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map(|_| path)
}

fn run(cmd: &mut Command) -> std::result::Result<String, String> {
    let out = cmd.output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
