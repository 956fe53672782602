//! System V IPC objects and POSIX message queues: what a reset removes besides files.

use super::creds::AsUser;
use super::state::Me;
use super::sys;
use sandpit_agent::protocol::Ids;

/// One System V object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Object {
    /// Which kind.
    pub kind: Kind,
    /// Its id.
    pub id: i32,
    /// Its owner.
    pub uid: u32,
    /// Its creator.
    pub cuid: u32,
}

/// The kinds of System V objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Shared memory.
    Shm,
    /// A semaphore set.
    Sem,
    /// A message queue.
    Msg,
}

impl Kind {
    fn file(self) -> &'static str {
        match self {
            Kind::Shm => "/proc/sysvipc/shm",
            Kind::Sem => "/proc/sysvipc/sem",
            Kind::Msg => "/proc/sysvipc/msg",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Kind::Shm => "shmid",
            Kind::Sem => "semid",
            Kind::Msg => "msqid",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Shm => "shared memory segment",
            Kind::Sem => "semaphore set",
            Kind::Msg => "message queue",
        }
    }
}

/// Where POSIX message queues appear.
const MQUEUE: &str = "/dev/mqueue";

/// True when the IPC objects the agent sees are the sandbox's own: as PID 1 (the sandbox's
/// IPC namespace), or when whoever started it gave it an IPC namespace of its own (tests).
pub fn owned(me: Me) -> bool {
    if me.pid1 {
        return true;
    }
    let ns = |pid: String| std::fs::read_link(format!("/proc/{pid}/ns/ipc")).ok();
    let parent = std::os::unix::process::parent_id();
    matches!((ns("self".into()), ns(parent.to_string())), (Some(a), Some(b)) if a != b)
}

/// Where the kernel lists System V objects (gVisor has no such folder, and no other way to
/// list them all).
const SYSVIPC: &str = "/proc/sysvipc";

/// The System V objects now.
pub fn objects() -> Vec<Object> {
    let mut out = Vec::new();
    for kind in [Kind::Shm, Kind::Sem, Kind::Msg] {
        let Ok(text) = std::fs::read_to_string(kind.file()) else {
            continue;
        };
        let mut lines = text.lines();
        let Some(header) = lines.next() else {
            continue;
        };
        let columns: Vec<&str> = header.split_ascii_whitespace().collect();
        let at = |name: &str| columns.iter().position(|c| *c == name);
        let (Some(id), Some(uid), Some(cuid)) = (at(kind.id_column()), at("uid"), at("cuid"))
        else {
            continue;
        };
        for line in lines {
            let fields: Vec<&str> = line.split_ascii_whitespace().collect();
            let num = |i: usize| fields.get(i).and_then(|f| f.parse::<i64>().ok());
            if let (Some(id), Some(uid), Some(cuid)) = (num(id), num(uid), num(cuid)) {
                out.push(Object {
                    kind,
                    id: id as i32,
                    uid: uid as u32,
                    cuid: cuid as u32,
                });
            }
        }
    }
    out
}

/// Removes one object as its owner, then as its creator (the kernel allows only those
/// without `CAP_SYS_ADMIN`).
fn remove(o: Object) -> bool {
    [o.uid, o.cuid].into_iter().any(|uid| {
        let Ok(_as) = AsUser::new(Ids { uid, gid: 0 }) else {
            return false;
        };
        let r = unsafe {
            match o.kind {
                Kind::Shm => libc::shmctl(o.id, libc::IPC_RMID, std::ptr::null_mut()),
                Kind::Sem => libc::semctl(o.id, 0, libc::IPC_RMID),
                Kind::Msg => libc::msgctl(o.id, libc::IPC_RMID, std::ptr::null_mut()),
            }
        };
        r == 0
    })
}

/// The POSIX message queues now (only as PID 1: elsewhere `/dev/mqueue` is the host's).
fn queues(me: Me) -> Vec<Vec<u8>> {
    if !me.pid1 {
        return Vec::new();
    }
    sys::open(MQUEUE, libc::O_RDONLY | libc::O_DIRECTORY)
        .and_then(|fd| sys::dir_names(std::os::fd::AsRawFd::as_raw_fd(&fd)))
        .unwrap_or_default()
}

/// Removes every object and queue; how many went.
pub fn remove_all(me: Me) -> u32 {
    if !owned(me) {
        return 0;
    }
    let mut removed = objects().into_iter().filter(|&o| remove(o)).count() as u32;
    for name in queues(me) {
        let mut path = format!("{MQUEUE}/").into_bytes();
        path.extend(name);
        if let Ok(path) = sys::cstring(path) {
            if unsafe { libc::unlink(path.as_ptr()) } == 0 {
                removed += 1;
            }
        }
    }
    removed
}

/// What is left, in words (empty when nothing is).
pub fn leftovers(me: Me) -> Vec<String> {
    if !owned(me) {
        return Vec::new();
    }
    let mut left: Vec<String> = objects()
        .into_iter()
        .map(|o| format!("{} {} of uid {}", o.kind.name(), o.id, o.uid))
        .collect();
    // Without these folders the objects still exist (gVisor), but nothing can list them: a
    // sandbox whose cleanness cannot be checked is not clean.
    if !std::path::Path::new(SYSVIPC).is_dir() {
        left.push(format!(
            "System V IPC objects cannot be listed here (no {SYSVIPC})"
        ));
    }
    if me.pid1 && !std::path::Path::new(MQUEUE).is_dir() {
        left.push(format!(
            "POSIX message queues cannot be listed here (no {MQUEUE})"
        ));
    }
    left.extend(
        queues(me)
            .into_iter()
            .map(|n| format!("message queue {MQUEUE}/{}", String::from_utf8_lossy(&n))),
    );
    left
}
