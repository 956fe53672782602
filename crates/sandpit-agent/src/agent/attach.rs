//! `Attach`: subscribing to a process's output, with what was kept while nobody listened.

use sandpit_agent::protocol::{Attach, CallId, ErrorKind, EventBody, INITIAL_WINDOW};

use super::error::fail;
use super::exit::try_finish;
use super::state::{Agent, CallKind};

/// Answers `Started`, the kept output, then output as it comes and `Exited`.
pub fn attach(agent: &mut Agent, call: CallId, req: Attach) {
    let pid = req.pid;
    if !agent.procs.contains_key(&pid) {
        agent.reply(
            call,
            EventBody::Error(fail(
                ErrorKind::NotFound,
                format!("no process {pid} is known to the agent (never started, or its end was already reported)"),
            )),
        );
        return;
    }
    let Some(reply) = agent.open_call(
        call,
        CallKind::Process {
            pid,
            window: INITIAL_WINDOW,
            spawned: false,
        },
    ) else {
        return;
    };
    agent.emit(reply, EventBody::Started { pid }, &[]);
    let kept = agent.procs.get_mut(&pid).expect("checked").backlog.take();
    for (stream, data) in kept {
        if let Some(CallKind::Process { window, .. }) = agent.call_mut(reply) {
            *window = window.saturating_sub(data.len() as u64);
        }
        agent.emit(reply, EventBody::Output { pid, stream }, &data);
    }
    agent
        .procs
        .get_mut(&pid)
        .expect("checked")
        .subscribers
        .push(reply);
    try_finish(agent, pid);
}
