//! `Cancel` and `Credit`: acting on a call in flight. Unknown calls are ignored.

use sandpit_agent::protocol::{CallId, Credit};

use super::kill::kill_quietly;
use super::state::{Agent, CallKind};

/// Ends a call without an answer: a process it spawned is killed (with its tree) unless
/// detached; an attach detaches; a file transfer or listing stops; a wait's answer is dropped.
pub fn cancel(agent: &mut Agent, call: CallId) {
    let Some(entry) = agent.calls.remove(&call) else {
        return;
    };
    if let CallKind::Process { pid, spawned, .. } = entry.kind {
        let Some(p) = agent.procs.get_mut(&pid) else {
            return;
        };
        p.subscribers
            .retain(|s| s.call != call || s.serial != entry.serial);
        if spawned && !p.spec.detached {
            kill_quietly(agent, pid);
        }
    }
}

/// More room for a call's payload bytes.
pub fn credit(agent: &mut Agent, call: CallId, req: Credit) {
    let Some(entry) = agent.calls.get_mut(&call) else {
        return;
    };
    match &mut entry.kind {
        CallKind::Process { window, .. } => *window = window.saturating_add(req.bytes),
        CallKind::Read(job) => job.window = job.window.saturating_add(req.bytes),
        _ => {}
    }
}
