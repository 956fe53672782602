//! Sandpit's own channel into the sandbox, attacked from inside: the agent (PID 1, root, not
//! dumpable) can be neither signalled, traced, read nor replaced by user code (uid 1000, no
//! capabilities, no-new-privileges), and a root process inside cannot end it with a signal.

use sandpit::{CommandOptions, Language, SandboxSession};

use crate::per_target;
use crate::support::{containers_of, Target};

async fn python_out(s: &SandboxSession, code: &str) -> String {
    let r = s.run(code, &[]).await.unwrap();
    assert_eq!(r.exit_code, 0, "{code}\n{}", r.stderr);
    r.stdout
}

async fn still_serves(t: &Target, s: SandboxSession) {
    let r = s.execute_command("echo alive").await.unwrap();
    assert_eq!(r.stdout, "alive\n", "{r:?}");
    s.close().await.unwrap();
    assert_eq!(containers_of(&t.engine, s.id()).await, 0);
}

per_target!(
    user_code_cannot_signal_the_agent,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let out = python_out(
            &s,
            r#"import os, signal
for sig in (signal.SIGTERM, signal.SIGKILL, signal.SIGSTOP, signal.SIGINT, signal.SIGUSR1):
    try:
        os.kill(1, sig)
        print(sig.name, 'sent')
    except PermissionError:
        print(sig.name, 'refused')"#,
        )
        .await;
        assert!(!out.contains("sent"), "{out}");
        still_serves(&t, s).await;
    }
);

per_target!(
    user_code_cannot_trace_or_read_the_agent,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let out = python_out(
            &s,
            r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
print('ptrace', libc.ptrace(16, 1, None, None), ctypes.get_errno() != 0)
for path in ('/proc/1/mem', '/proc/1/environ', '/proc/1/fd/0', '/proc/1/fd/1'):
    try:
        with open(path, 'rb') as f:
            data = f.read(64)
        print(path, 'read', len(data))
    except OSError as e:
        print(path, 'refused')"#,
        )
        .await;
        assert!(out.contains("ptrace -1 True"), "{out}");
        assert!(out.contains("/proc/1/mem refused"), "{out}");
        // gVisor lets /proc/1/environ be read (the container's own environment, which every
        // process gets anyway) and shows fds 0 and 1 as /dev/null; runc and Podman refuse all.
        if !t.is_gvisor() {
            assert!(!out.contains(" read "), "{out}");
        }
        still_serves(&t, s).await;
    }
);

per_target!(
    user_code_cannot_write_into_the_channel,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        // Forged frames at every descriptor of the agent it can find, and a flood of its own
        // output: none of it reaches the host as the agent's words.
        let out = python_out(
            &s,
            r#"import os
forged = b'\x00' * 64 + b'SPA\x01' + b'\x10\x00\x00\x00' + b'\x00\x00\x00\x00' + b'{"call":1,"ev":"done"}'[:16] + b'\xfe\xed'
written = 0
for fd in range(0, 16):
    try:
        with open(f'/proc/1/fd/{fd}', 'wb') as f:
            f.write(forged)
            written += 1
    except OSError:
        pass
os.write(1, forged * 1000)
print()
print('written', written)"#,
        )
        .await;
        assert!(out.contains("written"), "{out}");
        still_serves(&t, s).await;
    }
);

per_target!(
    user_code_cannot_replace_the_agent,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let out = python_out(
            &s,
            r#"import os
for attempt in ('write', 'rename', 'remove', 'chmod'):
    try:
        if attempt == 'write':
            open('/.sandpit/sandpit-agent', 'r+b').write(b'#!/bin/sh\n')
        elif attempt == 'rename':
            os.rename('/.sandpit', '/tmp/moved')
        elif attempt == 'remove':
            os.remove('/.sandpit/sandpit-agent')
        else:
            os.chmod('/.sandpit/sandpit-agent', 0o777)
        print(attempt, 'done')
    except OSError as e:
        print(attempt, 'refused')"#,
        )
        .await;
        assert!(!out.contains("done"), "{out}");
        still_serves(&t, s).await;
    }
);

per_target!(
    a_root_process_inside_cannot_end_the_agent_with_a_signal,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        // Root inside holds the kill capability (package installs need root): the agent ignores
        // the signals that would end it when they come from inside.
        let r = s
            .execute_command_with(
                "kill -TERM 1; kill -INT 1; kill -HUP 1; sleep 1; echo sent",
                CommandOptions::new().as_root(),
            )
            .await
            .unwrap();
        assert_eq!(r.stdout, "sent\n", "{r:?}");
        still_serves(&t, s).await;
    }
);
