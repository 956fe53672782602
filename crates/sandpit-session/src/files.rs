//! Files in the session's workdir: write, read, list, information, delete, copy, move, make
//! folders. Every operation runs as the sandbox user, so the kernel's own permission checks
//! apply, and each path is resolved inside the sandbox (symlinks included) and refused unless
//! it stays in the workdir.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::error::{Error, Result};
use crate::exec::{exec_raw, ExecSpec, RawOutput};
use crate::paths::container_path;
use crate::runner::User;
use crate::session::SandboxSession;

/// What a path in the workdir is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A folder.
    Dir,
    /// A symbolic link (not followed).
    Symlink,
    /// Anything else (a FIFO, a socket).
    Other,
}

/// One file or folder in the workdir.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileInfo {
    /// Its name.
    pub name: String,
    /// Its path relative to the workdir.
    pub path: String,
    /// File, folder or symlink.
    pub kind: FileKind,
    /// Bytes.
    pub size: u64,
    /// Permission bits, e.g. `0o644`.
    #[serde(serialize_with = "octal")]
    pub mode: u32,
    /// Last modification.
    #[serde(serialize_with = "rfc3339")]
    pub modified: SystemTime,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:o}"))
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*t))
}

/// Options of [`Files::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Everything below, not just the folder's own entries.
    pub recursive: bool,
    /// Only entries whose name (or, when the pattern holds a `/`, relative path) matches this
    /// glob: `*` and `?` within a name, `**` across folders.
    pub pattern: Option<String>,
}

/// Largest file [`Files::read`] returns (the sandbox's disk is 1 GiB by default).
pub const MAX_READ: usize = 1 << 30;

