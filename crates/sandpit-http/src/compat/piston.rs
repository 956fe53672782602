//! Piston's v2 API (`engineer-man/piston`) at `/api/v2/…` and under `/compat/piston/`, with
//! the public instance's paths (`/api/v2/piston/…`) and emkc's v1 routes that `aio-piston`
//! calls (`/api/v1/piston/…`). Each execute is one one-shot run in a fresh sandbox; its
//! clients send no key (one in a header or in `/k/{key}`, else anonymous access where the
//! server allows it) and post JSON as `text/plain`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{any, get, post};
use axum::Router;
use base64::Engine as _;
use sandpit::{
    Engine, ExecOutput, Language, LanguageExt, OutputChunk, RunOptions, RunResult, RunUsage,
    SandboxSession, SecurityPolicy, StreamKind,
};
use sandpit_service::{ErrorKind, Owner, Program, ServiceError};
use serde::Serialize;
use serde_json::{json, Value};

use super::{j, json_response, message, message_error, obj, Denied, Json};
use crate::state::AppState;

/// Piston's routes, at the root and under `/compat/piston`.
pub fn routes() -> Router<AppState> {
    routes_at("")
        .merge(routes_at("/compat/piston"))
        .route("/api/{*rest}", any(not_found))
        .route("/compat/piston", any(not_found))
        .route("/compat/piston/", any(not_found))
        .route("/compat/piston/{*rest}", any(not_found))
}

fn routes_at(prefix: &str) -> Router<AppState> {
    let at = |p: &str| format!("{prefix}{p}");
    Router::new()
        .route(&at("/api/v2/runtimes"), get(runtimes).fallback(not_found))
        .route(
            &at("/api/v2/piston/runtimes"),
            get(runtimes).fallback(not_found),
        )
        .route(
            &at("/api/v2/packages"),
            get(packages)
                .post(packages_not_offered)
                .delete(packages_not_offered)
                .fallback(not_found),
        )
        .route(&at("/api/v2/execute"), post(execute).fallback(not_found))
        .route(
            &at("/api/v2/piston/execute"),
            post(execute).fallback(not_found),
        )
        .route(&at("/api/v2/connect"), any(connect_not_offered))
        .route(
            &at("/api/v1/piston/execute"),
            post(execute_v1).fallback(not_found),
        )
        .route(
            &at("/api/v1/piston/runtimes"),
            get(runtimes_v1).fallback(not_found),
        )
        .route(
            &at("/api/v1/piston/versions"),
            get(versions_v1).fallback(not_found),
        )
}

async fn not_found() -> Response {
    message(StatusCode::NOT_FOUND, "Not Found")
}

async fn packages_not_offered() -> Response {
    super::with_kind(
        message(
            StatusCode::NOT_IMPLEMENTED,
            "package management is not offered: Sandpit's runtimes are built into its images",
        ),
        ErrorKind::Unsupported,
    )
}

async fn connect_not_offered() -> Response {
    super::with_kind(
        message(
            StatusCode::NOT_IMPLEMENTED,
            "interactive execution is not offered",
        ),
        ErrorKind::Unsupported,
    )
}

// ---------------------------------------------------------------- runtimes

/// One language as Piston lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Piston's name for the language (`c++`, not Sandpit's `cpp`).
    pub language: String,
    /// The image's version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Piston's aliases, then Sandpit's.
    pub aliases: Vec<String>,
    /// The package providing several languages, where Piston has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Sandpit's language.
    #[serde(skip)]
    pub sandpit: Option<Language>,
}

/// Piston's name for a language.
pub fn piston_name(language: Language) -> &'static str {
    match language {
        Language::Python => "python",
        Language::Java => "java",
        Language::JavaScript => "javascript",
        Language::Cpp => "c++",
        Language::Go => "go",
        Language::Ruby => "ruby",
    }
}

/// The runtime entry of a language at a version.
pub fn runtime(language: Language, version: &str) -> Runtime {
    let name = piston_name(language);
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let mut aliases: Vec<String> = match language {
        Language::Python => vec![
            "py".into(),
            "py3".into(),
            "python3".into(),
            format!("python{minor}"),
        ],
        Language::Java => vec![],
        Language::JavaScript => vec![
            "node-javascript".into(),
            "node-js".into(),
            "javascript".into(),
            "js".into(),
        ],
        Language::Cpp => vec!["cpp".into(), "g++".into()],
        Language::Go => vec!["go".into(), "golang".into()],
        Language::Ruby => vec!["ruby3".into(), "rb".into()],
    };
    for alias in language.aliases() {
        if *alias != name && !aliases.iter().any(|a| a == alias) {
            aliases.push(alias.to_string());
        }
    }
    Runtime {
        language: name.to_string(),
        version: version.to_string(),
        aliases,
        runtime: match language {
            Language::JavaScript => Some("node".into()),
            Language::Cpp => Some("gcc".into()),
            _ => None,
        },
        sandpit: Some(language),
    }
}

/// The shell command that prints a language's version in its image.
fn version_command(language: Language) -> &'static str {
    match language {
        Language::Python => "python3 -c 'import platform; print(platform.python_version())'",
        Language::Java => "java -version 2>&1 | head -n 1",
        Language::JavaScript => "node -p process.versions.node",
        Language::Cpp => "g++ -dumpfullversion",
        Language::Go => "go version",
        Language::Ruby => "ruby -e 'print RUBY_VERSION'",
    }
}

/// The first version number in a tool's output as strict `MAJOR.MINOR.PATCH`
/// (`openjdk version "17.0.13" 2024-10-15` gives `17.0.13`, `go1.23` gives `1.23.0`).
pub fn strict_version(text: &str) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<u64> = digits
        .split('.')
        .filter(|p| !p.is_empty())
        .take(3)
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    parts.resize(3, 0);
    Some(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
}

