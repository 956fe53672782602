//! The host side of the agent inside every sandbox: its volume, the connection to it, and its
//! calls. Every operation of a session reaches the sandbox through here; nothing else starts a
//! process in it.

mod call;
mod link;
pub(crate) mod volume;

use std::sync::Arc;

use bytes::Bytes;
use sandpit_agent::protocol::{AgentError, ErrorKind as AgentErrorKind, EventBody, HelloReply, Op};
use sandpit_engine::{Engine, ExecRequest};

pub(crate) use call::Call;
use link::{Joining, Link, Pipes};

use crate::error::{Error, Result};
use crate::session::SandboxSession;

/// A connection to one sandbox's agent. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Agent {
    link: Arc<Link>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent")
            .field("container", &self.link.container)
            .finish()
    }
}

/// An attachment made before the container starts: the agent's first connection.
pub(crate) struct Pending {
    agent: Agent,
}

impl Pending {
    /// Attaches to a created container (before it starts, so nothing is missed).
    pub(crate) async fn attach(engine: &Engine, container: &str) -> Result<Pending> {
        let pipes = attach_pipes(engine, container).await?;
        Ok(Pending {
            agent: Agent {
                link: Link::open(container, pipes),
            },
        })
    }

    /// Says hello once the container runs.
    pub(crate) async fn hello(self) -> Result<(Agent, HelloReply)> {
        let reply = self.agent.link.hello(Joining::Fresh).await?;
        Ok((self.agent, reply))
    }
}

impl Agent {
    /// Connects to the agent of a running container, which may be serving (or have served)
    /// another connection. Where the engine closed the agent's standard input when an earlier
    /// client went away (Podman), the connection goes through one long-lived exec of the agent's
    /// own `connect` mode instead of an attach.
    pub(crate) async fn rejoin(engine: &Engine, container: &str) -> Result<(Agent, HelloReply)> {
        let reopens = engine
            .info()
            .await
            .map_err(|e| Error::engine(e, Error::Info))?
            .capabilities
            .attach_reopens_stdin;
        let pipes = if reopens {
            attach_pipes(engine, container).await?
        } else {
            connector_pipes(engine, container).await?
        };
        let agent = Agent {
            link: Link::open(container, pipes),
        };
        let reply = agent.link.hello(Joining::Running).await?;
        Ok((agent, reply))
    }

    /// True once the connection ended.
    pub(crate) fn is_broken(&self) -> bool {
        self.link.why_broken().is_some()
    }

    /// Opens a call.
    pub(crate) async fn call(&self, op: Op, payload: &[u8]) -> Result<Call> {
        Call::open(&self.link, op, payload).await
    }

    /// A call answered by one event: the event, or the agent's error.
    pub(crate) async fn ask(
        &self,
        op: Op,
        payload: &[u8],
    ) -> Result<std::result::Result<(EventBody, Bytes), AgentError>> {
        let (body, payload) = self.call(op, payload).await?.answer().await?;
        Ok(match body {
            EventBody::Error(e) => Err(e),
            other => Ok((other, payload)),
        })
    }

    /// The container the agent runs in.
    pub(crate) fn container(&self) -> &str {
        &self.link.container
    }
}

async fn attach_pipes(engine: &Engine, container: &str) -> Result<Pipes> {
    let attached = engine.attach_container(container).await.map_err(|e| {
        if e.is_not_found() {
            return Error::SessionGone {
                container: container.to_string(),
            };
        }
        Error::engine(e, |cause| Error::Attach {
            container: container.to_string(),
            cause,
        })
    })?;
    Ok(Pipes {
        output: attached.output,
        input: attached.input,
    })
}

/// One exec of `sandpit-agent connect`, which relays its standard input and output to the
/// agent's socket: the channel where an attach cannot reach the agent's standard input again.
async fn connector_pipes(engine: &Engine, container: &str) -> Result<Pipes> {
    let request = ExecRequest {
        cmd: vec![volume::AGENT_PATH.to_string(), "connect".into()],
        env: Vec::new(),
        user: "0:0".into(),
        working_dir: Some("/".into()),
        stdin: true,
    };
    let exec = engine.start_exec(container, &request).await.map_err(|e| {
        if e.is_not_found() || e.is_conflict() {
            return Error::SessionGone {
                container: container.to_string(),
            };
        }
        Error::engine(e, |cause| Error::Attach {
            container: container.to_string(),
            cause,
        })
    })?;
    let input = exec.input.ok_or_else(|| Error::Agent {
        container: container.to_string(),
        reason: "could not be reached: the engine gave its connector no standard input".into(),
    })?;
    Ok(Pipes {
        output: exec.output,
        input,
    })
}

/// An agent error that no operation expects: the agent's words, as an internal failure or,
/// where the sandbox could start nothing, [`Error::ExecStart`].
pub(crate) fn unexpected(container: &str, what: &str, e: AgentError) -> Error {
    match e.kind {
        AgentErrorKind::CannotStart => Error::ExecStart {
            container: container.to_string(),
            reason: format!(
                "{}; the sandbox probably holds as many processes as its limit allows (a fork bomb, or processes left running): stop them, or close the session",
                e.message
            ),
        },
        AgentErrorKind::Busy => Error::ExecStart {
            container: container.to_string(),
            reason: format!("{what}: {}", e.message),
        },
        _ => Error::Agent {
            container: container.to_string(),
            reason: format!("failed {what}: {}", e.message),
        },
    }
}

impl SandboxSession {
    /// The connection to the sandbox's agent, made again when it broke and the container still
    /// runs. A container that no longer runs is [`Error::SessionGone`] (a caller that can start
    /// it again does so first).
    pub(crate) async fn agent(&self) -> Result<Agent> {
        if let Some(agent) = self.current_agent() {
            return Ok(agent);
        }
        let inner = &self.inner;
        let _one = inner.reconnecting.lock().await;
        if let Some(agent) = self.current_agent() {
            return Ok(agent);
        }
        if !crate::state::container_runs(&inner.engine, &inner.container).await? {
            return Err(Error::SessionGone {
                container: inner.container.clone(),
            });
        }
        tracing::debug!("{}: connecting to the agent again", inner.container);
        let (agent, _) = Agent::rejoin(&inner.engine, &inner.container).await?;
        *inner.agent.write().expect("agent slot") = Some(agent.clone());
        Ok(agent)
    }

    /// A call answered by one event, through the current connection; a connection that ended
    /// is explained ([`Self::explain_lost`]).
    pub(crate) async fn ask(
        &self,
        op: Op,
        payload: &[u8],
    ) -> Result<std::result::Result<(EventBody, Bytes), AgentError>> {
        let agent = self.agent().await?;
        match agent.ask(op, payload).await {
            Ok(answer) => Ok(answer),
            Err(e) => Err(self.explain_lost(e).await),
        }
    }

    /// True while the connection to the agent works.
    pub(crate) fn agent_connected(&self) -> bool {
        self.current_agent().is_some()
    }

    fn current_agent(&self) -> Option<Agent> {
        self.inner
            .agent
            .read()
            .expect("agent slot")
            .as_ref()
            .filter(|a| !a.is_broken())
            .cloned()
    }

    /// Replaces the connection (after the container started again).
    pub(crate) fn set_agent(&self, agent: Agent) {
        *self.inner.agent.write().expect("agent slot") = Some(agent);
    }
}
