//! `sandpit bench`'s calls in an open session, per engine and runtime: a command `true`, a
//! Python `print(1)` run beside the same program started inside the sandbox by a process
//! already there, a MiB written then read, and a kernel `execute`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use sandpit::{CommandOptions, Language, LanguageExt, SandboxSession};

use crate::bench::{median, Target};

/// Times `f` `iterations` times after one warm-up.
async fn timed<F, Fut>(iterations: usize, mut f: F) -> Result<Vec<Duration>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut times = Vec::with_capacity(iterations);
    for i in 0..=iterations {
        let started = Instant::now();
        f().await?;
        if i > 0 {
            times.push(started.elapsed());
        }
    }
    Ok(times)
}

/// The same `print(1)` started `n` times by a Python process already in the sandbox: the
/// median of those starts, in milliseconds, as that process measured them.
const INSIDE: &str = r#"import subprocess, sys, time
n = int(sys.argv[1])
times = []
for _ in range(n + 1):
    t = time.perf_counter()
    out = subprocess.run(['python3', '-c', 'print(1)'], capture_output=True).stdout
    times.append(time.perf_counter() - t)
    assert out == b'1\n', out
times = sorted(times[1:])
print(times[len(times) // 2] * 1000 if n % 2 else (times[n // 2 - 1] + times[n // 2]) * 500)"#;

/// Prints one line of figures per target.
pub async fn bench_calls(targets: &[Target], iterations: usize, width: usize) -> Result<()> {
    println!();
    println!(
        "{:<width$} {:>8} {:>8} {:>8} {:>6} {:>10} {:>8}",
        "calls in a session", "true", "run", "inside", "ratio", "1 MiB w+r", "execute"
    );
    for t in targets {
        let mut builder = SandboxSession::builder()
            .language(Language::Python)
            .engine(t.engine.clone());
        if let Some(r) = &t.runtime {
            builder = builder.runtime(r.clone());
        }
        let session = builder.open().await?;
        let figures = calls(&session, iterations).await;
        session.close().await?;
        let f = figures.with_context(|| format!("{}: calls in a session", t.label))?;
        println!(
            "{:<width$} {:>8.2} {:>8.1} {:>8.1} {:>6.2} {:>10.1} {:>8.2}",
            t.label,
            median(&f.command),
            median(&f.run),
            f.inside,
            median(&f.run) / f.inside,
            median(&f.file),
            median(&f.execute)
        );
    }
    println!(
        "(milliseconds, medians; inside: the same print(1) started by a Python process already in the sandbox; ratio: run / inside)"
    );
    Ok(())
}

struct Calls {
    command: Vec<Duration>,
    run: Vec<Duration>,
    inside: f64,
    file: Vec<Duration>,
    execute: Vec<Duration>,
}

async fn calls(s: &SandboxSession, iterations: usize) -> Result<Calls> {
    let command = timed(iterations, || async {
        let out = s.execute_argv(&["true"], CommandOptions::new()).await?;
        if out.exit_code != 0 {
            bail!("true exited {}", out.exit_code);
        }
        Ok(())
    })
    .await?;
    let run = timed(iterations, || async {
        let out = s.run("print(1)", &[]).await?;
        if out.stdout != "1\n" {
            bail!("the run printed {:?}", out.stdout);
        }
        Ok(())
    })
    .await?;
    let n = iterations.max(1).to_string();
    let inside = s
        .execute_argv(&["python3", "-c", INSIDE, &n], CommandOptions::new())
        .await?;
    let inside: f64 = inside.stdout.trim().parse().with_context(|| {
        format!(
            "the inside measure said {:?} {:?}",
            inside.stdout, inside.stderr
        )
    })?;
    let mib = vec![7u8; 1 << 20];
    let file = timed(iterations, || async {
        s.files().write("bench.bin", &mib, None).await?;
        if s.files().read("bench.bin").await?.len() != mib.len() {
            bail!("the MiB read back is not whole");
        }
        Ok(())
    })
    .await?;
    let execute = timed(iterations, || async {
        let out = s.execute("1 + 1").await?;
        if out.results.first().and_then(|r| r.text()) != Some("2") {
            bail!("execute answered {out:?}");
        }
        Ok(())
    })
    .await?;
    Ok(Calls {
        command,
        run,
        inside,
        file,
        execute,
    })
}
