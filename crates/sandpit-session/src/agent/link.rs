//! One connection to a sandbox's agent: frames written by one task, events read and handed to
//! the calls they answer by another. Many calls are in flight at once.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use sandpit_agent::frame::{self, Decoder};
use sandpit_agent::protocol::{
    CallId, Event, EventBody, Hello, HelloReply, Op, Request, PROTOCOL_VERSION,
};
use sandpit_engine::{EngineResult, ExecChunk, StreamKind};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::error::{Error, Result};

/// What a call receives.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// An event for it, with the frame's payload.
    Event(EventBody, Bytes),
    /// The connection ended before the call did.
    Lost(String),
}

/// Frames waiting for the writer; bounded, so a large upload waits for the pipe.
const OUTGOING: usize = 64;

/// How long the agent may take to answer the first hello (a gVisor sandbox boots first).
const HELLO_WITHIN: Duration = Duration::from_secs(60);

/// The shared state of one connection.
pub(crate) struct Link {
    pub container: String,
    outgoing: mpsc::Sender<Vec<u8>>,
    calls: Mutex<Calls>,
    next_call: AtomicU64,
    hello: Mutex<Option<HelloReply>>,
    tasks: Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

/// The calls in flight; once the connection is lost, new ones are told at once.
#[derive(Default)]
struct Calls {
    open: HashMap<CallId, mpsc::UnboundedSender<Incoming>>,
    /// Why the connection ended, once it did.
    lost: Option<String>,
}

impl Drop for Link {
    fn drop(&mut self) {
        for task in self.tasks.lock().expect("link tasks").drain(..) {
            task.abort();
        }
    }
}

/// How the connection meets the agent's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Joining {
    /// A new agent that has read nothing yet (attached before the container started).
    Fresh,
    /// An agent that may hold half a frame of an earlier connection: a run of zeros first.
    Running,
}

/// The engine's byte streams to and from the agent.
pub(crate) struct Pipes {
    pub output: Pin<Box<dyn Stream<Item = EngineResult<ExecChunk>> + Send>>,
    pub input: Pin<Box<dyn AsyncWrite + Send>>,
}

impl Link {
    /// Starts the reader and writer over `pipes`; nothing is sent yet.
    pub(crate) fn open(container: &str, pipes: Pipes) -> Arc<Link> {
        let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>(OUTGOING);
        let link = Arc::new(Link {
            container: container.to_string(),
            outgoing: out_tx,
            calls: Mutex::new(Calls::default()),
            next_call: AtomicU64::new(1),
            hello: Mutex::new(None),
            tasks: Mutex::new(Vec::new()),
        });
        let writer = tokio::spawn(write_frames(Arc::downgrade(&link), pipes.input, out_rx));
        let reader = tokio::spawn(read_events(Arc::downgrade(&link), pipes.output));
        link.tasks
            .lock()
            .expect("link tasks")
            .extend([writer, reader]);
        link
    }

    /// Says hello and waits for the agent's answer carrying the same token.
    pub(crate) async fn hello(self: &Arc<Link>, joining: Joining) -> Result<HelloReply> {
        let token = crate::ids::random_hex(16);
        let mut call = self.register(0);
        if joining == Joining::Running {
            self.send_raw(frame::resync_prefix()).await?;
        }
        let op = Op::Hello(Hello {
            version: PROTOCOL_VERSION,
            token: token.clone(),
        });
        self.send(0, op, &[]).await?;
        let answer = tokio::time::timeout(HELLO_WITHIN, call.recv()).await;
        self.forget(0);
        let reply = match answer {
            Ok(Some(Incoming::Event(EventBody::Hello(reply), _))) if reply.token == token => reply,
            Ok(Some(Incoming::Event(EventBody::Error(e), _))) => {
                return Err(self.failed(format!("refused the connection: {}", e.message)))
            }
            Ok(Some(Incoming::Event(other, _))) => {
                return Err(self.failed(format!("answered a hello with {other:?}")))
            }
            Ok(Some(Incoming::Lost(why))) => {
                return Err(self.failed(format!(
                    "ended the connection before it said hello ({why}); the image may not run a static x86_64 program, or the container stopped"
                )))
            }
            Ok(None) => {
                return Err(self.failed(
                    "ended the connection before it said hello; the container stopped".into(),
                ))
            }
            Err(_) => {
                return Err(self.failed(format!(
                    "did not answer within {HELLO_WITHIN:?}; the container may not have started"
                )))
            }
        };
        if reply.version != PROTOCOL_VERSION {
            return Err(self.failed(format!(
                "speaks protocol {} and this Sandpit {PROTOCOL_VERSION}",
                reply.version
            )));
        }
        *self.hello.lock().expect("hello") = Some(reply.clone());
        Ok(reply)
    }

    fn failed(&self, reason: String) -> Error {
        Error::Agent {
            container: self.container.clone(),
            reason,
        }
    }

