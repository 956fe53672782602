//! Running code and commands: library installs, the source file, compile and run steps.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::models::{NetworkConnectRequest, NetworkDisconnectRequest};
use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use crate::builder::Network;
use crate::copy::{container_path, pack_bytes, pack_host_path, parent_and_name, unpack_to_host};
use crate::error::{status_code, Error, Result};
use crate::exec::{exec, exec_error, ExecSpec, INLINE_SOURCE_LIMIT};
use crate::open::IO_DIR;
use crate::output::{Artifact, ExecOutput, OutputChunk, OutputSink, RunResult};
use crate::runner::Command;
use crate::session::SandboxSession;

/// Options of one run; `Default` means the session's timeout, no stdin, no arguments.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Libraries to install first (once per session).
    pub libraries: Vec<String>,
    /// Overrides the session's timeout for this run (compile and run together).
    pub timeout: Option<Duration>,
    /// Bytes fed to the program's standard input (otherwise it reads an empty input).
    pub stdin: Option<Vec<u8>>,
    /// Command-line arguments for the program.
    pub args: Vec<String>,
    /// Extra environment variables for this run.
    pub env: Vec<(String, String)>,
    /// Receives compile and program output as it arrives.
    pub on_output: Option<OutputSink>,
    /// Save the figures the program leaves open as PNG artifacts (Python's matplotlib).
    pub capture_plots: bool,
}

impl RunOptions {
    /// Options with defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Libraries to install before running.
    pub fn libraries<I, S>(mut self, libraries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.libraries = libraries.into_iter().map(Into::into).collect();
        self
    }

    /// A timeout for this run.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Standard input for the program.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Arguments for the program.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args = args.into_iter().map(Into::into).collect();
        self
    }

    /// An environment variable for this run.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Returns the figures the program leaves open as PNG artifacts (Python's matplotlib;
    /// no `show()` or `savefig()` needed).
    pub fn capture_plots(mut self, capture: bool) -> Self {
        self.capture_plots = capture;
        self
    }

    /// Calls `f` with output chunks as they arrive (the result still holds all of it).
    pub fn on_output(mut self, f: impl Fn(OutputChunk) + Send + Sync + 'static) -> Self {
        self.on_output = Some(OutputSink::new(f));
        self
    }
}

/// Most bytes of artifacts (base64) one run may return.
const MAX_ARTIFACT_BYTES: usize = 64 << 20;

/// Options of one shell command.
#[derive(Debug, Clone, Default)]
pub struct CommandOptions {
    /// Overrides the session's timeout.
    pub timeout: Option<Duration>,
    /// Bytes fed to standard input.
    pub stdin: Option<Vec<u8>>,
    /// Run as root instead of the sandbox user.
    pub as_root: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Receives output as it arrives.
    pub on_output: Option<OutputSink>,
}

impl CommandOptions {
    /// Options with defaults: the session's timeout, the sandbox user.
    pub fn new() -> Self {
        Self::default()
    }

    /// A timeout for this command.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Standard input for the command.
    pub fn stdin(mut self, input: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(input.into());
        self
    }

    /// Run as root (only in sessions whose policy keeps the install capabilities).
    pub fn as_root(mut self) -> Self {
        self.as_root = true;
        self
    }

    /// An environment variable for this command.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Calls `f` with output chunks as they arrive.
    pub fn on_output(mut self, f: impl Fn(OutputChunk) + Send + Sync + 'static) -> Self {
        self.on_output = Some(OutputSink::new(f));
        self
    }
}

impl SandboxSession {
    /// Runs `code`, installing `libraries` first where they are not installed yet.
    pub async fn run(&self, code: &str, libraries: &[&str]) -> Result<RunResult> {
        self.run_with(code, RunOptions::new().libraries(libraries.iter().copied()))
            .await
    }

