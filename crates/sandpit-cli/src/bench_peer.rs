//! `sandpit bench --peer`: Sandpit's half of the benchmark against llm-sandbox
//! (`scripts/bench-peer.sh` runs both halves on the same engine and image and prints one table).
//!
//! Medians of: one-shot open + run `print(1)` + close, and each step, beside the raw engine calls
//! for the same work (create + start of a container with no network, one exec, a forced remove);
//! stateful `execute` calls; a warm pool's acquire and acquire + run + release; N sessions opened
//! at once beside N raw creates + starts at once; and the memory of idle sessions with their
//! kernel started (the container's memory cgroup usage minus page cache, from the engine's
//! one-shot stats). Sessions use the library's defaults (network none, standard policy).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use sandpit::image::ensure_default_image;
use sandpit::{
    Engine, Language, LanguageExt, PoolConfig, SandboxSession, SessionBuilder, SessionPool,
};
use serde_json::{json, Value};

/// Flags of the peer suite (flattened into `sandpit bench`).
#[derive(Debug, Args)]
pub struct PeerArgs {
    /// Instead: the suite compared with llm-sandbox (see scripts/bench-peer.sh)
    #[arg(long)]
    pub peer: bool,
    /// With --peer: print one JSON object (samples and medians) instead of a table
    #[arg(long, requires = "peer")]
    pub json: bool,
    /// With --peer: stateful rounds, each `x = 41` then `print(x + 1)`
    #[arg(long, default_value_t = 100, requires = "peer")]
    pub stateful_rounds: usize,
    /// With --peer: sessions opened at once
    #[arg(long, default_value_t = 50, requires = "peer")]
    pub concurrent: usize,
    /// With --peer: repetitions of the concurrent opens (and of the raw engine's)
    #[arg(long, default_value_t = 3, requires = "peer")]
    pub concurrent_reps: usize,
    /// With --peer: idle sessions whose memory is measured
    #[arg(long, default_value_t = 5, requires = "peer")]
    pub memory_sessions: usize,
}

/// Samples of one figure, in milliseconds (or MiB).
#[derive(Default)]
struct Figure(Vec<f64>);

impl Figure {
    fn push(&mut self, d: Duration) {
        self.0.push(d.as_secs_f64() * 1000.0);
    }

    fn median(&self) -> Option<f64> {
        let mut v = self.0.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(|a, b| a.total_cmp(b));
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }

    fn json(&self) -> Value {
        let round = |x: f64| (x * 10_000.0).round() / 10_000.0;
        json!({
            "median": self.median().map(round),
            "n": self.0.len(),
            "samples": self.0.iter().map(|&x| round(x)).collect::<Vec<_>>(),
        })
    }
}

