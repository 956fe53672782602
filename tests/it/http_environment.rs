//! A session's environment over HTTP: what it opened with, replaced as a whole, seen by
//! commands, runs and the kernel; a run's own variables for that run only; bad environments
//! refused with a 400 that changes nothing.

use serde_json::json;

use crate::server::{assert_invalid, Server};

/// A server with no warm pool and a Python session opened with `FIRST=1`, its environment then
/// replaced by `MODE=test EMPTY=`; answers with the session's id and path.
fn session_with_env_replaced() -> (Server, String, String) {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.session_with(json!({"language": "python", "env": {"FIRST": "1"}}));
    let s = format!("/v1/sessions/{id}");
    let (status, env) = server.json("GET", &format!("{s}/env"), None);
    assert_eq!(status, 200);
    assert_eq!(env, json!({"env": {"FIRST": "1"}}));
    let (status, env) = server.json(
        "PUT",
        &format!("{s}/env"),
        Some(json!({"env": {"MODE": "test", "EMPTY": ""}})),
    );
    assert_eq!(status, 200, "{env}");
    assert_eq!(env, json!({"env": {"MODE": "test", "EMPTY": ""}}));
    (server, id, s)
}

#[test]
fn the_environment_is_replaced_as_a_whole_and_seen_by_everything() {
    let (server, id, s) = session_with_env_replaced();
    assert_eq!(
        server.sh(&id, "echo \"$MODE [$FIRST]\"")["stdout"],
        "test []\n"
    );
    let (_, out) = server.json(
        "POST",
        &format!("{s}/run"),
        Some(json!({"code": "import os; print(os.environ['MODE'])"})),
    );
    assert_eq!(out["stdout"], "test\n", "{out}");
    let (_, out) = server.json(
        "POST",
        &format!("{s}/execute"),
        Some(json!({"code": "import os; os.environ.get('MODE')"})),
    );
    assert_eq!(out["results"], json!([{"text/plain": "'test'"}]), "{out}");
}

#[test]
fn a_runs_own_variables_win_for_that_run_only() {
    let (server, _id, s) = session_with_env_replaced();
    let (_, out) = server.json(
        "POST",
        &format!("{s}/run"),
        Some(json!({"code": "import os; print(os.environ['MODE'])", "env": {"MODE": "run"}})),
    );
    assert_eq!(out["stdout"], "run\n");
    let (_, out) = server.json(
        "POST",
        &format!("{s}/run"),
        Some(json!({"code": "import os; print(os.environ['MODE'])"})),
    );
    assert_eq!(
        out["stdout"], "test\n",
        "the run's variable outlived it: {out}"
    );
}

#[test]
fn bad_environments_are_refused_and_change_nothing() {
    let (server, _id, s) = session_with_env_replaced();
    for bad in [
        json!({"env": {"": "x"}}),
        json!({"env": {"A=B": "x"}}),
        json!({"env": {"A": "x\u{0}"}}),
        json!({"env": {"A": 5}}),
        json!({"env": ["A"]}),
        json!({"MODE": "x"}),
    ] {
        assert_invalid(
            &format!("PUT env {bad}"),
            server.json("PUT", &format!("{s}/env"), Some(bad.clone())),
        );
        let (_, env) = server.json("GET", &format!("{s}/env"), None);
        assert_eq!(
            env,
            json!({"env": {"MODE": "test", "EMPTY": ""}}),
            "PUT env {bad} was refused but changed it"
        );
    }
}
