//! `List`: the processes the agent started and still knows.

use sandpit_agent::protocol::{CallId, EventBody};

use super::state::Agent;

/// Answers `List` with `Processes`.
pub fn list(agent: &mut Agent, call: CallId) {
    let processes = agent.procs.iter().map(|(&pid, p)| p.info(pid)).collect();
    agent.reply(call, EventBody::Processes { processes });
}
