//! `Input`: bytes for a process's standard input, queued while the pipe is full.

use std::io;
use std::os::fd::AsRawFd;

use sandpit_agent::protocol::{CallId, ErrorKind, EventBody, Input};

use super::error::fail;
use super::process::Pending;
use super::state::{Agent, CallKind};
use super::sys;

/// Input bytes queued per process, at most.
const QUEUE_LIMIT: usize = 16 << 20;

/// Queues the payload and writes what fits; `Done` once every byte is in the pipe.
pub fn input(agent: &mut Agent, call: CallId, req: Input, payload: &[u8]) {
    let pid = req.pid;
    let refusal = match agent.procs.get(&pid) {
        None => Some(fail(ErrorKind::NotFound, format!("no process {pid} is known to the agent"))),
        Some(p) => match &p.stdin {
            None => Some(fail(
                ErrorKind::NotFound,
                format!("process {pid} has no open standard input (spawned without a pipe, closed, or ended)"),
            )),
            Some(s) if s.close_after => Some(fail(
                ErrorKind::NotFound,
                format!("the standard input of process {pid} is being closed"),
            )),
            Some(s) if s.queued + payload.len() > QUEUE_LIMIT => Some(fail(
                ErrorKind::Busy,
                format!(
                    "process {pid} has {} bytes of input not read yet; send more once it reads",
                    s.queued
                ),
            )),
            Some(_) => None,
        },
    };
    if let Some(e) = refusal {
        agent.reply(call, EventBody::Error(e));
        return;
    }
    let Some(reply) = agent.open_call(call, CallKind::Input) else {
        return;
    };
    let stdin = agent
        .procs
        .get_mut(&pid)
        .and_then(|p| p.stdin.as_mut())
        .expect("checked");
    stdin.queued += payload.len();
    stdin.queue.push_back(Pending {
        data: payload.to_vec(),
        written: 0,
        reply,
    });
    stdin.close_after = req.eof;
    flush_stdin(agent, pid);
}

/// Writes queued input until the pipe is full; answers the inputs fully written.
pub fn flush_stdin(agent: &mut Agent, pid: u32) {
    let mut done = Vec::new();
    let mut broken = None;
    if let Some(stdin) = agent.procs.get_mut(&pid).and_then(|p| p.stdin.as_mut()) {
        while let Some(front) = stdin.queue.front_mut() {
            if front.written < front.data.len() {
                match sys::write(stdin.fd.as_raw_fd(), &front.data[front.written..]) {
                    Ok(n) => {
                        front.written += n;
                        stdin.queued -= n;
                        continue;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) => {
                        broken = Some(e);
                        break;
                    }
                }
            }
            done.push(stdin.queue.pop_front().expect("front").reply);
        }
    }
    for reply in done {
        agent.emit(reply, EventBody::Done, &[]);
    }
    let Some(p) = agent.procs.get_mut(&pid) else {
        return;
    };
    let Some(stdin) = &p.stdin else {
        return;
    };
    if let Some(e) = broken {
        let pending: Vec<_> = p
            .stdin
            .take()
            .expect("present")
            .queue
            .into_iter()
            .map(|q| q.reply)
            .collect();
        for reply in pending {
            agent.emit(
                reply,
                EventBody::Error(fail(
                    ErrorKind::NotFound,
                    format!("process {pid} closed its standard input ({e})"),
                )),
                &[],
            );
        }
    } else if stdin.queue.is_empty() && stdin.close_after {
        p.stdin = None;
    }
}
