//! A warm pool: sessions opened and set up in the background, handed out at once, never
//! handed out twice.

use std::collections::VecDeque;
use std::ops::Deref;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::builder::SessionBuilder;
use crate::error::{Error, Result};
use crate::session::SandboxSession;

/// What `acquire` does when no session is idle and the pool is at its maximum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExhausted {
    /// Wait up to this long for one to become ready, then fail.
    Wait(Duration),
    /// Fail at once.
    Fail,
}

/// Sizes and lifetimes of a pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Sessions kept open and idle, ready to hand out.
    pub idle: usize,
    /// Most sessions at once: idle, handed out and opening together.
    pub max_size: usize,
    /// An idle session older than this is closed and replaced.
    pub idle_lifetime: Duration,
    /// Libraries installed in every session before it counts as ready.
    pub libraries: Vec<String>,
    /// Start each session's stateful kernel before it counts as ready.
    pub kernel: bool,
    /// What `acquire` does when the pool is exhausted.
    pub when_exhausted: WhenExhausted,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            idle: 2,
            max_size: 16,
            idle_lifetime: Duration::from_secs(600),
            libraries: Vec::new(),
            kernel: false,
            when_exhausted: WhenExhausted::Wait(Duration::from_secs(60)),
        }
    }
}

struct Idle {
    session: SandboxSession,
    ready_at: Instant,
}

struct State {
    idle: VecDeque<Idle>,
    /// Sessions handed out plus sessions opening.
    busy: usize,
    opening: usize,
    closed: bool,
    last_error: Option<(String, crate::error::ErrorKind)>,
}

struct Shared {
    builder: SessionBuilder,
    config: PoolConfig,
    state: Mutex<State>,
    /// Woken when a session becomes ready or a slot frees up.
    ready: Notify,
    /// Woken when the filler should look again (its own `Arc`, so the waiting filler does not
    /// keep the pool alive).
    wake_filler: Arc<Notify>,
    /// Counts changes of the idle set, for callers that publish it (a cluster node).
    changed: tokio::sync::watch::Sender<u64>,
}

impl Shared {
    /// Tells the watchers that the idle set changed.
    fn idle_changed(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Keeps `idle` sessions of one configuration (one language and image) open and set up.
///
/// A session handed out by [`SessionPool::acquire`] is never handed out again: when the
/// [`PooledSession`] is dropped (or [`PooledSession::release`]d) it is closed and a fresh one
/// is opened in the background. Call [`SessionPool::close`] to remove the idle sessions.
#[derive(Clone)]
pub struct SessionPool {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for SessionPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.shared.state.lock().expect("pool state");
        f.debug_struct("SessionPool")
            .field("idle", &st.idle.len())
            .field("busy", &st.busy)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl SessionPool {
    /// Starts a pool that opens sessions from `builder` in the background. Must be called
    /// inside a tokio runtime; the pool's tasks live on it.
    pub fn new(builder: SessionBuilder, config: PoolConfig) -> Result<Self> {
        if config.max_size == 0 || config.idle > config.max_size {
            return Err(Error::InvalidInput(format!(
                "a pool needs max_size >= 1 and idle <= max_size (got idle {}, max_size {})",
                config.idle, config.max_size
            )));
        }
        let shared = Arc::new(Shared {
            builder,
            config,
            state: Mutex::new(State {
                idle: VecDeque::new(),
                busy: 0,
                opening: 0,
                closed: false,
                last_error: None,
            }),
            ready: Notify::new(),
            wake_filler: Arc::new(Notify::new()),
            changed: tokio::sync::watch::channel(0).0,
        });
        tokio::spawn(fill(Arc::downgrade(&shared)));
        Ok(SessionPool { shared })
    }

    /// Waits until `idle` sessions are ready (or `timeout` passes): for warm starts.
    pub async fn warm_up(&self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.ready.notified();
            {
                let st = self.shared.state.lock().expect("pool state");
                if st.idle.len() >= self.shared.config.idle {
                    return Ok(());
                }
                if let Some((e, kind)) = &st.last_error {
                    return Err(Error::Pool {
                        reason: format!("the pool cannot open sessions: {e}"),
                        kind: *kind,
                    });
                }
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(Error::Timeout {
                    operation: "warming up the session pool".into(),
                    after: timeout,
                });
            }
        }
    }

    /// A ready session: an idle one at once, else a new one if the pool has room, else (as
    /// configured) wait for one or fail.
    pub async fn acquire(&self) -> Result<PooledSession> {
        let deadline = match self.shared.config.when_exhausted {
            WhenExhausted::Wait(d) => Some(tokio::time::Instant::now() + d),
            WhenExhausted::Fail => None,
        };
        loop {
            let notified = self.shared.ready.notified();
            let mut coming = false;
            let open_new = {
                let mut st = self.shared.state.lock().expect("pool state");
                if st.closed {
                    return Err(Error::Pool {
                        reason: "the session pool is closed".into(),
                        kind: crate::error::ErrorKind::Gone,
                    });
                }
                if let Some(idle) = st.idle.pop_front() {
                    st.busy += 1;
                    drop(st);
                    self.shared.idle_changed();
                    self.shared.wake_filler.notify_one();
                    return Ok(PooledSession {
                        session: Some(idle.session),
                        pool: Arc::downgrade(&self.shared),
                    });
                }
                let total = st.busy + st.opening;
                if total < self.shared.config.max_size {
                    st.busy += 1;
                    true
                } else {
                    // Sessions the filler is opening count as coming, not as taken: even a
                    // pool that fails when exhausted waits for them.
                    coming = st.opening > 0;
                    false
                }
            };
            if open_new {
                return match open_ready(&self.shared).await {
                    Ok(session) => {
                        self.shared.wake_filler.notify_one();
                        Ok(PooledSession {
                            session: Some(session),
                            pool: Arc::downgrade(&self.shared),
                        })
                    }
                    Err(e) => {
                        self.shared.state.lock().expect("pool state").busy -= 1;
                        self.shared.ready.notify_waiters();
                        Err(e)
                    }
                };
            }
            if coming && deadline.is_none() {
                notified.await;
                continue;
            }
            match deadline {
                None => {
                    return Err(Error::PoolExhausted {
                        max_size: self.shared.config.max_size,
                    })
                }
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, notified).await.is_err() {
                        return Err(Error::Timeout {
                            operation: "waiting for a pooled session".into(),
                            after: match self.shared.config.when_exhausted {
                                WhenExhausted::Wait(d) => d,
                                WhenExhausted::Fail => Duration::ZERO,
                            },
                        });
                    }
                }
            }
        }
    }

