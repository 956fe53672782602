//! Stateful execution: kernels (one per context; the session's own is [`DEFAULT_CONTEXT`]),
//! each a process the agent started on first use, driven through its standard input and output
//! with JSON frames. No files are polled and no process is started per call.

mod process;
mod result;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::OwnedMutexGuard;

pub(crate) use process::Kernel;
use process::{collect, drain_exit, Outcome};
use result::Accumulator;
pub use result::{ExecuteOptions, ExecuteResult, ExecutionError, MimeBundle};

use crate::error::{Error, Result};
use crate::language::Language;
use crate::runner::Runner;
use crate::session::SandboxSession;
use crate::step::libc_signal;

/// The context `execute` uses: a kernel of the session's own language in the workdir.
pub const DEFAULT_CONTEXT: &str = "default";

/// One kernel's place: what starts it, where, and the kernel once it runs.
pub(crate) struct Context {
    pub id: String,
    pub runner: Arc<dyn Runner>,
    pub cwd: String,
    pub slot: Arc<tokio::sync::Mutex<Option<Kernel>>>,
}

/// A context as callers see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContextInfo {
    /// Its id ([`DEFAULT_CONTEXT`] for the session's own).
    pub id: String,
    /// The kernel's language.
    #[serde(serialize_with = "language_name")]
    pub language: Language,
    /// Where its code runs.
    pub cwd: String,
}

/// How long an interrupted request may take to stop before the kernel is restarted.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);

/// A kernel, locked for one request. A request dropped before it ends (a caller that went
/// away) interrupts the kernel in the background, so the next request finds it idle; a kernel
/// that does not stop is replaced.
struct KernelRequest {
    session: SandboxSession,
    slot: Option<OwnedMutexGuard<Option<Kernel>>>,
    finished: bool,
}

impl Drop for KernelRequest {
    fn drop(&mut self) {
        let (Some(mut slot), false) = (self.slot.take(), self.finished) else {
            return;
        };
        let session = self.session.clone();
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            // No runtime to finish on: forget the kernel (its call's cancel stops it).
            *slot = None;
            return;
        };
        handle.spawn(async move {
            let Some(kernel) = slot.as_mut() else { return };
            let mut sink = Accumulator::new(1, None);
            let stopped = session
                .signal_kernel(kernel, libc_signal::INT)
                .await
                .is_ok()
                && matches!(
                    collect(
                        kernel,
                        &mut sink,
                        Some(tokio::time::Instant::now() + INTERRUPT_GRACE)
                    )
                    .await,
                    Outcome::Done
                );
            if !stopped {
                if let Some(old) = slot.take() {
                    let _ = session.kill_kernel(old).await;
                }
            }
        });
    }
}

impl SandboxSession {
    /// Runs `code` in the session's kernel, keeping variables, imports, functions and open files
    /// between calls, like a notebook. Python, JavaScript and Ruby have kernels.
    pub async fn execute(&self, code: &str) -> Result<ExecuteResult> {
        self.execute_with(code, ExecuteOptions::default()).await
    }

    /// [`Self::execute`] with options. Dropping the future before it ends interrupts the code.
    pub async fn execute_with(&self, code: &str, options: ExecuteOptions) -> Result<ExecuteResult> {
        self.execute_in(DEFAULT_CONTEXT, code, options).await
    }

    /// Runs `code` in the kernel of `context` (see [`Self::create_context`]).
    pub async fn execute_in(
        &self,
        context: &str,
        code: &str,
        options: ExecuteOptions,
    ) -> Result<ExecuteResult> {
        self.check_open()?;
        let context = self.context(context)?;
        let _running = self.inner.install_lock.read().await;
        let mut request = KernelRequest {
            session: self.clone(),
            slot: Some(context.slot.clone().lock_owned().await),
            finished: false,
        };
        let slot: &mut Option<Kernel> = request.slot.as_mut().expect("locked");
        let started = Instant::now();
        let result = match self.run_request(&context, slot, code, options).await {
            // The sandbox died under the call (under gVisor, code that fills the memory stops
            // it whole).
            Err(e @ Error::SessionGone { .. }) => match self.restart_stopped_sandbox().await {
                Ok(Some(why)) => {
                    slot.take();
                    Ok(Accumulator::new(self.inner.output_limit, None).died(why, started))
                }
                Ok(None) => Err(e),
                Err(restart) => Err(restart),
            },
            Err(e @ Error::Agent { .. }) => Err(self.explain_lost(e).await),
            other => other,
        };
        request.finished = true;
        result
    }

