//! Running one command in the container: output under a cap, a timeout that kills the
//! whole process tree, exit code.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sandpit_engine::{Engine, EngineError, ExecChunk, ExecRequest, ExecStream};

use crate::error::{Error, Result};
use crate::output::{ExecOutput, OutputChunk, OutputSink, RunUsage, StreamKind};
use crate::runner::User;

/// Writes the inline source file and the stdin redirection, then becomes the program.
/// Each exec carries `SANDPIT_EXEC=<id>` so that a timeout can find every process it forked.
///
/// With `SANDPIT_RELAY` set (gVisor), the program's output goes through `cat` (over FIFOs),
/// and `SANDPIT_NPROC` gives it the session's process limit (gVisor's execs have none):
/// this gVisor drops all but the first 64 KiB of a single large write to an exec's output
/// pipe. The wrapper waits for the relays at most 2 s after the program ended, so a child left
/// holding the output (a kernel that died with a child alive) cannot hold the call open; it
/// survives a stray SIGINT (`trap :`, which the program does not inherit). With
/// `SANDPIT_STATS` set, the wrapper stays the program's parent and, once it ended, writes one
/// last line on stderr (see [`STATS_TRAILER`]): the container's CPU time before and after
/// (cgroup counters, read with shell builtins, so no process is started) and its memory peak.
pub(crate) const WRAPPER: &str = r#"if [ -n "${SANDPIT_SOURCE_PATH:-}" ]; then printf '%s' "$SANDPIT_SOURCE" > "$SANDPIT_SOURCE_PATH" || exit 125; fi
unset SANDPIT_SOURCE SANDPIT_SOURCE_PATH
if [ -n "${SANDPIT_STDIN:-}" ]; then s=$SANDPIT_STDIN; unset SANDPIT_STDIN; exec 0<"$s"; rm -f "$s" 2>/dev/null
elif [ -n "${SANDPIT_KEEP_STDIN:-}" ]; then unset SANDPIT_KEEP_STDIN
else exec 0</dev/null; fi
sp_cpu() { sp_c=-; read sp_c 2>/dev/null </sys/fs/cgroup/cpuacct/cpuacct.usage || { read sp_k sp_c 2>/dev/null </sys/fs/cgroup/cpu.stat && sp_c=${sp_c}000; } || sp_c=-; }
sp_stats=${SANDPIT_STATS:-}; unset SANDPIT_STATS
if [ -z "${SANDPIT_RELAY:-}" ]; then
  [ -n "$sp_stats" ] || exec "$@"
  sp_cpu; sp_c0=$sp_c; "$@"; s=$?
else
  unset SANDPIT_RELAY; sp_cpu; sp_c0=$sp_c; trap : INT
  f=/tmp/.sandpit-relay-$SANDPIT_EXEC
  mkfifo -m 600 "$f.o" "$f.e" || exit 125
  cat "$f.o" & sp_o=$!
  cat "$f.e" >&2 & sp_e=$!
  n=${SANDPIT_NPROC:-}; unset SANDPIT_NPROC; if [ -n "$n" ]; then (ulimit -p "$n" 2>/dev/null || ulimit -u "$n"; exec "$@") >"$f.o" 2>"$f.e"; else "$@" >"$f.o" 2>"$f.e"; fi; s=$?
  rm -f "$f.o" "$f.e"
  (sleep 2; kill $sp_o $sp_e) >/dev/null 2>&1 </dev/null & sp_w=$!
  wait $sp_o $sp_e; kill $sp_w 2>/dev/null
fi
if [ -n "$sp_stats" ]; then
  sp_cpu; sp_m=-; read sp_m 2>/dev/null </sys/fs/cgroup/memory/memory.max_usage_in_bytes || read sp_m 2>/dev/null </sys/fs/cgroup/memory.peak || sp_m=-
  printf '\036SANDPIT-STATS %s %s %s\n' "$sp_c0" "$sp_c" "$sp_m" >&2
fi
exit $s"#;

