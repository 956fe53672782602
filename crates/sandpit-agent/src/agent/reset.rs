//! Making a sandbox as it was before code ran: kill everything, forget every process, empty
//! the writable folders, remove IPC objects, then check that nothing is left.

use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use sandpit_agent::protocol::{CallId, ErrorKind, EventBody, Reset, ResetReport};

use super::error::{fail, invalid};
use super::exit;
use super::ipc;
use super::output;
use super::signal_all::{kill_all, targets};
use super::state::{Agent, CallKind, CallRef, Wait, WaitFor};
use super::sys;
use super::tree;

/// A reset between its kill and the rest.
pub struct ResetJob {
    clear: Vec<String>,
    started: Instant,
    deadline: Instant,
}

/// Starts `Reset`: everything is killed now; [`finish`] does the rest once it is reaped.
pub fn reset(agent: &mut Agent, call: CallId, req: Reset) {
    if let Some(bad) = req
        .clear
        .iter()
        .find(|c| !c.starts_with('/') || c.trim_matches('/').is_empty())
    {
        agent.reply(
            call,
            EventBody::Error(invalid(format!(
                "clear folder {bad:?} must be an absolute path other than /"
            ))),
        );
        return;
    }
    let started = Instant::now();
    let deadline = started + Duration::from_millis(req.timeout_ms);
    let killed = kill_all(agent.me, None);
    let Some(reply) = agent.open_call(call, CallKind::Waiting) else {
        return;
    };
    agent.waits.push(Wait {
        reply,
        until: deadline,
        count: killed,
        target: WaitFor::Reset(Box::new(ResetJob {
            clear: req.clear,
            started,
            deadline,
        })),
    });
}

/// The rest of a reset, once every process is gone (`left` = 0) or the deadline passed.
pub fn finish(agent: &mut Agent, reply: CallRef, job: ResetJob, killed: u32, left: u32) {
    let mut dirty = Vec::new();
    if left > 0 {
        dirty.push(format!("{left} processes still running after the kill"));
    }
    forget_processes(agent);
    let mut removed = 0;
    for folder in &job.clear {
        match clear(folder, job.deadline) {
            Ok(n) => removed += n,
            Err(e) => dirty.push(e),
        }
    }
    let ipc_removed = ipc::remove_all(agent.me);
    // The check: nothing may be left.
    let running = targets(agent.me, None).len();
    if running > 0 && left == 0 {
        dirty.push(format!("{running} processes appeared during the reset"));
    }
    for folder in &job.clear {
        match sys::open(folder, libc::O_PATH | libc::O_DIRECTORY)
            .and_then(|fd| sys::dir_names(fd.as_raw_fd()))
        {
            Ok(names) if names.is_empty() => {}
            Ok(names) => dirty.push(format!(
                "{folder} still holds {}",
                String::from_utf8_lossy(&names[0])
            )),
            Err(e) => dirty.push(format!("{folder} cannot be read: {e}")),
        }
    }
    dirty.extend(ipc::leftovers(agent.me));
    let elapsed = job.started.elapsed();
    if Instant::now() > job.deadline {
        dirty.push(format!(
            "the reset took {} ms, longer than allowed",
            elapsed.as_millis()
        ));
    }
    dirty.dedup();
    let body = if dirty.is_empty() {
        EventBody::ResetDone(ResetReport {
            killed,
            removed,
            ipc_removed,
            duration_ms: elapsed.as_millis() as u64,
        })
    } else {
        EventBody::Error(fail(
            ErrorKind::Dirty,
            format!("the sandbox is not clean: {}", dirty.join("; ")),
        ))
    };
    agent.emit(reply, body, &[]);
}

/// Ends every process record: what is left in the pipes goes to its subscribers, then the
/// `Exited` of each, then nothing of them is kept.
fn forget_processes(agent: &mut Agent) {
    let pids: Vec<u32> = agent.procs.keys().copied().collect();
    for pid in pids {
        output::close_left_open(agent, pid);
        exit::close_stdin(agent, pid);
        if let Some(p) = agent.procs.get_mut(&pid) {
            p.out = [None, None];
            if p.ended.is_none() {
                // Killed but not reaped in time: reported as killed.
                p.ended = Some(super::process::Ended {
                    status: libc::SIGKILL,
                    rusage: unsafe { std::mem::zeroed() },
                    at: Instant::now(),
                });
            }
        }
        exit::try_finish(agent, pid);
    }
    agent.procs.clear();
}

/// Removes everything inside `folder` on its own filesystem; how many entries went.
fn clear(folder: &str, deadline: Instant) -> Result<u64, String> {
    let fd = sys::open(
        folder,
        libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW,
    )
    .map_err(|e| format!("{folder} cannot be opened: {e}"))?;
    let st = sys::fstat(fd.as_raw_fd()).map_err(|e| format!("{folder}: {e}"))?;
    let removal = tree::remove_children(fd.as_raw_fd(), Some(st.st_dev), Some(deadline));
    match removal.error {
        None => Ok(removal.removed),
        Some((e, path)) => Err(format!("{folder}/{path} cannot be removed: {e}")),
    }
}