/// Every figure of the suite, by key (the keys the peer's script uses too).
#[derive(Default)]
struct Report {
    rows: Vec<(&'static str, Figure)>,
    notes: Vec<String>,
}

impl Report {
    /// Adds a figure, or its samples to the figure already under `key`.
    fn put(&mut self, key: &'static str, figure: Figure) {
        match self.rows.iter_mut().find(|(k, _)| *k == key) {
            Some((_, f)) => f.0.extend(figure.0),
            None => self.rows.push((key, figure)),
        }
    }
}

fn builder(engine: &Engine) -> SessionBuilder {
    SandboxSession::builder()
        .language(Language::Python)
        .engine(engine.clone())
}

pub async fn bench_peer(
    conn: &crate::connect::ConnectionArgs,
    args: &PeerArgs,
    iterations: usize,
) -> Result<u8> {
    if iterations == 0 || args.concurrent == 0 || args.concurrent_reps == 0 {
        bail!("--iterations, --concurrent and --concurrent-reps must be at least 1");
    }
    let engine = conn.engine().await?;
    let spec = sandpit::runner(Language::Python).default_image();
    ensure_default_image(&engine, &spec, &sandpit::image::quiet()).await?;
    eprintln!(
        "sandpit: engine API {}, image {}, {iterations} iterations",
        engine.info().await?.negotiated_api_version,
        spec.tag
    );
    let mut report = Report::default();
    let image = spec.tag.clone();

    eprintln!(
        "sandpit: one-shot open + run + close, and the raw engine's create + start, exec, remove"
    );
    one_shot(&engine, &image, iterations, &mut report).await?;
    eprintln!("sandpit: stateful execute, {} rounds", args.stateful_rounds);
    stateful(&engine, args.stateful_rounds, &mut report).await?;
    eprintln!("sandpit: pool acquire + run + release");
    pool(&engine, iterations, &mut report).await?;
    eprintln!("sandpit: memory of {} idle sessions", args.memory_sessions);
    memory(&engine, args.memory_sessions, &mut report).await?;
    eprintln!(
        "sandpit: {} sessions opened at once, {} times, beside the raw engine",
        args.concurrent, args.concurrent_reps
    );
    concurrent(
        &engine,
        &image,
        args.concurrent,
        args.concurrent_reps,
        &mut report,
    )
    .await?;

    if args.json {
        let rows: serde_json::Map<String, Value> = report
            .rows
            .iter()
            .map(|(k, f)| (k.to_string(), f.json()))
            .collect();
        let out = json!({
            "tool": "sandpit",
            "version": env!("CARGO_PKG_VERSION"),
            "engine_api": engine.info().await?.negotiated_api_version,
            "image": image,
            "iterations": iterations,
            "stateful_rounds": args.stateful_rounds,
            "concurrent": args.concurrent,
            "loop_disks": sandpit::loop_disks_available(&engine.info().await?),
            "rows": rows,
            "notes": report.notes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        println!("{:<28} {:>10} {:>5}", "figure", "median", "n");
        for (key, f) in &report.rows {
            let m = f.median().map_or("-".into(), |m| format!("{m:.1}"));
            println!("{key:<28} {m:>10} {:>5}", f.0.len());
        }
        for note in &report.notes {
            println!("note: {note}");
        }
    }
    Ok(0)
}

/// One-shot: open, run `print(1)`, close; beside the raw engine doing the same work.
async fn one_shot(
    engine: &Engine,
    image: &str,
    iterations: usize,
    report: &mut Report,
) -> Result<()> {
    // [total, open, run, close], Sandpit's then the raw engine's.
    let mut ours: [Figure; 4] = Default::default();
    let mut raw: [Figure; 4] = Default::default();
    // One warm-up iteration of each, not counted.
    for i in 0..=iterations {
        let name = raw_name(&format!("oneshot-{i}"));
        let t = Instant::now();
        crate::raw::create_start(engine, image, &name, "none", None).await?;
        let d_open = t.elapsed();
        let t1 = Instant::now();
        let out = crate::raw::run(engine, &name, &["python", "-u", "-c", "print(1)"]).await;
        let d_run = t1.elapsed();
        let t2 = Instant::now();
        crate::raw::remove(engine, &name).await?;
        let d_close = t2.elapsed();
        let d_total = t.elapsed();
        let out = out?;
        if out != "1\n" {
            bail!("the raw exec printed {out:?}, expected \"1\\n\"");
        }

        let t = Instant::now();
        let session = builder(engine).open().await?;
        let s_open = t.elapsed();
        let t1 = Instant::now();
        let result = session.run("print(1)", &[]).await;
        let s_run = t1.elapsed();
        let t2 = Instant::now();
        session.close().await?;
        let s_close = t2.elapsed();
        let s_total = t.elapsed();
        let result = result?;
        if result.stdout != "1\n" {
            bail!(
                "sandpit's run printed {:?}, expected \"1\\n\"",
                result.stdout
            );
        }
        if i > 0 {
            for (f, d) in ours.iter_mut().zip([s_total, s_open, s_run, s_close]) {
                f.push(d);
            }
            for (f, d) in raw.iter_mut().zip([d_total, d_open, d_run, d_close]) {
                f.push(d);
            }
        }
    }
    let [total, open, run, close] = ours;
    report.put("oneshot_ms", total);
    report.put("open_ms", open);
    report.put("run_ms", run);
    report.put("close_ms", close);
    let [total, open, run, close] = raw;
    report.put("raw_oneshot_ms", total);
    report.put("raw_open_ms", open);
    report.put("raw_run_ms", run);
    report.put("raw_close_ms", close);
    report.notes.push(
        "raw engine: create + start (network none, same image and keep-alive command), one exec of `python -u -c print(1)` as uid 1000, a forced remove".into(),
    );
    Ok(())
}

/// Stateful: one session, its kernel started, then rounds of `x = 41` and `print(x + 1)`.
async fn stateful(engine: &Engine, rounds: usize, report: &mut Report) -> Result<()> {
    let t = Instant::now();
    let session = builder(engine).open().await?;
    let result = async {
        session.start_kernel().await?;
        let mut open = Figure::default();
        open.push(t.elapsed());
        // A first request after the start, not counted.
        session.execute("pass").await?;
        let (mut calls, mut prints) = (Figure::default(), Figure::default());
        for _ in 0..rounds {
            let t = Instant::now();
            let a = session.execute("x = 41").await?;
            calls.push(t.elapsed());
            let t = Instant::now();
            let b = session.execute("print(x + 1)").await?;
            let d = t.elapsed();
            calls.push(d);
            prints.push(d);
            if !a.success() || b.stdout != "42\n" {
                bail!(
                    "the stateful calls gave {:?} / {:?} (error {:?})",
                    a.stdout,
                    b.stdout,
                    b.error.or(a.error)
                );
            }
        }
        Ok::<_, anyhow::Error>((open, calls, prints))
    }
    .await;
    session.close().await?;
    let (open, calls, prints) = result?;
    report.put("stateful_open_ms", open);
    report.put("stateful_call_ms", calls);
    report.put("stateful_print_ms", prints);
    Ok(())
}

/// A warm pool (2 idle, kernels not started): acquire, run `print(1)`, release; each iteration
/// starts once the pool is full again, so it measures a warm acquire.
async fn pool(engine: &Engine, iterations: usize, report: &mut Report) -> Result<()> {
    let config = PoolConfig {
        idle: 2,
        max_size: 4,
        kernel: false,
        ..Default::default()
    };
    let pool = SessionPool::new(builder(engine), config)?;
    let result = async {
        let (mut acquire, mut run, mut release, mut cycle) = (
            Figure::default(),
            Figure::default(),
            Figure::default(),
            Figure::default(),
        );
        for i in 0..=iterations {
            pool.warm_up(Duration::from_secs(120)).await?;
            let t = Instant::now();
            let session = pool.acquire().await?;
            let d_acquire = t.elapsed();
            let t1 = Instant::now();
            let r = session.run("print(1)", &[]).await;
            let d_run = t1.elapsed();
            let t2 = Instant::now();
            session.release().await?;
            let d_release = t2.elapsed();
            let d_cycle = t.elapsed();
            let r = r?;
            if r.stdout != "1\n" {
                bail!("a pooled run printed {:?}", r.stdout);
            }
            if i > 0 {
                acquire.push(d_acquire);
                run.push(d_run);
                release.push(d_release);
                cycle.push(d_cycle);
            }
        }
        Ok::<_, anyhow::Error>((acquire, run, release, cycle))
    }
    .await;
    pool.close().await?;
    let (acquire, run, release, cycle) = result?;
    report.put("pool_acquire_ms", acquire);
    report.put("pool_run_ms", run);
    report.put("pool_release_ms", release);
    report.put("pool_cycle_ms", cycle);
    report.notes.push(
        "pool: SessionPool idle 2, max 4, kernels not started; release closes the session (awaited) and a fresh one opens in the background; each acquire starts with the pool full".into(),
    );
    Ok(())
}

/// Memory of idle sessions, before and after their kernel starts (usage minus page cache).
async fn memory(engine: &Engine, n: usize, report: &mut Report) -> Result<()> {
    if n == 0 {
        return Ok(());
    }
    let mut sessions = Vec::new();
    let result = async {
        let mut open = Figure::default();
        for _ in 0..n {
            let t = Instant::now();
            let s = builder(engine).open().await?;
            sessions.push(s.clone());
            s.start_kernel().await?;
            open.push(t.elapsed());
        }
        // Let the kernels finish their start-up work.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (mut net, mut usage, mut rss) =
            (Figure::default(), Figure::default(), Figure::default());
        for s in &sessions {
            let m = container_memory(engine, s.container_name()).await?;
            net.0.push(m.net_mib());
            usage.0.push(m.usage_mib());
            rss.0.push(m.rss_mib());
        }
        // The same sessions with their kernels stopped, for the container's own share.
        for s in &sessions {
            s.restart_kernel().await?;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut bare = Figure::default();
        for s in &sessions {
            bare.0.push(
                container_memory(engine, s.container_name())
                    .await?
                    .net_mib(),
            );
        }
        Ok::<_, anyhow::Error>((open, net, usage, rss, bare))
    }
    .await;
    for s in sessions {
        s.close().await?;
    }
    let (open, net, usage, rss, bare) = result?;
    report.put("stateful_open_ms", open);
    report.put("idle_kernel_mib", net);
    report.put("idle_kernel_usage_mib", usage);
    report.put("idle_kernel_rss_mib", rss);
    report.put("idle_nokernel_mib", bare);
    report.notes.push(
        "memory: engine stats (one-shot) of the container's memory cgroup: usage minus page cache (cgroup v1 total_cache, v2 file), 2 s after the kernel started; idle_nokernel after the kernel was stopped".into(),
    );
    Ok(())
}

struct Memory {
    usage: u64,
    cache: u64,
    rss: u64,
}

impl Memory {
    fn mib(b: u64) -> f64 {
        b as f64 / (1024.0 * 1024.0)
    }
    fn net_mib(&self) -> f64 {
        Self::mib(self.usage.saturating_sub(self.cache))
    }
    fn usage_mib(&self) -> f64 {
        Self::mib(self.usage)
    }
    fn rss_mib(&self) -> f64 {
        Self::mib(self.rss)
    }
}

async fn container_memory(engine: &Engine, container: &str) -> Result<Memory> {
    let st = engine
        .container_stats(container)
        .await
        .with_context(|| format!("stats of {container}"))?;
    Ok(Memory {
        usage: st.memory_usage_bytes,
        cache: st.memory_cache_bytes,
        rss: st.memory_bytes,
    })
}

/// `n` sessions opened at once (wall time until all are open), beside the raw engine doing
/// `n` creates + starts at once; the order alternates per repetition.
async fn concurrent(
    engine: &Engine,
    image: &str,
    n: usize,
    reps: usize,
    report: &mut Report,
) -> Result<()> {
    let (mut ours, mut ours_close, mut raw, mut raw_close) = (
        Figure::default(),
        Figure::default(),
        Figure::default(),
        Figure::default(),
    );
    for rep in 0..reps {
        for side in 0..2 {
            if (side + rep) % 2 == 0 {
                let (open, close) = concurrent_sessions(engine, n).await?;
                ours.push(open);
                ours_close.push(close);
            } else {
                let (open, close) = concurrent_raw(engine, image, n, rep).await?;
                raw.push(open);
                raw_close.push(close);
            }
            // Let the engine settle (removals finish their cleanup) before the next side.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    report.put("concurrent_open_ms", ours);
    report.put("concurrent_close_ms", ours_close);
    report.put("raw_concurrent_open_ms", raw);
    report.put("raw_concurrent_close_ms", raw_close);
    Ok(())
}

async fn concurrent_sessions(engine: &Engine, n: usize) -> Result<(Duration, Duration)> {
    let t = Instant::now();
    let tasks: Vec<_> = (0..n)
        .map(|_| {
            let b = builder(engine);
            tokio::spawn(async move { b.open().await })
        })
        .collect();
    let mut sessions = Vec::new();
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(s)) => sessions.push(s),
            Ok(Err(e)) => {
                failure.get_or_insert(anyhow!(e));
            }
            Err(e) => {
                failure.get_or_insert(anyhow!(e));
            }
        }
    }
    let open = t.elapsed();
    let t = Instant::now();
    let closes: Vec<_> = sessions
        .into_iter()
        .map(|s| tokio::spawn(async move { s.close().await }))
        .collect();
    for c in closes {
        if let Ok(Err(e)) = c.await {
            failure.get_or_insert(anyhow!(e));
        }
    }
    let close = t.elapsed();
    match failure {
        Some(e) => Err(e.context("opening sessions at once")),
        None => Ok((open, close)),
    }
}

async fn concurrent_raw(
    engine: &Engine,
    image: &str,
    n: usize,
    rep: usize,
) -> Result<(Duration, Duration)> {
    let names: Vec<String> = (0..n).map(|i| raw_name(&format!("c{rep}-{i}"))).collect();
    let t = Instant::now();
    let tasks: Vec<_> = names
        .iter()
        .map(|name| {
            let (engine, image, name) = (engine.clone(), image.to_string(), name.clone());
            tokio::spawn(async move {
                crate::raw::create_start(&engine, &image, &name, "none", None).await
            })
        })
        .collect();
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                failure.get_or_insert(e);
            }
            Err(e) => {
                failure.get_or_insert(anyhow!(e));
            }
        }
    }
    let open = t.elapsed();
    let t = Instant::now();
    let removes: Vec<_> = names
        .iter()
        .map(|name| {
            let (engine, name) = (engine.clone(), name.clone());
            tokio::spawn(async move { crate::raw::remove(&engine, &name).await })
        })
        .collect();
    for r in removes {
        if let Ok(Err(e)) = r.await {
            failure.get_or_insert(e);
        }
    }
    let close = t.elapsed();
    match failure {
        Some(e) => Err(e.context("the raw engine's creates and starts at once")),
        None => Ok((open, close)),
    }
}

fn raw_name(suffix: &str) -> String {
    format!("sandpit-benchpeer-raw-{}-{suffix}", std::process::id())
}
