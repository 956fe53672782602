//! The channel to Sandpit: requests in, events out, over one way at a time.
//!
//! The ways in: standard input and output (the engine's attach), and connections on the agent's
//! socket (see [`super::listener`]). One of them is current: events go there, requests come
//! from there. Any other may take over by sending a `Hello`; until then it is only read for
//! that. Everything is non-blocking: events wait in a bounded queue until the host reads them,
//! so a host that stops reading never stops the agent from killing, reaping or resetting.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use sandpit_agent::frame::{self, Decoder, FrameError, RawFrame};
use sandpit_agent::protocol::{CallId, Event, EventBody};

use super::sys;

/// Queued event bytes past which the agent stops reading what produces them (output pipes,
/// files being read, listings) until the host has read some.
const QUEUE_HIGH: usize = 1 << 20;
/// The size asked for the standard pipes (when they are pipes): fewer wake-ups per mebibyte.
const PIPE_SIZE: libc::c_int = 1 << 20;
/// Bytes read at once.
const READ_CHUNK: usize = 1 << 20;
/// Ways in that may take over, at most; further connections are closed.
const MAX_CANDIDATES: usize = 4;

/// One way in and out.
pub struct Endpoint {
    input: OwnedFd,
    output: OwnedFd,
    decoder: Decoder,
    /// Nothing more comes in.
    closed: bool,
    /// Standard input and output (else a socket connection).
    stdio: bool,
}

impl Endpoint {
    /// Standard input and output (their descriptors moved off 0 and 1).
    pub fn stdio(input: OwnedFd, output: OwnedFd) -> io::Result<Endpoint> {
        for fd in [input.as_raw_fd(), output.as_raw_fd()] {
            sys::set_nonblocking(fd)?;
            unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
        }
        Ok(Endpoint::new(input, output, true))
    }

    /// A connection on the agent's socket (already non-blocking).
    pub fn socket(connection: OwnedFd) -> io::Result<Endpoint> {
        let output = connection.try_clone()?;
        Ok(Endpoint::new(connection, output, false))
    }

    fn new(input: OwnedFd, output: OwnedFd, stdio: bool) -> Endpoint {
        Endpoint {
            input,
            output,
            decoder: Decoder::new(),
            closed: false,
            stdio,
        }
    }

    fn name(&self) -> &'static str {
        if self.stdio {
            "standard input"
        } else {
            "a socket connection"
        }
    }

    /// Reads what came; false when nothing more was there.
    fn read(&mut self, scratch: &mut [u8]) -> bool {
        match sys::read(self.input.as_raw_fd(), scratch) {
            Ok(0) => {
                self.closed = true;
                false
            }
            Ok(n) => {
                self.decoder.push(&scratch[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                super::log(format_args!("{} cannot be read: {e}", self.name()));
                self.closed = true;
                false
            }
        }
    }
}

/// Where a way in stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Way {
    /// The current one.
    Current,
    /// One that may take over (an index into the candidates).
    Candidate(usize),
}

/// The channel.
pub struct Channel {
    /// Where events go and requests come from; `None` while no host is connected.
    current: Option<Endpoint>,
    /// Ways in that may take over with a `Hello`.
    candidates: Vec<Endpoint>,
    /// Encoded events not yet written, from `sent` on.
    queue: Vec<u8>,
    sent: usize,
    /// Nobody reads the events (`EPIPE`): they are dropped until a new `Hello`.
    output_broken: bool,
    scratch: Vec<u8>,
}

impl Channel {
    /// A channel whose current way is `first`.
    pub fn new(first: Endpoint) -> Channel {
        Channel {
            current: Some(first),
            candidates: Vec::new(),
            queue: Vec::new(),
            sent: 0,
            output_broken: false,
            scratch: vec![0; READ_CHUNK],
        }
    }