/// One script, one operation per call: `sh -c FILES sandpit-files OP WORKDIR ARGS...`.
/// Exit codes: 2 not found, 3 outside the workdir, 4 not a file, 5 not a folder, 6 the workdir
/// itself, 7 exists already; anything else is the tool's own failure with its message.
const FILES: &str = r#"op=$1; W=$2; shift 2
# Resolves PATH (following every symlink) and refuses it unless it stays in the workdir.
inside() { r=$(realpath -m -- "$1") || exit 3; case "$r" in "$W"|"$W"/*) ;; *) echo "$1 leads to $r" >&2; exit 3;; esac; }
# The same for the folder holding PATH, not following PATH itself (a symlink is the thing).
inside_parent() { inside "$(dirname -- "$1")"; }
exists() { [ -e "$1" ] || [ -L "$1" ]; }
info() { find "$1" -maxdepth 0 -printf '%y\t%s\t%m\t%T@\t%p\0'; }
case "$op" in
write) inside "$1"; d=$(dirname -- "$1"); mkdir -p -- "$d" || exit 1; inside "$d"; cat >"$1" || exit 1
       [ -z "${2:-}" ] || chmod "$2" -- "$1" || exit 1; info "$1" ;;
read) inside "$1"; exists "$1" || exit 2; [ -f "$1" ] || exit 4; exec cat -- "$1" ;;
list) inside "$1"; exists "$1" || exit 2; [ -d "$1" ] || exit 5
      if [ "$2" = 1 ]; then find "$1" -mindepth 1 -printf '%y\t%s\t%m\t%T@\t%p\0'
      else find "$1" -mindepth 1 -maxdepth 1 -printf '%y\t%s\t%m\t%T@\t%p\0'; fi ;;
info) inside_parent "$1"; exists "$1" || exit 2; info "$1" ;;
delete) inside_parent "$1"; exists "$1" || exit 2; [ "$(realpath -m -- "$1")" != "$W" ] || exit 6; rm -rf -- "$1" ;;
copy|move) inside "$1"; inside_parent "$2"; exists "$1" || exit 2; ! exists "$2" || exit 7
      mkdir -p -- "$(dirname -- "$2")" || exit 1
      if [ "$op" = copy ]; then cp -a -- "$1" "$2" || exit 1; else mv -- "$1" "$2" || exit 1; fi; info "$2" ;;
mkdir) inside "$1"; if exists "$1" && [ ! -d "$1" ]; then exit 7; fi; mkdir -p -- "$1" || exit 1; info "$1" ;;
*) echo "unknown operation $op" >&2; exit 1 ;;
esac"#;

/// The files of one session; see [`SandboxSession::files`].
#[derive(Debug, Clone, Copy)]
pub struct Files<'a> {
    session: &'a SandboxSession,
}

impl SandboxSession {
    /// The session's files: paths are relative to the workdir, or absolute inside it.
    pub fn files(&self) -> Files<'_> {
        Files { session: self }
    }
}

impl Files<'_> {
    /// Writes `data` to `path` (folders made as needed), replacing what was there; `mode` sets
    /// the permission bits (default: the sandbox user's umask).
    pub async fn write(&self, path: &str, data: &[u8], mode: Option<u32>) -> Result<FileInfo> {
        let target = self.resolve(path)?;
        self.session.check_open()?;
        let _running = self.session.inner.install_lock.read().await;
        let mut args = vec![target.clone()];
        if let Some(mode) = mode {
            if mode > 0o7777 {
                return Err(Error::InvalidInput(format!(
                    "mode {mode:o} is not a permission mode such as 644"
                )));
            }
            args.push(format!("{mode:o}"));
        }
        let out = self
            .run("write", &args, Some(data.to_vec()), 1 << 16)
            .await?;
        let out = self.check(out, path)?;
        self.one(&out.stdout)
    }

    /// Writes text to `path`.
    pub async fn write_text(&self, path: &str, text: &str) -> Result<FileInfo> {
        self.write(path, text.as_bytes(), None).await
    }

    /// The bytes of the file at `path`.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let target = self.resolve(path)?;
        let out = self.run("read", &[target], None, MAX_READ).await?;
        if out.truncated {
            return Err(Error::InvalidInput(format!(
                "{path} is larger than {} MiB; copy it out with copy_from_runtime",
                MAX_READ >> 20
            )));
        }
        Ok(self.check(out, path)?.stdout)
    }

    /// The file at `path` as text (lossy UTF-8).
    pub async fn read_text(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(path).await?).into_owned())
    }

    /// The entries of the folder at `path` (`.` or `""` for the workdir).
    pub async fn list(&self, path: &str, options: &ListOptions) -> Result<Vec<FileInfo>> {
        let target = self.resolve_or_workdir(path)?;
        let recursive = if options.recursive { "1" } else { "0" };
        let out = self
            .run("list", &[target, recursive.into()], None, 64 << 20)
            .await?;
        let out = self.check(out, path)?;
        let mut entries = self.parse(&out.stdout)?;
        if let Some(pattern) = &options.pattern {
            entries.retain(|e| {
                if pattern.contains('/') {
                    glob_match(pattern, &e.path)
                } else {
                    glob_match(pattern, &e.name)
                }
            });
        }
        entries.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(entries)
    }

    /// What is at `path` (a symlink is described, not followed).
    pub async fn info(&self, path: &str) -> Result<FileInfo> {
        let target = self.resolve_or_workdir(path)?;
        let out = self.run("info", &[target], None, 1 << 16).await?;
        let out = self.check(out, path)?;
        self.one(&out.stdout)
    }

    /// True when something is at `path`.
    pub async fn exists(&self, path: &str) -> Result<bool> {
        match self.info(path).await {
            Ok(_) => Ok(true),
            Err(Error::PathNotFound { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Removes the file, or the folder with everything in it (never the workdir itself).
    pub async fn delete(&self, path: &str) -> Result<()> {
        let target = self.resolve(path)?;
        let out = self.run("delete", &[target], None, 1 << 16).await?;
        self.check(out, path).map(|_| ())
    }

    /// Copies a file or folder (modes kept); the destination must not exist.
    pub async fn copy(&self, from: &str, to: &str) -> Result<FileInfo> {
        self.two("copy", from, to).await
    }

    /// Moves (renames) a file or folder; the destination must not exist.
    pub async fn rename(&self, from: &str, to: &str) -> Result<FileInfo> {
        self.two("move", from, to).await
    }

    /// Makes a folder, with its parents; one that exists is fine.
    pub async fn mkdir(&self, path: &str) -> Result<FileInfo> {
        let target = self.resolve(path)?;
        let out = self.run("mkdir", &[target], None, 1 << 16).await?;
        let out = self.check(out, path)?;
        self.one(&out.stdout)
    }

    async fn two(&self, op: &str, from: &str, to: &str) -> Result<FileInfo> {
        let (a, b) = (self.resolve(from)?, self.resolve(to)?);
        let out = self.run(op, &[a, b], None, 1 << 16).await?;
        let out = self.check(out, &format!("{from} -> {to}"))?;
        self.one(&out.stdout)
    }

    /// The absolute path for `path`, refused unless it lies in the workdir (checked again
    /// inside the sandbox, where symlinks are resolved).
    fn resolve(&self, path: &str) -> Result<String> {
        let workdir = &self.session.inner.workdir;
        let full = container_path(workdir, path)?;
        if full == *workdir {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: "that is the workdir itself; name a file or folder in it".into(),
            });
        }
        if !full.starts_with(&format!("{workdir}/")) {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: format!("files live in the workdir {workdir}; give a path inside it"),
            });
        }
        Ok(full)
    }

    fn resolve_or_workdir(&self, path: &str) -> Result<String> {
        let trimmed = path.trim();
        if trimmed.is_empty()
            || trimmed == "."
            || trimmed == "./"
            || trimmed == self.session.inner.workdir
        {
            return Ok(self.session.inner.workdir.clone());
        }
        self.resolve(path)
    }

    async fn run(
        &self,
        op: &str,
        args: &[String],
        stdin: Option<Vec<u8>>,
        output_limit: usize,
    ) -> Result<RawOutput> {
        let inner = &self.session.inner;
        self.session.check_open()?;
        let mut argv = vec![
            "/bin/sh".to_string(),
            "-c".into(),
            FILES.into(),
            "sandpit-files".into(),
            op.into(),
            inner.workdir.clone(),
        ];
        argv.extend(args.iter().cloned());
        exec_raw(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv,
                user: User::Sandbox,
                env: Vec::new(),
                workdir: inner.workdir.clone(),
                timeout: Duration::from_secs(300),
                output_limit,
                inline_file: None,
                stdin_path: None,
                stdin_data: stdin,
                sink: None,
                watch: inner.gvisor,
                nproc: inner.gvisor.then_some(inner.policy.max_processes),
                stats: false,
            },
        )
        .await
    }

    /// Turns the script's exit code into the error it stands for.
    fn check(&self, out: RawOutput, path: &str) -> Result<RawOutput> {
        let said = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let invalid = |reason: String| Error::InvalidPath {
            path: path.to_string(),
            reason,
        };
        match out.exit_code {
            0 => Ok(out),
            _ if out.timed_out => Err(Error::Timeout {
                operation: format!("the file operation on {path}"),
                after: Duration::from_secs(300),
            }),
            2 => Err(Error::PathNotFound {
                path: path.to_string(),
                in_sandbox: true,
            }),
            3 => Err(invalid(format!(
                "it leads out of the workdir ({said}); files live in the workdir"
            ))),
            4 => Err(invalid("it is not a file".into())),
            5 => Err(invalid("it is not a folder".into())),
            6 => Err(invalid("that is the workdir itself".into())),
            7 => Err(Error::PathExists {
                path: path.to_string(),
            }),
            code => Err(Error::InvalidInput(format!(
                "{path}: the file operation failed (exit code {code}): {said}"
            ))),
        }
    }

    fn one(&self, listing: &[u8]) -> Result<FileInfo> {
        self.parse(listing)?.into_iter().next().ok_or_else(|| {
            Error::Internal("the sandbox described no file after the operation".into())
        })
    }

    /// Parses `find -printf '%y\t%s\t%m\t%T@\t%p\0'` records.
    fn parse(&self, listing: &[u8]) -> Result<Vec<FileInfo>> {
        let workdir = &self.session.inner.workdir;
        let mut out = Vec::new();
        for record in listing.split(|b| *b == 0).filter(|r| !r.is_empty()) {
            let text = String::from_utf8_lossy(record);
            let mut fields = text.splitn(5, '\t');
            let (Some(kind), Some(size), Some(mode), Some(mtime), Some(full)) = (
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
                fields.next(),
            ) else {
                continue;
            };
            let rel = full
                .strip_prefix(workdir.as_str())
                .unwrap_or(full)
                .trim_start_matches('/')
                .to_string();
            let secs: f64 = mtime.parse().unwrap_or(0.0);
            out.push(FileInfo {
                name: rel.rsplit('/').next().unwrap_or(&rel).to_string(),
                path: rel,
                kind: match kind {
                    "f" => FileKind::File,
                    "d" => FileKind::Dir,
                    "l" => FileKind::Symlink,
                    _ => FileKind::Other,
                },
                size: size.parse().unwrap_or(0),
                mode: u32::from_str_radix(mode, 8).unwrap_or(0),
                modified: UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0)),
            });
        }
        Ok(out)
    }
}

/// Glob matching: `*` and `?` within one path segment, `**` across segments.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match p.first() {
            None => t.is_empty(),
            // A trailing `**` takes everything below.
            Some(b'*') if p.get(1) == Some(&b'*') && p.len() == 2 => true,
            Some(b'*') if p.get(1) == Some(&b'*') => {
                let rest = p[2..].strip_prefix(b"/").unwrap_or(&p[2..]);
                (0..=t.len()).any(|i| (i == 0 || t[i - 1] == b'/') && go(rest, &t[i..]))
                    || go(&p[2..], t)
            }
            Some(b'*') => (0..=t.len()).any(|i| !t[..i].contains(&b'/') && go(&p[1..], &t[i..])),
            Some(b'?') => t.first().is_some_and(|c| *c != b'/') && go(&p[1..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn globs_match_within_and_across_folders() {
        assert!(glob_match("*.csv", "data.csv"));
        assert!(!glob_match("*.csv", "data.csv.bak"));
        assert!(glob_match("d?ta.*", "data.txt"));
        assert!(!glob_match("*.csv", "a/b.csv"));
        assert!(glob_match("a/*.csv", "a/b.csv"));
        assert!(glob_match("**/*.csv", "a/b/c.csv"));
        assert!(glob_match("**/*.csv", "c.csv"));
        assert!(glob_match("a/**", "a/b/c"));
        assert!(!glob_match("a/*", "a/b/c"));
    }
}
