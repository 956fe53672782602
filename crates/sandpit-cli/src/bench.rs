//! `sandpit bench`: medians of open, run and close beside the raw engine calls for the same work.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use clap::Args;
use futures_util::StreamExt;
use sandpit::bollard::exec::{CreateExecOptions, StartExecResults};
use sandpit::bollard::models::{ContainerCreateBody, HostConfig};
use sandpit::bollard::query_parameters::{CreateContainerOptions, RemoveContainerOptions};
use sandpit::image::ensure_default_image;
use sandpit::{Engine, Language, LanguageExt, Network, SandboxSession};

use crate::connect::ConnectionArgs;

/// Arguments of `sandpit bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Iterations per figure (at least 20 for the published medians).
    #[arg(long, short = 'n', default_value_t = 20)]
    iterations: usize,
}

const KEEPALIVE: &str = "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

pub async fn bench(conn: &ConnectionArgs, args: BenchArgs) -> Result<u8> {
    if args.iterations == 0 {
        bail!("--iterations must be at least 1");
    }
    let engine = conn.engine().await?;
    let runner = sandpit::runner(Language::Python);
    let spec = runner.default_image();
    ensure_default_image(&engine, &spec, &sandpit::image::quiet()).await?;
    eprintln!(
        "engine API {}, image {}, {} iterations",
        engine.api_version(),
        spec.tag,
        args.iterations
    );

    let mut raw_open = Vec::new();
    let mut raw_exec = Vec::new();
    let mut raw_close = Vec::new();
    let mut open = Vec::new();
    let mut run = Vec::new();
    let mut close = Vec::new();
    // Warm up both paths once so the first iteration does not pay for cold caches.
    for i in 0..=args.iterations {
        let name = format!("sandpit-bench-raw-{}-{i}", std::process::id());
        let t = Instant::now();
        raw_create_start(&engine, &spec.tag, &name).await?;
        let d_open = t.elapsed();
        let t = Instant::now();
        let out = raw_run(&engine, &name, &["python", "-u", "-c", "print(1)"]).await?;
        let d_exec = t.elapsed();
        if out != "1\n" {
            bail!("raw exec printed {out:?}, expected \"1\\n\"");
        }
        let t = Instant::now();
        engine
            .docker()
            .remove_container(
                &name,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await?;
        let d_close = t.elapsed();

        let t = Instant::now();
        let session = SandboxSession::builder()
            .language(Language::Python)
            .engine(engine.clone())
            .network(Network::Bridge)
            .open()
            .await?;
        let s_open = t.elapsed();
        let t = Instant::now();
        let result = session.run("print(1)", &[]).await?;
        let s_run = t.elapsed();
        if result.stdout != "1\n" {
            bail!("sandpit run printed {:?}, expected \"1\\n\"", result.stdout);
        }
        let t = Instant::now();
        session.close().await?;
        let s_close = t.elapsed();
        if i > 0 {
            raw_open.push(d_open);
            raw_exec.push(d_exec);
            raw_close.push(d_close);
            open.push(s_open);
            run.push(s_run);
            close.push(s_close);
        }
    }
    println!(
        "{:<10} {:>12} {:>12} {:>8}  target",
        "step", "sandpit ms", "raw ms", "ratio"
    );
    row("open", &open, &raw_open, "<= 1.15x raw create+start");
    row("run", &run, &raw_exec, "<= 1.2x raw exec");
    row("close", &close, &raw_close, "<= 100 ms");
    Ok(0)
}

fn median(v: &[Duration]) -> f64 {
    let mut ms: Vec<f64> = v.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    let n = ms.len();
    if n % 2 == 1 {
        ms[n / 2]
    } else {
        (ms[n / 2 - 1] + ms[n / 2]) / 2.0
    }
}

fn row(name: &str, ours: &[Duration], raw: &[Duration], target: &str) {
    let (a, b) = (median(ours), median(raw));
    println!("{name:<10} {a:>12.1} {b:>12.1} {:>7.2}x  {target}", a / b);
}

async fn raw_create_start(engine: &Engine, image: &str, name: &str) -> Result<()> {
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), KEEPALIVE.into()]),
        host_config: Some(HostConfig {
            network_mode: Some("bridge".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    engine
        .docker()
        .create_container(
            Some(CreateContainerOptions {
                name: Some(name.into()),
                ..Default::default()
            }),
            body,
        )
        .await?;
    engine.docker().start_container(name, None).await?;
    Ok(())
}

async fn raw_run(engine: &Engine, container: &str, cmd: &[&str]) -> Result<String> {
    let exec = engine
        .docker()
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
                user: Some("1000:1000".into()),
                working_dir: Some("/sandbox".into()),
                ..Default::default()
            },
        )
        .await?;
    let mut out = String::new();
    if let StartExecResults::Attached { mut output, .. } =
        engine.docker().start_exec(&exec.id, None).await?
    {
        while let Some(chunk) = output.next().await {
            out.push_str(&chunk?.to_string());
        }
    }
    engine.docker().inspect_exec(&exec.id).await?;
    Ok(out)
}