/// Asks a language's image for its version, in a sandbox of its own.
async fn probe(engine: &Engine, language: Language) -> Result<String, String> {
    let session = SandboxSession::builder()
        .language(language)
        .engine(engine.clone())
        .open()
        .await
        .map_err(|e| sandpit::one_line(&e))?;
    let out = session.execute_command(version_command(language)).await;
    let _ = session.close().await;
    let out = out.map_err(|e| sandpit::one_line(&e))?;
    strict_version(&format!("{}\n{}", out.stdout, out.stderr)).ok_or_else(|| {
        format!(
            "`{}` printed no version: {}",
            version_command(language),
            out.stdout.trim()
        )
    })
}

/// Versions by image id, probed once per image.
static VERSIONS: OnceLock<tokio::sync::Mutex<HashMap<String, String>>> = OnceLock::new();

/// The image id behind each language's default image, where it exists.
async fn image_ids(engine: &Engine) -> HashMap<Language, String> {
    let images = engine.list_images().await.unwrap_or_default();
    Language::ALL
        .iter()
        .filter_map(|l| {
            let tag = sandpit::runner(*l).default_image().tag;
            images
                .iter()
                .find(|i| i.tags.contains(&tag))
                .map(|i| (*l, i.id.clone()))
        })
        .collect()
}

/// Every language Sandpit can run, with its image's version (probed once per image and
/// cached; a language whose version cannot be learned is left out, with a warning).
pub async fn runtime_list(engine: &Engine) -> Vec<Runtime> {
    let cache = VERSIONS.get_or_init(Default::default);
    let mut cache = cache.lock().await;
    let mut ids = image_ids(engine).await;
    let unknown: Vec<Language> = Language::ALL
        .iter()
        .copied()
        .filter(|l| ids.get(l).is_none_or(|id| !cache.contains_key(id)))
        .collect();
    if !unknown.is_empty() {
        let probed =
            futures_util::future::join_all(unknown.iter().map(|l| probe(engine, *l))).await;
        // A missing image was built by the probe: its id exists now.
        ids = image_ids(engine).await;
        for (language, version) in unknown.iter().zip(probed) {
            match (version, ids.get(language)) {
                (Ok(version), Some(id)) => {
                    cache.insert(id.clone(), version);
                }
                (Ok(_), None) => tracing::warn!(
                    "the {language} image has no id after probing its version; it is left out of Piston's runtimes"
                ),
                (Err(e), _) => tracing::warn!(
                    "cannot learn the {language} image's version ({e}); it is left out of Piston's runtimes"
                ),
            }
        }
    }
    Language::ALL
        .iter()
        .filter_map(|l| {
            let version = cache.get(ids.get(l)?)?;
            Some(runtime(*l, version))
        })
        .collect()
}

/// `GET /api/v2/runtimes` (no key): Piston's runtime list.
pub async fn runtimes(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, runtime_list(state.manager.engine()).await)
}

/// `GET /api/v2/packages` (no key): the runtimes as installed packages.
pub async fn packages(State(state): State<AppState>) -> Response {
    let list: Vec<Json> = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            obj([
                ("language", j(r.language)),
                ("language_version", j(r.version)),
                ("installed", j(true)),
            ])
        })
        .collect();
    json_response(StatusCode::OK, list)
}

/// `GET /api/v1/piston/runtimes` (no key): an object keyed by language, as `aio-piston`
/// reads it.
pub async fn runtimes_v1(State(state): State<AppState>) -> Response {
    let map = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            let entry = obj([("version", j(r.version)), ("aliases", j(r.aliases))]);
            (r.language, entry)
        })
        .collect();
    json_response(StatusCode::OK, Json::Object(map))
}

/// `GET /api/v1/piston/versions` (no key): v1's list.
pub async fn versions_v1(State(state): State<AppState>) -> Response {
    let list: Vec<Json> = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            obj([
                ("name", j(r.language)),
                ("version", j(r.version)),
                ("aliases", j(r.aliases)),
            ])
        })
        .collect();
    json_response(StatusCode::OK, list)
}

/// The newest runtime named `language` (or aliased so, any case) whose version satisfies the
/// node-semver range `range`.
pub fn lookup<'a>(runtimes: &'a [Runtime], language: &str, range: &str) -> Option<&'a Runtime> {
    let wanted = language.trim().to_ascii_lowercase();
    let range = nodejs_semver::Range::parse(range.trim()).ok()?;
    runtimes
        .iter()
        .filter(|r| r.language == wanted || r.aliases.contains(&wanted))
        .filter_map(|r| {
            let version = nodejs_semver::Version::parse(&r.version).ok()?;
            range.satisfies(&version).then_some((version, r))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, r)| r)
}

// ---------------------------------------------------------------- requests

/// What a request is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The longest compile or run timeout, in ms.
    pub timeout_ms: f64,
    /// The most memory a run may ask for, in bytes.
    pub memory_max: u64,
    /// The least memory a sandbox can have, in bytes.
    pub memory_min: u64,
}

impl Limits {
    /// The server's limits: 86 400 s (the longest timeout Sandpit takes), the permissive
    /// policy's memory, the 16 MiB a sandbox needs.
    pub fn server() -> Self {
        Limits {
            timeout_ms: 86_400_000.0,
            memory_max: SecurityPolicy::permissive().memory,
            memory_min: 16 << 20,
        }
    }
}

