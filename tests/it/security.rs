//! The adversarial suite, on every engine and runtime (Docker with runc, Docker with gVisor,
//! Podman): each attack ends in an exact, clear outcome; the host stays responsive; no
//! container is left behind.

use std::time::{Duration, Instant};

use sandpit::{
    CommandOptions, Error, ExecuteOptions, Language, Network, RunOptions, SandboxSession,
    SecurityPolicy,
};

use crate::per_target;
use crate::support::{ca_bundle, containers_of, engine, python, Target};

/// A fork bomb that survives its own failures: every process keeps forking.
const PY_BOMB: &str =
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass";

/// The host answers quickly: a process starts and the engine replies.
async fn assert_host_responsive(t: &Target) {
    let started = Instant::now();
    let ok = std::process::Command::new("true")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    t.engine.ping().await.unwrap();
    // Against a hung host, not a speed target: the suite runs other sandboxes beside.
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "host slow: {:?}",
        started.elapsed()
    );
}

async fn close_and_check(t: &Target, s: SandboxSession) {
    s.close().await.unwrap();
    assert_eq!(
        containers_of(&t.engine, s.id()).await,
        0,
        "container left behind"
    );
    assert_host_responsive(t).await;
}

per_target!(
    defaults_drop_privileges_and_limit_resources,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        assert_eq!(s.runtime(), t.runtime.as_deref());
        let r = s
            .run(
                "import os\nst = open('/proc/self/status').read()\nprint(os.getuid(), os.getgid())\nprint(st.split('CapEff:')[1].split()[0])\nprint(st.split('NoNewPrivs:')[1].split()[0] if 'NoNewPrivs:' in st else 'unknown')\nprint(os.path.exists('/var/run/docker.sock'))",
                &[],
            )
            .await
            .unwrap();
        // gVisor's /proc does not show NoNewPrivs (runsc applies it all the same).
        let no_new_privs = if t.is_gvisor() { "unknown" } else { "1" };
        assert_eq!(
            r.stdout,
            format!("1000 1000\n0000000000000000\n{no_new_privs}\nFalse\n"),
            "{}",
            r.stderr
        );
        // The limits as the engine enforces them.
        let stats = t.engine.container_stats(s.container_name()).await.unwrap();
        assert_eq!(stats.memory_limit_bytes, 512 << 20);
        let state = t
            .engine
            .inspect_container(s.container_name())
            .await
            .unwrap();
        assert_eq!(state.labels["sandpit.session"], s.id());
        close_and_check(&t, s).await;
    }
);

/// Prints the network interfaces, then tries an address outside the machine: with only the
/// loopback interface there is no route, whatever the engine's networks are (errno 101, or
/// 113 from gVisor's network stack).
const NET_PROBE: &str = "import socket\nprint(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print(type(e).__name__, e.errno)";