    /// Runs `code` with options (stdin, arguments, timeout, libraries).
    pub async fn run_with(&self, code: &str, options: RunOptions) -> Result<RunResult> {
        self.check_open()?;
        if !options.libraries.is_empty() {
            self.install(&options.libraries).await?;
        }
        let inner = &self.inner;
        let _running = inner.install_lock.read().await;
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(inner.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be longer than zero".into(),
            ));
        }
        let file = inner.runner.source_file(code);
        let inline = code.len() <= INLINE_SOURCE_LIMIT && !code.contains('\0');
        // A read-only workdir takes no source: it goes to /tmp, or (too big for the inline
        // path) to Sandpit's io folder.
        let (source_path, file) = if inner.policy.workdir_writable {
            (container_path(&inner.workdir, &file)?, file)
        } else {
            let dir = if inline { "/tmp" } else { IO_DIR };
            let path = container_path(dir, &file)?;
            (path.clone(), path)
        };
        if !inline {
            if inner.policy.workdir_writable {
                self.upload_bytes(&source_path, code.as_bytes(), 0o644)
                    .await?;
            } else {
                self.upload_io(
                    file.rsplit('/').next().unwrap_or("source"),
                    code.as_bytes(),
                    0o644,
                )
                .await?;
            }
        }
        let mut inline_file = inline.then(|| (source_path.clone(), code.to_string()));

        let plots = options
            .capture_plots
            .then(|| inner.runner.run_capturing_plots(&file))
            .flatten();
        let artifacts_dir = plots
            .is_some()
            .then(|| format!("/tmp/sandpit-artifacts-{}", crate::ids::random_hex(12)));
        let plan = plots.unwrap_or_else(|| inner.runner.run(&file));
        let mut compile_out: Option<ExecOutput> = None;
        for step in &plan.compile {
            let remaining = timeout.saturating_sub(started.elapsed());
            let out = self
                .exec_step(
                    step,
                    remaining,
                    inline_file.take(),
                    None,
                    &options.env,
                    options.on_output.clone(),
                )
                .await?;
            let out = self.note_oom(out).await?;
            let failed = !out.success();
            compile_out = Some(merge_compile(compile_out, out));
            if failed {
                let c = compile_out.clone().expect("just set");
                return Ok(RunResult {
                    stdout: String::new(),
                    stderr: String::new(),
                    exit_code: c.exit_code,
                    timed_out: c.timed_out,
                    truncated: c.truncated,
                    oom_killed: c.oom_killed,
                    duration: started.elapsed(),
                    compile: compile_out,
                    artifacts: Vec::new(),
                });
            }
        }

        let stdin_path = self.upload_stdin(options.stdin.as_deref()).await?;
        let mut run = plan.run.clone();
        run.argv.extend(options.args.iter().cloned());
        if let Some(dir) = &artifacts_dir {
            run = run.env("SANDPIT_ARTIFACTS", dir.as_str());
        }
        let remaining = timeout
            .saturating_sub(started.elapsed())
            .max(Duration::from_millis(1));
        let out = self
            .exec_step(
                &run,
                remaining,
                inline_file.take(),
                stdin_path,
                &options.env,
                options.on_output.clone(),
            )
            .await?;
        let out = self.note_oom(out).await?;
        let duration = started.elapsed();
        let artifacts = match &artifacts_dir {
            Some(dir) => self.collect_artifacts(dir).await?,
            None => Vec::new(),
        };
        Ok(RunResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            truncated: out.truncated,
            oom_killed: out.oom_killed,
            duration,
            compile: compile_out,
            artifacts,
        })
    }

    /// Reads the files a run left in `dir` (a memory folder the copy API cannot reach) as
    /// base64 text, one name line and one data line each, then removes the folder.
    async fn collect_artifacts(&self, dir: &str) -> Result<Vec<Artifact>> {
        use base64::Engine as _;
        let script = format!(
            "[ -d {dir} ] || exit 0; for f in {dir}/*; do [ -f \"$f\" ] || continue; echo \"${{f##*/}}\"; base64 -w0 \"$f\"; echo; done; rm -rf {dir}"
        );
        let inner = &self.inner;
        let listing = exec(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv: vec!["/bin/sh".into(), "-c".into(), script],
                user: crate::runner::User::Sandbox,
                env: Vec::new(),
                workdir: "/".into(),
                timeout: Duration::from_secs(60),
                // Figures are the caller's own; they are not held to the program's output cap.
                output_limit: MAX_ARTIFACT_BYTES,
                inline_file: None,
                stdin_path: None,
                sink: None,
            },
        )
        .await?;
        if listing.truncated {
            return Err(Error::InvalidInput(format!(
                "the run's artifacts pass {} MiB; save large files in the workdir and copy them out",
                MAX_ARTIFACT_BYTES >> 20
            )));
        }
        let lines: Vec<&str> = listing.stdout.lines().collect();
        let mut artifacts = Vec::new();
        for pair in lines.chunks(2) {
            if let [name, data] = pair {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                    let mime = if name.ends_with(".png") {
                        "image/png"
                    } else {
                        "application/octet-stream"
                    };
                    artifacts.push(Artifact {
                        name: name.to_string(),
                        mime: mime.into(),
                        data: bytes,
                    });
                }
            }
        }
        Ok(artifacts)
    }

    /// Runs `code` and streams its output: the returned [`RunStream`] yields chunks as they
    /// arrive, then [`RunStream::result`] gives the final result.
    pub fn run_stream(&self, code: &str, options: RunOptions) -> RunStream {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let previous = options.on_output.clone();
        let options = RunOptions {
            on_output: Some(OutputSink::new(move |chunk: OutputChunk| {
                if let Some(p) = &previous {
                    p.send(chunk.clone());
                }
                let _ = tx.send(chunk);
            })),
            ..options
        };
        let session = self.clone();
        let code = code.to_string();
        let task = tokio::spawn(async move { session.run_with(&code, options).await });
        RunStream { rx, task }
    }

    /// Sets `oom_killed` when a SIGKILL came from the memory cgroup's OOM killer.
    async fn note_oom(&self, mut out: ExecOutput) -> Result<ExecOutput> {
        if out.exit_code != 137 || out.timed_out {
            return Ok(out);
        }
        let probe = Command::new([
            "/bin/sh",
            "-c",
            "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null",
        ]);
        let read = self
            .exec_step(&probe, Duration::from_secs(10), None, None, &[], None)
            .await?;
        let kills: u64 = read
            .stdout
            .lines()
            .filter_map(|l| l.strip_prefix("oom_kill "))
            .filter_map(|n| n.trim().parse::<u64>().ok())
            .max()
            .unwrap_or(0);
        let seen = self
            .inner
            .oom_seen
            .swap(kills, std::sync::atomic::Ordering::SeqCst);
        out.oom_killed = kills > seen;
        Ok(out)
    }

    async fn upload_stdin(&self, data: Option<&[u8]>) -> Result<Option<String>> {
        match data {
            Some(data) => {
                let name = format!("stdin-{}", crate::ids::random_hex(12));
                Ok(Some(self.upload_io(&name, data, 0o600).await?))
            }
            None => Ok(None),
        }
    }

    /// Places a file in Sandpit's io folder, which belongs to root (mode 0711): user code can
    /// read the file it is given but never fill the folder. Returns the file's path.
    async fn upload_io(&self, name: &str, data: &[u8], mode: u32) -> Result<String> {
        let dir = IO_DIR.trim_start_matches('/');
        let mut builder = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o711);
        h.set_size(0);
        builder
            .append_data(&mut h, dir, std::io::empty())
            .map_err(|e| Error::io("packing", IO_DIR, e))?;
        let mut h = tar::Header::new_gnu();
        h.set_uid(1000);
        h.set_gid(1000);
        h.set_mode(mode);
        h.set_size(data.len() as u64);
        builder
            .append_data(&mut h, format!("{dir}/{name}"), data)
            .map_err(|e| Error::io("packing", IO_DIR, e))?;
        let archive = builder
            .into_inner()
            .map_err(|e| Error::io("packing", IO_DIR, e))?;
        self.upload_archive("/", archive).await?;
        Ok(format!("{IO_DIR}/{name}"))
    }

    /// Installs libraries not yet installed in this session; each is installed once.
    pub async fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        let _alone = inner.install_lock.write().await;
        let mut missing: Vec<String> = Vec::new();
        {
            let installed = inner.installed.lock().expect("installed set poisoned");
            for lib in libraries {
                let lib = lib.as_ref().trim().to_string();
                inner
                    .runner
                    .check_library(&lib)
                    .map_err(Error::InvalidInput)?;
                if !installed.contains(&lib) && !missing.contains(&lib) {
                    missing.push(lib);
                }
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let attach = inner.policy.network == Network::None;
        if attach {
            if let Err(e) = self.attach_network().await {
                let _ = self.signal_user_processes("CONT").await;
                return Err(e);
            }
        }
        let installed = self.run_install_steps(&missing).await;
        if attach {
            self.detach_network().await?;
            self.signal_user_processes("CONT").await?;
        }
        installed?;
        inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .extend(missing);
        Ok(())
    }

    async fn run_install_steps(&self, missing: &[String]) -> Result<()> {
        let inner = &self.inner;
        for step in inner.runner.install(missing) {
            let out = self
                .exec_step(&step, inner.install_timeout, None, None, &[], None)
                .await?;
            if !out.success() {
                let text = if out.stderr.trim().is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                };
                let message = if out.timed_out {
                    format!(
                        "the install did not finish within {:?}",
                        inner.install_timeout
                    )
                } else {
                    tail(text, 20)
                };
                return Err(Error::LibraryInstall {
                    libraries: missing.join(", "),
                    exit_code: out.exit_code,
                    message,
                });
            }
        }
        Ok(())
    }

    /// Gives the container the bridge for an install. Every process of user code (a kernel,
    /// anything a run left behind) is stopped first and resumed after the network is gone, so
    /// nothing of the user's ever runs while the container has a network.
    async fn attach_network(&self) -> Result<()> {
        let inner = &self.inner;
        self.signal_user_processes("STOP").await?;
        inner
            .engine
            .docker()
            .connect_network(
                "bridge",
                NetworkConnectRequest {
                    container: inner.container.clone(),
                    endpoint_config: None,
                },
            )
            .await
            .map_err(|e| match exec_error(&inner.engine, &inner.container, e) {
                Error::Exec { container, source } => Error::Network { container, source },
                other => other,
            })
    }

    /// Sends a signal to every process of the sandbox user but the sender.
    async fn signal_user_processes(&self, signal: &str) -> Result<()> {
        let sweep = Command::new([
            "/bin/sh",
            "-c",
            &format!("kill -{signal} -1 2>/dev/null; true"),
        ]);
        self.exec_step(&sweep, Duration::from_secs(20), None, None, &[], None)
            .await
            .map(|_| ())
    }

    async fn detach_network(&self) -> Result<()> {
        let inner = &self.inner;
        inner
            .engine
            .docker()
            .disconnect_network(
                "bridge",
                NetworkDisconnectRequest {
                    container: inner.container.clone(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| match exec_error(&inner.engine, &inner.container, e) {
                Error::Exec { container, source } => Error::Network { container, source },
                other => other,
            })
    }

    /// Libraries installed by this session so far.
    pub fn installed_libraries(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .iter()
            .cloned()
            .collect();
        v.sort();
        v
    }

    /// Runs one shell command (`sh -c`) as the sandbox user in the workdir.
    pub async fn execute_command(&self, command: &str) -> Result<ExecOutput> {
        self.execute_command_with(command, CommandOptions::default())
            .await
    }

    /// Runs one shell command with options.
    pub async fn execute_command_with(
        &self,
        command: &str,
        options: CommandOptions,
    ) -> Result<ExecOutput> {
        self.check_open()?;
        if !self.inner.policy.allow_commands {
            return Err(Error::Refused(
                "shell commands are not allowed in this session (allow_commands is off); run code with run() instead".into(),
            ));
        }
        if command.trim().is_empty() {
            return Err(Error::InvalidInput("the command is empty".into()));
        }
        let _running = self.inner.install_lock.read().await;
        let mut cmd = Command::new(["/bin/sh", "-c", command]);
        if options.as_root {
            cmd = cmd.as_root();
        }
        let stdin_path = match &options.stdin {
            Some(data) => {
                let path = format!("/tmp/.sandpit-stdin-{}", crate::ids::random_hex(12));
                self.upload_bytes(&path, data, 0o600).await?;
                Some(path)
            }
            None => None,
        };
        let timeout = options.timeout.unwrap_or(self.inner.timeout);
        self.exec_step(
            &cmd,
            timeout,
            None,
            stdin_path,
            &options.env,
            options.on_output.clone(),
        )
        .await
    }

    async fn exec_step(
        &self,
        command: &Command,
        timeout: Duration,
        inline_file: Option<(String, String)>,
        stdin_path: Option<String>,
        extra_env: &[(String, String)],
        sink: Option<OutputSink>,
    ) -> Result<ExecOutput> {
        let inner = &self.inner;
        let mut env = inner.env.clone();
        env.extend(command.env.iter().cloned());
        env.extend(extra_env.iter().cloned());
        exec(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv: command.argv.clone(),
                user: command.user,
                env,
                workdir: inner.workdir.clone(),
                timeout,
                output_limit: inner.output_limit,
                inline_file,
                stdin_path,
                sink,
            },
        )
        .await
    }

    /// Uploads bytes as one file owned by the sandbox user.
    async fn upload_bytes(&self, path: &str, data: &[u8], mode: u32) -> Result<()> {
        let (parent, name) = parent_and_name(path);
        let archive = pack_bytes(&name, data, mode)?;
        self.upload_archive(&parent, archive).await
    }

    async fn upload_archive(&self, parent: &str, archive: Vec<u8>) -> Result<()> {
        let inner = &self.inner;
        let upload = |archive: Vec<u8>| {
            inner.engine.docker().upload_to_container(
                &inner.container,
                Some(UploadToContainerOptions {
                    path: parent.to_string(),
                    ..Default::default()
                }),
                bollard::body_full(archive.into()),
            )
        };
        match upload(archive.clone()).await {
            Ok(()) => Ok(()),
            Err(e) if status_code(&e) == Some(404) && self.container_exists().await? => {
                // The destination folder is missing: create it as the sandbox user, then retry.
                let mkdir = Command::new(["mkdir", "-p", parent]);
                let out = self
                    .exec_step(&mkdir, Duration::from_secs(30), None, None, &[], None)
                    .await?;
                if !out.success() {
                    return Err(Error::InvalidPath {
                        path: parent.to_string(),
                        reason: format!(
                            "the folder is missing and cannot be created: {}",
                            out.stderr.trim()
                        ),
                    });
                }
                upload(archive).await.map_err(|e| Error::Upload {
                    container: inner.container.clone(),
                    path: parent.to_string(),
                    source: e,
                })
            }
            Err(e) => Err(match exec_error(&inner.engine, &inner.container, e) {
                Error::Exec { container, source } => Error::Upload {
                    container,
                    path: parent.to_string(),
                    source,
                },
                other => other,
            }),
        }
    }

    async fn container_exists(&self) -> Result<bool> {
        let inner = &self.inner;
        match inner
            .engine
            .docker()
            .inspect_container(&inner.container, None)
            .await
        {
            Ok(info) => Ok(info.state.and_then(|s| s.running).unwrap_or(false)),
            Err(e) if status_code(&e) == Some(404) => Err(Error::SessionGone {
                container: inner.container.clone(),
            }),
            Err(e) => Err(exec_error(&inner.engine, &inner.container, e)),
        }
    }

    /// Copies a host file or folder into the container at `container` (a full destination path,
    /// relative ones are under the workdir). Bytes and modes are kept; files belong to the sandbox
    /// user; symlinks are copied as symlinks, never followed.
    pub async fn copy_to_runtime(&self, host: impl AsRef<Path>, container: &str) -> Result<()> {
        self.check_open()?;
        let dest = container_path(&self.inner.workdir, container)?;
        refuse_memory_folders(&dest)?;
        let (parent, name) = parent_and_name(&dest);
        let host = host.as_ref().to_path_buf();
        if std::fs::symlink_metadata(&host).is_err() {
            return Err(Error::InvalidPath {
                path: host.display().to_string(),
                reason: "no such file or folder on the host".into(),
            });
        }
        let archive = tokio::task::spawn_blocking(move || pack_host_path(&host, &name))
            .await
            .map_err(|e| Error::InvalidInput(format!("packing the files panicked: {e}")))??;
        self.upload_archive(&parent, archive).await
    }

    /// Copies a file or folder from the container to `host` (which becomes that file or folder).
    /// Entries that would land outside `host` (absolute paths, `..`, escaping symlinks) are refused.
    pub async fn copy_from_runtime(&self, container: &str, host: impl AsRef<Path>) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        let src = container_path(&inner.workdir, container)?;
        let mut stream = inner.engine.docker().download_from_container(
            &inner.container,
            Some(DownloadFromContainerOptions { path: src.clone() }),
        );
        let mut archive = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => archive.extend_from_slice(&bytes),
                Err(e) if status_code(&e) == Some(404) && self.container_exists().await? => {
                    return Err(Error::InvalidPath {
                        path: src,
                        reason: "no such file or folder in the container".into(),
                    })
                }
                Err(e) => {
                    return Err(match exec_error(&inner.engine, &inner.container, e) {
                        Error::Exec { container, source } => Error::Download {
                            container,
                            path: src,
                            source,
                        },
                        other => other,
                    })
                }
            }
        }
        let host = host.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || unpack_to_host(&archive, &host, &src))
            .await
            .map_err(|e| Error::InvalidInput(format!("unpacking the files panicked: {e}")))?
    }
}