/// A checked request.
#[derive(Debug, Clone)]
pub struct Job {
    /// The runtime it runs on.
    pub runtime: Runtime,
    /// The main file's content.
    pub code: String,
    /// The other files, decoded: (relative path, bytes).
    pub files: Vec<(String, Vec<u8>)>,
    /// Standard input (ending in a newline).
    pub stdin: String,
    /// Arguments.
    pub args: Vec<String>,
    /// The compile stages' limit, ms.
    pub compile_timeout_ms: f64,
    /// The run stage's limit, ms.
    pub run_timeout_ms: f64,
    /// A memory limit other than Sandpit's default, bytes.
    pub memory: Option<u64>,
}

/// JavaScript's falsiness for a JSON value (absent, `null`, `false`, `0`, `""`).
fn falsy(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) | Some(Value::Bool(false)) => true,
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(Value::String(s)) => s.is_empty(),
        _ => false,
    }
}

/// A number as JavaScript prints it.
fn js_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{}", n as i128)
    } else {
        format!("{n}")
    }
}

/// The checked constraints of a request.
struct Constraints {
    compile_timeout_ms: f64,
    run_timeout_ms: f64,
    memory: Option<u64>,
}

/// Piston's checks of the limits, in its order (memory, timeouts, CPU time; compile before
/// run). Timeouts: falsy is the default. Memory: falsy, `0` or negative is Sandpit's default.
fn constraints(
    body: &serde_json::Map<String, Value>,
    limits: &Limits,
) -> Result<Constraints, String> {
    let number = |name: &str| -> Result<Option<f64>, String> {
        let v = body.get(name);
        if falsy(v) {
            return Ok(None);
        }
        v.and_then(Value::as_f64)
            .map(Some)
            .ok_or_else(|| format!("If specified, {name} must be a number"))
    };
    let mut memory: Option<u64> = None;
    for stage in ["compile", "run"] {
        let name = format!("{stage}_memory_limit");
        let Some(n) = number(&name)? else { continue };
        if n <= 0.0 {
            continue;
        }
        if n > limits.memory_max as f64 {
            return Err(format!(
                "{name} cannot exceed the configured limit of {}",
                limits.memory_max
            ));
        }
        if n < limits.memory_min as f64 {
            return Err(format!("{name} must be at least {}", limits.memory_min));
        }
        memory = Some(memory.unwrap_or(0).max(n as u64));
    }
    let mut timeouts = [10_000.0, 3_000.0];
    for (i, stage) in ["compile", "run"].iter().enumerate() {
        let name = format!("{stage}_timeout");
        let Some(n) = number(&name)? else { continue };
        if n > limits.timeout_ms {
            return Err(format!(
                "{name} cannot exceed the configured limit of {}",
                js_number(limits.timeout_ms)
            ));
        }
        if n < 0.0 {
            return Err(format!("{name} must be non-negative"));
        }
        timeouts[i] = n;
    }
    for stage in ["compile", "run"] {
        let name = format!("{stage}_cpu_time");
        let Some(n) = number(&name)? else { continue };
        if n > limits.timeout_ms {
            return Err(format!(
                "{name} cannot exceed the configured limit of {}",
                js_number(limits.timeout_ms)
            ));
        }
        if n < 0.0 {
            return Err(format!("{name} must be non-negative"));
        }
    }
    // Sandpit's default memory is no limit of its own: the pool's sandboxes have it.
    let memory = memory.filter(|m| *m != SecurityPolicy::standard().memory);
    Ok(Constraints {
        compile_timeout_ms: timeouts[0],
        run_timeout_ms: timeouts[1],
        memory,
    })
}

/// `stdin` (a newline added when missing) and `args` (numbers and booleans as their text).
fn stdin_and_args(body: &serde_json::Map<String, Value>) -> Result<(String, Vec<String>), String> {
    let mut stdin = match body.get("stdin") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("stdin must be a string".into()),
    };
    if !stdin.ends_with('\n') {
        stdin.push('\n');
    }
    let args = match body.get("args") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(s.clone()),
                Value::Number(n) => Ok(n.to_string()),
                Value::Bool(b) => Ok(b.to_string()),
                _ => Err("args must be an array of strings".to_string()),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("args must be an array of strings".into()),
    };
    Ok((stdin, args))
}

