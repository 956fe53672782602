//! Piston's execute routes (v2 and emkc's v1): take the key, check the request, run the job,
//! answer in Piston's shape.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use sandpit_service::{ErrorKind, Owner};
use serde::Serialize;
use serde_json::{json, Value};

use super::requests::{parse_v1, parse_v2, Limits};
use super::running::{run_job, Outcome, Stage};
use super::runtimes::{runtime_list, Runtime};
use super::Piston;
use crate::compat::{caller, j, json_response, obj, Api, Json};
use crate::state::AppState;

/// The caller and the request body as JSON (an empty body is `{}`, as express reads it).
async fn keyed_json(state: &AppState, req: Request) -> Result<(Owner, Value), Response> {
    let (mut parts, body) = req.into_parts();
    let owner = caller::<Piston>(&mut parts, state).await?;
    let bytes = crate::compat::body_bytes(body, state)
        .await
        .map_err(|e| Piston::failure(&e))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok((owner, json!({})));
    }
    let value = serde_json::from_slice(&bytes).map_err(|e| {
        Piston::error(
            ErrorKind::InvalidInput,
            StatusCode::BAD_REQUEST,
            &format!("request body is not valid JSON: {e}"),
        )
    })?;
    Ok((owner, value))
}

fn bad_request(body: Json) -> Response {
    crate::compat::with_kind(
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
        Err(e) => Piston::failure(&e),
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
        Err(e) => Piston::failure(&e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sandpit::{Language, RunResult};

    use super::*;
    use crate::compat::piston::running::{outcome, tests::step};
    use crate::compat::piston::runtimes::runtime;

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