/// Stops then kills every process whose environment holds the exec's marker, in rounds,
/// so that processes forked meanwhile are caught too; then waits (up to 15 s: a loaded machine
/// reaps thousands of them slowly) for the zombies to be reaped: they still count against the
/// pids limit, and the next exec could not start. Its first word (a builtin, no fork) tells
/// that it started at all.
const KILLER: &str = r#"printf .; m="SANDPIT_EXEC=$1"; n=0
while [ $n -lt 30 ]; do
  pids=""
  for f in $(grep -lszxF "$m" /proc/[0-9]*/environ 2>/dev/null); do p=${f#/proc/}; pids="$pids ${p%/environ}"; done
  [ -z "$pids" ] && break
  kill -STOP $pids 2>/dev/null; kill -KILL $pids 2>/dev/null
  n=$((n+1))
done
[ $n -lt 30 ] || exit 3
n=0
while [ $n -lt 150 ]; do
  z=""
  for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; case "${l##*) }" in Z*) z=1; break;; esac; done
  [ -z "$z" ] && exit 0
  sleep 0.1; n=$((n+1))
done
exit 0"#;

/// True when `stderr` ends with the wrapper's own shell saying it could not fork before the
/// program was launched (the process limit is full), so the program never ran: dash says
/// `sandpit: 10: Cannot fork`, bash `sandpit: line 10: fork: ...`, busybox `can't fork`.
pub(crate) fn wrapper_could_not_fork(stderr: &str) -> bool {
    let Some(last) = stderr.lines().rev().find(|l| !l.trim().is_empty()) else {
        return false;
    };
    let Some(rest) = last.strip_prefix("sandpit: ") else {
        return false;
    };
    let rest = rest.strip_prefix("line ").unwrap_or(rest);
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let (Ok(line), Some(said)) = (
        rest[..digits].parse::<usize>(),
        rest[digits..].strip_prefix(": "),
    ) else {
        return false;
    };
    let launched_by = WRAPPER
        .lines()
        .enumerate()
        .filter(|(_, l)| l.contains("\"$@\""))
        .map(|(i, _)| i + 1)
        .max()
        .unwrap_or(0);
    let fork =
        said.contains("Cannot fork") || said.contains("can't fork") || said.starts_with("fork: ");
    fork && line <= launched_by
}

/// The start of the wrapper's statistics line on stderr.
pub(crate) const STATS_TRAILER: &[u8] = b"SANDPIT-STATS ";

/// How often a watched command checks that its container still runs.
pub(crate) const WATCH_EVERY: Duration = Duration::from_secs(1);

/// True while the container runs; false once it stopped or is gone.
pub(crate) async fn container_runs(engine: &Engine, container: &str) -> Result<bool> {
    match engine.inspect_container(container).await {
        Ok(state) => Ok(state.running),
        Err(e) if e.is_not_found() => Ok(false),
        Err(e) => Err(exec_error(container, e)),
    }
}

