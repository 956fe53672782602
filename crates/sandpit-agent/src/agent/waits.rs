//! Answers that wait for processes to be gone: a tree kill, a signal to all with a wait, the
//! first part of a reset.

use std::time::{Duration, Instant};

use sandpit_agent::protocol::EventBody;

use super::reset;
use super::signal_all::targets;
use super::state::{Agent, WaitFor};
use super::sys;

/// How often waits look again when no child ended meanwhile.
pub const RECHECK: Duration = Duration::from_millis(20);

/// Answers every wait whose processes are gone or whose time ran out.
pub fn check(agent: &mut Agent, now: Instant) {
    for wait in std::mem::take(&mut agent.waits) {
        let left = match &wait.target {
            WaitFor::Pids(pids) => pids.iter().filter(|&&p| sys::alive(p)).count(),
            WaitFor::All { uid } => targets(agent.me, *uid).len(),
            WaitFor::Reset(_) => targets(agent.me, None).len(),
        } as u32;
        if left > 0 && now < wait.until {
            agent.waits.push(wait);
            continue;
        }
        match wait.target {
            WaitFor::Reset(job) => reset::finish(agent, wait.reply, *job, wait.count, left),
            _ => agent.emit(
                wait.reply,
                EventBody::Signalled {
                    count: wait.count,
                    left,
                },
                &[],
            ),
        }
    }
}
