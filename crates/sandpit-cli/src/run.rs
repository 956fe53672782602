//! `sandpit run`: one program in a fresh sandbox.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::Args;
use sandpit::{
    parse_size, Language, LanguageExt, Network, OutputChunk, RunOptions, SandboxSession,
    SecurityPolicy, StreamKind,
};

use crate::connect::ConnectionArgs;
use crate::{EXIT_SANDPIT_FAILED, EXIT_TIMED_OUT};

/// Arguments of `sandpit run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Language: python (py), java, javascript (js, node), cpp (c++, g++), go (golang), ruby (rb);
    /// taken from FILE's extension when not given
    #[arg(long, short = 'l')]
    lang: Option<String>,
    /// Source file to run (standard input when neither FILE nor -c is given)
    file: Option<PathBuf>,
    /// Code to run, given inline
    #[arg(short = 'c', long = "code", conflicts_with = "file")]
    code: Option<String>,
    /// Image to use instead of the language's default
    #[arg(long)]
    image: Option<String>,
    /// Library to install first (repeatable)
    #[arg(long = "lib", value_name = "NAME")]
    libs: Vec<String>,
    /// Seconds before the program is killed
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// File fed to the program's standard input
    #[arg(long, value_name = "PATH")]
    stdin_file: Option<PathBuf>,
    /// Security preset: strict, standard or permissive; the flags below adjust it
    #[arg(long, default_value = "standard")]
    policy: String,
    /// Memory limit, e.g. 512m [standard: 512m]
    #[arg(long)]
    memory: Option<String>,
    /// Network for the program: none, bridge, or a named network [standard: none]
    #[arg(long)]
    network: Option<String>,
    /// CPUs, e.g. 0.5 [standard: 1]
    #[arg(long)]
    cpus: Option<f64>,
    /// Most processes at once [standard: 256]
    #[arg(long)]
    pids: Option<i64>,
    /// Disk the program may write in its workdir, e.g. 1g [standard: 1g]
    #[arg(long)]
    disk: Option<String>,
    /// Largest file the program may write, e.g. 100m [standard: 1g]
    #[arg(long)]
    max_file_size: Option<String>,
    /// Make the workdir read-only for the program
    #[arg(long)]
    read_only_workdir: bool,
    /// OCI runtime the engine should use, e.g. runsc for gVisor (`sandpit doctor` lists them)
    #[arg(long, value_name = "NAME")]
    runtime: Option<String>,
    /// Bytes kept of stdout and of stderr each, e.g. 1m
    #[arg(long, default_value = "1m")]
    output_limit: String,
    /// PEM file of extra CA certificates for library installs behind a TLS-intercepting proxy
    #[arg(long, value_name = "PEM", env = "SANDPIT_CA_BUNDLE")]
    ca_cert: Option<PathBuf>,
    /// Print one JSON object instead of the program's output (plots captured unless --no-plots)
    #[arg(long)]
    json: bool,
    /// Write the figures the program leaves open (Python's matplotlib) as PNG files into DIR
    #[arg(long, value_name = "DIR")]
    artifacts: Option<PathBuf>,
    /// Capture plots as PNG artifacts even without --json or --artifacts
    #[arg(long, conflicts_with = "no_plots")]
    plots: bool,
    /// Do not capture plots
    #[arg(long)]
    no_plots: bool,
    /// Arguments for the program (after --)
    #[arg(last = true)]
    args: Vec<String>,
}

