//! The adversarial suite: each attack ends in an exact, clear outcome; the host stays
//! responsive; no container is left behind.

use std::time::{Duration, Instant};

use sandpit::{Error, Network, RunOptions, SandboxSession, SecurityPolicy};

use crate::support::{ca_bundle, containers_of, engine, python};

/// The host answers quickly: a process starts and the engine replies.
async fn assert_host_responsive() {
    let t = Instant::now();
    let ok = std::process::Command::new("true")
        .status()
        .unwrap()
        .success();
    assert!(ok);
    engine().await.docker().ping().await.unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "host slow: {:?}",
        t.elapsed()
    );
}

async fn close_and_check(s: SandboxSession) {
    let engine = engine().await;
    s.close().await.unwrap();
    assert_eq!(
        containers_of(&engine, s.id()).await,
        0,
        "container left behind"
    );
    assert_host_responsive().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn defaults_drop_privileges_and_limit_resources() {
    let engine = engine().await;
    let s = python().await.open().await.unwrap();
    let info = engine
        .docker()
        .inspect_container(s.container_name(), None)
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(host.privileged, Some(false));
    assert!(host
        .security_opt
        .unwrap()
        .contains(&"no-new-privileges".to_string()));
    assert_eq!(host.memory, Some(512 << 20));
    assert_eq!(host.memory_swap, Some(512 << 20));
    assert_eq!(host.nano_cpus, Some(1_000_000_000));
    assert_eq!(host.pids_limit, Some(256));
    assert!(host.binds.unwrap_or_default().is_empty(), "no host mounts");
    let r = s
        .run(
            "import os\nprint(os.getuid(), os.getgid())\nprint(open('/proc/self/status').read().split('CapEff:')[1].split()[0])\nprint(os.path.exists('/var/run/docker.sock'))",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(
        r.stdout, "1000 1000\n0000000000000000\nFalse\n",
        "{}",
        r.stderr
    );
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_network_is_off_and_an_install_does_not_turn_it_on_for_user_code() {
    let ca = ca_bundle().expect("a CA bundle");
    let bridge = engine()
        .await
        .docker()
        .inspect_network(
            "bridge",
            None::<sandpit::bollard::query_parameters::InspectNetworkOptions>,
        )
        .await
        .unwrap();
    // The engine's bridge gateway: an address of this very machine.
    let gateway = bridge
        .ipam
        .and_then(|i| i.config)
        .and_then(|c| c.first().and_then(|c| c.gateway.clone()))
        .unwrap();
    let s = python()
        .await
        .extra_ca_certificates(&ca)
        .open()
        .await
        .unwrap();
    let probe = format!(
        "import socket\nprint(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\ntry:\n    socket.create_connection(('{gateway}', 2375), timeout=3)\n    print('connected')\nexcept OSError as e:\n    print(type(e).__name__, e.errno)"
    );
    let r = s.run(&probe, &[]).await.unwrap();
    assert_eq!(r.stdout, "['lo']\nOSError 101\n", "{}", r.stderr);
    // The install reaches the package index; user code afterwards still has only lo.
    let r = s.run(&probe, &["tabulate"]).await.unwrap();
    assert_eq!(r.stdout, "['lo']\nOSError 101\n", "{}", r.stderr);
    let r = s
        .run("import tabulate; print('imported')", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "imported\n");
    close_and_check(s).await;

    let open = python()
        .await
        .network(Network::Bridge)
        .open()
        .await
        .unwrap();
    let r = open
        .run(
            &probe.replace(&format!("('{gateway}', 2375)"), "('127.0.0.1', 9)"),
            &[],
        )
        .await
        .unwrap();
    assert!(
        r.stdout.contains("eth0"),
        "a bridge session has an interface: {}",
        r.stdout
    );
    close_and_check(open).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_fork_bomb_hits_the_process_limit_and_is_killed() {
    let s = python().await.open().await.unwrap();
    let t = Instant::now();
    let r = s
        .run_with(
            "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
            RunOptions::new().timeout(Duration::from_secs(5)),
        )
        .await
        .unwrap();
    assert!(r.timed_out);
    assert!(
        t.elapsed() < Duration::from_secs(30),
        "took {:?}",
        t.elapsed()
    );
    let after = s.run("print('alive')", &[]).await.unwrap();
    assert_eq!(after.stdout, "alive\n");
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_bomb_is_oom_killed_with_137() {
    let s = python().await.memory(128 << 20).open().await.unwrap();
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
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hundred_megabytes_of_output_is_capped() {
    let s = python().await.open().await.unwrap();
    let r = s
        .run("import sys\nchunk = 'y' * 65536\nfor _ in range(1600):\n    sys.stdout.write(chunk)\nprint('end', file=sys.stderr)", &[])
        .await
        .unwrap();
    assert!(r.truncated);
    assert_eq!(r.stdout.len(), 1 << 20);
    assert_eq!(r.stderr, "end\n");
    assert_eq!(r.exit_code, 0);
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn writing_until_the_disk_is_full_gives_enospc_and_spares_the_host() {
    let s = python().await.disk(64 << 20).open().await.unwrap();
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
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn kernel_and_host_interfaces_are_out_of_reach() {
    let s = python().await.open().await.unwrap();
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
"#;
    let r = s.run(code, &[]).await.unwrap();
    let got: Vec<&str> = r.stdout.lines().collect();
    assert_eq!(
        got,
        [
            "sysrq ENOENT",
            "mknod EPERM",
            "shadow EACCES",
            "mount EPERM",
            "kmsg ENOENT",
            "write-root EACCES"
        ],
        "{}",
        r.stderr
    );
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_ten_megabyte_source_runs() {
    let s = python().await.open().await.unwrap();
    let code = format!("# {}\nprint('big source ok')\n", "z".repeat(10 << 20));
    let r = s.run(&code, &[]).await.unwrap();
    assert_eq!(r.stdout, "big source ok\n", "{}", r.stderr);
    close_and_check(s).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_switch_real_enforcement() {
    let s = python()
        .await
        .policy(SecurityPolicy::strict())
        .open()
        .await
        .unwrap();
    let err = s.execute_command("echo hi").await.unwrap_err();
    assert!(matches!(err, Error::Refused(_)), "{err}");
    let r = s
        .run("import os; print(os.cpu_count() > 0)", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "True\n");
    close_and_check(s).await;

    let mut ro = SecurityPolicy::standard();
    ro.workdir_writable = false;
    let s = python().await.policy(ro).open().await.unwrap();
    let r = s
        .run("import os\ntry:\n    open('x', 'w')\nexcept OSError as e:\n    print('refused', e.errno)\nprint(os.getcwd())", &[])
        .await
        .unwrap();
    assert_eq!(r.stdout, "refused 30\n/sandbox\n", "{}", r.stderr);
    close_and_check(s).await;

    let err = python().await.cpus(0.0).open().await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn twenty_sessions_half_fork_bombs_the_rest_answer_in_time() {
    let builder = python().await.max_processes(64);
    let mut tasks = Vec::new();
    for i in 0..20 {
        let b = builder.clone();
        tasks.push(tokio::spawn(async move {
            let s = b.open().await.unwrap();
            let started = Instant::now();
            let r = if i % 2 == 0 {
                s.run_with(
                    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
                    RunOptions::new().timeout(Duration::from_secs(8)),
                )
                .await
                .unwrap()
            } else {
                s.run_with(
                    &format!("print(sum(range({i} * 1000)))"),
                    RunOptions::new().timeout(Duration::from_secs(60)),
                )
                .await
                .unwrap()
            };
            let took = started.elapsed();
            let id = s.id().to_string();
            s.close().await.unwrap();
            (i, r, took, id)
        }));
    }
    let engine = engine().await;
    for t in tasks {
        let (i, r, took, id) = t.await.unwrap();
        if i % 2 == 0 {
            assert!(r.timed_out, "bomb {i} was not stopped");
        } else {
            let expected: u64 = (0..(i as u64 * 1000)).sum();
            assert_eq!(
                r.stdout,
                format!("{expected}\n"),
                "session {i}: {}",
                r.stderr
            );
            assert!(took < Duration::from_secs(30), "session {i} took {took:?}");
        }
        assert_eq!(containers_of(&engine, &id).await, 0);
    }
    assert_host_responsive().await;
}
