//! `Hello`: a host opens (or takes over) the connection.

use sandpit_agent::protocol::{CallId, EventBody, Hello, HelloReply, PROTOCOL_VERSION};

use super::cancel::cancel;
use super::error::invalid;
use super::state::Agent;

/// Cancels every call of earlier connections (their processes are killed unless detached,
/// half-written files are dropped), then answers after the zero run that lets a host that
/// joined mid-stream find the answer.
pub fn hello(agent: &mut Agent, call: CallId, req: Hello) {
    if req.version != PROTOCOL_VERSION {
        agent.chan.resync();
        agent.reply(
            call,
            EventBody::Error(invalid(format!(
                "the host speaks protocol version {}, this agent version {PROTOCOL_VERSION}: \
                 use the agent built with the host",
                req.version
            ))),
        );
        return;
    }
    let earlier: Vec<CallId> = agent.calls.keys().copied().collect();
    for id in earlier {
        cancel(agent, id);
    }
    agent.chan.resync();
    let processes = agent
        .procs
        .iter()
        .filter(|(_, p)| p.spec.detached)
        .map(|(&pid, p)| p.info(pid))
        .collect();
    agent.reply(
        call,
        EventBody::Hello(HelloReply {
            version: PROTOCOL_VERSION,
            token: req.token,
            agent_version: env!("CARGO_PKG_VERSION").to_string(),
            openat2: agent.openat2,
            processes,
        }),
    );
}