    /// Why the connection ended; `None` while it works.
    pub(crate) fn why_broken(&self) -> Option<String> {
        self.calls.lock().expect("calls").lost.clone()
    }

    /// A new call id with its receiver registered.
    pub(crate) fn new_call(&self) -> (CallId, mpsc::UnboundedReceiver<Incoming>) {
        let id = self.next_call.fetch_add(1, Ordering::Relaxed);
        (id, self.register(id))
    }

    fn register(&self, id: CallId) -> mpsc::UnboundedReceiver<Incoming> {
        let (tx, rx) = mpsc::unbounded_channel();
        let mut calls = self.calls.lock().expect("calls");
        match &calls.lost {
            Some(why) => {
                let _ = tx.send(Incoming::Lost(why.clone()));
            }
            None => {
                calls.open.insert(id, tx);
            }
        }
        rx
    }

    /// Stops handing events to call `id`.
    pub(crate) fn forget(&self, id: CallId) {
        self.calls.lock().expect("calls").open.remove(&id);
    }

    /// Sends one request.
    pub(crate) async fn send(&self, call: CallId, op: Op, payload: &[u8]) -> Result<()> {
        let mut bytes = Vec::new();
        frame::encode(&Request { call, op }, payload, &mut bytes);
        self.send_raw(bytes).await
    }

    /// Sends one request without waiting for room (for drops: a cancel).
    pub(crate) fn send_now(&self, call: CallId, op: Op) {
        let mut bytes = Vec::new();
        frame::encode(&Request { call, op }, &[], &mut bytes);
        if let Err(mpsc::error::TrySendError::Full(bytes)) = self.outgoing.try_send(bytes) {
            let outgoing = self.outgoing.clone();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(async move {
                    let _ = outgoing.send(bytes).await;
                });
            }
        }
    }

    async fn send_raw(&self, bytes: Vec<u8>) -> Result<()> {
        if let Some(why) = self.why_broken() {
            return Err(self.failed(format!("is out of reach: {why}")));
        }
        self.outgoing
            .send(bytes)
            .await
            .map_err(|_| self.failed("is out of reach: the connection closed".into()))
    }

    fn deliver(&self, event: Event, payload: Bytes) {
        let last = event.body.is_final();
        let mut calls = self.calls.lock().expect("calls");
        let gone = match calls.open.get(&event.call) {
            Some(tx) => tx.send(Incoming::Event(event.body, payload)).is_err(),
            None => false,
        };
        if last || gone {
            calls.open.remove(&event.call);
        }
    }

    /// Marks the connection lost: every call in flight and every later one is told why.
    fn lose(&self, why: String) {
        let mut calls = self.calls.lock().expect("calls");
        calls.lost.get_or_insert_with(|| why.clone());
        for (_, tx) in calls.open.drain() {
            let _ = tx.send(Incoming::Lost(why.clone()));
        }
    }
}

async fn write_frames(
    link: std::sync::Weak<Link>,
    mut input: Pin<Box<dyn AsyncWrite + Send>>,
    mut frames: mpsc::Receiver<Vec<u8>>,
) {
    while let Some(bytes) = frames.recv().await {
        let written = async {
            input.write_all(&bytes).await?;
            // Write what is queued behind it before flushing: fewer, larger writes.
            while let Ok(more) = frames.try_recv() {
                input.write_all(&more).await?;
            }
            input.flush().await
        }
        .await;
        if let Err(e) = written {
            if let Some(link) = link.upgrade() {
                link.lose(format!("writing to the agent failed: {e}"));
            }
            return;
        }
    }
}

async fn read_events(
    link: std::sync::Weak<Link>,
    mut output: Pin<Box<dyn Stream<Item = EngineResult<ExecChunk>> + Send>>,
) {
    // The agent writes a resynchronising run of zeros before every hello it answers, so even a
    // fresh connection trusts nothing before it.
    let mut decoder = Decoder::joining();
    let why = loop {
        match output.next().await {
            Some(Ok(chunk)) if chunk.stream == StreamKind::Stdout => {
                decoder.push(&chunk.data);
                let Some(link) = link.upgrade() else { return };
                while let Some(frame) = decoder.next_frame() {
                    match frame.and_then(|f| Ok((f.message::<Event>()?, f.payload))) {
                        Ok((event, payload)) => link.deliver(event, Bytes::from(payload)),
                        Err(e) => tracing::debug!("{}: the agent's channel: {e}", link.container),
                    }
                }
            }
            Some(Ok(chunk)) => {
                let text = String::from_utf8_lossy(&chunk.data);
                for line in text.lines().filter(|l| !l.trim().is_empty()) {
                    tracing::debug!(target: "sandpit::agent", "{line}");
                }
            }
            Some(Err(e)) => break format!("reading from the agent failed: {e}"),
            None => break "the agent's output ended (the container stopped, or the engine closed the connection)".to_string(),
        }
    };
    if let Some(link) = link.upgrade() {
        link.lose(why);
    }
}
