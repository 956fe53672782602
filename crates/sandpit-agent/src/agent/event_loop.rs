//! The agent's one loop: poll the channel, the signal pipe and every process's pipes; act on
//! what is ready; fire deadlines; feed the transfers in progress.

use std::time::Instant;

use sandpit_agent::protocol::{Op, Request};

use super::channel::{Endpoint, Way};
use super::exit::{self, GRACE};
use super::files::{pump_listing, pump_read};
use super::state::{Agent, CallKind, CallRef};
use super::{dispatch, input, kill, output, signal_all, waits};

/// Reads of the request stream per turn, at most (the rest waits one turn).
const READS_PER_TURN: usize = 16;

/// What a polled descriptor is.
#[derive(Clone, Copy)]
enum Source {
    Requests,
    Connections,
    Events,
    Signals,
    Output(u32, usize),
    Stdin(u32),
}

/// Runs the agent until the channel closes or the engine stops the sandbox.
pub fn run(mut agent: Agent) -> ! {
    let mut busy = false;
    loop {
        let (mut fds, sources) = poll_set(&agent);
        let timeout = if busy { 0 } else { timeout_ms(&agent) };
        unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        for (fd, source) in fds.iter().zip(&sources) {
            if fd.revents == 0 {
                continue;
            }
            match *source {
                Source::Signals => signals(&mut agent),
                Source::Requests => requests(&mut agent),
                Source::Connections => connections(&mut agent),
                Source::Events => {}
                Source::Output(pid, index) => {
                    output::pump(&mut agent, pid, index);
                    exit::try_finish(&mut agent, pid);
                }
                Source::Stdin(pid) => input::flush_stdin(&mut agent, pid),
            }
        }
        exit::reap(&mut agent);
        let now = Instant::now();
        deadlines(&mut agent, now);
        if !agent.waits.is_empty() {
            waits::check(&mut agent, now);
        }
        busy = pump_transfers(&mut agent);
        agent.chan.flush();
    }
}

fn poll_set(agent: &Agent) -> (Vec<libc::pollfd>, Vec<Source>) {
    let mut fds = Vec::new();
    let mut sources = Vec::new();
    let mut add = |fd: i32, events: libc::c_short, source: Source| {
        fds.push(libc::pollfd {
            fd,
            events,
            revents: 0,
        });
        sources.push(source);
    };
    add(agent.signals.fd(), libc::POLLIN, Source::Signals);
    for (fd, _) in agent.chan.inputs() {
        add(fd, libc::POLLIN, Source::Requests);
    }
    if let Some(listener) = &agent.listener {
        add(listener.fd(), libc::POLLIN, Source::Connections);
    }
    if let Some(fd) = agent.chan.output_fd() {
        add(fd, libc::POLLOUT, Source::Events);
    }
    for (&pid, p) in &agent.procs {
        for (index, fd) in p.out.iter().enumerate() {
            if let Some(fd) = fd {
                if output::readable(agent, pid, index) > 0 {
                    add(
                        std::os::fd::AsRawFd::as_raw_fd(fd),
                        libc::POLLIN,
                        Source::Output(pid, index),
                    );
                }
            }
        }
        if let Some(stdin) = &p.stdin {
            if !stdin.queue.is_empty() {
                add(
                    std::os::fd::AsRawFd::as_raw_fd(&stdin.fd),
                    libc::POLLOUT,
                    Source::Stdin(pid),
                );
            }
        }
    }
    (fds, sources)
}

/// Milliseconds until the next deadline (-1: none).
fn timeout_ms(agent: &Agent) -> i32 {
    let now = Instant::now();
    let mut next: Option<Instant> = None;
    let mut consider = |t: Instant| next = Some(next.map_or(t, |n| n.min(t)));
    for p in agent.procs.values() {
        if let (None, Some(d), false) = (&p.ended, p.deadline, p.timed_out) {
            consider(d);
        }
        if let Some(g) = p.grace {
            if !p.output_done() {
                consider(g);
            }
        }
    }
    for w in &agent.waits {
        consider(w.until.min(now + waits::RECHECK));
    }
    match next {
        None => -1,
        Some(t) => {
            t.saturating_duration_since(now)
                .as_millis()
                .min(i32::MAX as u128) as i32
                + 1
        }
    }
}

