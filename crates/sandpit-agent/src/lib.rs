//! The agent inside every Sandpit sandbox, and the protocol Sandpit speaks to it.
//!
//! The binary (`sandpit-agent`) runs as each sandbox's PID 1: it spawns, streams, kills,
//! resets, serves files and holds background processes, and talks to Sandpit over one framed,
//! multiplexed channel on its standard input and output. This library holds what both ends
//! share: the messages ([`protocol`]) and their framing ([`frame`]).
#![deny(missing_docs)]

pub mod frame;
pub mod protocol;