per_target!(
    the_network_is_off_and_an_install_does_not_turn_it_on_for_user_code,
    [docker, gvisor, podman],
    |t: Target| async move {
        let ca = ca_bundle().expect("a CA bundle");
        let mut b = t.builder(Language::Python).extra_ca_certificates(&ca);
        if t.is_gvisor() {
            // gVisor cannot attach a network later: the library goes into the image first.
            b = b.libraries(["tabulate"]);
        }
        let s = b.open().await.unwrap();
        let no_route = if t.is_gvisor() {
            "['lo']\nOSError 113\n"
        } else {
            "['lo']\nOSError 101\n"
        };
        let r = s.run(NET_PROBE, &[]).await.unwrap();
        assert_eq!(r.stdout, no_route, "{}", r.stderr);
        if t.is_gvisor() {
            let err = s.install(&["six"]).await.unwrap_err();
            assert_eq!(err.kind(), sandpit::ErrorKind::Unsupported, "{err}");
        } else {
            // The install reaches the package index; user code afterwards still has only lo.
            let r = s.run(NET_PROBE, &["tabulate"]).await.unwrap();
            assert_eq!(r.stdout, no_route, "{}", r.stderr);
        }
        let r = s
            .run("import tabulate; print('imported')", &[])
            .await
            .unwrap();
        assert_eq!(r.stdout, "imported\n", "{}", r.stderr);
        close_and_check(&t, s).await;
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn a_bridge_session_has_an_interface() {
    let s = python()
        .await
        .network(Network::Bridge)
        .open()
        .await
        .unwrap();
    let r = s.run(NET_PROBE, &[]).await.unwrap();
    assert!(
        r.stdout.contains("eth0"),
        "a bridge session has an interface: {}",
        r.stdout
    );
    s.close().await.unwrap();
}

per_target!(
    a_fork_bomb_in_a_run_hits_the_process_limit_and_is_killed,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let started = Instant::now();
        let r = s
            .run_with(PY_BOMB, RunOptions::new().timeout(Duration::from_secs(5)))
            .await
            .unwrap();
        // Under gVisor the bomb's copies of Python fill the memory limit before the process
        // limit: the sandbox is stopped for memory and started again.
        assert!(r.timed_out || (t.is_gvisor() && r.oom_killed), "{r:?}");
        // A bound against hanging, not a speed target (on a loaded machine Podman needs a while
        // to tell that a sandbox cannot start the command that stops the bomb).
        assert!(
            started.elapsed() < Duration::from_secs(90),
            "took {:?}",
            started.elapsed()
        );
        let after = s.run("print('alive')", &[]).await.unwrap();
        assert_eq!(after.stdout, "alive\n", "{}", after.stderr);
        close_and_check(&t, s).await;
    }
);

per_target!(
    a_fork_bomb_in_a_command_is_killed,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let r = s
            .execute_command_with(
                "bomb() { bomb | bomb & }; bomb",
                CommandOptions::new().timeout(Duration::from_secs(5)),
            )
            .await;
        // The shell may end by itself when forks fail, or run into the timeout; either way
        // the session works afterwards.
        if let Err(e) = &r {
            assert_eq!(e.kind(), sandpit::ErrorKind::Exhausted, "{e}");
        }
        // The bomb's shell may have ended with the bomb still forking in the background: the
        // next command then finds the limit full, and every process is stopped first.
        if t.is_gvisor() {
            // Under gVisor the bomb left in the background takes the whole sandbox down some
            // seconds later (its runtime runs out of host threads, whatever the process limit):
            // the step that finds it down says so, and the sandbox is started again.
            let until = Instant::now() + Duration::from_secs(30);
            while Instant::now() < until {
                let step = s.execute_command("echo alive").await.unwrap();
                if step.exit_code == 137 && step.stderr.contains("started again") {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        let after = s.execute_command("echo alive").await.unwrap();
        assert_eq!(
            (after.stdout.as_str(), after.exit_code),
            ("alive\n", 0),
            "{after:?} (the bomb: {r:?})"
        );
        let run = s.run("print('run ok')", &[]).await.unwrap();
        assert_eq!(run.stdout, "run ok\n", "{run:?}");
        close_and_check(&t, s).await;
    }
);

/// Fills the process limit in the background and keeps it full: children that sleep (small,
/// so that the memory limit is not what stops it), and a parent that takes every slot that
/// frees.
const LIMIT_HOLDER: &str = "python3 -c 'import os,time
while True:
    try:
        if os.fork() == 0:
            os.execvp(\"sleep\", [\"sleep\", \"1000\"])
    except OSError:
        time.sleep(0.05)' >/dev/null 2>&1 &";

per_target!(
    processes_left_filling_the_limit_are_stopped_when_the_next_step_cannot_start,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        s.execute("kept = 41").await.unwrap();
        let left = s.execute_command(LIMIT_HOLDER).await.unwrap();
        assert_eq!(left.exit_code, 0, "{left:?}");
        tokio::time::sleep(Duration::from_secs(3)).await;
        let after = s.execute_command("echo alive").await.unwrap();
        assert_eq!(
            (after.stdout.as_str(), after.exit_code),
            ("alive\n", 0),
            "{after:?}"
        );
        if t.name == "gvisor" {
            // gVisor starts an exec outside the limit its processes share, so a full limit
            // blocks nothing new, and nothing has to be stopped.
            let kernel = s.execute("print(kept + 1)").await.unwrap();
            assert_eq!(kernel.stdout, "42\n", "{kernel:?}");
            let run = s.run("print('run ok')", &[]).await.unwrap();
            assert_eq!(run.stdout, "run ok\n", "{run:?}");
            close_and_check(&t, s).await;
            return;
        }
        assert!(
            after
                .stderr
                .starts_with("sandpit: the sandbox's process limit was full"),
            "the result says what happened: {after:?}"
        );
        let holders = s
            .execute_command(
                "for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' <$f; echo; done 2>/dev/null | grep -cE '^(sleep 1000 |python3 -c import os,time)'",
            )
            .await
            .unwrap();
        assert_eq!(
            holders.stdout.trim(),
            "0",
            "the processes were stopped: {holders:?}"
        );
        // The kernel went with them: a fresh one answers.
        let kernel = s.execute("print('kernel ok')").await.unwrap();
        assert_eq!(kernel.stdout, "kernel ok\n", "{kernel:?}");
        let lost = s.execute("print(kept)").await.unwrap();
        assert_eq!(
            lost.error.as_ref().map(|e| e.name.as_str()),
            Some("NameError"),
            "{lost:?}"
        );
        // A run finds the same remedy.
        s.execute_command(LIMIT_HOLDER).await.unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let run = s.run("print('run ok')", &[]).await.unwrap();
        assert_eq!(
            (run.stdout.as_str(), run.exit_code),
            ("run ok\n", 0),
            "{run:?}"
        );
        assert!(
            run.stderr
                .starts_with("sandpit: the sandbox's process limit was full"),
            "{run:?}"
        );
        close_and_check(&t, s).await;
    }
);

/// One fork bomb per kernel language: code that fills the process limit from inside the kernel.
fn kernel_bomb(language: Language) -> &'static str {
    match language {
        Language::Python => PY_BOMB,
        // Node cannot fork itself; it starts processes that stay.
        Language::JavaScript => {
            "const cp = require('child_process');\nfor (;;) { try { cp.spawnSync('/bin/sh', ['-c', 'sleep 1000 &']); } catch (e) {} }"
        }
        Language::Ruby => "loop { begin; fork; rescue StandardError; end }",
        other => panic!("{other} has no kernel"),
    }
}

per_target!(
    a_fork_bomb_in_a_kernel_is_stopped_and_the_session_works_again,
    [docker, gvisor, podman],
    |t: Target| async move {
        for language in [Language::Python, Language::JavaScript, Language::Ruby] {
            let s = t.builder(language).open().await.unwrap();
            let set = match language {
                Language::Python => "kept = 41",
                Language::JavaScript => "var kept = 41",
                _ => "kept = 41",
            };
            s.execute(set).await.unwrap();
            let started = Instant::now();
            let r = s
                .execute_with(
                    kernel_bomb(language),
                    ExecuteOptions::new().timeout(Duration::from_secs(5)),
                )
                .await
                .unwrap_or_else(|e| panic!("{language}: the bomb's execute failed: {e}"));
            assert!(
                r.timed_out || r.state_lost || r.error.is_some(),
                "{language}: {r:?}"
            );
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "{language}: took {:?}",
                started.elapsed()
            );
            // Then the kernel answers again (its state may be lost) and so does run().
            let print = match language {
                Language::Python => "print('alive')",
                Language::JavaScript => "console.log('alive')",
                _ => "puts 'alive'",
            };
            let after = s.execute(print).await.unwrap();
            assert_eq!(after.stdout, "alive\n", "{language}: {after:?}");
            let hello = match language {
                Language::Python => "print('run ok')",
                Language::JavaScript => "console.log('run ok')",
                _ => "puts 'run ok'",
            };
            let run = s.run(hello, &[]).await.unwrap();
            assert_eq!(run.stdout, "run ok\n", "{language}: {run:?}");
            close_and_check(&t, s).await;
        }
    }
);

per_target!(
    a_memory_bomb_is_oom_killed_with_137,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t
            .builder(Language::Python)
            .memory(128 << 20)
            .open()
            .await
            .unwrap();
        let r = s
            .run(
                "x = []\nwhile True:\n    x.append(bytearray(16 << 20))",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(r.exit_code, 137, "{}", r.stderr);
        assert!(r.oom_killed);
        assert!(!r.timed_out);
        let r = s.run("print('after oom')", &[]).await.unwrap();
        assert_eq!(r.stdout, "after oom\n");
        assert!(!r.oom_killed);
        close_and_check(&t, s).await;
    }
);

per_target!(
    a_hundred_megabytes_of_output_is_capped,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let r = s
            .run("import sys\nchunk = 'y' * 65536\nfor _ in range(1600):\n    sys.stdout.write(chunk)\nprint('end', file=sys.stderr)", &[])
            .await
            .unwrap();
        assert!(r.truncated);
        assert_eq!(r.stdout.len(), 1 << 20);
        assert_eq!(r.stderr, "end\n");
        assert_eq!(r.exit_code, 0);
        close_and_check(&t, s).await;
    }
);

