//! Running code and commands: library installs, the source file, compile and run steps.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};
use futures_util::StreamExt;

use crate::copy::{container_path, pack_bytes, pack_host_path, parent_and_name, unpack_to_host};
use crate::error::{status_code, Error, Result};
use crate::exec::{exec, exec_error, ExecSpec, INLINE_SOURCE_LIMIT};
use crate::output::{ExecOutput, RunResult};
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
}

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
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(inner.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be longer than zero".into(),
            ));
        }
        let file = inner.runner.source_file(code);
        let source_path = container_path(&inner.workdir, &file)?;
        let inline = code.len() <= INLINE_SOURCE_LIMIT && !code.contains('\0');
        if !inline {
            self.upload_bytes(&source_path, code.as_bytes(), 0o644)
                .await?;
        }
        let mut inline_file = inline.then(|| (source_path.clone(), code.to_string()));

        let plan = inner.runner.run(&file);
        let mut compile_out: Option<ExecOutput> = None;
        for step in &plan.compile {
            let remaining = timeout.saturating_sub(started.elapsed());
            let out = self
                .exec_step(step, remaining, inline_file.take(), None, &options.env)
                .await?;
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
                    duration: started.elapsed(),
                    compile: compile_out,
                });
            }
        }

        let stdin_path = match &options.stdin {
            Some(data) => {
                let path = format!("/tmp/.sandpit-stdin-{}", crate::ids::random_hex(12));
                self.upload_bytes(&path, data, 0o600).await?;
                Some(path)
            }
            None => None,
        };
        let mut run = plan.run.clone();
        run.argv.extend(options.args.iter().cloned());
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
            )
            .await?;
        Ok(RunResult {
            stdout: out.stdout,
            stderr: out.stderr,
            exit_code: out.exit_code,
            timed_out: out.timed_out,
            truncated: out.truncated,
            duration: started.elapsed(),
            compile: compile_out,
        })
    }

    /// Installs libraries not yet installed in this session; each is installed once.
    pub async fn install<S: AsRef<str>>(&self, libraries: &[S]) -> Result<()> {
        self.check_open()?;
        let inner = &self.inner;
        let _guard = inner.install_lock.lock().await;
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
        for step in inner.runner.install(&missing) {
            let out = self
                .exec_step(&step, inner.install_timeout, None, None, &[])
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
        inner
            .installed
            .lock()
            .expect("installed set poisoned")
            .extend(missing);
        Ok(())
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
        if command.trim().is_empty() {
            return Err(Error::InvalidInput("the command is empty".into()));
        }
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
        self.exec_step(&cmd, timeout, None, stdin_path, &options.env)
            .await
    }

    async fn exec_step(
        &self,
        command: &Command,
        timeout: Duration,
        inline_file: Option<(String, String)>,
        stdin_path: Option<String>,
        extra_env: &[(String, String)],
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
                    .exec_step(&mkdir, Duration::from_secs(30), None, None, &[])
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

fn merge_compile(prev: Option<ExecOutput>, next: ExecOutput) -> ExecOutput {
    match prev {
        None => next,
        Some(mut p) => {
            p.stdout.push_str(&next.stdout);
            p.stderr.push_str(&next.stderr);
            p.exit_code = next.exit_code;
            p.timed_out |= next.timed_out;
            p.truncated |= next.truncated;
            p.duration += next.duration;
            p
        }
    }
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.trim_end().lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
