//! The channel to Sandpit: requests in on one descriptor, events out on another.
//!
//! Both ends are non-blocking: events wait in a bounded queue until the host reads them, so a
//! host that stops reading never stops the agent from killing, reaping or resetting.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};

use sandpit_agent::frame::{self, Decoder, FrameError, RawFrame};
use sandpit_agent::protocol::{CallId, Event, EventBody};

use super::sys;

/// Queued event bytes past which the agent stops reading what produces them (output pipes,
/// files being read, listings) until the host has read some.
const QUEUE_HIGH: usize = 1 << 20;
/// The size asked for the channel's pipes.
const PIPE_SIZE: libc::c_int = 1 << 20;
/// Bytes read from the request stream at once.
const READ_CHUNK: usize = 1 << 20;

/// The framed, non-blocking channel.
pub struct Channel {
    input: OwnedFd,
    output: OwnedFd,
    decoder: Decoder,
    /// Encoded events not yet written, from `sent` on.
    queue: Vec<u8>,
    sent: usize,
    /// The request stream ended: nobody can ever send a request again.
    pub input_closed: bool,
    /// Nobody reads the events (`EPIPE`): they are dropped until a new `Hello`.
    output_broken: bool,
    scratch: Vec<u8>,
}

impl Channel {
    /// A channel over two descriptors, made non-blocking here.
    pub fn new(input: OwnedFd, output: OwnedFd) -> io::Result<Channel> {
        for fd in [input.as_raw_fd(), output.as_raw_fd()] {
            sys::set_nonblocking(fd)?;
            // Larger pipes (when they are pipes): fewer wake-ups per mebibyte.
            unsafe { libc::fcntl(fd, libc::F_SETPIPE_SZ, PIPE_SIZE) };
        }
        Ok(Channel {
            input,
            output,
            decoder: Decoder::new(),
            queue: Vec::new(),
            sent: 0,
            input_closed: false,
            output_broken: false,
            scratch: vec![0; READ_CHUNK],
        })
    }

    /// The descriptor requests come on.
    pub fn input_fd(&self) -> i32 {
        self.input.as_raw_fd()
    }

    /// The descriptor events go out on.
    pub fn output_fd(&self) -> i32 {
        self.output.as_raw_fd()
    }

    /// Queues one event.
    pub fn send(&mut self, call: CallId, body: EventBody, payload: &[u8]) {
        if self.output_broken {
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
        while self.sent < self.queue.len() {
            match sys::write(self.output.as_raw_fd(), &self.queue[self.sent..]) {
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

    /// Reads what the host sent; false when nothing more was there.
    pub fn read(&mut self) -> bool {
        match sys::read(self.input.as_raw_fd(), &mut self.scratch) {
            Ok(0) => {
                self.input_closed = true;
                false
            }
            Ok(n) => {
                self.decoder.push(&self.scratch[..n]);
                true
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => false,
            Err(e) => {
                super::log(format_args!("requests cannot be read: {e}"));
                self.input_closed = true;
                false
            }
        }
    }

    /// The next whole frame read, if any.
    pub fn next_frame(&mut self) -> Option<Result<RawFrame, FrameError>> {
        self.decoder.next_frame()
    }
}