/// True when the container stops within `patience` (checked at once, then every 100 ms).
async fn stops_within(engine: &Engine, container: &str, patience: Duration) -> Result<bool> {
    let until = tokio::time::Instant::now() + patience;
    loop {
        if !container_runs(engine, container).await? {
            return Ok(true);
        }
        if tokio::time::Instant::now() >= until {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// How long a container that refused a call may take to show that it is stopping.
const STOPPING: Duration = Duration::from_millis(300);

/// `e`, or [`Error::SessionGone`] when the container stops within `patience`: a call into a
/// sandbox that died under it (removed from outside, or a gVisor sandbox whose runtime is
/// gone) fails in the engine's words before the engine reports the container stopped.
pub(crate) async fn gone_or(
    engine: &Engine,
    container: &str,
    e: Error,
    patience: Duration,
) -> Error {
    if matches!(e, Error::SessionGone { .. }) {
        return e;
    }
    match stops_within(engine, container, patience).await {
        Ok(true) => Error::SessionGone {
            container: container.to_string(),
        },
        _ => e,
    }
}

/// gVisor's words when the sandbox under an exec went away (`waiting on PID 3 in sandbox
/// "...": urpc method "containerManager.WaitPID" failed: EOF`).
fn runtime_lost_process(stderr: &str) -> bool {
    stderr.contains("containerManager.") || stderr.contains("in sandbox \"")
}

/// Largest source sent inline in the exec's environment; larger files go up as a tar.
pub(crate) const INLINE_SOURCE_LIMIT: usize = 96 * 1024;

/// One command to execute.
#[derive(Debug, Clone)]
pub(crate) struct ExecSpec {
    pub argv: Vec<String>,
    pub user: User,
    pub env: Vec<(String, String)>,
    pub workdir: String,
    pub timeout: Duration,
    pub output_limit: usize,
    /// `(path, text)`: the wrapper writes this file before starting the program.
    pub inline_file: Option<(String, String)>,
    /// A file in the container to use as standard input (removed once opened).
    pub stdin_path: Option<String>,
    /// Bytes to feed the command's standard input over the exec's attached stream (closed
    /// after them, so the command sees the end).
    pub stdin_data: Option<Vec<u8>>,
    /// Receives output as it arrives.
    pub sink: Option<OutputSink>,
    /// Check every second that the container still runs (gVisor leaves the streams of a
    /// sandbox that died open).
    pub watch: bool,
    /// Measure the command's CPU time and the memory peak (see [`WRAPPER`]).
    pub stats: bool,
    /// The process limit the program gets through the relay: gVisor starts an exec without
    /// the container's limit on processes.
    pub nproc: Option<i64>,
}

pub(crate) fn user_name(user: User) -> &'static str {
    match user {
        User::Sandbox => "1000:1000",
        User::Root => "0:0",
    }
}

/// Collects one stream's bytes up to a limit, dropping the rest.
pub(crate) struct Capped {
    buf: Vec<u8>,
    limit: usize,
    pub(crate) truncated: bool,
}

impl Capped {
    pub(crate) fn new(limit: usize) -> Self {
        Capped {
            buf: Vec::new(),
            limit,
            truncated: false,
        }
    }

    /// Keeps what fits and returns it.
    pub(crate) fn push<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        let kept = &data[..data.len().min(room)];
        self.buf.extend_from_slice(kept);
        kept
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Maps an exec-time engine error: a missing or stopped container means the session is gone.
pub(crate) fn exec_error(container: &str, e: EngineError) -> Error {
    if e.is_not_found() || e.is_conflict() {
        return Error::SessionGone {
            container: container.to_string(),
        };
    }
    Error::engine(e, |cause| Error::Exec {
        container: container.to_string(),
        cause,
    })
}

pub(crate) fn new_marker() -> String {
    crate::ids::random_hex(16)
}

/// The engine request for the wrapper running `argv` with `env` (which carries the marker).
pub(crate) fn wrapped_request(
    argv: &[String],
    env: Vec<String>,
    user: User,
    workdir: Option<String>,
    stdin: bool,
) -> ExecRequest {
    let mut cmd = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        WRAPPER.into(),
        "sandpit".into(),
    ];
    cmd.extend(argv.iter().cloned());
    ExecRequest {
        cmd,
        env,
        user: user_name(user).to_string(),
        working_dir: workdir,
        stdin,
    }
}

/// Kills an exec's processes when dropped before [`KillOnDrop::disarm`]: a caller that stops
/// waiting (a dropped stream, a client that went away) stops the work too.
pub(crate) struct KillOnDrop {
    engine: Engine,
    container: String,
    user: User,
    marker: String,
    armed: bool,
}

impl KillOnDrop {
    pub(crate) fn new(engine: &Engine, container: &str, user: User, marker: &str) -> Self {
        KillOnDrop {
            engine: engine.clone(),
            container: container.to_string(),
            user,
            marker: marker.to_string(),
            armed: true,
        }
    }

    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let (engine, container, user, marker) = (
            self.engine.clone(),
            std::mem::take(&mut self.container),
            self.user,
            std::mem::take(&mut self.marker),
        );
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = kill_marked(&engine, &container, user, &marker).await {
                    tracing::debug!("stopping an abandoned command in {container}: {e}");
                }
            });
        }
    }
}