fn signals(agent: &mut Agent) {
    for received in agent.signals.drain() {
        let ends = received.signal == libc::SIGTERM || received.signal == libc::SIGINT;
        // As PID 1, a sender outside the sandbox shows as pid 0; one inside (a root install
        // step holds CAP_KILL) is ignored.
        if ends && (received.sender == 0 || !agent.me.pid1) {
            shutdown(agent, "stopped by a signal");
        }
    }
}

/// Reads every way in: requests from the current one are acted on; another one is read only
/// for a `Hello`, which makes it current.
fn requests(agent: &mut Agent) {
    for _ in 0..READS_PER_TURN {
        let more = agent.chan.read(Way::Current);
        dispatch_current(agent);
        if !more {
            break;
        }
    }
    for (_, way) in agent.chan.inputs() {
        let Way::Candidate(index) = way else {
            continue;
        };
        agent.chan.read(way);
        while let Some(frame) = agent.chan.next_frame(way) {
            let hello = frame.as_ref().is_ok_and(|f| {
                matches!(
                    f.message::<Request>(),
                    Ok(Request {
                        op: Op::Hello(_),
                        ..
                    })
                )
            });
            if hello {
                super::log(format_args!("a new connection takes over with its hello"));
                agent.chan.take_over(index);
                dispatch::dispatch(agent, frame.expect("checked"));
                // What came after the hello is the new connection's; the candidates changed.
                dispatch_current(agent);
                return;
            }
            super::log(format_args!(
                "skipped a request from a connection that has not said hello"
            ));
        }
    }
}

/// Acts on every whole frame the current way sent.
fn dispatch_current(agent: &mut Agent) {
    while let Some(frame) = agent.chan.next_frame(Way::Current) {
        match frame {
            Ok(frame) => dispatch::dispatch(agent, frame),
            Err(e) => super::log(format_args!("skipped bytes that are not a frame: {e}")),
        }
    }
}

/// Accepts connections on the agent's socket: each may take over with a `Hello`.
fn connections(agent: &mut Agent) {
    let Some(listener) = &agent.listener else {
        return;
    };
    while let Some(connection) = listener.accept() {
        let added = Endpoint::socket(connection).map(|endpoint| agent.chan.add_candidate(endpoint));
        match added {
            Ok(true) => {}
            Ok(false) => super::log(format_args!(
                "closed a connection to the agent's socket: too many wait to take over"
            )),
            Err(e) => super::log(format_args!("a connection cannot be served: {e}")),
        }
    }
}

/// Timeouts kill; grace periods close pipes left open.
fn deadlines(agent: &mut Agent, now: Instant) {
    let timed_out: Vec<u32> = agent
        .procs
        .iter()
        .filter(|(_, p)| p.ended.is_none() && !p.timed_out && p.deadline.is_some_and(|d| d <= now))
        .map(|(&pid, _)| pid)
        .collect();
    for pid in timed_out {
        agent.procs.get_mut(&pid).expect("listed").timed_out = true;
        kill::kill_quietly(agent, pid);
    }
    let graced: Vec<u32> = agent
        .procs
        .iter()
        .filter(|(_, p)| !p.output_done() && p.grace.is_some_and(|g| g <= now))
        .map(|(&pid, _)| pid)
        .collect();
    for pid in graced {
        if output::close_left_open(agent, pid) {
            exit::try_finish(agent, pid);
        } else if let Some(p) = agent.procs.get_mut(&pid) {
            p.grace = Some(now + GRACE);
        }
    }
}

/// Sends the next piece of every read and listing in progress; true when one moved.
fn pump_transfers(agent: &mut Agent) -> bool {
    let transfers: Vec<CallRef> = agent
        .calls
        .iter()
        .filter(|(_, c)| matches!(c.kind, CallKind::Read(_) | CallKind::Listing(_)))
        .map(|(&call, c)| CallRef {
            call,
            serial: c.serial,
        })
        .collect();
    let mut moved = false;
    for reply in transfers {
        moved |= match agent.call_mut(reply) {
            Some(CallKind::Read(_)) => pump_read(agent, reply),
            Some(CallKind::Listing(_)) => pump_listing(agent, reply),
            _ => false,
        };
    }
    moved
}

/// Kills every process (waiting a little for them to be reaped) and exits.
fn shutdown(agent: &mut Agent, why: &str) -> ! {
    super::log(format_args!("{why}: killing every process and exiting"));
    signal_all::kill_all(agent.me, None);
    let until = Instant::now() + std::time::Duration::from_secs(2);
    while Instant::now() < until && !signal_all::targets(agent.me, None).is_empty() {
        exit::reap(agent);
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    agent.chan.flush();
    std::process::exit(0)
}
