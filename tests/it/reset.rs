//! The reset of a recyclable sandbox, attacked: what a run leaves behind (processes, files in
//! every writable place, IPC objects, a held port, a filled disk, the environment) must be gone
//! before the next run. On Docker and Podman; gVisor cannot list IPC objects, so its reset says
//! the sandbox cannot be made clean and it is not reused.

use sandpit::{Language, SandboxSession};

use crate::per_target;
use crate::support::{containers_of, Target};

async fn recyclable(t: &Target) -> SandboxSession {
    t.builder(Language::Python)
        .recyclable(true)
        .open()
        .await
        .unwrap()
}

/// Runs Python that must succeed and returns its stdout.
async fn python(s: &SandboxSession, code: &str) -> String {
    let r = s.run(code, &[]).await.unwrap();
    assert_eq!(r.exit_code, 0, "{code}\n{}", r.stderr);
    r.stdout
}

/// Every process but the agent and the one listing, with its name.
const OTHER_PROCESSES: &str = r#"import os
me = os.getpid()
seen = []
for p in os.listdir('/proc'):
    if p.isdigit() and int(p) not in (1, me):
        try:
            seen.append(p + ':' + open(f'/proc/{p}/comm').read().strip())
        except OSError:
            pass
print(sorted(seen))"#;

async fn reset_and_close(t: &Target, s: SandboxSession) {
    s.close().await.unwrap();
    assert_eq!(containers_of(&t.engine, s.id()).await, 0, "container left");
}

per_target!(
    processes_left_behind_are_gone,
    [docker, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        python(
            &s,
            r#"import os, subprocess, time
subprocess.Popen(['sleep', '1000'])
# One that keeps forking.
subprocess.Popen(['sh', '-c', 'while true; do sleep 5 & sleep 0.1; done'])
# One that changed its name.
subprocess.Popen(['python3', '-c', 'import ctypes, time; ctypes.CDLL(None).prctl(15, b"innocent", 0, 0, 0); time.sleep(1000)'])
# A daemon: its own session, its parent gone.
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        time.sleep(1000)
    os._exit(0)
time.sleep(0.5)"#,
        )
        .await;
        let before = python(&s, OTHER_PROCESSES).await;
        assert!(
            before.contains("innocent") && before.contains("sleep"),
            "{before}"
        );
        s.reset().await.unwrap();
        assert_eq!(python(&s, OTHER_PROCESSES).await, "[]\n");
        reset_and_close(&t, s).await;
    }
);

per_target!(
    files_in_every_writable_place_are_gone,
    [docker, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        let places = [
            "/sandbox",
            "/tmp",
            "/var/tmp",
            "/run/lock",
            "/home/sandbox",
            "/dev/shm",
        ];
        python(
            &s,
            &format!(
                r#"import ctypes, os
# Every one the sandbox user can write (Podman leaves /run/lock to root).
writable = [d for d in {places:?} if os.access(d, os.W_OK)]
assert {{'/sandbox', '/tmp', '/home/sandbox', '/dev/shm'}} <= set(writable), writable
for d in writable:
    os.makedirs(d + '/nested/deeper', exist_ok=True)
    open(d + '/left.txt', 'w').write('secret')
    os.symlink('/etc/passwd', d + '/link')
# A POSIX message queue.
rt = ctypes.CDLL('librt.so.1', use_errno=True)
rt.mq_open.restype = ctypes.c_int
assert rt.mq_open(b'/leftq', os.O_CREAT | os.O_RDWR, 0o600, None) >= 0, ctypes.get_errno()"#
            ),
        )
        .await;
        s.reset().await.unwrap();
        let left = python(
            &s,
            &format!(
                "import os\nleft = [(d, sorted(set(os.listdir(d)) - {{'main.py'}})) for d in {places:?} + ['/dev/mqueue']]\nprint([l for l in left if l[1]])"
            ),
        )
        .await;
        assert_eq!(left, "[]\n");
        // The folders are still there and still the sandbox user's to write.
        python(
            &s,
            "open('/sandbox/again.txt', 'w').write('x'); open('/home/sandbox/x', 'w').write('x')",
        )
        .await;
        reset_and_close(&t, s).await;
    }
);