/// Decodes base64 as leniently as Node's `Buffer.from(s, 'base64')` (whitespace, missing
/// padding and the URL-safe alphabet accepted).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let clean = clean.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(clean)
        .or_else(|_| URL_SAFE_NO_PAD.decode(clean))
        .ok()
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Checks a v2 request in Piston's order, with Piston's messages.
pub fn parse_v2(body: &Value, runtimes: &[Runtime], limits: &Limits) -> Result<Job, String> {
    let empty = serde_json::Map::new();
    let body = body.as_object().unwrap_or(&empty);
    let language = match body.get("language") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("language is required as a string".into()),
    };
    let version = match body.get("version") {
        None | Some(Value::Null) => "*".to_string(),
        Some(Value::String(s)) if s.is_empty() => "*".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("version is required as a string".into()),
    };
    let Some(Value::Array(files)) = body.get("files") else {
        return Err("files is required as an array".into());
    };
    for (i, file) in files.iter().enumerate() {
        if !matches!(file.get("content"), Some(Value::String(_))) {
            return Err(format!("files[{i}].content is required as a string"));
        }
    }
    let Some(runtime) = lookup(runtimes, &language, &version) else {
        return Err(format!("{language}-{version} runtime is unknown"));
    };
    let encoding = |file: &Value| match file.get("encoding").and_then(Value::as_str) {
        Some("base64") => "base64",
        Some("hex") => "hex",
        _ => "utf8",
    };
    let Some(main) = files.iter().position(|f| encoding(f) == "utf8") else {
        return Err("files must include at least one utf8 encoded file".into());
    };
    let limits = constraints(body, limits)?;
    let mut extra = Vec::new();
    let mut code = String::new();
    for (i, file) in files.iter().enumerate() {
        let content = file["content"].as_str().unwrap_or_default();
        if i == main {
            code = content.to_string();
            continue;
        }
        let name = match file.get("name").and_then(Value::as_str) {
            Some(n) if !n.is_empty() => n.to_string(),
            _ => format!("file{i}.code"),
        };
        let path = (!name.starts_with('/'))
            .then(|| super::inside_workdir(&name, "/"))
            .flatten()
            .ok_or_else(|| format!("File path \"{name}\" tries to escape parent directory"))?;
        let data = match encoding(file) {
            "base64" => decode_base64(content)
                .ok_or_else(|| format!("files[{i}].content is not valid base64"))?,
            "hex" => {
                decode_hex(content).ok_or_else(|| format!("files[{i}].content is not valid hex"))?
            }
            _ => content.as_bytes().to_vec(),
        };
        extra.push((path, data));
    }
    let (stdin, args) = stdin_and_args(body)?;
    Ok(Job {
        runtime: runtime.clone(),
        code,
        files: extra,
        stdin,
        args,
        compile_timeout_ms: limits.compile_timeout_ms,
        run_timeout_ms: limits.run_timeout_ms,
        memory: limits.memory,
    })
}

/// A v1 error: `{"code", "message"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct V1Error {
    /// `unsupported_language`, `missing_source`, `invalid_args`, `invalid_input`.
    pub code: &'static str,
    /// What is wrong.
    pub message: String,
}

/// Checks a v1 request (emkc's `/api/v1/piston/execute`) with the old server's checks.
pub fn parse_v1(body: &Value, runtimes: &[Runtime], limits: &Limits) -> Result<Job, V1Error> {
    let empty = serde_json::Map::new();
    let body = body.as_object().unwrap_or(&empty);
    let err = |code: &'static str, message: String| V1Error { code, message };
    let (language, shown) = match body.get("language") {
        Some(Value::String(s)) => (s.clone(), s.clone()),
        Some(other) => (String::new(), other.to_string()),
        None => (String::new(), "undefined".to_string()),
    };
    let version = match body.get("version").and_then(Value::as_str) {
        Some(v) if !v.is_empty() => v.to_string(),
        _ => "*".to_string(),
    };
    let Some(runtime) = lookup(runtimes, &language, &version) else {
        let known = !language.is_empty() && lookup(runtimes, &language, "*").is_some();
        return Err(err(
            "unsupported_language",
            if known {
                format!("{shown}-{version} runtime is unknown")
            } else {
                format!("{shown} is not supported by Piston")
            },
        ));
    };
    let Some(Value::String(source)) = body.get("source") else {
        return Err(err("missing_source", "source field is invalid".into()));
    };
    if body
        .get("args")
        .is_some_and(|a| !a.is_null() && !a.is_array())
    {
        return Err(err("invalid_args", "args field is not an array".into()));
    }
    let limits = constraints(body, limits).map_err(|m| err("invalid_input", m))?;
    let (stdin, args) = stdin_and_args(body).map_err(|m| err("invalid_input", m))?;
    Ok(Job {
        runtime: runtime.clone(),
        code: source.clone(),
        files: Vec::new(),
        stdin,
        args,
        compile_timeout_ms: limits.compile_timeout_ms,
        run_timeout_ms: limits.run_timeout_ms,
        memory: limits.memory,
    })
}

// ---------------------------------------------------------------- running

/// One stage of an answer, as Piston's readme shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Stage {
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
    /// The exit code, or `null` when a signal ended it.
    pub code: Option<i64>,
    /// The signal that ended it (`SIGKILL` for a timeout or the memory limit).
    pub signal: Option<String>,
    /// stdout and stderr interleaved in arrival order.
    pub output: String,
    /// What went wrong, in isolate's words.
    pub message: Option<String>,
    /// `TO`, `OL`, `EL`, `SG`, `RE`, or `null`.
    pub status: Option<String>,
    /// CPU time in ms, where the sandbox shows it.
    pub cpu_time: Option<u64>,
    /// Wall time in ms.
    pub wall_time: u64,
    /// The sandbox's memory peak in bytes, where it shows it.
    pub memory: Option<u64>,
}

/// The name of Linux signal `n` as Piston's table has it (1–31, 34–64).
pub fn signal_name(n: i64) -> Option<String> {
    const NAMES: [&str; 31] = [
        "SIGHUP",
        "SIGINT",
        "SIGQUIT",
        "SIGILL",
        "SIGTRAP",
        "SIGABRT",
        "SIGBUS",
        "SIGFPE",
        "SIGKILL",
        "SIGUSR1",
        "SIGSEGV",
        "SIGUSR2",
        "SIGPIPE",
        "SIGALRM",
        "SIGTERM",
        "SIGSTKFLT",
        "SIGCHLD",
        "SIGCONT",
        "SIGSTOP",
        "SIGTSTP",
        "SIGTTIN",
        "SIGTTOU",
        "SIGURG",
        "SIGXCPU",
        "SIGXFSZ",
        "SIGVTALRM",
        "SIGPROF",
        "SIGWINCH",
        "SIGIO",
        "SIGPWR",
        "SIGSYS",
    ];
    match n {
        1..=31 => Some(NAMES[(n - 1) as usize].to_string()),
        34 => Some("SIGRTMIN".into()),
        35..=49 => Some(format!("SIGRTMIN+{}", n - 34)),
        50..=63 => Some(format!("SIGRTMAX-{}", 64 - n)),
        64 => Some("SIGRTMAX".into()),
        _ => None,
    }
}

