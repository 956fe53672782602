//! Files in the session's workdir: write, read, list, information, delete, copy, move, make
//! folders. The sandbox's agent does each one as the sandbox user (the kernel's own permission
//! checks apply), every path resolved by the kernel beneath the workdir: no `..` and no symlink
//! leads out, whatever user code planted.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sandpit_agent::frame::MAX_PAYLOAD;
use sandpit_agent::protocol::{
    self as wire, AgentError, ErrorKind as AgentErrorKind, EventBody, FileOp, FileRequest, Op,
    WriteData,
};
use serde::Serialize;

use crate::agent::unexpected;
use crate::error::{Error, Result};
use crate::launch::ids;
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
    /// Owner's user id.
    pub uid: u32,
    /// Owner's group id.
    pub gid: u32,
    /// Where a symlink points, as written in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub symlink_target: Option<String>,
}

fn octal<S: serde::Serializer>(mode: &u32, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{mode:o}"))
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&crate::time::rfc3339(*t))
}

impl From<wire::FileInfo> for FileInfo {
    fn from(f: wire::FileInfo) -> Self {
        let modified = if f.mtime_ns >= 0 {
            UNIX_EPOCH + Duration::from_nanos(f.mtime_ns as u64)
        } else {
            UNIX_EPOCH
        };
        FileInfo {
            name: f.name,
            path: f.path,
            kind: match f.kind {
                wire::FileKind::File => FileKind::File,
                wire::FileKind::Dir => FileKind::Dir,
                wire::FileKind::Symlink => FileKind::Symlink,
                wire::FileKind::Other => FileKind::Other,
            },
            size: f.size,
            mode: f.mode,
            modified,
            uid: f.uid,
            gid: f.gid,
            symlink_target: f.symlink_target,
        }
    }
}

/// Options of [`Files::list`].
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// Everything below, not just the folder's own entries.
    pub recursive: bool,
    /// How many levels down (1: the folder's own entries); overrides `recursive`.
    pub depth: Option<u32>,
    /// Only entries whose name (or, when the pattern holds a `/`, relative path) matches this
    /// glob: `*` and `?` within a name, `**` across folders.
    pub pattern: Option<String>,
}

/// Largest file [`Files::read`] returns (the sandbox's disk is 1 GiB by default).
pub const MAX_READ: usize = 1 << 30;