/// Runs `spec` to completion or timeout. Dropping the future kills the command's processes.
pub(crate) async fn exec_raw(
    engine: &Engine,
    container: &str,
    spec: ExecSpec,
) -> Result<RawOutput> {
    let marker = new_marker();
    let mut env = vec![format!("SANDPIT_EXEC={marker}")];
    if spec.watch {
        env.push("SANDPIT_RELAY=1".into());
    }
    if let Some(n) = spec.nproc {
        env.push(format!("SANDPIT_NPROC={n}"));
    }
    if spec.stats {
        env.push("SANDPIT_STATS=1".into());
    }
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    if let Some((path, text)) = &spec.inline_file {
        env.push(format!("SANDPIT_SOURCE_PATH={path}"));
        env.push(format!("SANDPIT_SOURCE={text}"));
    }
    if let Some(path) = &spec.stdin_path {
        env.push(format!("SANDPIT_STDIN={path}"));
    }
    if spec.stdin_data.is_some() {
        env.push("SANDPIT_KEEP_STDIN=1".into());
    }
    let request = wrapped_request(
        &spec.argv,
        env,
        spec.user,
        Some(spec.workdir.clone()),
        spec.stdin_data.is_some(),
    );
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let ExecStream {
        id,
        mut output,
        input,
    } = engine
        .start_exec(container, &request)
        .await
        .map_err(|e| exec_error(container, e))?;
    let guard = KillOnDrop::new(engine, container, spec.user, &marker);
    // Standard input is written while the output is read: a command may answer as it reads.
    let feeder = match (input, spec.stdin_data) {
        (Some(mut input), Some(data)) => Some(AbortOnDrop(tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = input.write_all(&data).await;
            let _ = input.flush().await;
            let _ = input.shutdown().await;
        }))),
        _ => None,
    };

    let mut out = Collector {
        stdout: Capped::new(spec.output_limit),
        stderr: Capped::new(spec.output_limit),
        sink: spec.sink.as_ref(),
        trailer: None,
        stats: spec.stats,
    };
    let mut timed_out = false;
    let mut watch = tokio::time::interval(WATCH_EVERY);
    watch.tick().await;
    loop {
        tokio::select! {
            next = tokio::time::timeout_at(deadline, output.next()) => match next {
                Ok(Some(Ok(chunk))) => out.take(chunk),
                Ok(Some(Err(e))) => return Err(exec_error(container, e)),
                Ok(None) => break,
                Err(_) => {
                    timed_out = true;
                    break;
                }
            },
            _ = watch.tick(), if spec.watch => {
                if !container_runs(engine, container).await? {
                    guard.disarm();
                    return Err(Error::SessionGone { container: container.to_string() });
                }
            }
        }
    }
    if timed_out {
        kill_marked(engine, container, spec.user, &marker).await?;
        // Output written before the kill may still be in flight.
        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(grace, output.next()).await {
            out.take(chunk);
        }
    }
    drop(output);
    drop(feeder);
    guard.disarm();
    let duration = started.elapsed();
    // Under gVisor a sandbox that died ends its streams with the runtime's last words, and
    // the engine may see the container stop a moment later.
    let err_text = out.stderr.text();
    if spec.watch {
        let patience = if runtime_lost_process(&err_text) {
            Duration::from_secs(5)
        } else {
            Duration::ZERO
        };
        if stops_within(engine, container, patience).await? {
            return Err(Error::SessionGone {
                container: container.to_string(),
            });
        }
    }
    let status = exit_status(engine, container, &id, timed_out).await?;
    // Podman's runtime crashes in the sandbox's cgroup when no thread can start there; the
    // wrapper never ran, so it wrote no statistics line.
    let runtime_crashed = spec.stats
        && out.trailer.is_none()
        && status.code != 0
        && out.stdout.buf.is_empty()
        && err_text.starts_with(RUNTIME_THREAD_FAILURE);
    // Docker says 126 when the runtime could not start the process, Podman 125.
    let not_started =
        matches!(status.code, 125 | 126) && runtime_failure(&out.stdout.text(), &err_text);
    if runtime_crashed || not_started {
        let cannot_start = Error::ExecStart {
            container: container.to_string(),
            reason: start_failure(&out.stdout.text(), &err_text),
        };
        // A container being removed or killed refuses execs in the same words.
        return Err(gone_or(engine, container, cannot_start, STOPPING).await);
    }
    Ok(RawOutput {
        usage: out.usage(),
        truncated: out.stdout.truncated || out.stderr.truncated,
        stdout: out.stdout.into_bytes(),
        stderr: out.stderr.into_bytes(),
        exit_code: status.code,
        timed_out,
        duration,
    })
}

