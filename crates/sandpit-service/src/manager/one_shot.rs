//! One-shot runs: one program in a sandbox of its own, from a warm pool or reset after an
//! earlier run of the same key.

use std::time::{Duration, Instant};

use sandpit::{Language, LanguageExt, RunOptions, SandboxSession, SecurityPolicy};

use super::recycling::PoolKey;

use super::validation::seconds;
use super::{Manager, Owner, SERVER_LABEL};
use crate::error::{ServiceError, ServiceResult};
use crate::types::{OneShotRequest, RunResponse};

impl Manager {
    /// One program in a sandbox of its own: one this key's earlier runs used, reset, when the
    /// server recycles and the request does not ask for a fresh one; else one from the warm
    /// pool of its language (and libraries).
    pub async fn run_once(&self, owner: &Owner, req: OneShotRequest) -> ServiceResult<RunResponse> {
        let language: Language = req
            .language
            .parse()
            .map_err(|e: sandpit::UnknownLanguage| ServiceError::invalid(e.to_string()))?;
        let timeout = seconds("timeout", req.timeout.unwrap_or(60.0))?;
        let mut options = RunOptions::new()
            .timeout(timeout)
            .libraries(req.libraries.iter().cloned())
            .args(req.args.iter().cloned());
        if let Some(stdin) = req.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let program = Program {
            language,
            code: req.code,
            options,
            files: Vec::new(),
            memory: None,
            fresh: req.fresh,
        };
        Ok(self.run_program(owner, program).await?.into())
    }

    /// One program with what [`Self::run_once`] does not offer (the compatibility APIs and the
    /// MCP tools need it): files written beside the program first, a memory limit of its own
    /// (then a sandbox opened for it alone). It waits for one of the owner's run slots in a
    /// bounded line ([`crate::ServiceConfig::run_queue_length`] and `run_queue_wait`), and is
    /// refused with a `Retry-After` past it. The run's options (timeout, stdin, arguments,
    /// environment, output sink, libraries) are the caller's.
    pub async fn run_program(
        &self,
        owner: &Owner,
        mut program: Program,
    ) -> ServiceResult<sandpit::RunResult> {
        let _turn = self.take_turn(owner).await?;
        let started = Instant::now();
        let result = match program.memory {
            Some(memory) => self.run_alone(owner, program, memory).await?,
            None => {
                // The pool's image holds the libraries: the run installs nothing.
                let libraries = std::mem::take(&mut program.options.libraries);
                let runner = sandpit::runner(program.language);
                for library in &libraries {
                    runner
                        .check_library(library.trim())
                        .map_err(ServiceError::invalid)?;
                }
                let key = PoolKey::new(program.language, &libraries);
                let recycle = self.shared.config.recycle && !program.fresh;
                // A member another node claimed for this run comes first (it is fresh).
                let session = match self
                    .claimed(owner, &key)
                    .or_else(|| recycle.then(|| self.recycled(owner, &key)).flatten())
                {
                    Some(session) => session,
                    None => self.pool(&key).await?.acquire().await?.detach(),
                };
                let result =
                    run_with_files(&session, &program.code, program.options, &program.files).await;
                match &result {
                    // A run that ended however it ended leaves a sandbox a reset can clean.
                    Ok(_) if recycle => self.recycle(owner, key, session),
                    // Closed by the drop worker: the answer does not wait for it.
                    _ => session.close_in_background(),
                }
                result?
            }
        };
        self.shared.metrics.run("one_shot", started.elapsed());
        Ok(result)
    }

    /// A run with a memory limit of its own, in a sandbox opened for it and closed after.
    async fn run_alone(
        &self,
        owner: &Owner,
        program: Program,
        memory: u64,
    ) -> ServiceResult<sandpit::RunResult> {
        let mut policy = SecurityPolicy::standard();
        policy.memory = memory;
        let mut builder = SandboxSession::builder()
            .language(program.language)
            .engine(self.shared.engine.clone())
            .policy(policy)
            .recyclable(true)
            .label(SERVER_LABEL, self.shared.server_id.clone())
            .label(crate::labels::OWNER, owner.0.clone())
            .lifetime(Duration::from_secs(3600));
        if let Some(ca) = &self.shared.config.ca_bundle {
            builder = builder.extra_ca_certificates(ca.clone());
        }
        let mut options = program.options;
        builder = builder.libraries(std::mem::take(&mut options.libraries));
        let session = builder.open().await?;
        let result = run_with_files(&session, &program.code, options, &program.files).await;
        if let Err(e) = session.close().await {
            tracing::warn!("closing the sandbox of a one-shot run failed: {e}");
        }
        Ok(result?)
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
    /// A sandbox no run used before, even where the server recycles.
    pub fresh: bool,
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