/// A stage from one step's outcome; `output` is its interleaved text when known.
pub fn stage(step: &ExecOutput, output: Option<String>) -> Stage {
    let signal_number = if step.timed_out || step.oom_killed {
        Some(9)
    } else {
        Some(step.exit_code - 128).filter(|n| signal_name(*n).is_some())
    };
    let signal = signal_number.and_then(signal_name);
    let code = signal.is_none().then_some(step.exit_code);
    let (status, message) = if step.timed_out {
        (
            Some("TO"),
            Some("Time limit exceeded (wall clock)".to_string()),
        )
    } else if step.truncated && step.stdout.len() >= step.stderr.len() {
        (Some("OL"), Some("stdout length exceeded".to_string()))
    } else if step.truncated {
        (Some("EL"), Some("stderr length exceeded".to_string()))
    } else if let Some(n) = signal_number {
        (Some("SG"), Some(format!("Caught fatal signal {n}")))
    } else if step.exit_code != 0 {
        (
            Some("RE"),
            Some(format!("Exited with error status {}", step.exit_code)),
        )
    } else {
        (None, None)
    };
    let usage = step.usage.unwrap_or_default();
    Stage {
        stdout: step.stdout.clone(),
        stderr: step.stderr.clone(),
        code,
        signal,
        output: output.unwrap_or_else(|| format!("{}{}", step.stdout, step.stderr)),
        message,
        status: status.map(String::from),
        cpu_time: usage.cpu.map(|d| d.as_millis() as u64),
        wall_time: step.duration.as_millis() as u64,
        memory: usage.memory_peak_bytes,
    }
}

/// The interleaved text of the compile steps and of the run step, from the chunks in arrival
/// order: the first bytes of each stream, as many as the compile steps kept, are theirs.
/// `None` for a stage whose chunks do not add up to its text.
pub fn split_output(
    chunks: &[OutputChunk],
    compile: Option<&ExecOutput>,
    run: (&str, &str),
) -> (Option<String>, Option<String>) {
    let (mut out_left, mut err_left) = compile
        .map(|c| (c.stdout.len(), c.stderr.len()))
        .unwrap_or((0, 0));
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for chunk in chunks {
        let left = match chunk.stream {
            StreamKind::Stdout => &mut out_left,
            StreamKind::Stderr => &mut err_left,
        };
        let n = (*left).min(chunk.data.len());
        first.extend_from_slice(&chunk.data[..n]);
        second.extend_from_slice(&chunk.data[n..]);
        *left -= n;
    }
    let text = |bytes: Vec<u8>, expected: usize| {
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (text.len() == expected).then_some(text)
    };
    let compiled = compile.and_then(|c| text(first, c.stdout.len() + c.stderr.len()));
    let ran = text(second, run.0.len() + run.1.len());
    (compiled, ran)
}

/// What a job gave: the compile stage (for languages that compile) and the run stage.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The compile steps.
    pub compile: Option<Stage>,
    /// The program (a copy of `compile` when compiling failed).
    pub run: Stage,
    /// True when compiling failed and nothing ran.
    pub compile_failed: bool,
}

/// Maps a run's result to Piston's stages.
pub fn outcome(result: RunResult, chunks: &[OutputChunk]) -> Outcome {
    let (compile_output, run_output) = split_output(
        chunks,
        result.compile.as_ref(),
        (&result.stdout, &result.stderr),
    );
    let compile_failed = result
        .compile
        .as_ref()
        .is_some_and(|c| c.exit_code != 0 || c.timed_out || c.oom_killed);
    let compile = result.compile.as_ref().map(|c| stage(c, compile_output));
    if let (true, Some(failed)) = (compile_failed, &compile) {
        return Outcome {
            run: failed.clone(),
            compile,
            compile_failed,
        };
    }
    let compile_duration = result
        .compile
        .as_ref()
        .map(|c| c.duration)
        .unwrap_or_default();
    let compile_cpu = result
        .compile
        .as_ref()
        .and_then(|c| c.usage)
        .and_then(|u| u.cpu);
    let usage = result.usage.map(|u| RunUsage {
        cpu: match (u.cpu, compile_cpu) {
            (Some(all), Some(before)) => Some(all.saturating_sub(before)),
            (all, _) => all,
        },
        memory_peak_bytes: u.memory_peak_bytes,
    });
    let run = ExecOutput {
        stdout: result.stdout,
        stderr: result.stderr,
        exit_code: result.exit_code,
        timed_out: result.timed_out,
        truncated: result.truncated,
        oom_killed: result.oom_killed,
        duration: result.duration.saturating_sub(compile_duration),
        usage,
    };
    Outcome {
        compile,
        run: stage(&run, run_output),
        compile_failed,
    }
}

/// True for languages whose runner compiles before running.
fn compiles(language: Language) -> bool {
    !sandpit::runner(language).run("main").compile.is_empty()
}

