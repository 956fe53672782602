//! One-shot runs: one program in a fresh sandbox, closed before the answer.

use std::time::{Duration, Instant};

use sandpit::{Language, LanguageExt, RunOptions, SandboxSession, SecurityPolicy};

use super::validation::seconds;
use super::{Manager, Owner, SERVER_LABEL};
use crate::error::{ErrorKind, ServiceError, ServiceResult};
use crate::types::{OneShotRequest, RunResponse};

impl Manager {
    /// One program in a fresh sandbox, from the language's warm pool when it has one.
    pub async fn run_once(&self, owner: &Owner, req: OneShotRequest) -> ServiceResult<RunResponse> {
        let language: Language = req
            .language
            .parse()
            .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?;
        let timeout = seconds("timeout", req.timeout.unwrap_or(60.0))?;
        let _permit = self.runs_of(owner).try_acquire_owned().map_err(|_| {
            ServiceError::new(
                ErrorKind::Exhausted,
                format!(
                    "this key has {} runs going, its limit: wait for one to end",
                    self.run_limit(owner)
                ),
            )
        })?;
        let started = Instant::now();
        let pool = self.pool(language).await?;
        let session = pool.acquire().await?;
        let mut options = RunOptions::new()
            .timeout(timeout)
            .libraries(req.libraries.iter().cloned())
            .args(req.args.iter().cloned());
        if let Some(stdin) = req.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = session.run_with(&req.code, options).await;
        // Closed by the drop worker: the answer does not wait, and a shutdown cannot lose it.
        drop(session);
        self.shared.metrics.run("one_shot", started.elapsed());
        Ok(result?.into())
    }

    /// One program in a fresh sandbox, with what [`Self::run_once`] does not offer (the
    /// compatibility APIs need it): files written beside the program first, a memory limit
    /// of its own (then a sandbox opened for it rather than one from the warm pool), and a
    /// wait of up to `wait` for one of the owner's run slots (`Exhausted` after it). The
    /// run's options (timeout, stdin, arguments, environment, output sink) are the caller's.
    /// The sandbox is closed before this returns.
    pub async fn run_program(
        &self,
        owner: &Owner,
        program: Program,
    ) -> ServiceResult<sandpit::RunResult> {
        let runs = self.runs_of(owner);
        let _permit = match tokio::time::timeout(program.wait, runs.acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => {
                return Err(ServiceError::new(
                    ErrorKind::Exhausted,
                    format!(
                        "this key has {} runs going, its limit, and none ended within {:.1} s: try again later",
                        self.run_limit(owner),
                        program.wait.as_secs_f64()
                    ),
                ))
            }
        };
        let started = Instant::now();
        let result = match program.memory {
            Some(memory) => {
                let mut policy = SecurityPolicy::standard();
                policy.memory = memory;
                let mut builder = SandboxSession::builder()
                    .language(program.language)
                    .engine(self.shared.engine.clone())
                    .policy(policy)
                    .label(SERVER_LABEL, self.shared.server_id.clone())
                    .label(crate::labels::OWNER, owner.0.clone())
                    .lifetime(Duration::from_secs(3600));
                if let Some(ca) = &self.shared.config.ca_bundle {
                    builder = builder.extra_ca_certificates(ca.clone());
                }
                let session = builder.open().await?;
                let result =
                    run_with_files(&session, &program.code, program.options, &program.files).await;
                if let Err(e) = session.close().await {
                    tracing::warn!("closing the sandbox of a one-shot run failed: {e}");
                }
                result?
            }
            None => {
                let pool = self.pool(program.language).await?;
                let session = pool.acquire().await?;
                let result =
                    run_with_files(&session, &program.code, program.options, &program.files).await;
                if let Err(e) = session.release().await {
                    tracing::warn!("closing the pooled sandbox of a one-shot run failed: {e}");
                }
                result?
            }
        };
        self.shared.metrics.run("one_shot", started.elapsed());
        Ok(result)
    }
}

/// A program for [`Manager::run_program`].
#[derive(Debug)]
pub struct Program {
    /// Its language.
    pub language: Language,
    /// Its source.
    pub code: String,
    /// Timeout, stdin, arguments, environment, output sink.
    pub options: RunOptions,
    /// Files written into the workdir before it runs: (relative path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// A memory limit in bytes other than the standard policy's (`None`: the standard one).
    pub memory: Option<u64>,
    /// How long to wait for a free run slot of the owner.
    pub wait: Duration,
}

/// Writes `files`, then runs `code`.
async fn run_with_files(
    session: &SandboxSession,
    code: &str,
    options: RunOptions,
    files: &[(String, Vec<u8>)],
) -> sandpit::Result<sandpit::RunResult> {
    for (path, data) in files {
        session.files().write(path, data, None).await?;
    }
    session.run_with(code, options).await
}