/// A task aborted when its handle drops.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// An exec's outcome with its output as bytes.
#[derive(Debug, Clone)]
pub(crate) struct RawOutput {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit_code: i64,
    pub timed_out: bool,
    pub truncated: bool,
    pub duration: Duration,
    pub usage: Option<RunUsage>,
}

impl From<RawOutput> for ExecOutput {
    fn from(raw: RawOutput) -> Self {
        ExecOutput {
            stdout: String::from_utf8_lossy(&raw.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&raw.stderr).into_owned(),
            exit_code: raw.exit_code,
            timed_out: raw.timed_out,
            truncated: raw.truncated,
            oom_killed: false,
            duration: raw.duration,
            usage: raw.usage,
        }
    }
}

/// Runs `spec` to completion or timeout, its output as text.
pub(crate) async fn exec(engine: &Engine, container: &str, spec: ExecSpec) -> Result<ExecOutput> {
    exec_raw(engine, container, spec)
        .await
        .map(ExecOutput::from)
}

/// True when output is the runtime's report that it could not start the process (the engine
/// writes it into the exec's stream, with exit code 126).
fn runtime_failure(stdout: &str, stderr: &str) -> bool {
    let said = format!("{stdout}{stderr}");
    let said = said.trim_start();
    said.starts_with("OCI runtime")
        || said.starts_with("crun:")
        || said.starts_with("runc:")
        || said.contains("unable to start container process")
}

/// How runc's Go runtime starts its crash report when it cannot start a thread in the
/// sandbox's cgroup (the process limit is full).
const RUNTIME_THREAD_FAILURE: &str = "runtime/cgo: pthread_create failed";

/// The runtime's words when it could not start the process, without its noise (a Go crash
/// report is cut to its first line).
fn start_failure(stdout: &str, stderr: &str) -> String {
    let stderr = if stderr.starts_with(RUNTIME_THREAD_FAILURE) {
        stderr.lines().next().unwrap_or_default()
    } else {
        stderr
    };
    let text = format!("{} {}", stdout.trim(), stderr.trim());
    let text = text.trim();
    let lower = text.to_lowercase();
    let hint = if lower.contains("resource temporarily unavailable")
        || text.contains("init-p")
        || text.contains("fork")
    {
        "; the sandbox probably holds as many processes as its limit allows (a fork bomb, or processes left running): stop them, or close the session"
    } else {
        ""
    };
    if text.is_empty() {
        format!("the engine gave no reason{hint}")
    } else {
        format!("{text}{hint}")
    }
}

/// Where an exec's output goes while it arrives.
struct Collector<'a> {
    stdout: Capped,
    stderr: Capped,
    sink: Option<&'a OutputSink>,
    /// The wrapper's statistics line, once seen (it is never output).
    trailer: Option<Vec<u8>>,
    stats: bool,
}