per_target!(
    writing_until_the_disk_is_full_gives_enospc_and_spares_the_host,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t
            .builder(Language::Python)
            .disk(64 << 20)
            .open()
            .await
            .unwrap();
        assert!(
            s.has_disk_limit(),
            "this engine should get a loop-backed workdir disk"
        );
        let r = s
            .run(
                "import errno\nn = 0\ntry:\n    with open('fill.bin', 'wb') as f:\n        while True:\n            f.write(b'\\0' * (1 << 20)); f.flush(); n += 1\nexcept OSError as e:\n    print(errno.errorcode[e.errno], n)",
                &[],
            )
            .await
            .unwrap();
        let mut words = r.stdout.split_whitespace();
        assert_eq!(words.next(), Some("ENOSPC"), "{} {}", r.stdout, r.stderr);
        let written: u64 = words.next().unwrap().parse().unwrap();
        assert!((40..=64).contains(&written), "wrote {written} MiB");
        // The file-size limit applies to a single file anywhere.
        let r = s
            .run("open('/tmp/x', 'wb').write(b'0' * (80 << 20))", &[])
            .await
            .unwrap();
        assert_ne!(r.exit_code, 0);
        close_and_check(&t, s).await;
    }
);

per_target!(
    kernel_and_host_interfaces_are_out_of_reach,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let code = r#"
import os, errno
def attempt(name, f):
    try:
        f()
        print(name, "ALLOWED")
    except OSError as e:
        print(name, errno.errorcode.get(e.errno, e.errno))
attempt("sysrq", lambda: open("/proc/sysrq-trigger", "w").write("b"))
attempt("mknod", lambda: os.mknod("/sandbox/dev0", 0o600 | 0o060000, os.makedev(8, 0)))
attempt("shadow", lambda: open("/etc/shadow").read())
attempt("mount", lambda: os.system("mount -t tmpfs none /mnt 2>/dev/null") == 0 and (_ for _ in ()).throw(OSError(0, "mounted")) or (_ for _ in ()).throw(OSError(errno.EPERM, "refused")))
attempt("kmsg", lambda: open("/dev/kmsg").read(1))
attempt("write-root", lambda: open("/etc/evil", "w"))
attempt("setuid", lambda: os.setuid(0))
"#;
        let r = s.run(code, &[]).await.unwrap();
        let got: Vec<&str> = r.stdout.lines().collect();
        assert_eq!(got.len(), 7, "{}\n{}", r.stdout, r.stderr);
        for line in &got {
            assert!(!line.ends_with("ALLOWED"), "{line}\n{}", r.stdout);
        }
        if !t.is_gvisor() {
            // gVisor's own kernel answers some of these with other errors; none is allowed.
            assert_eq!(
                got,
                [
                    "sysrq ENOENT",
                    "mknod EPERM",
                    "shadow EACCES",
                    "mount EPERM",
                    "kmsg ENOENT",
                    "write-root EACCES",
                    "setuid EPERM",
                ],
                "{}",
                r.stderr
            );
        }
        close_and_check(&t, s).await;
    }
);