/// How long one file operation may take.
const FILE_TIMEOUT: Duration = Duration::from_secs(300);

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
    /// the permission bits (default 0644 for a new file).
    pub async fn write(&self, path: &str, data: &[u8], mode: Option<u32>) -> Result<FileInfo> {
        let rel = self.relative(path)?;
        if let Some(mode) = mode {
            if mode > 0o7777 {
                return Err(Error::InvalidInput(format!(
                    "mode {mode:o} is not a permission mode such as 644"
                )));
            }
        }
        self.session.check_open()?;
        let _running = self.session.inner.install_lock.read().await;
        let root = self.session.inner.workdir.clone();
        self.session
            .write_file(&root, User::Sandbox, &rel, data, mode, path)
            .await
    }

    /// Writes text to `path`.
    pub async fn write_text(&self, path: &str, text: &str) -> Result<FileInfo> {
        self.write(path, text.as_bytes(), None).await
    }

    /// The bytes of the file at `path`.
    pub async fn read(&self, path: &str) -> Result<Vec<u8>> {
        let rel = self.relative(path)?;
        self.session.check_open()?;
        let root = self.session.inner.workdir.clone();
        self.session
            .read_file(&root, User::Sandbox, &rel, MAX_READ, path)
            .await
    }

    /// The file at `path` as text (lossy UTF-8).
    pub async fn read_text(&self, path: &str) -> Result<String> {
        Ok(String::from_utf8_lossy(&self.read(path).await?).into_owned())
    }

    /// The entries of the folder at `path` (`.` or `""` for the workdir).
    pub async fn list(&self, path: &str, options: &ListOptions) -> Result<Vec<FileInfo>> {
        let rel = self.relative_or_workdir(path)?;
        self.session.check_open()?;
        let depth = options.depth.or((!options.recursive).then_some(1));
        if depth == Some(0) {
            return Err(Error::InvalidInput(
                "a listing's depth is at least 1 (the folder's own entries)".into(),
            ));
        }
        let root = self.session.inner.workdir.clone();
        let mut entries = self
            .session
            .list_files(&root, User::Sandbox, &rel, depth, path)
            .await?;
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
        let rel = self.relative_or_workdir(path)?;
        self.one(FileOp::Stat { path: rel }, path).await
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
        let rel = self.relative(path)?;
        self.session.check_open()?;
        let root = self.session.inner.workdir.clone();
        self.session
            .file_op(&root, User::Sandbox, FileOp::Remove { path: rel }, path)
            .await
            .map(|_| ())
    }

    /// Copies a file or folder (modes kept), making the destination's folders; the destination
    /// must not exist.
    pub async fn copy(&self, from: &str, to: &str) -> Result<FileInfo> {
        let (a, b) = (self.relative(from)?, self.relative(to)?);
        self.make_parent(&b, to).await?;
        self.one(FileOp::Copy { from: a, to: b }, &format!("{from} -> {to}"))
            .await
    }

    /// Moves (renames) a file or folder, making the destination's folders; the destination must
    /// not exist.
    pub async fn rename(&self, from: &str, to: &str) -> Result<FileInfo> {
        let (a, b) = (self.relative(from)?, self.relative(to)?);
        self.make_parent(&b, to).await?;
        self.one(FileOp::Move { from: a, to: b }, &format!("{from} -> {to}"))
            .await
    }

    /// Makes the folders that hold `rel`.
    async fn make_parent(&self, rel: &str, shown: &str) -> Result<()> {
        match rel.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() => self
                .one(
                    FileOp::Mkdir {
                        path: parent.to_string(),
                    },
                    shown,
                )
                .await
                .map(|_| ()),
            _ => Ok(()),
        }
    }

    /// Makes a folder, with its parents; one that exists is fine.
    pub async fn mkdir(&self, path: &str) -> Result<FileInfo> {
        let rel = self.relative(path)?;
        self.one(FileOp::Mkdir { path: rel }, path).await
    }

    async fn one(&self, op: FileOp, shown: &str) -> Result<FileInfo> {
        self.session.check_open()?;
        let root = self.session.inner.workdir.clone();
        match self
            .session
            .file_op(&root, User::Sandbox, op, shown)
            .await?
        {
            EventBody::File(info) => Ok(info.into()),
            other => Err(Error::Agent {
                container: self.session.inner.container.clone(),
                reason: format!("answered a file operation with {other:?}"),
            }),
        }
    }

    /// `path` relative to the workdir, refused unless it lies in it (the agent checks again,
    /// with the kernel resolving symlinks).
    fn relative(&self, path: &str) -> Result<String> {
        let workdir = &self.session.inner.workdir;
        let full = container_path(workdir, path)?;
        if full == *workdir {
            return Err(Error::InvalidPath {
                path: path.into(),
                reason: "that is the workdir itself; name a file or folder in it".into(),
            });
        }
        full.strip_prefix(&format!("{workdir}/"))
            .map(str::to_string)
            .ok_or_else(|| Error::InvalidPath {
                path: path.into(),
                reason: format!("files live in the workdir {workdir}; give a path inside it"),
            })
    }

    fn relative_or_workdir(&self, path: &str) -> Result<String> {
        let trimmed = path.trim();
        if trimmed.is_empty()
            || trimmed == "."
            || trimmed == "./"
            || trimmed == self.session.inner.workdir
        {
            return Ok(String::new());
        }
        self.relative(path)
    }
}

impl SandboxSession {
    /// One file operation answered by one event, beneath `root` as `user`; `shown` names the
    /// path in errors.
    pub(crate) async fn file_op(
        &self,
        root: &str,
        user: User,
        op: FileOp,
        shown: &str,
    ) -> Result<EventBody> {
        let request = Op::File(FileRequest {
            root: root.to_string(),
            user: ids(user),
            op,
        });
        let answer = tokio::time::timeout(FILE_TIMEOUT, self.ask(request, &[]))
            .await
            .map_err(|_| file_timeout(shown))??;
        match answer {
            Ok((body, _)) => Ok(body),
            Err(e) => Err(file_error(&self.inner.container, shown, e)),
        }
    }

    /// Writes `data` to `rel` beneath `root`, streamed in frames.
    pub(crate) async fn write_file(
        &self,
        root: &str,
        user: User,
        rel: &str,
        data: &[u8],
        mode: Option<u32>,
        shown: &str,
    ) -> Result<FileInfo> {
        let agent = self.agent().await?;
        let request = Op::File(FileRequest {
            root: root.to_string(),
            user: ids(user),
            op: FileOp::Write {
                path: rel.to_string(),
                mode,
                parents: true,
            },
        });
        let written = tokio::time::timeout(FILE_TIMEOUT, async {
            let call = agent.call(request, &[]).await?;
            let mut chunks: Vec<&[u8]> = data.chunks(MAX_PAYLOAD).collect();
            if chunks.is_empty() {
                chunks.push(&[]);
            }
            let last = chunks.len() - 1;
            for (i, chunk) in chunks.into_iter().enumerate() {
                let eof = i == last;
                call.send(Op::WriteData(WriteData { eof }), chunk).await?;
            }
            call.answer().await
        })
        .await
        .map_err(|_| file_timeout(shown))?;
        match written {
            Ok((EventBody::File(info), _)) => Ok(info.into()),
            Ok((EventBody::Error(e), _)) => Err(file_error(&self.inner.container, shown, e)),
            Ok((other, _)) => Err(Error::Agent {
                container: self.inner.container.clone(),
                reason: format!("answered a write with {other:?}"),
            }),
            Err(e) => Err(self.explain_lost(e).await),
        }
    }