    /// Adds a way in that may take over; false when there are too many already.
    pub fn add_candidate(&mut self, endpoint: Endpoint) -> bool {
        self.candidates.retain(|c| !c.closed);
        if self.candidates.len() >= MAX_CANDIDATES {
            return false;
        }
        self.candidates.push(endpoint);
        true
    }

    /// Descriptors to poll for requests, with where they stand.
    pub fn inputs(&self) -> Vec<(i32, Way)> {
        let current = self
            .current
            .iter()
            .filter(|e| !e.closed)
            .map(|e| (e.input.as_raw_fd(), Way::Current));
        let candidates = self
            .candidates
            .iter()
            .enumerate()
            .filter(|(_, e)| !e.closed)
            .map(|(i, e)| (e.input.as_raw_fd(), Way::Candidate(i)));
        current.chain(candidates).collect()
    }

    /// The descriptor to poll for room for events, while some wait.
    pub fn output_fd(&self) -> Option<i32> {
        match &self.current {
            Some(e) if self.pending() > 0 => Some(e.output.as_raw_fd()),
            _ => None,
        }
    }

    /// Reads what `way` sent; false when nothing more was there. A current socket connection
    /// that ended is dropped (the agent then waits for another); standard input that ended
    /// stays current for its output.
    pub fn read(&mut self, way: Way) -> bool {
        let endpoint = match way {
            Way::Current => self.current.as_mut(),
            Way::Candidate(i) => self.candidates.get_mut(i),
        };
        let Some(endpoint) = endpoint else {
            return false;
        };
        let more = endpoint.read(&mut self.scratch);
        if endpoint.closed {
            super::log(format_args!("{} ended", endpoint.name()));
            if way == Way::Current && !endpoint.stdio {
                self.current = None;
            }
        }
        more
    }

    /// The next whole frame `way` sent, if any.
    pub fn next_frame(&mut self, way: Way) -> Option<Result<RawFrame, FrameError>> {
        match way {
            Way::Current => self.current.as_mut()?.decoder.next_frame(),
            Way::Candidate(i) => self.candidates.get_mut(i)?.decoder.next_frame(),
        }
    }

    /// Makes candidate `index` the current way: the previous current one becomes a candidate
    /// when it is standard input still open, else it is dropped.
    pub fn take_over(&mut self, index: usize) {
        let new = self.candidates.remove(index);
        if let Some(old) = self.current.replace(new) {
            if old.stdio && !old.closed {
                self.candidates.push(old);
            }
        }
        self.candidates.retain(|c| !c.closed);
    }

    /// Queues one event (dropped while no host is connected or none reads).
    pub fn send(&mut self, call: CallId, body: EventBody, payload: &[u8]) {
        if self.output_broken || self.current.is_none() {
            return;
        }
        frame::encode(&Event { call, body }, payload, &mut self.queue);
    }

    /// True while the queue has room for more bulk events.
    pub fn has_room(&self) -> bool {
        self.pending() < QUEUE_HIGH
    }

    /// Bytes queued and not written yet.
    pub fn pending(&self) -> usize {
        self.queue.len() - self.sent
    }

    /// Drops what was queued for earlier connections and writes the zero run that lets a new
    /// reader find the next frame (see [`frame::resync_prefix`]).
    pub fn resync(&mut self) {
        self.queue.clear();
        self.sent = 0;
        self.output_broken = false;
        self.queue.extend_from_slice(&frame::resync_prefix());
    }

    /// Writes queued events until the descriptor is full.
    pub fn flush(&mut self) {
        let Some(current) = &self.current else {
            self.queue.clear();
            self.sent = 0;
            return;
        };
        while self.sent < self.queue.len() {
            match sys::write(current.output.as_raw_fd(), &self.queue[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    super::log(format_args!(
                        "events cannot be written ({e}); dropped until the next hello"
                    ));
                    self.output_broken = true;
                    self.queue.clear();
                    self.sent = 0;
                    return;
                }
            }
        }
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        } else if self.sent > QUEUE_HIGH {
            self.queue.drain(..self.sent);
            self.sent = 0;
        }
    }
}
