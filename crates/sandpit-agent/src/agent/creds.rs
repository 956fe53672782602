//! Acting as another user for one operation, then as root again.
//!
//! The effective ids change (the real and saved ones stay root, so the agent can change
//! back): with euid ≠ 0 the kernel clears the agent's effective capabilities, so the user's
//! own permissions apply to files, `/proc` and IPC objects; they come back with euid 0. The
//! filesystem ids follow the effective ones. (`setfsuid` would do for files alone, but gVisor
//! does not implement it.) The agent is single threaded, so nothing else runs meanwhile.

use sandpit_agent::protocol::{ErrorKind, Ids};

use super::error::{fail, OpResult};
use super::sys;

/// The agent's effective ids set to a user's while it lives.
pub struct AsUser {
    changed: bool,
}

impl AsUser {
    /// Acts as `user` until dropped; an error when the kernel refuses (then nothing may be
    /// done in the user's name).
    pub fn new(user: Ids) -> OpResult<AsUser> {
        if user == Ids::ROOT {
            return Ok(AsUser { changed: false });
        }
        let keep = u32::MAX;
        if unsafe { libc::setresgid(keep, user.gid, keep) } != 0 {
            return Err(refused(user));
        }
        let guard = AsUser { changed: true };
        if unsafe { libc::setresuid(keep, user.uid, keep) } != 0 {
            return Err(refused(user));
        }
        Ok(guard)
    }
}

fn refused(user: Ids) -> sandpit_agent::protocol::AgentError {
    fail(
        ErrorKind::PermissionDenied,
        format!(
            "the agent cannot act as uid {} gid {}: {}",
            user.uid,
            user.gid,
            std::io::Error::last_os_error()
        ),
    )
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if self.changed {
            let keep = u32::MAX;
            unsafe {
                libc::setresuid(keep, 0, keep);
                libc::setresgid(keep, 0, keep);
            }
            sys::not_dumpable();
        }
    }
}
