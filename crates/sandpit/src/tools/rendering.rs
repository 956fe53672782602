//! Operation results rendered as text for a model.

use base64::Engine as _;
use serde_json::Value;

use super::{ImageOutput, ToolOutput, TEXT_LIMIT};
use crate::api::{kind_name, ExecuteResponse, RunResponse, SessionInfo, StepResponse};
use crate::{FileInfo, Language};

/// `text` cut to `limit` characters, keeping its start and end.
pub fn clip(text: &str, limit: usize) -> String {
    let count = text.chars().count();
    if count <= limit {
        return text.to_string();
    }
    let head: String = text.chars().take(limit * 3 / 5).collect();
    let tail: String = text.chars().skip(count - limit * 2 / 5).collect();
    format!(
        "{head}\n[... {} characters cut; write long output to a file and read parts of it ...]\n{tail}",
        count - head.chars().count() - tail.chars().count()
    )
}

fn section(out: &mut String, label: &str, text: &str) {
    if text.is_empty() {
        return;
    }
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    out.push_str(label);
    out.push_str(":\n");
    out.push_str(&clip(text, TEXT_LIMIT));
    if !out.ends_with('\n') {
        out.push('\n');
    }
}

fn notes(out: &mut String, timed_out: bool, truncated: bool, oom_killed: bool) {
    if timed_out {
        out.push_str("note: it ran past its timeout and was stopped\n");
    }
    if oom_killed {
        out.push_str("note: it was killed for using more memory than the sandbox allows (512 MiB unless set otherwise)\n");
    }
    if truncated {
        out.push_str("note: the output passed the sandbox's limit (1 MiB per stream) and the rest was dropped\n");
    }
}

fn figures(artifacts: &[crate::api::ArtifactInfo]) -> Vec<ImageOutput> {
    artifacts
        .iter()
        .filter(|a| a.mime.starts_with("image/"))
        .filter_map(|a| {
            base64::engine::general_purpose::STANDARD
                .decode(&a.data_base64)
                .ok()
                .map(|data| ImageOutput {
                    name: a.name.clone(),
                    mime: a.mime.clone(),
                    data,
                })
        })
        .collect()
}

pub(super) fn render_run(r: RunResponse) -> ToolOutput {
    let mut out = String::new();
    if let Some(c) = &r.compile {
        if c.exit_code != 0 || c.timed_out {
            out.push_str(&format!("compile failed: exit code {}\n", c.exit_code));
            section(
                &mut out,
                "compiler output",
                &format!("{}{}", c.stdout, c.stderr),
            );
            notes(&mut out, c.timed_out, c.truncated, c.oom_killed);
            return ToolOutput::text(out);
        }
    }
    out.push_str(&format!("exit code: {}\n", r.exit_code));
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    notes(&mut out, r.timed_out, r.truncated, r.oom_killed);
    let images = figures(&r.artifacts);
    if !images.is_empty() {
        out.push_str(&format!("figures: {} (PNG images)\n", images.len()));
    }
    ToolOutput {
        text: out,
        images,
        ..Default::default()
    }
}

pub(super) fn render_step(r: StepResponse) -> ToolOutput {
    let mut out = format!("exit code: {}\n", r.exit_code);
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    notes(&mut out, r.timed_out, r.truncated, r.oom_killed);
    ToolOutput::text(out)
}

pub(super) fn render_execute(r: ExecuteResponse) -> ToolOutput {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut out = String::new();
    let mut images = Vec::new();
    section(&mut out, "stdout", &r.stdout);
    section(&mut out, "stderr", &r.stderr);
    for bundle in &r.results {
        if let Some(png) = bundle.get("image/png").and_then(Value::as_str) {
            if let Ok(data) = b64.decode(png.trim()) {
                images.push(ImageOutput {
                    name: format!("figure-{}.png", images.len() + 1),
                    mime: "image/png".into(),
                    data,
                });
                continue;
            }
        }
        let text = bundle
            .get("text/plain")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| bundle.get("application/json").map(|j| j.to_string()))
            .or_else(|| {
                bundle
                    .get("text/html")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .or_else(|| {
                bundle
                    .get("text/markdown")
                    .and_then(Value::as_str)
                    .map(str::to_string)
            });
        if let Some(text) = text {
            section(&mut out, "result", &text);
        }
    }
    if let Some(e) = &r.error {
        out.push_str(&format!("error: {}: {}\n", e.name, e.value));
        if !e.traceback.is_empty() {
            section(&mut out, "traceback", &e.traceback.join("\n"));
        }
    }
    if r.timed_out {
        out.push_str(if r.state_lost {
            "note: it ran past its timeout; the interpreter did not stop and was restarted, so earlier variables are gone\n"
        } else {
            "note: it ran past its timeout and was interrupted; earlier variables are kept\n"
        });
    } else if r.state_lost {
        out.push_str(
            "note: the interpreter was restarted: variables from earlier calls are gone\n",
        );
    }
    if r.truncated {
        out.push_str("note: the output passed the sandbox's limit (1 MiB per stream) and the rest was dropped\n");
    }
    if !images.is_empty() {
        out.push_str(&format!("figures: {} (PNG images)\n", images.len()));
    }
    if out.is_empty() {
        out.push_str("(no output)\n");
    }
    ToolOutput {
        text: out,
        images,
        ..Default::default()
    }
}

pub(super) fn render_created(s: &SessionInfo) -> ToolOutput {
    let kind = match s.language.parse::<Language>() {
        Ok(l) if crate::runner(l).kernel().is_some() => "execute keeps variables between calls",
        _ => "execute compiles and runs each snippet as a program; files persist",
    };
    let libs = if s.libraries.is_empty() {
        String::new()
    } else {
        format!(" with {}", s.libraries.join(", "))
    };
    ToolOutput::text(format!(
        "session_id: {}\nlanguage: {}{libs} ({kind})\nworking folder: /sandbox\ncloses at {} or after {} s without a call\n",
        s.id, s.language, s.expires_at, s.idle_timeout
    ))
}

pub(super) fn render_sessions(sessions: &[SessionInfo]) -> ToolOutput {
    if sessions.is_empty() {
        return ToolOutput::text("no sessions are open; create_session opens one");
    }
    let mut out = String::new();
    for s in sessions {
        out.push_str(&format!(
            "{} {}{}{} (closes at {})\n",
            s.id,
            s.language,
            s.name
                .as_deref()
                .map(|n| format!(" \"{n}\""))
                .unwrap_or_default(),
            if s.libraries.is_empty() {
                String::new()
            } else {
                format!(" with {}", s.libraries.join(", "))
            },
            s.expires_at
        ));
    }
    ToolOutput::text(out)
}

pub(super) fn render_files(folder: &str, files: &[FileInfo]) -> ToolOutput {
    if files.is_empty() {
        return ToolOutput::text(format!("{folder} holds no files"));
    }
    let mut out = String::new();
    for f in files {
        out.push_str(&format!(
            "{:<7} {:>4o} {:>10}  {}\n",
            kind_name(f.kind),
            f.mode,
            f.size,
            f.path
        ));
    }
    ToolOutput::text(clip(&out, TEXT_LIMIT))
}
