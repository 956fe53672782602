//! Running a job: one one-shot run in a fresh sandbox, its result mapped to Piston's stages.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use sandpit::{ExecOutput, Language, OutputChunk, RunOptions, RunResult, RunUsage, StreamKind};
use sandpit_service::{Owner, Program, ServiceError};
use serde::Serialize;

use super::requests::Job;
use crate::state::AppState;

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
        fresh: false,
    };
    let result = state.manager.run_program(owner, program).await?;
    let chunks = std::mem::take(&mut *chunks.lock().unwrap_or_else(|e| e.into_inner()));
    Ok(outcome(result, &chunks))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn step(exit_code: i64) -> ExecOutput {
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
}
