//! `sandpit bench`: medians of open, run and close beside the raw engine calls for the same work;
//! with `--languages`, a hello world's `run` per language instead (compile and run apart).

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
    /// Instead: per language (all, or those listed), a hello world's run in an open session
    #[arg(long, value_name = "LANG", num_args = 0.., value_delimiter = ',')]
    languages: Option<Vec<String>>,
    #[command(flatten)]
    peer: crate::bench_peer::PeerArgs,
}

/// PID 1 of the raw containers: the same keep-alive loop Sandpit's sessions run.
pub(crate) const KEEPALIVE: &str =
    "trap 'exit 0' TERM INT; while :; do sleep 86400 & wait $!; done";

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
        return bench_languages(&engine, &languages, args.iterations).await;
    }
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

/// A hello world printing `hello`, per language.
fn hello(language: Language) -> &'static str {
    match language {
        Language::Python => "print('hello')",
        Language::Java => {
            "class Main { public static void main(String[] a) { System.out.println(\"hello\"); } }"
        }
        Language::JavaScript => "console.log('hello')",
        Language::Cpp => "#include <cstdio>\nint main() { std::puts(\"hello\"); }",
        Language::Go => {
            "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"hello\") }\n"
        }
        Language::Ruby => "puts 'hello'",
    }
}

/// Medians of one language's runs.
#[derive(Default)]
struct Runs {
    total: Vec<Duration>,
    compile: Vec<Duration>,
    raw: Vec<Duration>,
}

impl Runs {
    fn push(&mut self, wall: Duration, result: &sandpit::RunResult) {
        self.total.push(wall);
        if let Some(c) = &result.compile {
            self.compile.push(c.duration);
        }
    }

    fn row(&self, name: &str) {
        let total = median(&self.total);
        let cell = |v: Option<f64>| v.map_or("-".to_string(), |ms| format!("{ms:.1}"));
        let compile = (!self.compile.is_empty()).then(|| median(&self.compile));
        let exec = compile.map_or(total, |c| total - c);
        let raw = (!self.raw.is_empty()).then(|| median(&self.raw));
        let (ratio, target) = match raw {
            Some(raw) => (format!("{:.2}x", total / raw), "<= 1.3x raw exec"),
            None => ("-".to_string(), ""),
        };
        println!(
            "{name:<14} {:>9} {:>11} {:>9} {:>9} {ratio:>7}  {target}",
            cell(Some(total)),
            cell(compile),
            cell(Some(exec)),
            cell(raw),
        );
    }
}

/// Per language: median of a hello world's `run` in one open session, compile and run apart;
/// interpreted languages beside the raw exec of the same interpreter command; Go's first build
/// of a program and its second (cached) one.
async fn bench_languages(engine: &Engine, languages: &[Language], iterations: usize) -> Result<u8> {
    eprintln!(
        "engine API {}, {iterations} iterations per figure (after one warm-up run)",
        engine.api_version()
    );
    println!(
        "{:<14} {:>9} {:>11} {:>9} {:>9} {:>7}  target",
        "language", "run ms", "compile ms", "exec ms", "raw ms", "ratio"
    );
    for &language in languages {
        let runner = sandpit::runner(language);
        ensure_default_image(engine, &runner.default_image(), &sandpit::image::quiet()).await?;
        let session = SandboxSession::builder()
            .language(language)
            .engine(engine.clone())
            .open()
            .await?;
        let result = bench_language(engine, &session, language, iterations).await;
        session.close().await?;
        result?;
    }
    Ok(0)
}

async fn bench_language(
    engine: &Engine,
    session: &SandboxSession,
    language: Language,
    iterations: usize,
) -> Result<()> {
    let check = |r: &sandpit::RunResult, expected: &str| -> Result<()> {
        if r.stdout != expected {
            bail!(
                "{language}: the hello world printed {:?} (exit {}), expected {expected:?}: {}{}",
                r.stdout,
                r.exit_code,
                r.compile.as_ref().map(|c| c.stderr.as_str()).unwrap_or(""),
                r.stderr
            );
        }
        Ok(())
    };
    // Each measurement starts after a pause of one CFS period (100 ms), so it never pays for
    // the CPU quota (the session's --cpus) that the one before it used up.
    let pause = || tokio::time::sleep(Duration::from_millis(100));
    let timed = |code: String| async move {
        pause().await;
        let t = Instant::now();
        let r = session.run(&code, &[]).await?;
        Ok::<_, anyhow::Error>((t.elapsed(), r))
    };
    if language == Language::Go {
        // Each iteration builds a program no earlier iteration built, then runs it again.
        let (mut first, mut second) = (Runs::default(), Runs::default());
        for i in 0..=iterations {
            let code = format!(
                "package main\n\nimport \"fmt\"\n\nfunc main() {{ fmt.Println(\"hello\", {i}) }}\n"
            );
            let expected = format!("hello {i}\n");
            let (wall1, r1) = timed(code.clone()).await?;
            check(&r1, &expected)?;
            let (wall2, r2) = timed(code).await?;
            check(&r2, &expected)?;
            if i > 0 {
                first.push(wall1, &r1);
                second.push(wall2, &r2);
            }
        }
        first.row("go (new)");
        second.row("go (cached)");
        return Ok(());
    }
    let code = hello(language);
    let runner = session.runner();
    let interpreted = runner.run(&runner.source_file(code)).compile.is_empty();
    let raw_argv = runner.run(&runner.source_file(code)).run.argv;
    let raw_argv: Vec<&str> = raw_argv.iter().map(String::as_str).collect();
    let mut runs = Runs::default();
    for i in 0..=iterations {
        let (wall, r) = timed(code.to_string()).await?;
        check(&r, "hello\n")?;
        // The same interpreter command on the file the run just wrote, as a bare exec.
        let raw = if interpreted {
            pause().await;
            let t = Instant::now();
            let out = raw_run(engine, session.container_name(), &raw_argv).await?;
            if out != "hello\n" {
                bail!("{language}: the raw exec printed {out:?}");
            }
            Some(t.elapsed())
        } else {
            None
        };
        if i > 0 {
            runs.push(wall, &r);
            runs.raw.extend(raw);
        }
    }
    runs.row(language.name());
    Ok(())
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

/// One exec as the sandbox user in /sandbox, its output collected: the raw floor of a run.
pub(crate) async fn raw_run(engine: &Engine, container: &str, cmd: &[&str]) -> Result<String> {
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
