//! Cleaning up after processes that died without closing: containers whose owner process is
//! gone or whose expiry passed, with their workdir volumes and disks.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_engine::Engine;

use crate::close::{remove_container, remove_volume};
use crate::disk::{disk_dir, LoopDisk};
use crate::error::{Error, Result};
use crate::labels;

/// What [`gc`] removed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Containers removed, by name, with the reason.
    pub containers: Vec<(String, String)>,
    /// Volumes removed.
    pub volumes: Vec<String>,
    /// Disk images removed.
    pub disks: Vec<String>,
    /// Sandpit containers left alone (owner alive, not expired).
    pub kept: usize,
}

/// Why a container with these labels may be removed, if it may.
fn removable(labels: &HashMap<String, String>, now: u64, host: &str) -> Option<String> {
    if let Some(expiry) = labels
        .get(labels::EXPIRES_AT)
        .and_then(|e| e.parse::<u64>().ok())
    {
        if expiry <= now {
            return Some("expired".into());
        }
    }
    let owner = labels.get(labels::PROCESS)?;
    let mut parts = owner.rsplitn(3, ':');
    let start: u64 = parts.next()?.parse().ok()?;
    let pid: u32 = parts.next()?.parse().ok()?;
    let owner_host = parts.next()?;
    if owner_host != host {
        return None;
    }
    match labels::start_ticks(pid) {
        Some(s) if s == start || start == 0 => None,
        _ => Some(format!("owner process {pid} is gone")),
    }
}

/// Removes Sandpit containers whose owner process (on this host) is gone or whose expiry
/// passed, then volumes and disk images no container uses. Sessions of live processes stay.
pub async fn gc(engine: &Engine) -> Result<GcReport> {
    let mut report = GcReport::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let host = labels::hostname();
    let info = engine
        .info()
        .await
        .map_err(|e| Error::engine(e, Error::ListContainers))?;
    let area = crate::disk::area(&info);
    let managed = format!("{}=true", labels::MANAGED);
    let containers = engine
        .list_containers(&managed)
        .await
        .map_err(|e| Error::engine(e, Error::ListContainers))?;
    let mut live_sessions = HashSet::new();
    for c in containers {
        let labels = c.labels;
        let name = c.name;
        match removable(&labels, now, &host) {
            Some(reason) => {
                remove_container(engine, &name).await?;
                report.containers.push((name, reason));
                // Its disk goes with it, whatever its age.
                if let Some(session) = labels.get(labels::SESSION) {
                    let volume = format!("sandpit-disk-{session}");
                    remove_volume(engine, &volume).await?;
                    let disk = LoopDisk::paths(&area, session);
                    if disk.image.exists() {
                        tokio::task::spawn_blocking(move || disk.destroy())
                            .await
                            .ok();
                        report.volumes.push(volume);
                        report.disks.push(session.clone());
                    }
                }
            }
            None => {
                report.kept += 1;
                if let Some(s) = labels.get(labels::SESSION) {
                    live_sessions.insert(s.clone());
                }
            }
        }
    }

    let volumes = engine.list_volumes(&managed).await.map_err(|e| {
        Error::engine(e, |cause| Error::Volume {
            volume: "(listing)".into(),
            cause,
        })
    })?;
    let mut volume_sessions = HashSet::new();
    for v in volumes {
        let Some(session) = v.labels.get(labels::SESSION).cloned() else {
            continue;
        };
        if live_sessions.contains(&session) || young(v.created_at.clone()) {
            volume_sessions.insert(session);
            continue;
        }
        remove_volume(engine, &v.name).await?;
        report.volumes.push(v.name);
        let disk = LoopDisk::paths(&area, &session);
        if disk.image.exists() {
            tokio::task::spawn_blocking(move || disk.destroy())
                .await
                .ok();
            report.disks.push(session);
        }
    }

    // Disk images whose session has neither a container nor a volume (a crash between steps).
    let entries = info
        .capabilities
        .shares_host
        .then(|| std::fs::read_dir(disk_dir().join(&area)).ok())
        .flatten();
    if let Some(entries) = entries {
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("img") {
                continue;
            }
            let Some(session) = path.file_stem().and_then(|s| s.to_str()).map(String::from) else {
                continue;
            };
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age > Duration::from_secs(600));
            if old && !live_sessions.contains(&session) && !volume_sessions.contains(&session) {
                let disk = LoopDisk::paths(&area, &session);
                tokio::task::spawn_blocking(move || disk.destroy())
                    .await
                    .ok();
                report.disks.push(session);
            }
        }
    }
    Ok(report)
}

/// A volume made in the last ten minutes may belong to a session still opening.
fn young(created: Option<String>) -> bool {
    let Some(created) = created else { return false };
    // RFC 3339: compare the date-time prefix against now minus ten minutes, both in UTC.
    let cutoff = SystemTime::now()
        .checked_sub(Duration::from_secs(600))
        .map(crate::time::rfc3339);
    cutoff.is_some_and(|c| created.get(..19).is_some_and(|p| p > &c[..19]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_are_judged_by_pid_and_start_time() {
        let now = 2_000_000_000;
        let me = labels::this_process();
        let host = labels::hostname();
        let labels = |owner: &str, exp: u64| {
            HashMap::from([
                (labels::PROCESS.to_string(), owner.to_string()),
                (labels::EXPIRES_AT.to_string(), exp.to_string()),
            ])
        };
        assert_eq!(removable(&labels(&me, now + 10), now, &host), None);
        assert_eq!(
            removable(&labels(&me, now - 1), now, &host).as_deref(),
            Some("expired")
        );
        // Same pid, different start time: a reused pid, so the owner is gone.
        let reused = format!("{host}:{}:1", std::process::id());
        assert!(removable(&labels(&reused, now + 10), now, &host).is_some());
        // Another host's sessions are never judged by pid.
        assert_eq!(
            removable(&labels("elsewhere:1:1", now + 10), now, &host),
            None
        );
    }
}