    /// The bytes of `rel` beneath `root`, at most `limit` of them.
    pub(crate) async fn read_file(
        &self,
        root: &str,
        user: User,
        rel: &str,
        limit: usize,
        shown: &str,
    ) -> Result<Vec<u8>> {
        let agent = self.agent().await?;
        let request = Op::File(FileRequest {
            root: root.to_string(),
            user: ids(user),
            op: FileOp::Read {
                path: rel.to_string(),
            },
        });
        let read = tokio::time::timeout(FILE_TIMEOUT, async {
            let mut call = agent.call(request, &[]).await?;
            let mut data = Vec::new();
            while let Some((event, payload)) = call.next().await? {
                match event {
                    EventBody::Data { .. } => {
                        if data.len() + payload.len() > limit {
                            return Ok(Err(Error::InvalidInput(format!(
                                "{shown} is larger than {} MiB; copy it out with copy_from_runtime",
                                limit >> 20
                            ))));
                        }
                        data.extend_from_slice(&payload);
                    }
                    EventBody::Error(e) => {
                        return Ok(Err(file_error(&self.inner.container, shown, e)))
                    }
                    other => {
                        return Ok(Err(Error::Agent {
                            container: self.inner.container.clone(),
                            reason: format!("answered a read with {other:?}"),
                        }))
                    }
                }
            }
            Ok(Ok(data))
        })
        .await
        .map_err(|_| file_timeout(shown))?;
        match read {
            Ok(result) => result,
            Err(e) => Err(self.explain_lost(e).await),
        }
    }

    /// The entries of `rel` beneath `root`, `depth` levels down (`None`: all).
    pub(crate) async fn list_files(
        &self,
        root: &str,
        user: User,
        rel: &str,
        depth: Option<u32>,
        shown: &str,
    ) -> Result<Vec<FileInfo>> {
        let agent = self.agent().await?;
        let request = Op::File(FileRequest {
            root: root.to_string(),
            user: ids(user),
            op: FileOp::List {
                path: rel.to_string(),
                depth,
            },
        });
        let listed = tokio::time::timeout(FILE_TIMEOUT, async {
            let mut call = agent.call(request, &[]).await?;
            let mut entries = Vec::new();
            while let Some((event, _)) = call.next().await? {
                match event {
                    EventBody::Listing { entries: batch, .. } => {
                        entries.extend(batch.into_iter().map(FileInfo::from))
                    }
                    EventBody::Error(e) => {
                        return Ok(Err(file_error(&self.inner.container, shown, e)))
                    }
                    other => {
                        return Ok(Err(Error::Agent {
                            container: self.inner.container.clone(),
                            reason: format!("answered a listing with {other:?}"),
                        }))
                    }
                }
            }
            Ok(Ok(entries))
        })
        .await
        .map_err(|_| file_timeout(shown))?;
        match listed {
            Ok(result) => result,
            Err(e) => Err(self.explain_lost(e).await),
        }
    }
}

fn file_timeout(shown: &str) -> Error {
    Error::Timeout {
        operation: format!("the file operation on {shown}"),
        after: FILE_TIMEOUT,
    }
}

/// The agent's refusal of a file operation as the error a caller acts on.
fn file_error(container: &str, shown: &str, e: AgentError) -> Error {
    let invalid = |reason: String| Error::InvalidPath {
        path: shown.to_string(),
        reason,
    };
    match e.kind {
        AgentErrorKind::NotFound => Error::PathNotFound {
            path: shown.to_string(),
            in_sandbox: true,
        },
        AgentErrorKind::Exists => Error::PathExists {
            path: shown.to_string(),
        },
        AgentErrorKind::Outside => invalid(format!(
            "it leads out of the workdir ({}); files live in the workdir",
            e.message
        )),
        AgentErrorKind::NotADirectory => invalid(format!("it is not a folder ({})", e.message)),
        AgentErrorKind::IsADirectory => invalid(format!("it is a folder ({})", e.message)),
        AgentErrorKind::PermissionDenied => {
            invalid(format!("the sandbox user may not do that ({})", e.message))
        }
        AgentErrorKind::NoSpace => Error::InvalidInput(format!(
            "{shown}: the sandbox's disk is full ({}); delete files or ask for a larger disk",
            e.message
        )),
        AgentErrorKind::InvalidRequest => invalid(e.message),
        _ => unexpected(container, &format!("the file operation on {shown}"), e),
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