per_target!(
    ipc_objects_are_gone,
    [docker, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        let count = "print(sum(len(open('/proc/sysvipc/' + k).readlines()) - 1 for k in ('shm', 'sem', 'msg')))";
        python(
            &s,
            r#"import ctypes
libc = ctypes.CDLL(None, use_errno=True)
assert libc.shmget(0, 4096, 0o1600) >= 0
assert libc.semget(0, 1, 0o1600) >= 0
assert libc.msgget(0, 0o1600) >= 0"#,
        )
        .await;
        assert_eq!(python(&s, count).await, "3\n");
        s.reset().await.unwrap();
        assert_eq!(python(&s, count).await, "0\n");
        reset_and_close(&t, s).await;
    }
);

per_target!(
    a_held_port_is_free_again,
    [docker, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        python(
            &s,
            r#"import subprocess, time
subprocess.Popen(['python3', '-c', 'import socket, time\ns = socket.socket()\ns.bind(("127.0.0.1", 8765))\ns.listen()\ntime.sleep(1000)'])
time.sleep(1)"#,
        )
        .await;
        let bind = "import socket\ns = socket.socket()\ntry:\n    s.bind(('127.0.0.1', 8765)); print('free')\nexcept OSError as e:\n    print('held', e.errno)";
        assert_eq!(python(&s, bind).await, "held 98\n");
        s.reset().await.unwrap();
        assert_eq!(python(&s, bind).await, "free\n");
        reset_and_close(&t, s).await;
    }
);

per_target!(
    a_filled_disk_is_empty_again,
    [docker, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        let free = "import os\nfor d in ('/sandbox', '/tmp'):\n    st = os.statvfs(d)\n    print(d, round(st.f_bfree / st.f_blocks, 2))";
        let fresh = python(&s, free).await;
        let fill = r#"import errno
for d in ('/sandbox', '/tmp'):
    try:
        with open(d + '/fill', 'wb') as f:
            while True:
                f.write(b'x' * (1 << 20))
                f.flush()
    except OSError as e:
        assert e.errno == errno.ENOSPC, e
print('full')"#;
        assert_eq!(python(&s, fill).await, "full\n");
        s.reset().await.unwrap();
        assert_eq!(python(&s, free).await, fresh);
        reset_and_close(&t, s).await;
    }
);

per_target!(
    the_environment_is_the_opening_one_again,
    [docker, podman],
    |t: Target| async move {
        let s = t
            .builder(Language::Python)
            .recyclable(true)
            .env("KEPT", "yes")
            .open()
            .await
            .unwrap();
        s.set_env("LEAKED", "secret").unwrap();
        let show = "import os\nprint(os.environ.get('KEPT'), os.environ.get('LEAKED'))";
        assert_eq!(python(&s, show).await, "yes secret\n");
        s.reset().await.unwrap();
        assert_eq!(python(&s, show).await, "yes None\n");
        reset_and_close(&t, s).await;
    }
);

per_target!(
    the_root_filesystem_is_read_only,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = recyclable(&t).await;
        let out = python(
            &s,
            "import errno\nfor p in ('/etc/x', '/usr/x', '/opt/x', '/x'):\n    try:\n        open(p, 'w')\n        print(p, 'written')\n    except OSError as e:\n        print(p, errno.errorcode[e.errno])",
        )
        .await;
        assert!(!out.contains("written"), "{out}");
        reset_and_close(&t, s).await;
    }
);

per_target!(
    a_sandbox_that_cannot_be_checked_clean_is_not_reused,
    [gvisor],
    |t: Target| async move {
        let s = recyclable(&t).await;
        let err = s.reset().await.unwrap_err();
        assert!(err.to_string().contains("clean"), "{err}");
        reset_and_close(&t, s).await;
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn only_a_recyclable_session_can_be_reset() {
    let s = crate::support::python().await.open().await.unwrap();
    let err = s.reset().await.unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::Refused, "{err}");
    s.close().await.unwrap();
}
