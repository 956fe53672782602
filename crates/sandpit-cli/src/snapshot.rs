//! `sandpit snapshot list|show|rm|take|restore|bench`: snapshots in the store `--snapshots`
//! (or `SANDPIT_SNAPSHOTS`) names, straight from the store (the server's snapshots sit under
//! `<key id>/<name>`).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use sandpit::{Language, LanguageExt, SandboxSession, SessionBuilder};
use sandpit_snapshot::{
    prepare_builder, report, Manifest, RestoreOptions, SnapshotInfo, SnapshotStore,
};

use crate::connect::ConnectionArgs;

/// Snapshot subcommands.
#[derive(Debug, Args)]
pub struct SnapshotArgs {
    /// Where snapshots are: file:///folder or s3://bucket/prefix (credentials and endpoint
    /// from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL)
    #[arg(long, global = true, value_name = "URL", env = "SANDPIT_SNAPSHOTS")]
    snapshots: Option<String>,
    #[command(subcommand)]
    command: SnapshotCommand,
}

#[derive(Debug, Subcommand)]
enum SnapshotCommand {
    /// List snapshots (under PREFIX, e.g. a server key's id): name, created, language, size
    List {
        /// Only names under this folder
        prefix: Option<String>,
        /// One JSON array instead of a table
        #[arg(long)]
        json: bool,
    },
    /// A snapshot's manifest and a URL to download its archive
    Show {
        /// The snapshot's name
        name: String,
        /// The manifest as JSON
        #[arg(long)]
        json: bool,
    },
    /// Remove snapshots
    Rm {
        /// The snapshots' names
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Take a snapshot of a new session: files from --dir, libraries, environment, code run
    Take(TakeArgs),
    /// Open a session from a snapshot, run code in it, copy its workdir out, close it
    Restore(RestoreArgs),
    /// Measure snapshot and restore time and this process's peak memory for a big workdir
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
struct TakeArgs {
    /// The snapshot's name (parts of letters, digits, `.`, `_`, `-`, separated by `/`)
    name: String,
    /// The session's language
    #[arg(short, long)]
    lang: Language,
    /// Copy this folder's content into the workdir first (modes kept)
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// A library to install, repeatable
    #[arg(long = "lib", value_name = "NAME")]
    libs: Vec<String>,
    /// An environment variable KEY=VALUE, repeatable
    #[arg(long = "env", value_name = "KEY=VALUE")]
    env: Vec<String>,
    /// Code to run before the snapshot (it may write files)
    #[arg(short, long)]
    code: Option<String>,
    /// An image instead of the language's default
    #[arg(long)]
    image: Option<String>,
    /// PEM file of extra CA certificates for library installs
    #[arg(long, value_name = "PEM", env = "SANDPIT_CA_BUNDLE")]
    ca_cert: Option<PathBuf>,
    /// Print the manifest as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct RestoreArgs {
    /// The snapshot's name
    name: String,
    /// Code to run in the restored session (its output is printed, its exit code returned)
    #[arg(short, long)]
    code: Option<String>,
    /// Copy the restored workdir into this folder (it becomes the workdir's copy)
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Open the session on this image instead of the snapshot's
    #[arg(long)]
    image: Option<String>,
    /// The --image has the snapshot's libraries: do not install them again
    #[arg(long, requires = "image")]
    libraries_in_image: bool,
    /// PEM file of extra CA certificates for library installs
    #[arg(long, value_name = "PEM", env = "SANDPIT_CA_BUNDLE")]
    ca_cert: Option<PathBuf>,
    /// Print the restore's report as JSON
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// The workdir's size (random, incompressible bytes)
    #[arg(long, default_value = "100m")]
    size: String,
    /// Files the size is spread over
    #[arg(long, default_value_t = 100)]
    files: u64,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

pub async fn snapshot(conn: &ConnectionArgs, args: SnapshotArgs) -> Result<u8> {
    let url = match (&args.snapshots, &args.command) {
        (Some(url), _) => url.clone(),
        (None, SnapshotCommand::Bench(_)) => String::new(),
        (None, _) => bail!(
            "no snapshot store: pass --snapshots URL (file:///folder or s3://bucket/prefix) or set SANDPIT_SNAPSHOTS"
        ),
    };
    match args.command {
        SnapshotCommand::List { prefix, json } => list(&store(&url)?, prefix, json).await,
        SnapshotCommand::Show { name, json } => show(&store(&url)?, &name, json).await,
        SnapshotCommand::Rm { names } => {
            let store = store(&url)?;
            for name in names {
                store.delete(&name).await?;
                eprintln!("sandpit: removed snapshot {name}");
            }
            Ok(0)
        }
        SnapshotCommand::Take(a) => take(conn, &store(&url)?, a).await,
        SnapshotCommand::Restore(a) => restore(conn, &store(&url)?, a).await,
        SnapshotCommand::Bench(a) => bench(conn, &url, a).await,
    }
}

fn store(url: &str) -> Result<SnapshotStore> {
    Ok(SnapshotStore::open(url)?)
}

async fn list(store: &SnapshotStore, prefix: Option<String>, json: bool) -> Result<u8> {
    let listed = store.list(prefix.as_deref().unwrap_or("")).await?;
    if json {
        let items: Vec<serde_json::Value> = listed
            .iter()
            .map(|l| match &l.manifest {
                Ok(m) => {
                    serde_json::to_value(SnapshotInfo::of(l.name.clone(), m)).unwrap_or_default()
                }
                Err(e) => serde_json::json!({"name": l.name, "error": e.to_string()}),
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(0);
    }
    println!(
        "{:<40} {:<21} {:<11} {:>10} {:>7}  LIBRARIES",
        "NAME", "CREATED", "LANGUAGE", "SIZE", "FILES"
    );
    for l in &listed {
        match &l.manifest {
            Ok(m) => println!(
                "{:<40} {:<21} {:<11} {:>10} {:>7}  {}",
                l.name,
                m.created_at,
                m.language,
                human(m.archive.size_bytes),
                m.archive.files,
                m.libraries.join(" ")
            ),
            Err(e) => println!("{:<40} unreadable: {e}", l.name),
        }
    }
    if listed.is_empty() {
        eprintln!("sandpit: no snapshots in {}", store.storage().url());
    }
    Ok(0)
}

async fn show(store: &SnapshotStore, name: &str, json: bool) -> Result<u8> {
    let manifest = store.manifest(name).await?;
    let url = store
        .download_url(name, Duration::from_secs(3600))
        .await
        .map_err(|e| eprintln!("sandpit: no download URL: {e}"))
        .ok();
    if json {
        let mut v = serde_json::to_value(&manifest)?;
        v["download_url"] = url.map(Into::into).unwrap_or(serde_json::Value::Null);
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    print_manifest(&manifest);
    if let Some(url) = url {
        println!("download:   {url}  (valid an hour)");
    }
    Ok(0)
}

fn print_manifest(m: &Manifest) {
    let a = &m.archive;
    println!("name:       {}", m.name);
    println!("created:    {}", m.created_at);
    println!("language:   {}   image: {}", m.language, m.image);
    println!("libraries:  {}", m.libraries.join(" "));
    println!(
        "env:        {}",
        m.env.keys().cloned().collect::<Vec<_>>().join(" ")
    );
    println!(
        "archive:    {} ({} compressed, {} of content), {} files, {} folders, {} symlinks, {} hard links",
        a.object,
        human(a.size_bytes),
        human(a.content_bytes),
        a.files,
        a.dirs,
        a.symlinks,
        a.hard_links
    );
    println!("sha256:     {}", a.sha256);
    println!("format:     {} {}", m.format, m.version);
    println!(
        "source:     session {} on {}{}",
        m.source.session,
        m.source.engine,
        m.source
            .runtime
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default()
    );
    for s in &m.skipped {
        println!("left out:   {} ({})", s.path, s.reason);
    }
    println!("memory:     {}", m.kernel_state);
}

/// A session builder on the flags' engine, with progress on stderr.
async fn builder(
    conn: &ConnectionArgs,
    ca: Option<&PathBuf>,
) -> Result<(SessionBuilder, crate::progress::Reporter)> {
    let mut b = SandboxSession::builder().engine(conn.engine().await?);
    if let Some(ca) = ca {
        if !ca.is_file() {
            bail!(
                "--ca-cert {} is not a file (it may come from SANDPIT_CA_BUNDLE)",
                ca.display()
            );
        }
        b = b.extra_ca_certificates(ca);
    }
    let progress = crate::progress::Reporter::new("[image] ");
    let sink = progress.sink();
    Ok((b.on_progress(move |line| sink(line)), progress))
}

async fn take(conn: &ConnectionArgs, store: &SnapshotStore, a: TakeArgs) -> Result<u8> {
    sandpit_snapshot::check_key(&a.name)?;
    let mut env = BTreeMap::new();
    for pair in &a.env {
        let Some((k, v)) = pair.split_once('=') else {
            bail!("--env {pair:?}: write KEY=VALUE");
        };
        env.insert(k.to_string(), v.to_string());
    }
    let (b, progress) = builder(conn, a.ca_cert.as_ref()).await?;
    let mut b = b.language(a.lang).libraries(&a.libs);
    if let Some(image) = &a.image {
        b = b.image(image);
    }
    for (k, v) in &env {
        b = b.env(k, v);
    }
    let session = b.open().await;
    progress.finish();
    let session = session?;
    let taken = async {
        if let Some(dir) = &a.dir {
            let entries = std::fs::read_dir(dir)
                .with_context(|| format!("cannot read --dir {}", dir.display()))?;
            for entry in entries {
                let entry =
                    entry.with_context(|| format!("cannot read --dir {}", dir.display()))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                session.copy_to_runtime(entry.path(), &name).await?;
            }
        }
        if let Some(code) = &a.code {
            let r = session.run(code, &[]).await?;
            std::io::stdout().write_all(r.stdout.as_bytes())?;
            std::io::stderr().write_all(r.stderr.as_bytes())?;
            if r.exit_code != 0 {
                bail!("the code exited with {}; no snapshot taken", r.exit_code);
            }
        }
        let started = Instant::now();
        let manifest = store.snapshot(&session, &a.name).await?;
        anyhow::Ok((manifest, started.elapsed()))
    }
    .await;
    let closed = session.close().await;
    let (manifest, took) = taken?;
    closed?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&manifest)?);
    } else {
        print_manifest(&manifest);
        eprintln!(
            "sandpit: took snapshot {} in {:.2} s",
            manifest.name,
            took.as_secs_f64()
        );
    }
    Ok(0)
}

async fn restore(conn: &ConnectionArgs, store: &SnapshotStore, a: RestoreArgs) -> Result<u8> {
    let (b, progress) = builder(conn, a.ca_cert.as_ref()).await?;
    let options = RestoreOptions {
        image: a.image.clone(),
        libraries_in_image: a.libraries_in_image,
    };
    let restored = store.restore(&a.name, b, &options).await;
    progress.finish();
    let restored = restored?;
    let session = restored.session.clone();
    let work = async {
        let mut code = 0;
        if let Some(src) = &a.code {
            let r = session.run(src, &[]).await?;
            std::io::stdout().write_all(r.stdout.as_bytes())?;
            std::io::stderr().write_all(r.stderr.as_bytes())?;
            code = u8::try_from(r.exit_code).unwrap_or(crate::EXIT_SANDPIT_FAILED);
        }
        if let Some(out) = &a.out {
            session.copy_from_runtime(session.workdir(), out).await?;
        }
        anyhow::Ok(code)
    }
    .await;
    let closed = session.close().await;
    let code = work?;
    closed?;
    let r = &restored.report;
    if a.json {
        eprintln!("{}", serde_json::to_string_pretty(r)?);
    } else {
        eprintln!(
            "sandpit: restored {}: {} files ({}), libraries [{}], env [{}] in {:.2} s",
            r.snapshot,
            r.files,
            human(r.content_bytes),
            r.libraries.join(" "),
            r.env.join(" "),
            r.duration_ms as f64 / 1000.0,
        );
        eprintln!("sandpit: memory {}", r.kernel_state);
        if let Some(out) = &a.out {
            eprintln!("sandpit: the workdir is in {}", out.display());
        }
    }
    Ok(code)
}

/// This process's resident memory now and at its peak since the last reset, in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Starts a new peak-memory measurement (Linux: `clear_refs` 5 resets the high-water mark).
fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

async fn bench(conn: &ConnectionArgs, url: &str, a: BenchArgs) -> Result<u8> {
    let size = sandpit::parse_size(&a.size).map_err(anyhow::Error::msg)? as u64;
    if a.files == 0 || size == 0 {
        bail!("--size and --files must be positive");
    }
    let folder = tempfile::tempdir()?;
    let url = if url.is_empty() {
        format!("file://{}", folder.path().display())
    } else {
        url.to_string()
    };
    let store = store(&url)?;
    let engine = conn.engine().await?;
    let info = engine.info().await?;
    let name = format!("bench/{}-{}", std::process::id(), sandpit_service::now());
    let disk = (size * 2).max(1 << 30);
    let builder = || {
        SandboxSession::builder()
            .engine(engine.clone())
            .language(Language::Python)
            .disk(disk)
    };
    let source = builder().open().await?;
    let per_file = size / a.files;
    let fill = format!(
        "for i in $(seq 1 {n}); do head -c {per_file} /dev/urandom > f$i.bin; done; du -sb . | cut -f1",
        n = a.files
    );
    let result = async {
        let out = source.execute_command(&fill).await?;
        if out.exit_code != 0 {
            bail!("filling the workdir failed: {}", out.stderr);
        }
        let (rss_before, _) = memory();
        let resettable = reset_peak();
        let started = Instant::now();
        let manifest = store.snapshot(&source, &name).await?;
        let snapshot_time = started.elapsed();
        let (_, snapshot_peak) = memory();
        anyhow::Ok((
            manifest,
            snapshot_time,
            rss_before,
            snapshot_peak,
            resettable,
        ))
    }
    .await;
    let closed = source.close().await;
    let (manifest, snapshot_time, rss_before, snapshot_peak, resettable) = result?;
    closed?;

    reset_peak();
    let (rss_restore_before, _) = memory();
    let started = Instant::now();
    let b = prepare_builder(&manifest, builder(), &RestoreOptions::default())?;
    let target = b.open().await?;
    let opened = started.elapsed();
    let restored = async {
        let counts = store.restore_into(&target, &name, &manifest).await?;
        let files_time = started.elapsed() - opened;
        let (_, restore_peak) = memory();
        let check = target
            .execute_command("find . -type f | wc -l; du -sb . | cut -f1")
            .await?;
        anyhow::Ok((counts, files_time, restore_peak, check.stdout))
    }
    .await;
    let closed = target.close().await;
    let (counts, files_time, restore_peak, check) = restored?;
    closed?;
    let restore_time = opened + files_time;
    let _ = store.delete(&name).await;
    let r = report(&name, &manifest, &counts, vec![], restore_time);

    let mib = |b: u64| b as f64 / f64::from(1 << 20);
    let engine_name = format!("{} {}", info.kind, info.version);
    let check: Vec<&str> = check.split_whitespace().collect();
    if a.json {
        println!(
            "{}",
            serde_json::json!({
                "engine": engine_name,
                "store": url,
                "workdir_bytes": manifest.archive.content_bytes,
                "files": manifest.archive.files,
                "archive_bytes": manifest.archive.size_bytes,
                "snapshot_ms": snapshot_time.as_millis() as u64,
                "restore_ms": restore_time.as_millis() as u64,
                "restore_open_ms": opened.as_millis() as u64,
                "restore_files_ms": files_time.as_millis() as u64,
                "snapshot_peak_rss_bytes": snapshot_peak,
                "restore_peak_rss_bytes": restore_peak,
                "rss_before_snapshot_bytes": rss_before,
                "rss_before_restore_bytes": rss_restore_before,
                "peak_is_per_phase": resettable,
                "restored_files": r.files,
            })
        );
    } else {
        println!(
            "snapshot bench: {:.0} MiB workdir in {} files of random bytes, {engine_name}, store {url}",
            mib(manifest.archive.content_bytes),
            manifest.archive.files
        );
        println!(
            "  snapshot  {:>6.2} s  ({:.0} MiB/s; archive {:.1} MiB)   process peak RSS {:.1} MiB (before: {:.1} MiB)",
            snapshot_time.as_secs_f64(),
            mib(manifest.archive.content_bytes) / snapshot_time.as_secs_f64(),
            mib(manifest.archive.size_bytes),
            mib(snapshot_peak),
            mib(rss_before)
        );
        println!(
            "  restore   {:>6.2} s  (open {:.2} s, files {:.2} s: {:.0} MiB/s)   process peak RSS {:.1} MiB (before: {:.1} MiB)",
            restore_time.as_secs_f64(),
            opened.as_secs_f64(),
            files_time.as_secs_f64(),
            mib(counts.content_bytes) / files_time.as_secs_f64(),
            mib(restore_peak),
            mib(rss_restore_before)
        );
        println!(
            "  restored  {} files, {} bytes in the workdir (find, du: {})",
            r.files,
            counts.content_bytes,
            check.join(", ")
        );
        if !resettable {
            println!("  (the peak is the process's since it started: /proc/self/clear_refs is not writable)");
        }
    }
    Ok(0)
}

/// Bytes for people.
fn human(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}