/// Folders that are memory filesystems inside the sandbox: the engine's copy API writes
/// beneath them, where the code would never see the files.
const MEMORY_FOLDERS: &[&str] = &["/tmp", "/var/tmp", "/run/lock", "/home/sandbox"];

fn refuse_memory_folders(dest: &str) -> Result<()> {
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

fn merge_compile(prev: Option<ExecOutput>, next: ExecOutput) -> ExecOutput {
    match prev {
        None => next,
        Some(mut p) => {
            p.stdout.push_str(&next.stdout);
            p.stderr.push_str(&next.stderr);
            p.exit_code = next.exit_code;
            p.timed_out |= next.timed_out;
            p.truncated |= next.truncated;
            p.oom_killed |= next.oom_killed;
            p.duration += next.duration;
            p
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Output chunks of a run as they arrive; the run goes on in the background until it ends.
/// Chunks are held only up to the output limit, so an unread stream stays small.
#[derive(Debug)]
pub struct RunStream {
    rx: tokio::sync::mpsc::UnboundedReceiver<OutputChunk>,
    task: tokio::task::JoinHandle<Result<RunResult>>,
}

impl RunStream {
    /// The next chunk, or `None` once the run has ended and every chunk was read.
    pub async fn next_chunk(&mut self) -> Option<OutputChunk> {
        self.rx.recv().await
    }

    /// Waits for the run to end and returns its result (chunks not yet read are dropped).
    pub async fn result(self) -> Result<RunResult> {
        drop(self.rx);
        self.task
            .await
            .map_err(|e| Error::InvalidInput(format!("the run task failed: {e}")))?
    }
}

impl futures_util::Stream for RunStream {
    type Item = OutputChunk;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<OutputChunk>> {
        self.rx.poll_recv(cx)
    }
}