impl Collector<'_> {
    fn take(&mut self, chunk: ExecChunk) {
        let mut data: &[u8] = &chunk.data;
        if chunk.stream == StreamKind::Stderr && (self.stats || self.trailer.is_some()) {
            if let Some(trailer) = &mut self.trailer {
                trailer.extend_from_slice(data);
                return;
            }
            if let Some(at) = find(data, STATS_TRAILER) {
                self.trailer = Some(data[at..].to_vec());
                data = &data[..at];
            }
        }
        collect(
            chunk.stream,
            data,
            &mut self.stdout,
            &mut self.stderr,
            self.sink,
        );
    }

    /// CPU time and memory peak from the statistics line.
    fn usage(&self) -> Option<RunUsage> {
        let line = self.trailer.as_ref()?;
        let text = String::from_utf8_lossy(&line[STATS_TRAILER.len()..]);
        let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().ok());
        let (before, after, peak) = (fields.next()?, fields.next()?, fields.next()?);
        Some(RunUsage {
            cpu: before
                .zip(after)
                .map(|(b, a)| Duration::from_nanos(a.saturating_sub(b))),
            memory_peak_bytes: peak,
        })
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn collect(
    stream: StreamKind,
    data: &[u8],
    stdout: &mut Capped,
    stderr: &mut Capped,
    sink: Option<&OutputSink>,
) {
    let (kind, kept) = match stream {
        StreamKind::Stdout => (StreamKind::Stdout, stdout.push(data)),
        StreamKind::Stderr => (StreamKind::Stderr, stderr.push(data)),
    };
    if let (Some(sink), false) = (sink, kept.is_empty()) {
        sink.send(OutputChunk {
            stream: kind,
            data: kept.to_vec(),
        });
    }
}

/// How long the command that stops a command may take to say its first word.
const KILLER_STARTS: Duration = Duration::from_secs(5);

/// How an exec ended.
#[derive(Debug)]
pub(crate) struct ExitStatus {
    pub code: i64,
    /// The engine never started the process (the runtime failed before exec): exit code 126
    /// and no process id (Docker; Podman reports no pid after an exit either, so output that is
    /// the runtime's own message decides there).
    pub never_started: bool,
}

pub(crate) async fn exit_status(
    engine: &Engine,
    container: &str,
    exec_id: &str,
    timed_out: bool,
) -> Result<ExitStatus> {
    // The stream can end a moment before the engine records the exit.
    for attempt in 0..50u32 {
        let info = engine
            .inspect_exec(exec_id)
            .await
            .map_err(|e| exec_error(container, e))?;
        if !info.running {
            let code = info.exit_code.unwrap_or(if timed_out { 137 } else { -1 });
            return Ok(ExitStatus {
                code,
                never_started: info.pid.unwrap_or(0) == 0 && code == 126 && !timed_out,
            });
        }
        tokio::time::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 })).await;
    }
    // Still running after its output closed (it closed stdout and stderr itself).
    Ok(ExitStatus {
        code: if timed_out { 137 } else { -1 },
        never_started: false,
    })
}

/// Kills every process of one exec, as the user that ran it. When the sandbox cannot start
/// even the killer (its process limit is full), every process of the sandbox user is killed
/// through the container's main process, which needs no new process.
pub(crate) async fn kill_marked(
    engine: &Engine,
    container: &str,
    user: User,
    marker: &str,
) -> Result<()> {
    let request = ExecRequest {
        cmd: vec![
            "/bin/sh".to_string(),
            "-c".into(),
            KILLER.into(),
            "sandpit-kill".into(),
            marker.to_string(),
        ],
        env: Vec::new(),
        user: user_name(user).to_string(),
        working_dir: None,
        stdin: false,
    };
    let began = Instant::now();
    let outcome = tokio::time::timeout(KILLER_STARTS, engine.start_exec(container, &request)).await;
    let mut stream = match outcome {
        Ok(stream) => Some(stream.map_err(|e| exec_error(container, e))?),
        Err(_) => None,
    };
    // A killer that has not said its first word by now cannot start a process (the engine
    // may take long to tell: Podman does), so the main process acts instead.
    let started = match stream.as_mut() {
        Some(stream) => matches!(
            tokio::time::timeout_at(
                tokio::time::Instant::from_std(began) + KILLER_STARTS,
                stream.output.next()
            )
            .await,
            Ok(Some(Ok(_)))
        ),
        None => false,
    };
    let succeeded = match (started, stream) {
        (true, Some(mut stream)) => {
            let limit = tokio::time::Instant::now() + Duration::from_secs(30);
            while let Ok(Some(_)) = tokio::time::timeout_at(limit, stream.output.next()).await {}
            let status = tokio::time::timeout(
                Duration::from_secs(10),
                exit_status(engine, container, &stream.id, false),
            )
            .await;
            tracing::debug!(
                "{container}: the killer ended after {:?}: {status:?}",
                began.elapsed()
            );
            // Its own forks failed (a shell that cannot fork exits 2): the limit is full.
            matches!(status, Ok(Ok(ExitStatus { code: 0, .. })))
        }
        _ => false,
    };
    if !succeeded {
        tracing::warn!("{container} cannot run the command that stops a command; stopping every process in the sandbox");
        reset_user_processes(engine, container).await?;
    }
    Ok(())
}

