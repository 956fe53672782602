//! One call to the agent: its events in order, credit for the bytes it consumed, and a cancel
//! when it is dropped before its last event.

use std::sync::Arc;

use bytes::Bytes;
use sandpit_agent::protocol::{CallId, Credit, EventBody, Op};
use tokio::sync::mpsc;

use super::link::{Incoming, Link};
use crate::error::{Error, Result};

/// Bytes consumed before the agent is granted that much more room.
const CREDIT_EVERY: u64 = 1 << 20;

/// A call in flight. Dropping it before its final event cancels it in the agent: a process it
/// started is killed (unless detached), a transfer stops.
pub(crate) struct Call {
    link: Arc<Link>,
    id: CallId,
    events: mpsc::UnboundedReceiver<Incoming>,
    finished: bool,
    uncredited: u64,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call").field("id", &self.id).finish()
    }
}

impl Call {
    /// Opens a call with `op` (and `payload`).
    pub(crate) async fn open(link: &Arc<Link>, op: Op, payload: &[u8]) -> Result<Call> {
        let (id, events) = link.new_call();
        let mut call = Call {
            link: link.clone(),
            id,
            events,
            finished: false,
            uncredited: 0,
        };
        if let Err(e) = link.send(id, op, payload).await {
            call.finished = true;
            link.forget(id);
            return Err(e);
        }
        Ok(call)
    }

    /// The next event and its payload; after the final one, `None`. A connection that ended
    /// first is [`Error::Agent`].
    pub(crate) async fn next(&mut self) -> Result<Option<(EventBody, Bytes)>> {
        if self.finished {
            return Ok(None);
        }
        match self.events.recv().await {
            Some(Incoming::Event(body, payload)) => {
                if body.is_final() {
                    self.finished = true;
                }
                self.consumed(payload.len() as u64);
                Ok(Some((body, payload)))
            }
            Some(Incoming::Lost(why)) => {
                self.finished = true;
                Err(self.lost(why))
            }
            None => {
                self.finished = true;
                Err(self.lost("the connection closed".into()))
            }
        }
    }

    /// The final event, skipping none: for calls answered by exactly one event.
    pub(crate) async fn answer(mut self) -> Result<(EventBody, Bytes)> {
        match self.next().await? {
            Some(answer) => Ok(answer),
            None => Err(self.lost("the call ended without an answer".into())),
        }
    }

    /// Sends a request that acts on this call (`WriteData`).
    pub(crate) async fn send(&self, op: Op, payload: &[u8]) -> Result<()> {
        self.link.send(self.id, op, payload).await
    }

    /// The container the agent runs in.
    pub(crate) fn container(&self) -> &str {
        &self.link.container
    }

    fn consumed(&mut self, bytes: u64) {
        self.uncredited += bytes;
        if self.uncredited >= CREDIT_EVERY && !self.finished {
            let grant = std::mem::take(&mut self.uncredited);
            self.link
                .send_now(self.id, Op::Credit(Credit { bytes: grant }));
        }
    }

    fn lost(&self, why: String) -> Error {
        Error::Agent {
            container: self.link.container.clone(),
            reason: format!("could not be reached: {why}"),
        }
    }
}

impl Drop for Call {
    fn drop(&mut self) {
        if !self.finished {
            self.link.forget(self.id);
            if self.link.why_broken().is_none() {
                self.link.send_now(self.id, Op::Cancel);
            }
        }
    }
}