per_target!(
    a_ten_megabyte_source_runs,
    [docker, gvisor, podman],
    |t: Target| async move {
        let s = t.builder(Language::Python).open().await.unwrap();
        let code = format!("# {}\nprint('big source ok')\n", "z".repeat(10 << 20));
        let r = s.run(&code, &[]).await.unwrap();
        assert_eq!(r.stdout, "big source ok\n", "{}", r.stderr);
        close_and_check(&t, s).await;
    }
);

#[tokio::test(flavor = "multi_thread")]
async fn policies_switch_real_enforcement() {
    let docker = crate::support::target("docker").await.unwrap();
    let s = python()
        .await
        .policy(SecurityPolicy::strict())
        .open()
        .await
        .unwrap();
    // strict runs under gVisor when the engine offers it.
    let gvisor = engine()
        .await
        .info()
        .await
        .unwrap()
        .runtime("runsc")
        .is_some();
    assert_eq!(s.runtime(), gvisor.then_some("runsc"));
    let err = s.execute_command("echo hi").await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    assert_eq!(err.kind(), sandpit::ErrorKind::Refused);
    let r = s
        .run("import os; print(os.cpu_count() > 0)", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "True\n");
    close_and_check(&docker, s).await;

    let mut ro = SecurityPolicy::standard();
    ro.workdir_writable = false;
    let s = python().await.policy(ro).open().await.unwrap();
    let r = s
        .run("import os\ntry:\n    open('x', 'w')\nexcept OSError as e:\n    print('refused', e.errno)\nprint(os.getcwd())", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "refused 30\n/sandbox\n", "{}", r.stderr);
    close_and_check(&docker, s).await;

    let err = python().await.cpus(0.0).open().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = python().await.runtime("nope").open().await.unwrap_err();
    assert_eq!(err.kind(), sandpit::ErrorKind::InvalidInput, "{err}");
    assert!(
        err.to_string().contains("runc"),
        "lists the runtimes: {err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sessions_half_fork_bombs_the_rest_answer_in_time() {
    let docker = crate::support::target("docker").await.unwrap();
    let builder = python().await.max_processes(64);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let b = builder.clone();
        tasks.push(tokio::spawn(async move {
            let s = b
                .open()
                .await
                .unwrap_or_else(|e| panic!("session {i} did not open: {e}"));
            let started = Instant::now();
            let r = if i % 2 == 0 {
                s.run_with(PY_BOMB, RunOptions::new().timeout(Duration::from_secs(8)))
                    .await
            } else {
                s.run_with(
                    &format!("print(sum(range({i} * 1000)))"),
                    RunOptions::new().timeout(Duration::from_secs(60)),
                )
                .await
            };
            let r = r.unwrap_or_else(|e| panic!("session {i}: the run failed: {e}"));
            let took = started.elapsed();
            let id = s.id().to_string();
            s.close()
                .await
                .unwrap_or_else(|e| panic!("session {i} did not close: {e}"));
            (i, r, took, id)
        }));
    }
    let mut tooks = Vec::new();
    for t in tasks {
        let (i, r, took, id) = t.await.unwrap();
        if i % 2 == 0 {
            assert!(r.timed_out, "bomb {i} was not stopped: {r:?}");
        } else {
            let expected: u64 = (0..(i as u64 * 1000)).sum();
            assert_eq!(
                r.stdout,
                format!("{expected}\n"),
                "session {i}: {}",
                r.stderr
            );
            assert!(
                !r.timed_out,
                "session {i} ran into its timeout beside the bombs"
            );
            tooks.push(took);
        }
        assert_eq!(containers_of(&docker.engine, &id).await, 0, "session {i}");
    }
    println!("beside ten fork bombs, ten runs took {tooks:?}");
    assert_host_responsive(&docker).await;
}
