//! Running one command in the container: output under a cap, a timeout that kills the
//! whole process tree, exit code.

use std::time::{Duration, Instant};

use bollard::exec::{CreateExecOptions, StartExecResults};
use futures_util::StreamExt;

use crate::connection::Engine;
use crate::error::{is_transport, status_code, Error, Result};
use crate::output::{ExecOutput, OutputChunk, OutputSink, StreamKind};
use crate::runner::User;

/// Writes the inline source file and the stdin redirection, then becomes the program.
/// Each exec carries `SANDPIT_EXEC=<id>` so that a timeout can find every process it forked.
pub(crate) const WRAPPER: &str = r#"if [ -n "${SANDPIT_SOURCE_PATH:-}" ]; then printf '%s' "$SANDPIT_SOURCE" > "$SANDPIT_SOURCE_PATH" || exit 125; fi
unset SANDPIT_SOURCE SANDPIT_SOURCE_PATH
if [ -n "${SANDPIT_STDIN:-}" ]; then s=$SANDPIT_STDIN; unset SANDPIT_STDIN; exec 0<"$s"; rm -f "$s" 2>/dev/null; exec "$@"; fi
if [ -n "${SANDPIT_KEEP_STDIN:-}" ]; then unset SANDPIT_KEEP_STDIN; exec "$@"; fi
exec "$@" 0</dev/null"#;

/// Stops then kills every process whose environment holds the exec's marker, in rounds,
/// so that processes forked meanwhile are caught too; then waits (up to 5 s) for the zombies
/// to be reaped: they still count against the pids limit, and the next exec could not start.
const KILLER: &str = r#"m="SANDPIT_EXEC=$1"; n=0
while [ $n -lt 30 ]; do
  pids=""
  for f in $(grep -lszxF "$m" /proc/[0-9]*/environ 2>/dev/null); do p=${f#/proc/}; pids="$pids ${p%/environ}"; done
  [ -z "$pids" ] && break
  kill -STOP $pids 2>/dev/null; kill -KILL $pids 2>/dev/null
  n=$((n+1))
done
n=0
while [ $n -lt 50 ]; do
  z=""
  for f in /proc/[0-9]*/stat; do read -r l < "$f" 2>/dev/null || continue; case "${l##*) }" in Z*) z=1; break;; esac; done
  [ -z "$z" ] && exit 0
  sleep 0.1; n=$((n+1))
done"#;

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
    /// Receives output as it arrives.
    pub sink: Option<OutputSink>,
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
}

/// Maps an exec-time engine error: a missing or stopped container means the session is gone.
pub(crate) fn exec_error(engine: &Engine, container: &str, e: bollard::errors::Error) -> Error {
    match status_code(&e) {
        Some(404) | Some(409) => Error::SessionGone {
            container: container.to_string(),
        },
        _ if is_transport(&e) => engine.connection().classify(e),
        _ => Error::Exec {
            container: container.to_string(),
            source: e,
        },
    }
}

pub(crate) fn new_marker() -> String {
    crate::ids::random_hex(16)
}

