//! The one drop worker: sessions dropped without `close()` are closed here, on a thread and
//! runtime of its own, so a drop never blocks the caller's runtime. Before the process exits,
//! it waits (up to ten seconds) for the work in hand.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use sandpit_engine::Engine;

use crate::close::ClosePlan;
use crate::session::CloseProgress;

struct Job {
    engine: Engine,
    plan: ClosePlan,
    committed: bool,
}

struct Worker {
    tx: tokio::sync::mpsc::UnboundedSender<Job>,
    pending: Arc<(Mutex<usize>, Condvar)>,
}

static WORKER: OnceLock<Option<Worker>> = OnceLock::new();

/// How long the process waits at exit for removals in hand.
const EXIT_WAIT: Duration = Duration::from_secs(10);

/// Hands a session's close to the worker.
pub(crate) fn submit(engine: Engine, plan: ClosePlan, committed: bool) {
    let Some(worker) = WORKER.get_or_init(start) else {
        tracing::error!(
            "no drop worker: container {} stays until `gc` removes it",
            plan.container
        );
        return;
    };
    *worker.pending.0.lock().expect("drop worker count") += 1;
    let job = Job {
        engine,
        plan,
        committed,
    };
    if let Err(e) = worker.tx.send(job) {
        finished(&worker.pending);
        tracing::error!(
            "the drop worker is gone: container {} stays until `gc` removes it",
            e.0.plan.container
        );
    }
}

/// Waits until the worker has nothing in hand, or `timeout` passed. True when idle.
pub fn wait_for_drops(timeout: Duration) -> bool {
    let Some(Some(worker)) = WORKER.get() else {
        return true;
    };
    let (count, idle) = &*worker.pending;
    let guard = count.lock().expect("drop worker count");
    let (guard, _) = idle
        .wait_timeout_while(guard, timeout, |n| *n > 0)
        .expect("drop worker count");
    *guard == 0
}

fn finished(pending: &(Mutex<usize>, Condvar)) {
    let mut n = pending.0.lock().expect("drop worker count");
    *n = n.saturating_sub(1);
    if *n == 0 {
        pending.1.notify_all();
    }
}

fn start() -> Option<Worker> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Job>();
    let pending = Arc::new((Mutex::new(0usize), Condvar::new()));
    let counter = pending.clone();
    let spawned = std::thread::Builder::new()
        .name("sandpit-drop".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!("the drop worker cannot start a runtime: {e}");
                    return;
                }
            };
            runtime.block_on(async move {
                // Engine handles made on the callers' runtimes may hold connections of runtimes
                // that are gone: the worker makes its own, one per endpoint.
                let mut engines: HashMap<String, Engine> = HashMap::new();
                while let Some(job) = rx.recv().await {
                    let key = job.engine.endpoint().to_string();
                    let engine = match engines.get(&key) {
                        Some(e) => Ok(e.clone()),
                        None => job.engine.reconnect().await.inspect(|e| {
                            engines.insert(key.clone(), e.clone());
                        }),
                    };
                    let counter = counter.clone();
                    tokio::spawn(async move {
                        let result = match engine {
                            Ok(engine) => {
                                let mut progress = CloseProgress {
                                    committed: job.committed,
                                };
                                job.plan.execute(&engine, &mut progress).await
                            }
                            Err(e) => Err(crate::Error::engine(e, |cause| {
                                crate::Error::RemoveContainer {
                                    container: job.plan.container.clone(),
                                    cause,
                                }
                            })),
                        };
                        if let Err(e) = result {
                            tracing::error!(
                                "removing {} after a drop failed: {e}; `gc` removes it later",
                                job.plan.container
                            );
                        }
                        finished(&counter);
                    });
                }
            });
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the drop worker thread: {e}");
        return None;
    }
    register_exit_wait();
    Some(Worker { tx, pending })
}

extern "C" fn wait_at_exit() {
    if !wait_for_drops(EXIT_WAIT) {
        eprintln!("sandpit: the process exits with sandbox removals unfinished; `sandpit gc` removes what is left");
    }
}

fn register_exit_wait() {
    extern "C" {
        fn atexit(cb: extern "C" fn()) -> std::ffi::c_int;
    }
    // SAFETY: atexit takes a plain function pointer that lives for the whole program.
    unsafe {
        atexit(wait_at_exit);
    }
}
