//! One process the agent started, as it keeps it.

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::time::Instant;

use sandpit_agent::protocol::{ProcessInfo, Spawn, Stream, DETACHED_BACKLOG};

use super::state::CallRef;

/// A process the agent started.
pub struct Proc {
    /// What it was started with.
    pub spec: Spawn,
    /// The value of its marker variable, inherited by everything it starts.
    pub marker: String,
    /// When it started.
    pub started: Instant,
    /// When it is killed for running too long.
    pub deadline: Option<Instant>,
    /// Its standard output and error (index: position in [`STREAMS`]); `None` once closed.
    pub out: [Option<OwnedFd>; 2],
    /// Its standard input, when it is a pipe still open.
    pub stdin: Option<StdinPipe>,
    /// Bytes of each stream forwarded so far.
    pub forwarded: [u64; 2],
    /// Bytes past the output limit were dropped.
    pub truncated: bool,
    /// The calls receiving its output.
    pub subscribers: Vec<CallRef>,
    /// Output kept while nobody listens (detached processes only).
    pub backlog: Backlog,
    /// How it ended, once reaped.
    pub ended: Option<Ended>,
    /// After this, output pipes that something it left behind keeps open are closed.
    pub grace: Option<Instant>,
    /// It was killed for running past its timeout.
    pub timed_out: bool,
    /// The memory cgroup's out-of-memory kill count when it started.
    pub oom_kills_before: Option<u64>,
}

/// Standard input as a pipe.
pub struct StdinPipe {
    /// The agent's (non-blocking) write end.
    pub fd: OwnedFd,
    /// Bytes waiting for room in the pipe, each with the call answered once they are in.
    pub queue: VecDeque<Pending>,
    /// Bytes in `queue`.
    pub queued: usize,
    /// Close the pipe once the queue is empty.
    pub close_after: bool,
}

/// Input bytes not yet in the pipe.
pub struct Pending {
    /// The bytes.
    pub data: Vec<u8>,
    /// How many of them are written.
    pub written: usize,
    /// The `Input` call answered with `Done` once they are all written.
    pub reply: CallRef,
}

/// How a process ended.
pub struct Ended {
    /// Its wait status.
    pub status: i32,
    /// Its resource use (and that of the children it waited for).
    pub rusage: libc::rusage,
    /// When it was reaped.
    pub at: Instant,
}

/// The last output of a process nobody listens to, at most [`DETACHED_BACKLOG`] bytes.
#[derive(Default)]
pub struct Backlog {
    chunks: VecDeque<(Stream, Vec<u8>)>,
    bytes: usize,
}

impl Backlog {
    /// Keeps `data`, dropping the oldest bytes past the bound.
    pub fn push(&mut self, stream: Stream, data: &[u8]) {
        let data = &data[data.len().saturating_sub(DETACHED_BACKLOG)..];
        self.chunks.push_back((stream, data.to_vec()));
        self.bytes += data.len();
        while self.bytes > DETACHED_BACKLOG {
            let excess = self.bytes - DETACHED_BACKLOG;
            let front = self.chunks.front_mut().expect("bytes are in chunks");
            if front.1.len() <= excess {
                self.bytes -= front.1.len();
                self.chunks.pop_front();
            } else {
                front.1.drain(..excess);
                self.bytes -= excess;
            }
        }
    }

    /// Everything kept, oldest first; the backlog is empty after.
    pub fn take(&mut self) -> VecDeque<(Stream, Vec<u8>)> {
        self.bytes = 0;
        std::mem::take(&mut self.chunks)
    }
}

/// The stream at an index of [`Proc::out`].
pub const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];

impl Proc {
    /// Both output pipes are closed.
    pub fn output_done(&self) -> bool {
        self.out.iter().all(Option::is_none)
    }

    /// What `List` shows of it.
    pub fn info(&self, pid: u32) -> ProcessInfo {
        ProcessInfo {
            pid,
            argv: self.spec.argv.clone(),
            env: self.spec.env.clone(),
            cwd: self.spec.cwd.clone(),
            user: self.spec.user,
            tag: self.spec.tag.clone(),
            detached: self.spec.detached,
            stdin_open: self.stdin.is_some(),
            running: self.ended.is_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backlog_keeps_the_newest_bytes() {
        let mut b = Backlog::default();
        b.push(Stream::Stdout, &vec![1u8; DETACHED_BACKLOG - 10]);
        b.push(Stream::Stderr, &[2u8; 20]);
        let kept = b.take();
        let total: usize = kept.iter().map(|(_, d)| d.len()).sum();
        assert_eq!(total, DETACHED_BACKLOG);
        assert_eq!(kept[0].1.len(), DETACHED_BACKLOG - 20);
        assert_eq!(kept[1], (Stream::Stderr, vec![2u8; 20]));
    }

    #[test]
    fn one_chunk_larger_than_the_backlog_keeps_its_end() {
        let mut b = Backlog::default();
        let mut data = vec![0u8; DETACHED_BACKLOG + 5];
        data[DETACHED_BACKLOG + 4] = 9;
        b.push(Stream::Stdout, &data);
        let kept = b.take();
        assert_eq!(kept[0].1.len(), DETACHED_BACKLOG);
        assert_eq!(kept[0].1.last(), Some(&9));
    }
}
