//! Requests to the operation that answers them.

use sandpit_agent::frame::RawFrame;
use sandpit_agent::protocol::{EventBody, Op, Request};

use super::error::invalid;
use super::state::{Agent, CallRef};
use super::{
    attach, cancel, files, hello, input, kill, processes, reset, signal_all, spawn, usage,
};

/// Acts on one frame. A header that is no request is answered on its call when it names
/// one (an unknown operation, a bad argument), else logged and skipped.
pub fn dispatch(agent: &mut Agent, frame: RawFrame) {
    let request: Request = match frame.message() {
        Ok(r) => r,
        Err(e) => {
            let call = serde_json::from_slice::<serde_json::Value>(&frame.header)
                .ok()
                .and_then(|v| v.get("call")?.as_u64());
            match call {
                Some(call) => agent.reply(
                    call,
                    EventBody::Error(invalid(format!("the request is not understood: {e}"))),
                ),
                None => super::log(format_args!("skipped a frame that is not a request: {e}")),
            }
            return;
        }
    };
    let call = request.call;
    match request.op {
        Op::Hello(req) => hello::hello(agent, call, req),
        Op::Spawn(req) => spawn::spawn(agent, call, req),
        Op::Input(req) => input::input(agent, call, req, &frame.payload),
        Op::Signal(req) => kill::signal(agent, call, req),
        Op::SignalAll(req) => signal_all::signal_all(agent, call, req),
        Op::Attach(req) => attach::attach(agent, call, req),
        Op::List => processes::list(agent, call),
        Op::Reset(req) => reset::reset(agent, call, req),
        Op::Usage(req) => usage::usage(agent, call, req),
        Op::File(req) => files::file(agent, call, req),
        Op::WriteData(req) => {
            if let Some(entry) = agent.calls.get(&call) {
                let reply = CallRef {
                    call,
                    serial: entry.serial,
                };
                files::write_data(agent, reply, req, &frame.payload);
            }
        }
        Op::Credit(req) => cancel::credit(agent, call, req),
        Op::Cancel => cancel::cancel(agent, call),
    }
}
