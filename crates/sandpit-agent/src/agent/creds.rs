//! Acting as another user for one operation, then as root again.
//!
//! The agent is single threaded, so changing its filesystem ids (or its effective uid) for the
//! length of one operation changes them for nothing else.

use sandpit_agent::protocol::Ids;

use super::sys;

/// Filesystem ids set to a user's while it lives: with fsuid ≠ 0 the kernel drops the agent's
/// `CAP_DAC_OVERRIDE`/`CAP_FOWNER` for file access, so the user's own permissions apply.
pub struct AsUser {
    changed: bool,
}

impl AsUser {
    /// Acts as `user` on files until dropped.
    pub fn new(user: Ids) -> AsUser {
        if user == Ids::ROOT {
            return AsUser { changed: false };
        }
        unsafe {
            libc::setfsgid(user.gid);
            libc::setfsuid(user.uid);
        }
        AsUser { changed: true }
    }
}

impl Drop for AsUser {
    fn drop(&mut self) {
        if self.changed {
            unsafe {
                libc::setfsuid(0);
                libc::setfsgid(0);
            }
            sys::not_dumpable();
        }
    }
}

/// The effective uid set to `uid` while it lives (System V IPC objects may only be removed by
/// their owner or creator, and the agent has no `CAP_SYS_ADMIN`).
pub struct AsEuid {
    changed: bool,
}

impl AsEuid {
    /// Takes effective uid `uid`; `None` when the kernel refused.
    pub fn new(uid: u32) -> Option<AsEuid> {
        if uid == 0 {
            return Some(AsEuid { changed: false });
        }
        let r = unsafe { libc::setresuid(u32::MAX, uid, u32::MAX) };
        (r == 0).then_some(AsEuid { changed: true })
    }
}

impl Drop for AsEuid {
    fn drop(&mut self) {
        if self.changed {
            unsafe { libc::setresuid(u32::MAX, 0, u32::MAX) };
            sys::not_dumpable();
        }
    }
}