/// Runs `spec` to completion or timeout.
pub(crate) async fn exec(engine: &Engine, container: &str, spec: ExecSpec) -> Result<ExecOutput> {
    let marker = new_marker();
    let mut env = vec![format!("SANDPIT_EXEC={marker}")];
    env.extend(spec.env.iter().map(|(k, v)| format!("{k}={v}")));
    if let Some((path, text)) = &spec.inline_file {
        env.push(format!("SANDPIT_SOURCE_PATH={path}"));
        env.push(format!("SANDPIT_SOURCE={text}"));
    }
    if let Some(path) = &spec.stdin_path {
        env.push(format!("SANDPIT_STDIN={path}"));
    }
    let mut cmd = vec![
        "/bin/sh".to_string(),
        "-c".into(),
        WRAPPER.into(),
        "sandpit".into(),
    ];
    cmd.extend(spec.argv.iter().cloned());

    let docker = engine.docker();
    let created = docker
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(false),
                tty: Some(false),
                env: Some(env),
                cmd: Some(cmd),
                user: Some(user_name(spec.user).to_string()),
                working_dir: Some(spec.workdir.clone()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| exec_error(engine, container, e))?;
    let started = Instant::now();
    let deadline = tokio::time::Instant::now() + spec.timeout;
    let mut output = match docker
        .start_exec(&created.id, None)
        .await
        .map_err(|e| exec_error(engine, container, e))?
    {
        StartExecResults::Attached { output, .. } => output,
        StartExecResults::Detached => {
            return Err(Error::InvalidInput(
                "the engine started the command detached".into(),
            ))
        }
    };

    let mut stdout = Capped::new(spec.output_limit);
    let mut stderr = Capped::new(spec.output_limit);
    let mut timed_out = false;
    loop {
        match tokio::time::timeout_at(deadline, output.next()).await {
            Ok(Some(Ok(chunk))) => collect(chunk, &mut stdout, &mut stderr, spec.sink.as_ref()),
            Ok(Some(Err(e))) => return Err(exec_error(engine, container, e)),
            Ok(None) => break,
            Err(_) => {
                timed_out = true;
                break;
            }
        }
    }
    if timed_out {
        kill_marked(engine, container, spec.user, &marker).await?;
        // Output written before the kill may still be in flight.
        let grace = tokio::time::Instant::now() + Duration::from_secs(2);
        while let Ok(Some(Ok(chunk))) = tokio::time::timeout_at(grace, output.next()).await {
            collect(chunk, &mut stdout, &mut stderr, spec.sink.as_ref());
        }
    }
    drop(output);
    let duration = started.elapsed();
    let exit_code = exit_code(engine, container, &created.id, timed_out).await?;
    Ok(ExecOutput {
        stdout: stdout.text(),
        stderr: stderr.text(),
        exit_code,
        timed_out,
        truncated: stdout.truncated || stderr.truncated,
        oom_killed: false,
        duration,
    })
}

fn collect(
    chunk: bollard::container::LogOutput,
    stdout: &mut Capped,
    stderr: &mut Capped,
    sink: Option<&OutputSink>,
) {
    use bollard::container::LogOutput;
    let (kind, kept) = match &chunk {
        LogOutput::StdOut { message } | LogOutput::Console { message } => {
            (StreamKind::Stdout, stdout.push(message))
        }
        LogOutput::StdErr { message } => (StreamKind::Stderr, stderr.push(message)),
        LogOutput::StdIn { .. } => return,
    };
    if let (Some(sink), false) = (sink, kept.is_empty()) {
        sink.send(OutputChunk {
            stream: kind,
            data: kept.to_vec(),
        });
    }
}

async fn exit_code(
    engine: &Engine,
    container: &str,
    exec_id: &str,
    timed_out: bool,
) -> Result<i64> {
    // The stream can end a moment before the engine records the exit.
    for attempt in 0..50u32 {
        let info = engine
            .docker()
            .inspect_exec(exec_id)
            .await
            .map_err(|e| exec_error(engine, container, e))?;
        if info.running != Some(true) {
            return Ok(info.exit_code.unwrap_or(if timed_out { 137 } else { -1 }));
        }
        tokio::time::sleep(Duration::from_millis(if attempt < 10 { 2 } else { 20 })).await;
    }
    if timed_out {
        return Ok(137);
    }
    // Still running after its output closed (it closed stdout and stderr itself).
    Ok(-1)
}

/// Kills every process of one exec, as the user that ran it.
pub(crate) async fn kill_marked(
    engine: &Engine,
    container: &str,
    user: User,
    marker: &str,
) -> Result<()> {
    let created = engine
        .docker()
        .create_exec(
            container,
            CreateExecOptions {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                cmd: Some(vec![
                    "/bin/sh".to_string(),
                    "-c".into(),
                    KILLER.into(),
                    "sandpit-kill".into(),
                    marker.to_string(),
                ]),
                user: Some(user_name(user).to_string()),
                ..Default::default()
            },
        )
        .await
        .map_err(|e| exec_error(engine, container, e))?;
    if let StartExecResults::Attached { mut output, .. } = engine
        .docker()
        .start_exec(&created.id, None)
        .await
        .map_err(|e| exec_error(engine, container, e))?
    {
        let limit = tokio::time::Instant::now() + Duration::from_secs(20);
        while let Ok(Some(_)) = tokio::time::timeout_at(limit, output.next()).await {}
    }
    Ok(())
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
    fn exact_limit_is_not_truncated() {
        let mut c = Capped::new(4);
        c.push(b"abcd");
        assert!(!c.truncated);
    }
}
