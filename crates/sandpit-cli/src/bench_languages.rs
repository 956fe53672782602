//! `sandpit bench --languages`: a hello world's `run` per language in one open session, compile
//! and run apart, interpreters beside their raw exec.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use sandpit::image::ensure_default_image;
use sandpit::{Engine, Language, LanguageExt, SandboxSession};

use crate::bench::median;

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
pub async fn bench_languages(
    engine: &Engine,
    languages: &[Language],
    iterations: usize,
) -> Result<u8> {
    eprintln!(
        "engine API {}, {iterations} iterations per figure (after one warm-up run)",
        engine.info().await?.negotiated_api_version
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
            let out = crate::raw::run(engine, session.container_name(), &raw_argv).await?;
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
