//! `sandpit bench`: open, run and close on every engine and runtime at hand (the engine's
//! runtimes, and each `--engine`), beside the raw engine calls for the same work; the calls in
//! an open session (`bench_calls`); then the one-shot `sandpit run` beside `docker run --rm`. `--languages` and `--peer` measure other
//! things (see their files).

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use sandpit::image::ensure_default_image;
use sandpit::{Connection, Engine, Language, LanguageExt, SandboxSession};

use crate::connect::ConnectionArgs;

/// Arguments of `sandpit bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Iterations per figure (at least 20 for the published medians).
    #[arg(long, short = 'n', default_value_t = 20)]
    iterations: usize,
    /// Another engine to measure beside the first, e.g. Podman's socket (repeatable)
    #[arg(long = "engine", value_name = "HOST")]
    engines: Vec<String>,
    /// Skip the one-shot comparison with `docker run --rm`
    #[arg(long)]
    no_one_shot: bool,
    /// Instead: per language (all, or those listed), a hello world's run in an open session
    #[arg(long, value_name = "LANG", num_args = 0.., value_delimiter = ',')]
    languages: Option<Vec<String>>,
    #[command(flatten)]
    peer: crate::bench_peer::PeerArgs,
}

/// One engine and runtime to measure.
pub(crate) struct Target {
    pub(crate) label: String,
    pub(crate) engine: Engine,
    pub(crate) runtime: Option<String>,
}

pub async fn bench(conn: &ConnectionArgs, args: BenchArgs) -> Result<u8> {
    if args.peer.peer {
        return crate::bench_peer::bench_peer(conn, &args.peer, args.iterations).await;
    }
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let engine = conn.engine().await?;
    if let Some(names) = &args.languages {
        let languages: Vec<Language> = if names.is_empty() {
            Language::ALL.to_vec()
        } else {
            names
                .iter()
                .map(|n| n.parse::<Language>())
                .collect::<Result<_, _>>()?
        };
        return crate::bench_languages::bench_languages(&engine, &languages, args.iterations).await;
    }
    let mut targets = targets_of(&engine).await?;
    for host in &args.engines {
        let connection = Connection::from_parts(Some(host), false, None)?;
        let other = sandpit::connect(&connection)
            .await
            .with_context(|| format!("--engine {host}"))?;
        targets.extend(targets_of(&other).await?);
    }
    let spec = sandpit::runner(Language::Python).default_image();
    eprintln!(
        "Python print(1), {} iterations per figure after one warm-up",
        args.iterations
    );
    let width = targets
        .iter()
        .map(|t| t.label.len())
        .max()
        .unwrap_or(0)
        .max("engine/runtime".len());
    println!(
        "{:<width$} {:>8} {:>8} {:>8}   {:>10} {:>8} {:>8}",
        "engine/runtime", "open", "run", "close", "raw create", "raw exec", "raw rm"
    );
    for t in &targets {
        ensure_default_image(&t.engine, &spec, &sandpit::image::quiet()).await?;
        let f = measure(t, &spec.tag, args.iterations).await?;
        println!(
            "{:<width$} {:>8.1} {:>8.1} {:>8.1}   {:>10.1} {:>8.1} {:>8.1}",
            t.label,
            median(&f.open),
            median(&f.run),
            median(&f.close),
            median(&f.raw_open),
            median(&f.raw_exec),
            median(&f.raw_close)
        );
    }
    println!("(milliseconds, medians; raw: the same engine calls without Sandpit's settings)");
    crate::bench_calls::bench_calls(&targets, args.iterations, width).await?;
    if !args.no_one_shot {
        one_shot(conn, &spec.tag, args.iterations)?;
    }
    Ok(0)
}

/// The engine with each runtime it offers.
async fn targets_of(engine: &Engine) -> Result<Vec<Target>> {
    let info = engine.info().await?;
    let kind = info.kind.to_string().to_ascii_lowercase();
    Ok(info
        .runtimes
        .iter()
        .map(|r| Target {
            label: format!("{kind}/{}", r.name),
            engine: engine.clone(),
            runtime: (r.name != info.default_runtime).then(|| r.name.clone()),
        })
        .collect())
}

