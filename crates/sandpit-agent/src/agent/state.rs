//! What the agent holds: its channel, the processes it started, the calls in flight.

use std::collections::{BTreeMap, HashMap};
use std::os::fd::OwnedFd;
use std::time::Instant;

use sandpit_agent::protocol::{CallId, EventBody};

use super::cgroup::Cgroup;
use super::channel::Channel;
use super::files::{ListJob, ReadJob, WriteJob};
use super::listener::Listener;
use super::process::Proc;
use super::reset::ResetJob;
use super::signals::Signals;

/// The agent.
pub struct Agent {
    /// The channel to Sandpit.
    pub chan: Channel,
    /// The socket a host connects to when the engine's attach lost standard input.
    pub listener: Option<Listener>,
    /// Signals, as bytes on a pipe.
    pub signals: Signals,
    /// The environment the agent started with (the container's), inherited by every child.
    pub env: Vec<(Vec<u8>, Vec<u8>)>,
    /// Processes started and still known, by pid.
    pub procs: BTreeMap<u32, Proc>,
    /// Calls in flight that more events will answer.
    pub calls: HashMap<CallId, Call>,
    /// Answers due once processes are gone.
    pub waits: Vec<Wait>,
    /// Who the agent is.
    pub me: Me,
    /// `/dev/null`, standard input of processes that get none.
    pub devnull: OwnedFd,
    /// The kernel resolves paths with `openat2`.
    pub openat2: bool,
    /// The agent's own cgroup (memory events, usage).
    pub cgroup: Cgroup,
    /// The open-files limit the agent found, given back to children.
    pub nofile: libc::rlimit,
    /// Makes each call entry tell apart from an earlier one with the same id.
    pub next_serial: u64,
    /// Makes each process's marker unique.
    pub next_marker: u64,
}

/// Who the agent is.
#[derive(Debug, Clone, Copy)]
pub struct Me {
    /// Its pid.
    pub pid: u32,
    /// It is PID 1 of a pid namespace (a sandbox); else it acts only on its own descendants.
    pub pid1: bool,
    /// A random number of this start, part of every process marker.
    pub boot: u64,
}

/// A call in flight.
pub struct Call {
    /// Unique across the agent's life.
    pub serial: u64,
    /// What it is.
    pub kind: CallKind,
}

/// What a call in flight is.
pub enum CallKind {
    /// Receives a process's output (a spawn or an attach).
    Process {
        /// The process.
        pid: u32,
        /// Payload bytes that may still be sent.
        window: u64,
        /// The call started the process: cancelling it kills a process not detached.
        spawned: bool,
    },
    /// Standard input waiting to go into a pipe.
    Input,
    /// A file being read.
    Read(ReadJob),
    /// A file being written.
    Write(WriteJob),
    /// A folder being listed.
    Listing(ListJob),
    /// Answered by a [`Wait`].
    Waiting,
}

/// Names a call in flight, and only that one (an id may be reused by a later connection).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallRef {
    /// The call's id.
    pub call: CallId,
    /// Its entry's serial.
    pub serial: u64,
}

/// An answer due once processes are gone (or at a deadline).
pub struct Wait {
    /// The call answered.
    pub reply: CallRef,
    /// The latest answer.
    pub until: Instant,
    /// Processes signalled.
    pub count: u32,
    /// What must be gone.
    pub target: WaitFor,
}

/// What a [`Wait`] waits for.
pub enum WaitFor {
    /// These pids.
    Pids(Vec<u32>),
    /// Every process but the agent (of one user).
    All {
        /// Only this user's.
        uid: Option<u32>,
    },
    /// Every process, then the rest of a reset.
    Reset(Box<ResetJob>),
}

impl Agent {
    /// Opens call `call` of `kind`; an id already in flight is refused.
    pub fn open_call(&mut self, call: CallId, kind: CallKind) -> Option<CallRef> {
        if self.calls.contains_key(&call) {
            self.reply(
                call,
                EventBody::Error(super::error::invalid(format!(
                    "call {call} is already in flight; every call needs an id of its own"
                ))),
            );
            return None;
        }
        self.next_serial += 1;
        let serial = self.next_serial;
        self.calls.insert(call, Call { serial, kind });
        Some(CallRef { call, serial })
    }

    /// True while `call` is still in flight.
    pub fn live(&self, call: CallRef) -> bool {
        self.calls
            .get(&call.call)
            .is_some_and(|c| c.serial == call.serial)
    }

    /// Answers a call that holds no entry (its answer is immediate).
    pub fn reply(&mut self, call: CallId, body: EventBody) {
        self.chan.send(call, body, &[]);
    }

    /// Sends an event of a call in flight; a final one ends the call. Nothing when the call
    /// was cancelled meanwhile.
    pub fn emit(&mut self, call: CallRef, body: EventBody, payload: &[u8]) {
        if !self.live(call) {
            return;
        }
        let last = body.is_final();
        self.chan.send(call.call, body, payload);
        if last {
            self.calls.remove(&call.call);
        }
    }

    /// The entry of a call in flight.
    pub fn call_mut(&mut self, call: CallRef) -> Option<&mut CallKind> {
        match self.calls.get_mut(&call.call) {
            Some(c) if c.serial == call.serial => Some(&mut c.kind),
            _ => None,
        }
    }
}