pub async fn run(conn: &ConnectionArgs, args: RunArgs) -> Result<u8> {
    let language = language(&args)?;
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        bail!(
            "--timeout must be a positive number of seconds, got {}",
            args.timeout
        );
    }
    let code = match (&args.code, &args.file) {
        (Some(code), _) => code.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read source file {}", path.display()))?,
        (None, None) => {
            let mut code = String::new();
            std::io::stdin()
                .read_to_string(&mut code)
                .context("cannot read the code from standard input")?;
            code
        }
    };
    let stdin = match &args.stdin_file {
        Some(path) => Some(
            std::fs::read(path)
                .with_context(|| format!("cannot read --stdin-file {}", path.display()))?,
        ),
        None => None,
    };
    let policy = policy(&args)?;
    let timeout = Duration::from_secs_f64(args.timeout);
    let output_limit = size(&args.output_limit, "--output-limit")?;

    // A one-shot knows its libraries up front (they go into an image first), and writes only
    // to memory: no disk to make, a read-only root, nothing to install later.
    let mut builder = SandboxSession::builder()
        .language(language)
        .libraries(&args.libs)
        .recyclable(true)
        .engine(conn.engine().await?)
        .policy(policy)
        .timeout(timeout)
        .output_limit(output_limit as usize);
    let progress = crate::progress::Reporter::new("[image] ");
    let sink = progress.sink();
    builder = builder.on_progress(move |line| sink(line));
    if let Some(image) = &args.image {
        builder = builder.image(image);
    }
    if let Some(ca) = &args.ca_cert {
        if !ca.is_file() {
            bail!(
                "--ca-cert {} is not a file (it may come from SANDPIT_CA_BUNDLE)",
                ca.display()
            );
        }
        builder = builder.extra_ca_certificates(ca);
    }
    let session = builder.open().await;
    progress.finish();
    let session = session?;
    let mut options = RunOptions::new().args(&args.args);
    if let Some(data) = stdin {
        options = options.stdin(data);
    }
    let capture = !args.no_plots && (args.plots || args.json || args.artifacts.is_some());
    options = options.capture_plots(capture);
    if !args.json {
        // Output goes out live, as the program writes it.
        options = options.on_output(|chunk: OutputChunk| {
            let _ = match chunk.stream {
                StreamKind::Stdout => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&chunk.data).and_then(|_| out.flush())
                }
                StreamKind::Stderr => std::io::stderr().lock().write_all(&chunk.data),
            };
        });
    }
    let result = session.run_with(&code, options).await;
    let closed = session.close().await;
    let result = result?;
    closed?;

    if let Some(dir) = &args.artifacts {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create --artifacts {}", dir.display()))?;
        for a in &result.artifacts {
            let path = dir.join(&a.name);
            std::fs::write(&path, &a.data)
                .with_context(|| format!("cannot write {}", path.display()))?;
            if !args.json {
                eprintln!("sandpit: wrote {}", path.display());
            }
        }
    }
    if args.json {
        println!("{}", serde_json::to_string(&result)?);
    } else {
        if result.truncated {
            eprintln!("sandpit: output was truncated at the output limit (--output-limit)");
        }
        if result.timed_out {
            eprintln!("sandpit: the program was killed after {timeout:?} (timeout)");
        }
        if result.oom_killed {
            eprintln!(
                "sandpit: the program was killed for using more memory than allowed (--memory)"
            );
        }
    }
    Ok(if result.timed_out {
        EXIT_TIMED_OUT
    } else {
        exit_status(result.exit_code)
    })
}

/// `--lang`, else the language FILE's extension names.
fn language(args: &RunArgs) -> Result<Language> {
    if let Some(lang) = &args.lang {
        return Ok(lang.parse()?);
    }
    let Some(file) = &args.file else {
        bail!("--lang is required when the code comes from -c or standard input");
    };
    let ext = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    Ok(match ext.as_str() {
        "py" => Language::Python,
        "java" => Language::Java,
        "js" | "mjs" | "cjs" => Language::JavaScript,
        "cpp" | "cc" | "cxx" | "c++" => Language::Cpp,
        "go" => Language::Go,
        "rb" => Language::Ruby,
        "" => bail!(
            "{} has no extension to tell its language from: pass --lang",
            file.display()
        ),
        other => bail!(
            "the extension .{other} of {} names no language Sandpit runs: pass --lang",
            file.display()
        ),
    })
}

fn size(text: &str, flag: &str) -> Result<u64> {
    let n = parse_size(text).map_err(|e| anyhow::anyhow!("{flag}: {e}"))?;
    Ok(n as u64)
}

/// The preset named by --policy, adjusted by the individual flags.
fn policy(args: &RunArgs) -> Result<SecurityPolicy> {
    let mut p = SecurityPolicy::preset(&args.policy).map_err(anyhow::Error::msg)?;
    if let Some(n) = &args.network {
        p.network = n.parse::<Network>().map_err(anyhow::Error::msg)?;
    }
    if let Some(m) = &args.memory {
        p.memory = size(m, "--memory")?;
    }
    if let Some(c) = args.cpus {
        p.cpus = c;
    }
    if let Some(n) = args.pids {
        p.max_processes = n;
    }
    if let Some(d) = &args.disk {
        p.disk = size(d, "--disk")?;
    }
    if let Some(f) = &args.max_file_size {
        p.max_file_size = size(f, "--max-file-size")?;
    }
    if args.read_only_workdir {
        p.workdir_writable = false;
    }
    if let Some(runtime) = &args.runtime {
        p.runtime = sandpit::RuntimeChoice::Named(runtime.clone());
    }
    Ok(p)
}

/// The program's exit code as a process exit status (0-255); out-of-range codes become 125.
fn exit_status(code: i64) -> u8 {
    u8::try_from(code).unwrap_or(EXIT_SANDPIT_FAILED)
}
