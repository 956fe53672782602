//! Stateful execution: one kernel process per session, started on first use, driven over
//! its attached standard input and output with JSON frames. No files are polled and no process
//! is started per call, so it works the same on a remote engine and with the network off.

mod process;
mod result;

use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::sync::OwnedMutexGuard;

pub(crate) use process::Kernel;
use process::{collect, drain_exit, Outcome};
use result::Accumulator;
pub use result::{ExecuteOptions, ExecuteResult, ExecutionError, MimeBundle};

use crate::error::{Error, Result};
use crate::exec::reset_user_processes;
use crate::session::SandboxSession;
use crate::step::{shell, Step, HOUSEKEEPING};

/// How long an interrupted request may take to stop before the kernel is restarted.
const INTERRUPT_GRACE: Duration = Duration::from_secs(3);

/// The kernel, locked for one request. A request dropped before it ends (a caller that went
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
            // No runtime to finish on: forget the kernel (the container's close kills it).
            *slot = None;
            return;
        };
        handle.spawn(async move {
            let Some(kernel) = slot.as_mut() else { return };
            let mut sink = Accumulator::new(1, None);
            let stopped = session.signal_kernel(kernel.pid, "INT").await.is_ok()
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
        self.check_open()?;
        let _running = self.inner.install_lock.read().await;
        let mut request = KernelRequest {
            session: self.clone(),
            slot: Some(self.inner.kernel.clone().lock_owned().await),
            finished: false,
        };
        let slot: &mut Option<Kernel> = request.slot.as_mut().expect("locked");
        let started = Instant::now();
        let result = match self.run_request(slot, code, options).await {
            // The sandbox died under the call (under gVisor, code that fills the memory stops
            // it whole, and the engine may only tell when the next step signals it).
            Err(e @ Error::SessionGone { .. }) => match self.restart_stopped_sandbox().await {
                Ok(Some(why)) => {
                    slot.take();
                    Ok(Accumulator::new(self.inner.output_limit, None).died(why, started))
                }
                Ok(None) => Err(e),
                Err(restart) => Err(restart),
            },
            other => other,
        };
        request.finished = true;
        result
    }

    async fn run_request(
        &self,
        slot: &mut Option<Kernel>,
        code: &str,
        options: ExecuteOptions,
    ) -> Result<ExecuteResult> {
        let inner = &self.inner;
        let started = Instant::now();
        let kernel_started = slot.is_none();
        if kernel_started {
            let fresh = match self.start_kernel_process().await {
                // The sandbox died since the last call (gVisor stops it whole when the code
                // fills its memory): start it again, then the kernel.
                Err(e @ (Error::SessionGone { .. } | Error::ExecStart { .. })) => {
                    match self.restart_stopped_sandbox().await? {
                        Some(_) => self.start_kernel_process().await?,
                        None => return Err(e),
                    }
                }
                other => other?,
            };
            *slot = Some(fresh);
        }
        let kernel = slot.as_mut().expect("just started");
        let timeout = options.timeout.unwrap_or(inner.timeout);
        if timeout.is_zero() {
            return Err(Error::InvalidInput(
                "the timeout must be longer than zero".into(),
            ));
        }
        let mut acc = Accumulator::new(inner.output_limit, options.on_output.clone());
        acc.kernel_started = kernel_started;

        let request =
            serde_json::json!({ "code": code, "env": self.env_vars() }).to_string() + "\n";
        let written = async {
            kernel.input.write_all(request.as_bytes()).await?;
            kernel.input.flush().await
        }
        .await;
        if written.is_err() {
            // The kernel's stdin is closed: find out why, report, and start afresh next time.
            let tail = drain_exit(kernel).await;
            let old = slot.take().expect("present");
            let why = self.why_lost(old, tail).await?;
            return Ok(acc.died(why, started));
        }

        let deadline = tokio::time::Instant::now() + timeout;
        let outcome = match collect(kernel, &mut acc, Some(deadline)).await {
            Outcome::Deadline => {
                acc.timed_out = true;
                match self.signal_kernel(kernel.pid, "INT").await {
                    Ok(()) => {
                        let grace = tokio::time::Instant::now() + INTERRUPT_GRACE;
                        collect(kernel, &mut acc, Some(grace)).await
                    }
                    // Not even an interrupt could start: as good as ignored.
                    Err(Error::ExecStart { .. }) => Outcome::Deadline,
                    Err(e) => return Err(e),
                }
            }
            other => other,
        };
        match outcome {
            Outcome::Done if acc.timed_out && !self.can_start_processes().await? => {
                // The kernel stopped, but what the code started fills the process limit.
                reset_user_processes(&inner.engine, &inner.container).await?;
                slot.take();
                acc.state_lost = true;
                acc.error = Some(ExecutionError {
                    name: "KernelRestarted".into(),
                    value: format!(
                        "the code ran past its {timeout:?} timeout and the processes it started filled the sandbox's process limit; every process was stopped, the kernel's state is lost and the next call starts a fresh kernel"
                    ),
                    traceback: Vec::new(),
                });
                Ok(acc.finish(started))
            }
            Outcome::Done => Ok(acc.finish(started)),
            Outcome::Exited(tail) => {
                let old = slot.take().expect("present");
                if let Some(why) = self.restart_stopped_sandbox().await? {
                    return Ok(acc.died(why, started));
                }
                let why = self.why_lost(old, tail).await?;
                Ok(acc.died(why, started))
            }
            Outcome::Deadline => {
                // It ignored the interrupt: kill it and have a fresh one ready.
                let old = slot.take().expect("present");
                self.kill_kernel(old).await?;
                // A fresh kernel now, so that the next call finds one. What the code left may
                // still fill the process limit and stop it starting: then every user process
                // goes, and the next call starts the kernel.
                match self.start_kernel_process().await {
                    Ok(fresh) => *slot = Some(fresh),
                    Err(
                        e @ (Error::Setup { .. } | Error::ExecStart { .. } | Error::Timeout { .. }),
                    ) => {
                        tracing::debug!("no fresh kernel after a stuck one: {e}");
                        if !self.can_start_processes().await? {
                            reset_user_processes(&inner.engine, &inner.container).await?;
                        }
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

    /// Drops the kernel after its processes were stopped, so that the next `execute` starts a
    /// fresh one; a call running in it now finds out by itself.
    pub(crate) fn forget_idle_kernel(&self) {
        if let Ok(mut kernel) = self.inner.kernel.try_lock() {
            *kernel = None;
        }
    }

    /// True when the sandbox can start a process (its process limit is not full).
    pub(crate) async fn can_start_processes(&self) -> Result<bool> {
        match self
            .exec_step(Step::new(&shell("true"), HOUSEKEEPING))
            .await
        {
            Ok(_) => Ok(true),
            Err(Error::ExecStart { .. }) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Starts the kernel now (it starts on the first `execute` otherwise). Useful to warm a
    /// session up before handing it out.
    pub async fn start_kernel(&self) -> Result<()> {
        self.check_open()?;
        let mut slot = self.inner.kernel.lock().await;
        if slot.is_none() {
            *slot = Some(self.start_kernel_process().await?);
        }
        Ok(())
    }

    /// Stops the kernel; the next `execute` starts a fresh one with empty state.
    pub async fn restart_kernel(&self) -> Result<()> {
        let mut slot = self.inner.kernel.lock().await;
        if let Some(old) = slot.take() {
            self.kill_kernel(old).await?;
        }
        Ok(())
    }
}