    async fn run_request(
        &self,
        context: &Context,
        slot: &mut Option<Kernel>,
        code: &str,
        options: ExecuteOptions,
    ) -> Result<ExecuteResult> {
        let inner = &self.inner;
        let started = Instant::now();
        let timeout = options.timeout.unwrap_or(inner.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be longer than zero".into(),
            ));
        }
        let kernel_started = slot.is_none();
        if kernel_started {
            let fresh = match self.start_kernel_process(context).await {
                // The sandbox died since the last call: start it again, then the kernel.
                Err(e @ Error::SessionGone { .. }) => match self.restart_stopped_sandbox().await? {
                    Some(_) => self.start_kernel_process(context).await?,
                    None => return Err(e),
                },
                other => other?,
            };
            *slot = Some(fresh);
        }
        let kernel = slot.as_mut().expect("just started");
        let mut acc = Accumulator::new(inner.output_limit, options.on_output.clone());
        acc.kernel_started = kernel_started;

        let request =
            serde_json::json!({ "code": code, "env": self.env_vars() }).to_string() + "\n";
        if !self.write_kernel(kernel, request.as_bytes()).await? {
            // Its input is gone: it ended. Report, and start afresh next time.
            let said = drain_exit(kernel).await;
            slot.take();
            return Ok(acc.died(said, started));
        }

        let deadline = tokio::time::Instant::now() + timeout;
        let outcome = match collect(kernel, &mut acc, Some(deadline)).await {
            Outcome::Deadline => {
                acc.timed_out = true;
                self.signal_kernel(kernel, libc_signal::INT).await?;
                let grace = tokio::time::Instant::now() + INTERRUPT_GRACE;
                collect(kernel, &mut acc, Some(grace)).await
            }
            other => other,
        };
        match outcome {
            Outcome::Done => Ok(acc.finish(started)),
            Outcome::Exited(said) => {
                slot.take();
                if let Some(why) = self.restart_stopped_sandbox().await? {
                    return Ok(acc.died(why, started));
                }
                Ok(acc.died(said, started))
            }
            Outcome::Deadline => {
                // It ignored the interrupt: kill it and have a fresh one ready.
                let old = slot.take().expect("present");
                self.kill_kernel(old).await?;
                match self.start_kernel_process(context).await {
                    Ok(fresh) => *slot = Some(fresh),
                    Err(
                        e @ (Error::Setup { .. } | Error::ExecStart { .. } | Error::Timeout { .. }),
                    ) => {
                        tracing::debug!("no fresh kernel after a stuck one: {e}");
                    }
                    Err(e) => return Err(e),
                }
                acc.state_lost = true;
                acc.error = Some(ExecutionError {
                    name: "KernelRestarted".into(),
                    value: format!(
                        "the code ran past its {timeout:?} timeout and did not stop when interrupted; the kernel was restarted and its state is lost"
                    ),
                    traceback: Vec::new(),
                });
                Ok(acc.finish(started))
            }
        }
    }

    /// Forgets every kernel that is not running a request, so that the next call starts a
    /// fresh one (its processes were stopped); a call running in one finds out by itself.
    pub(crate) fn forget_kernels(&self) {
        for context in self.inner.contexts.lock().expect("contexts").values() {
            if let Ok(mut kernel) = context.slot.try_lock() {
                *kernel = None;
            }
        }
    }

    /// Starts the session's kernel now (it starts on the first `execute` otherwise). Useful to
    /// warm a session up before handing it out.
    pub async fn start_kernel(&self) -> Result<()> {
        self.check_open()?;
        let context = self.context(DEFAULT_CONTEXT)?;
        let mut slot = context.slot.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_kernel_process(&context).await?);
        }
        Ok(())
    }

    /// Stops the session's kernel; the next `execute` starts a fresh one with empty state.
    pub async fn restart_kernel(&self) -> Result<()> {
        self.restart_context(DEFAULT_CONTEXT).await
    }

    /// A new context: a kernel of `runner`'s language (it needs one), started now, its code
    /// running in `cwd` (default: the workdir). Returns its id.
    pub async fn create_context(
        &self,
        runner: Arc<dyn Runner>,
        cwd: Option<String>,
    ) -> Result<String> {
        self.check_open()?;
        if runner.kernel().is_none() {
            return Err(Error::Unsupported {
                what: format!("a context in {}", runner.language()),
                reason: "the language has no kernel; run its code with run() instead".into(),
            });
        }
        let cwd = match cwd {
            Some(dir) if !dir.starts_with('/') => {
                return Err(Error::InvalidPath {
                    path: dir,
                    reason: "a context's folder must be an absolute path".into(),
                })
            }
            Some(dir) => dir,
            None => self.inner.workdir.clone(),
        };
        let context = Arc::new(Context {
            id: crate::ids::random_hex(12),
            runner,
            cwd,
            slot: Arc::default(),
        });
        {
            let mut slot = context.slot.lock().await;
            *slot = Some(self.start_kernel_process(&context).await?);
        }
        let id = context.id.clone();
        self.inner
            .contexts
            .lock()
            .expect("contexts")
            .insert(id.clone(), context);
        Ok(id)
    }

    /// Stops `context`'s kernel; its next call starts a fresh one with empty state.
    pub async fn restart_context(&self, context: &str) -> Result<()> {
        let context = self.context(context)?;
        let mut slot = context.slot.lock().await;
        if let Some(old) = slot.take() {
            self.kill_kernel(old).await?;
        }
        Ok(())
    }

    /// Stops `context`'s kernel and forgets the context.
    pub async fn remove_context(&self, context: &str) -> Result<()> {
        let found = self.context(context)?;
        self.restart_context(context).await?;
        self.inner
            .contexts
            .lock()
            .expect("contexts")
            .retain(|id, c| !(id == context && Arc::ptr_eq(c, &found)));
        Ok(())
    }

    /// The session's contexts, the default one included once it was used.
    pub fn contexts(&self) -> Vec<ContextInfo> {
        self.inner
            .contexts
            .lock()
            .expect("contexts")
            .values()
            .map(|c| ContextInfo {
                id: c.id.clone(),
                language: c.runner.language(),
                cwd: c.cwd.clone(),
            })
            .collect()
    }

    /// The context `id`; the default one is made on first use.
    fn context(&self, id: &str) -> Result<Arc<Context>> {
        let mut contexts = self.inner.contexts.lock().expect("contexts");
        if let Some(context) = contexts.get(id) {
            return Ok(context.clone());
        }
        if id != DEFAULT_CONTEXT {
            return Err(Error::ContextNotFound {
                context: id.to_string(),
            });
        }
        let context = Arc::new(Context {
            id: DEFAULT_CONTEXT.to_string(),
            runner: self.inner.runner.clone(),
            cwd: self.inner.workdir.clone(),
            slot: Arc::default(),
        });
        contexts.insert(DEFAULT_CONTEXT.to_string(), context.clone());
        Ok(context)
    }
}

fn language_name<S: serde::Serializer>(l: &Language, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(l.name())
}

/// The contexts of a new session: none until used.
pub(crate) fn no_contexts() -> std::sync::Mutex<BTreeMap<String, Arc<Context>>> {
    std::sync::Mutex::new(BTreeMap::new())
}