/// Runs a job in a fresh sandbox. Compile and run share one timeout in Sandpit's runner, so
/// a compiled language gets `compile_timeout + run_timeout` for both stages together.
pub async fn run_job(state: &AppState, owner: &Owner, job: Job) -> Result<Outcome, ServiceError> {
    let language = job
        .runtime
        .sandpit
        .ok_or_else(|| ServiceError::internal("the runtime names no Sandpit language"))?;
    let mut total_ms = job.run_timeout_ms;
    if compiles(language) {
        total_ms += job.compile_timeout_ms;
    }
    let total = Duration::from_secs_f64((total_ms / 1000.0).max(0.001));
    let chunks: Arc<Mutex<Vec<OutputChunk>>> = Arc::default();
    let sink = chunks.clone();
    let options = RunOptions::new()
        .timeout(total)
        .stdin(job.stdin.into_bytes())
        .args(job.args)
        .env("PISTON_LANGUAGE", job.runtime.language.clone())
        .on_output(move |chunk| {
            if let Ok(mut chunks) = sink.lock() {
                chunks.push(chunk);
            }
        });
    let program = Program {
        language,
        code: job.code,
        options,
        files: job.files,
        memory: job.memory,
        wait: total,
    };
    let result = state.manager.run_program(owner, program).await?;
    let chunks = std::mem::take(&mut *chunks.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(outcome(result, &chunks))
}

// ---------------------------------------------------------------- routes

const NO_KEY: &str = "a Sandpit key is required: send Authorization: Bearer sp_…, or put /k/<key> in front of /api/v2 in the server URL";

async fn caller(
    parts: &mut axum::http::request::Parts,
    state: &AppState,
) -> Result<Owner, Response> {
    super::owner(parts, state)
        .await
        .map_err(|denied| match denied {
            Denied::NoKey => super::with_kind(
                message(StatusCode::UNAUTHORIZED, NO_KEY),
                ErrorKind::Unauthorized,
            ),
            Denied::BadKey => super::with_kind(
                message(
                    StatusCode::UNAUTHORIZED,
                    "the key is unknown or was revoked",
                ),
                ErrorKind::Unauthorized,
            ),
            Denied::Failed(e) => message_error(&e),
        })
}

/// The caller and the request body as JSON (an empty body is `{}`, as express reads it).
async fn keyed_json(state: &AppState, req: Request) -> Result<(Owner, Value), Response> {
    let (mut parts, body) = req.into_parts();
    let owner = caller(&mut parts, state).await?;
    let bytes = super::body_bytes(body, state)
        .await
        .map_err(|e| message_error(&e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((owner, json!({})));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        super::with_kind(
            message(
                StatusCode::BAD_REQUEST,
                format!("request body is not valid JSON: {e}"),
            ),
            ErrorKind::InvalidInput,
        )
    })?;
    Ok((owner, value))
}

fn bad_request(body: Json) -> Response {
    super::with_kind(
        json_response(StatusCode::BAD_REQUEST, body),
        ErrorKind::InvalidInput,
    )
}

/// The answer of `/api/v2/execute`.
#[derive(Debug, Serialize)]
pub struct Executed {
    /// The compile stage, for languages that compile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compile: Option<Stage>,
    /// The run stage.
    pub run: Stage,
    /// The runtime's name.
    pub language: String,
    /// The runtime's version.
    pub version: String,
}

/// `POST /api/v2/execute`.
pub async fn execute(State(state): State<AppState>, req: Request) -> Response {
    let (owner, body) = match keyed_json(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let runtimes = runtime_list(state.manager.engine()).await;
    let job = match parse_v2(&body, &runtimes, &Limits::server()) {
        Ok(job) => job,
        Err(text) => return bad_request(obj([("message", j(text))])),
    };
    let runtime = job.runtime.clone();
    match run_job(&state, &owner, job).await {
        Ok(outcome) => json_response(
            StatusCode::OK,
            Executed {
                compile: outcome.compile,
                run: outcome.run,
                language: runtime.language,
                version: runtime.version,
            },
        ),
        Err(e) => message_error(&e),
    }
}

/// The answer of v1's execute: flat, the compile stage's text before the run's.
#[derive(Debug, Serialize)]
pub struct ExecutedV1 {
    /// Always true for an accepted request.
    pub ran: bool,
    /// The runtime's name.
    pub language: String,
    /// The runtime's version.
    pub version: String,
    /// stdout and stderr interleaved.
    pub output: String,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

/// Flattens an outcome into v1's answer.
pub fn flat(outcome: &Outcome, runtime: &Runtime) -> ExecutedV1 {
    let mut stages: Vec<&Stage> = outcome.compile.iter().collect();
    if !outcome.compile_failed {
        stages.push(&outcome.run);
    }
    let join = |f: fn(&Stage) -> &str| stages.iter().map(|s| f(s)).collect::<String>();
    ExecutedV1 {
        ran: true,
        language: runtime.language.clone(),
        version: runtime.version.clone(),
        output: join(|s| &s.output),
        stdout: join(|s| &s.stdout),
        stderr: join(|s| &s.stderr),
    }
}

/// `POST /api/v1/piston/execute` (emkc's v1, for `aio-piston`).
pub async fn execute_v1(State(state): State<AppState>, req: Request) -> Response {
    let (owner, body) = match keyed_json(&state, req).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let runtimes = runtime_list(state.manager.engine()).await;
    let job = match parse_v1(&body, &runtimes, &Limits::server()) {
        Ok(job) => job,
        Err(e) => return bad_request(obj([("code", j(e.code)), ("message", j(e.message))])),
    };
    let runtime = job.runtime.clone();
    match run_job(&state, &owner, job).await {
        Ok(outcome) => json_response(StatusCode::OK, flat(&outcome, &runtime)),
        Err(e) => message_error(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list() -> Vec<Runtime> {
        vec![
            runtime(Language::Python, "3.11.2"),
            runtime(Language::Java, "17.0.13"),
            runtime(Language::JavaScript, "18.19.0"),
            runtime(Language::Cpp, "12.2.0"),
            runtime(Language::Go, "1.19.8"),
            runtime(Language::Ruby, "3.1.2"),
        ]
    }

    #[test]
    fn the_runtime_list_has_pistons_names_and_aliases() {
        let text = serde_json::to_string(&list()).unwrap();
        assert!(text.starts_with(
            r#"[{"language":"python","version":"3.11.2","aliases":["py","py3","python3","python3.11"]},{"language":"java","version":"17.0.13","aliases":[]},{"language":"javascript","version":"18.19.0","aliases":["node-javascript","node-js","javascript","js","node","nodejs"],"runtime":"node"},{"language":"c++","version":"12.2.0","aliases":["cpp","g++","cxx"],"runtime":"gcc"}"#
        ), "{text}");
        assert!(
            text.ends_with(r#"{"language":"ruby","version":"3.1.2","aliases":["ruby3","rb"]}]"#)
        );
    }

    #[test]
    fn versions_become_strict() {
        assert_eq!(strict_version("3.11.2\n").unwrap(), "3.11.2");
        assert_eq!(
            strict_version("openjdk version \"17.0.13\" 2024-10-15").unwrap(),
            "17.0.13"
        );
        assert_eq!(
            strict_version("openjdk version \"21\" 2023").unwrap(),
            "21.0.0"
        );
        assert_eq!(
            strict_version("go version go1.19.8 linux/amd64").unwrap(),
            "1.19.8"
        );
        assert_eq!(strict_version("12.2.0").unwrap(), "12.2.0");
        assert_eq!(strict_version("nothing"), None);
    }

    #[test]
    fn version_ranges_match_as_node_semver() {
        let rts = list();
        for range in [
            "*",
            "x",
            "3",
            "3.x",
            "3.*",
            "3.11",
            "3.11.x",
            "^3.10",
            "~3.11.0",
            ">=3.8",
            ">=3.8 <4",
            "3.8 - 3.12",
            "2.x || 3.x",
            "3.11.2",
            "=3.11.2",
            "v3.11.2",
        ] {
            let found = lookup(&rts, "python", range);
            assert_eq!(found.map(|r| r.version.as_str()), Some("3.11.2"), "{range}");
        }
        for range in ["3.10.0", "3.12", "^3.12", "<3", "latest", "abc", "3.11.2.1"] {
            assert!(lookup(&rts, "python", range).is_none(), "{range}");
        }
        assert_eq!(lookup(&rts, "PY", "*").unwrap().language, "python");
        assert_eq!(lookup(&rts, "cpp", "*").unwrap().language, "c++");
        assert_eq!(lookup(&rts, "js", "18.x").unwrap().language, "javascript");
        assert!(lookup(&rts, "cobol", "*").is_none());
    }

    fn v2(body: Value) -> Result<Job, String> {
        parse_v2(&body, &list(), &Limits::server())
    }

    #[test]
    fn v2_checks_in_pistons_order() {
        let file = json!([{"content": "print(1)"}]);
        assert_eq!(
            v2(json!({})).unwrap_err(),
            "language is required as a string"
        );
        assert_eq!(
            v2(json!({"language": "python", "version": 3, "files": file})).unwrap_err(),
            "version is required as a string"
        );
        assert_eq!(
            v2(json!({"language": "python"})).unwrap_err(),
            "files is required as an array"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": [{"content": "x"}, {"name": "a"}]}))
                .unwrap_err(),
            "files[1].content is required as a string"
        );
        assert_eq!(
            v2(json!({"language": "cobol", "files": file})).unwrap_err(),
            "cobol-* runtime is unknown"
        );
        assert_eq!(
            v2(json!({"language": "js", "version": "15.10.0", "files": file})).unwrap_err(),
            "js-15.10.0 runtime is unknown"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": [{"content": "aGk=", "encoding": "base64"}]}))
                .unwrap_err(),
            "files must include at least one utf8 encoded file"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_timeout": "3"})).unwrap_err(),
            "If specified, run_timeout must be a number"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_timeout": 1e12})).unwrap_err(),
            "run_timeout cannot exceed the configured limit of 86400000"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "compile_timeout": -5})).unwrap_err(),
            "compile_timeout must be non-negative"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_cpu_time": -1})).unwrap_err(),
            "run_cpu_time must be non-negative"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_memory_limit": "x"})).unwrap_err(),
            "If specified, run_memory_limit must be a number"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_memory_limit": 1e15})).unwrap_err(),
            "run_memory_limit cannot exceed the configured limit of 2147483648"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "run_memory_limit": 1024})).unwrap_err(),
            "run_memory_limit must be at least 16777216"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "stdin": 5})).unwrap_err(),
            "stdin must be a string"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": file, "args": [{}]})).unwrap_err(),
            "args must be an array of strings"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": [{"content": "x"}, {"name": "../x", "content": ""}]}))
                .unwrap_err(),
            "File path \"../x\" tries to escape parent directory"
        );
        assert_eq!(
            v2(json!({"language": "python", "files": [{"content": "x"}, {"content": "%%", "encoding": "base64"}]}))
                .unwrap_err(),
            "files[1].content is not valid base64"
        );
    }

    #[test]
    fn v2_maps_what_the_clients_send() {
        let job = v2(json!({
            "language": "py", "version": "3.x",
            "files": [
                {"name": "data.bin", "content": "aGk=", "encoding": "base64"},
                {"name": "main.py", "content": "print(1)"},
                {"name": "lib/helper.py", "content": "X = 1"},
                {"content": "6869", "encoding": "hex"},
            ],
            "stdin": "abc", "args": ["1", 2, true],
            "compile_timeout": 10000, "run_timeout": 0,
            "compile_memory_limit": -1, "run_memory_limit": -1,
        }))
        .unwrap();
        assert_eq!(job.runtime.language, "python");
        assert_eq!(job.code, "print(1)");
        assert_eq!(
            job.files,
            vec![
                ("data.bin".to_string(), b"hi".to_vec()),
                ("lib/helper.py".to_string(), b"X = 1".to_vec()),
                ("file3.code".to_string(), b"hi".to_vec()),
            ]
        );
        assert_eq!(job.stdin, "abc\n");
        assert_eq!(job.args, ["1", "2", "true"]);
        assert_eq!(job.run_timeout_ms, 3000.0);
        assert_eq!(job.memory, None);
        let job = v2(json!({"language": "python", "files": [{"content": ""}], "run_memory_limit": 0, "compile_memory_limit": 100_000_000})).unwrap();
        assert_eq!(job.memory, Some(100_000_000));
        assert_eq!(job.stdin, "\n");
    }

    #[test]
    fn v1_checks() {
        let v1 = |body: Value| parse_v1(&body, &list(), &Limits::server());
        let e = v1(json!({"language": "cobol", "source": "x"})).unwrap_err();
        assert_eq!(e.code, "unsupported_language");
        assert_eq!(e.message, "cobol is not supported by Piston");
        assert_eq!(
            v1(json!({"language": "python"})).unwrap_err().code,
            "missing_source"
        );
        assert_eq!(
            v1(json!({"language": "python", "source": "x", "args": "a"}))
                .unwrap_err()
                .message,
            "args field is not an array"
        );
        let e = v1(json!({"language": "python", "source": "x", "run_timeout": "x"})).unwrap_err();
        assert_eq!(e.code, "invalid_input");
        let job =
            v1(json!({"language": "py", "source": "print(1)", "stdin": "bob", "args": ["a"]}))
                .unwrap();
        assert_eq!(
            (job.code.as_str(), job.stdin.as_str()),
            ("print(1)", "bob\n")
        );
    }

    fn step(exit_code: i64) -> ExecOutput {
        ExecOutput {
            stdout: "out".into(),
            stderr: String::new(),
            exit_code,
            timed_out: false,
            truncated: false,
            oom_killed: false,
            duration: Duration::from_millis(5),
            usage: Some(RunUsage {
                cpu: Some(Duration::from_millis(2)),
                memory_peak_bytes: Some(1000),
            }),
        }
    }

    #[test]
    fn stages_report_as_piston() {
        let s = stage(&step(0), None);
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            r#"{"stdout":"out","stderr":"","code":0,"signal":null,"output":"out","message":null,"status":null,"cpu_time":2,"wall_time":5,"memory":1000}"#
        );
        let s = stage(&step(3), None);
        assert_eq!((s.code, s.status.as_deref()), (Some(3), Some("RE")));
        assert_eq!(s.message.as_deref(), Some("Exited with error status 3"));
        let s = stage(&step(139), None);
        assert_eq!((s.code, s.signal.as_deref()), (None, Some("SIGSEGV")));
        assert_eq!(s.message.as_deref(), Some("Caught fatal signal 11"));
        let mut t = step(137);
        t.timed_out = true;
        let s = stage(&t, None);
        assert_eq!(
            (s.code, s.signal.as_deref(), s.status.as_deref()),
            (None, Some("SIGKILL"), Some("TO"))
        );
        let mut t = step(0);
        t.truncated = true;
        assert_eq!(stage(&t, None).status.as_deref(), Some("OL"));
        assert_eq!(signal_name(34).unwrap(), "SIGRTMIN");
        assert_eq!(signal_name(35).unwrap(), "SIGRTMIN+1");
        assert_eq!(signal_name(50).unwrap(), "SIGRTMAX-14");
        assert_eq!(signal_name(64).unwrap(), "SIGRTMAX");
        assert_eq!(signal_name(32), None);
        assert_eq!(signal_name(200), None);
    }

    fn chunk(stream: StreamKind, text: &str) -> OutputChunk {
        OutputChunk {
            stream,
            data: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn output_splits_at_the_stage_boundary() {
        let mut compile = step(0);
        compile.stdout = "c1".into();
        compile.stderr = "warn\n".into();
        let chunks = [
            chunk(StreamKind::Stderr, "warn\n"),
            chunk(StreamKind::Stdout, "c1a\n"),
            chunk(StreamKind::Stderr, "b\n"),
            chunk(StreamKind::Stdout, "c\n"),
        ];
        let (c, r) = split_output(&chunks, Some(&compile), ("a\nc\n", "b\n"));
        assert_eq!(c.as_deref(), Some("warn\nc1"));
        assert_eq!(r.as_deref(), Some("a\nb\nc\n"));
        let (c, r) = split_output(&chunks[..1], None, ("x", ""));
        assert_eq!((c, r), (None, None));
    }

    #[test]
    fn a_failed_compile_is_the_run_too() {
        let mut compile = step(1);
        compile.stderr = "error: x".into();
        let result = RunResult {
            stdout: String::new(),
            stderr: String::new(),
            exit_code: 1,
            timed_out: false,
            truncated: false,
            oom_killed: false,
            duration: Duration::from_millis(9),
            compile: Some(compile),
            artifacts: Vec::new(),
            usage: None,
        };
        let o = outcome(result, &[]);
        assert!(o.compile_failed);
        assert_eq!(o.compile.as_ref(), Some(&o.run));
        assert_eq!(o.run.code, Some(1));
        let v1 = flat(&o, &runtime(Language::Cpp, "12.2.0"));
        assert_eq!(v1.stderr, "error: x");
        assert_eq!(v1.output, "outerror: x");
    }
}
