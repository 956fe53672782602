//! Shell commands in the sandbox.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::output::{ExecOutput, OutputChunk, OutputSink};
use crate::runner::Command;
use crate::session::SandboxSession;
use crate::step::Step;

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
    /// Runs one shell command (`/bin/sh -c`) as the sandbox user in the workdir.
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
        if command.trim().is_empty() {
            return Err(Error::InvalidInput("the command is empty".into()));
        }
        self.execute_argv(&["/bin/sh", "-c", command], options)
            .await
    }

    /// Runs one program with its arguments, no shell (images without one serve it too); a
    /// program without `/` is looked up in `PATH`.
    pub async fn execute_argv<S: AsRef<str>>(
        &self,
        argv: &[S],
        options: CommandOptions,
    ) -> Result<ExecOutput> {
        self.check_open()?;
        if !self.inner.policy.allow_commands {
            return Err(Error::Refused(
                "shell commands are not allowed in this session (allow_commands is off); run code with run() instead".into(),
            ));
        }
        if argv.first().is_none_or(|p| p.as_ref().is_empty()) {
            return Err(Error::InvalidInput(
                "the command names no program: give at least the program's name".into(),
            ));
        }
        let _running = self.inner.install_lock.read().await;
        let mut cmd = Command::new(argv.iter().map(|a| a.as_ref().to_string()));
        if options.as_root {
            cmd = cmd.as_root();
        }
        let timeout = options.timeout.unwrap_or(self.inner.timeout);
        self.exec_user_step(Step {
            stdin: options.stdin.clone(),
            env: &options.env,
            sink: options.on_output.clone(),
            ..Step::new(&cmd, timeout)
        })
        .await
    }
}