#[derive(Default)]
struct Figures {
    open: Vec<Duration>,
    run: Vec<Duration>,
    close: Vec<Duration>,
    raw_open: Vec<Duration>,
    raw_exec: Vec<Duration>,
    raw_close: Vec<Duration>,
}

async fn measure(t: &Target, image: &str, iterations: usize) -> Result<Figures> {
    let mut f = Figures::default();
    for i in 0..=iterations {
        let name = format!("sandpit-bench-raw-{}-{i}", std::process::id());
        let started = Instant::now();
        crate::raw::create_start(&t.engine, image, &name, "none", t.runtime.as_deref()).await?;
        let d_open = started.elapsed();
        let started = Instant::now();
        let out = crate::raw::run(&t.engine, &name, &["python3", "-u", "-c", "print(1)"]).await;
        let d_exec = started.elapsed();
        let started = Instant::now();
        crate::raw::remove(&t.engine, &name).await?;
        let d_close = started.elapsed();
        if out? != "1\n" {
            bail!("{}: the raw exec did not print 1", t.label);
        }

        let started = Instant::now();
        let mut builder = SandboxSession::builder()
            .language(Language::Python)
            .engine(t.engine.clone());
        if let Some(r) = &t.runtime {
            builder = builder.runtime(r.clone());
        }
        let session = builder.open().await?;
        let s_open = started.elapsed();
        let started = Instant::now();
        let result = session.run("print(1)", &[]).await;
        let s_run = started.elapsed();
        let started = Instant::now();
        session.close().await?;
        let s_close = started.elapsed();
        if result?.stdout != "1\n" {
            bail!("{}: sandpit's run did not print 1", t.label);
        }
        if i > 0 {
            f.raw_open.push(d_open);
            f.raw_exec.push(d_exec);
            f.raw_close.push(d_close);
            f.open.push(s_open);
            f.run.push(s_run);
            f.close.push(s_close);
        }
    }
    Ok(f)
}

/// `sandpit run -l python -c 'print(1)'` beside `docker run --rm` of the same image and
/// program, alternating, as whole commands.
fn one_shot(conn: &ConnectionArgs, image: &str, iterations: usize) -> Result<()> {
    let me = std::env::current_exe().context("finding the sandpit binary")?;
    let docker_ok = std::process::Command::new("docker")
        .arg("version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !docker_ok {
        eprintln!("one-shot: skipped (no docker CLI that reaches the engine)");
        return Ok(());
    }
    let host = conn.connection()?.endpoint().to_string();
    let timed = |cmd: &mut std::process::Command| -> Result<Duration> {
        let started = Instant::now();
        let out = cmd.stderr(Stdio::null()).output()?;
        let took = started.elapsed();
        if String::from_utf8_lossy(&out.stdout) != "1\n" {
            bail!("{cmd:?} did not print 1");
        }
        Ok(took)
    };
    let (mut ours, mut docker) = (Vec::new(), Vec::new());
    for i in 0..=iterations {
        let a = timed(
            std::process::Command::new(&me)
                .args(["--host", &host, "run", "-l", "python", "-c", "print(1)"]),
        )?;
        let b = timed(
            std::process::Command::new("docker")
                .env("DOCKER_HOST", &host)
                .args([
                    "run",
                    "--rm",
                    "--network",
                    "none",
                    image,
                    "python3",
                    "-c",
                    "print(1)",
                ]),
        )?;
        if i > 0 {
            ours.push(a);
            docker.push(b);
        }
    }
    let (a, b) = (median(&ours), median(&docker));
    println!(
        "one-shot, whole commands: sandpit run {a:.1} ms, docker run --rm {b:.1} ms ({:.2}x)",
        a / b
    );
    Ok(())
}

pub fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let n = ms.len();
    if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    }
}