/// Kills every process in the sandbox but its main process, through that main process (which
/// needs no new process to do it), then waits until a process can start again: killed
/// processes hold their place in the process limit until they are reaped.
pub(crate) async fn reset_user_processes(engine: &Engine, container: &str) -> Result<()> {
    let probe = ExecRequest {
        cmd: vec!["/bin/sh".into(), "-c".into(), "exit 0".into()],
        user: user_name(User::Sandbox).into(),
        ..Default::default()
    };
    for _ in 0..10 {
        if let Err(e) = engine.signal_container(container, "USR1").await {
            // gVisor answers 500 when its sandbox died under the signal.
            let e = exec_error(container, e);
            return Err(gone_or(engine, container, e, Duration::from_secs(5)).await);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let probed = tokio::time::timeout(Duration::from_secs(10), async {
            let mut stream = engine
                .start_exec(container, &probe)
                .await
                .map_err(|e| exec_error(container, e))?;
            while stream.output.next().await.is_some() {}
            exit_status(engine, container, &stream.id, false).await
        })
        .await;
        tracing::debug!("{container}: after a reset, a probe: {probed:?}");
        match probed {
            Ok(Ok(ExitStatus { code: 0, .. })) => return Ok(()),
            Ok(Err(e)) => return Err(e),
            // Not started (or not in time): killed processes still hold the limit.
            _ => {}
        }
    }
    Err(Error::ExecStart {
        container: container.to_string(),
        reason: "the sandbox still cannot start a process after every process in it was killed"
            .into(),
    })
}

#[cfg(test)]
mod tests {
    use super::Capped;

    #[test]
    fn capped_keeps_the_first_bytes_and_flags_the_rest() {
        let mut c = Capped::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        assert!(c.truncated);
        assert_eq!(c.buf, b"abcde");
        c.push(b"h");
        assert_eq!(c.buf, b"abcde");
    }

    #[test]
    fn a_wrapper_that_could_not_fork_is_told_from_the_programs_own_words() {
        use super::wrapper_could_not_fork as failed;
        assert!(failed("sandpit: 10: Cannot fork\n"));
        assert!(failed(
            "sandpit: line 17: fork: Resource temporarily unavailable\n"
        ));
        assert!(failed("sandpit: 3: can't fork\n"));
        // The relay's clean-up after the program ran: the program did run.
        assert!(!failed("sandpit: 19: Cannot fork\n"));
        // The program's own words, or its own shell's.
        assert!(!failed("Cannot fork\n"));
        assert!(!failed("sh: 1: Cannot fork\n"));
        assert!(!failed("sandpit: 10: Cannot fork\nlater output\n"));
        assert!(!failed("sandpit: x: Cannot fork\n"));
        assert!(!failed(""));
    }

    #[test]
    fn exact_limit_is_not_truncated() {
        let mut c = Capped::new(4);
        c.push(b"abcd");
        assert!(!c.truncated);
    }
}