    /// Sessions idle and ready now.
    pub fn idle_count(&self) -> usize {
        self.shared.state.lock().expect("pool state").idle.len()
    }

    /// The ids of the sessions idle and ready now.
    pub fn idle_ids(&self) -> Vec<String> {
        let st = self.shared.state.lock().expect("pool state");
        st.idle.iter().map(|i| i.session.id().to_string()).collect()
    }

    /// The idle session `id`, handed out as [`Self::acquire`] would; `None` when it is not idle
    /// (handed out already, recycled, or never of this pool). For a caller that claimed that
    /// very session elsewhere first (a cluster's compare-and-swap).
    pub fn acquire_id(&self, id: &str) -> Option<PooledSession> {
        let idle = {
            let mut st = self.shared.state.lock().expect("pool state");
            if st.closed {
                return None;
            }
            let at = st.idle.iter().position(|i| i.session.id() == id)?;
            let idle = st.idle.remove(at)?;
            st.busy += 1;
            idle
        };
        self.shared.idle_changed();
        self.shared.wake_filler.notify_one();
        Some(PooledSession {
            session: Some(idle.session),
            pool: Arc::downgrade(&self.shared),
        })
    }

    /// A receiver that sees a change each time the idle set changes (a session ready, handed
    /// out, or recycled for its age).
    pub fn idle_changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.shared.changed.subscribe()
    }

    /// Stops refilling and closes the idle sessions; sessions still opening are closed as
    /// soon as they are open (waited for, up to a minute). Sessions handed out close when
    /// released.
    pub async fn close(&self) -> Result<()> {
        let idle: Vec<Idle> = {
            let mut st = self.shared.state.lock().expect("pool state");
            st.closed = true;
            st.idle.drain(..).collect()
        };
        self.shared.idle_changed();
        self.shared.wake_filler.notify_one();
        self.shared.ready.notify_waiters();
        let mut first_error = None;
        for i in idle {
            if let Err(e) = i.session.close().await {
                first_error.get_or_insert(e);
            }
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let notified = self.shared.ready.notified();
            if self.shared.state.lock().expect("pool state").opening == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                tracing::warn!("the session pool closed with sessions still opening; `gc` removes them once they expire");
                break;
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Opens one session and sets it up (libraries), ready to hand out.
async fn open_ready(shared: &Shared) -> Result<SandboxSession> {
    let session = shared.builder.clone().open().await?;
    let setup = async {
        if !shared.config.libraries.is_empty() {
            session.install(&shared.config.libraries).await?;
        }
        if shared.config.kernel {
            session.start_kernel().await?;
        }
        Ok(())
    };
    match setup.await {
        Ok(()) => Ok(session),
        Err(e) => {
            let _ = session.close().await;
            Err(e)
        }
    }
}

/// Keeps `idle` sessions ready and recycles ones past their lifetime, until the pool is gone.
async fn fill(pool: Weak<Shared>) {
    loop {
        let Some(shared) = pool.upgrade() else { return };
        let (to_open, expired) = {
            let mut st = shared.state.lock().expect("pool state");
            if st.closed {
                return;
            }
            let lifetime = shared.config.idle_lifetime;
            let mut expired = Vec::new();
            while st
                .idle
                .front()
                .is_some_and(|i| i.ready_at.elapsed() > lifetime)
            {
                expired.extend(st.idle.pop_front());
            }
            let room = shared
                .config
                .max_size
                .saturating_sub(st.busy + st.opening + st.idle.len());
            let want = shared
                .config
                .idle
                .saturating_sub(st.idle.len() + st.opening);
            let n = want.min(room);
            st.opening += n;
            (n, expired)
        };
        if !expired.is_empty() {
            shared.idle_changed();
        }
        for old in expired {
            old.session.close_in_background();
        }
        for _ in 0..to_open {
            let shared = shared.clone();
            tokio::spawn(async move {
                let opened = open_ready(&shared).await;
                let mut st = shared.state.lock().expect("pool state");
                st.opening -= 1;
                match opened {
                    Ok(session) if !st.closed => {
                        st.last_error = None;
                        st.idle.push_back(Idle {
                            session,
                            ready_at: Instant::now(),
                        });
                        shared.idle_changed();
                    }
                    Ok(session) => {
                        // The pool closed while it opened: it goes at once.
                        drop(st);
                        session.close_in_background();
                        shared.ready.notify_waiters();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!("the session pool could not open a session: {e}");
                        st.last_error = Some((e.to_string(), e.kind()));
                    }
                }
                drop(st);
                shared.ready.notify_waiters();
                shared.wake_filler.notify_one();
            });
        }
        let lifetime = shared.config.idle_lifetime;
        let wake = shared.wake_filler.clone();
        let backoff = if shared
            .state
            .lock()
            .expect("pool state")
            .last_error
            .is_some()
        {
            Duration::from_secs(2)
        } else {
            lifetime.min(Duration::from_secs(30))
        };
        drop(shared);
        let _ = tokio::time::timeout(backoff, wake.notified()).await;
    }
}

/// A session from a pool. Derefs to [`SandboxSession`]; dropping it (or [`Self::release`])
/// closes the session in the background and lets the pool open a fresh one: a session's
/// state never reaches another caller.
pub struct PooledSession {
    session: Option<SandboxSession>,
    pool: Weak<Shared>,
}

impl std::fmt::Debug for PooledSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("PooledSession").field(&self.session).finish()
    }
}

impl Deref for PooledSession {
    type Target = SandboxSession;

    fn deref(&self) -> &SandboxSession {
        self.session
            .as_ref()
            .expect("a pooled session is present until released")
    }
}

impl PooledSession {
    /// Gives the session back: it is closed (awaited here) and replaced in the background.
    pub async fn release(mut self) -> Result<()> {
        let session = self.session.take().expect("present");
        let closed = session.close().await;
        self.free_slot();
        closed
    }

    /// Takes the session out of the pool: the pool opens a replacement, and the caller owns the
    /// session (closing it is the caller's). For callers that reuse a sandbox themselves, such
    /// as a server recycling one-shot sandboxes for the same owner.
    pub fn detach(mut self) -> SandboxSession {
        let session = self.session.take().expect("present");
        self.free_slot();
        session
    }

    fn free_slot(&self) {
        if let Some(shared) = self.pool.upgrade() {
            shared.state.lock().expect("pool state").busy -= 1;
            shared.wake_filler.notify_one();
            shared.ready.notify_waiters();
        }
    }
}

impl Drop for PooledSession {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        // The drop worker closes it: a runtime shutting down cannot cancel that.
        session.close_in_background();
        self.free_slot();
    }
}
