//! Running code in a session over HTTP as server-sent events (parsed here): output as it
//! happens, then the result the plain route answers; refusals before the stream; a failure
//! after it started as an `error` event.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server::{post, Server, SseEvent};

/// A server with no warm pool and a Python session on it; answers with the session's id.
fn session() -> (Server, String) {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let id = server.python_session();
    (server, id)
}

/// The output events' stdout and stderr, and the last event.
fn events_of(events: &[SseEvent]) -> (String, String, &SseEvent) {
    let (last, outputs) = events.split_last().expect("no events at all");
    let mut stdout = String::new();
    let mut stderr = String::new();
    for e in outputs {
        assert_eq!(
            e.event, "output",
            "only output events come before the end: {events:?}"
        );
        let text = e.data["text"].as_str().expect("output events carry text");
        match e.data["stream"].as_str() {
            Some("stdout") => stdout.push_str(text),
            Some("stderr") => stderr.push_str(text),
            other => panic!("output event of stream {other:?}"),
        }
    }
    (stdout, stderr, last)
}

#[test]
fn run_streams_output_as_it_happens_then_the_result() {
    let (server, id) = session();
    let s = format!("/v1/sessions/{id}");
    let code = "import sys, time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.3)\nprint('warn', file=sys.stderr, flush=True)\n";
    let started = Instant::now();
    let mut stream = server.sse_open(&format!("{s}/run"), json!({"code": code}));
    assert_eq!(stream.status, 200);
    assert!(
        stream.content_type.starts_with("text/event-stream"),
        "{}",
        stream.content_type
    );
    let first = stream.next_event().expect("an output event");
    let first_at = started.elapsed();
    assert_eq!(first.event, "output", "{first:?}");
    let mut events = vec![first];
    events.extend(stream.collect());
    let done_at = started.elapsed();
    assert!(
        done_at - first_at >= Duration::from_millis(500),
        "the output came all at once at the end ({first_at:?}, {done_at:?}): not streamed"
    );
    let (stdout, stderr, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!(stdout, "0\n1\n2\n");
    assert_eq!(stderr, "warn\n");
    assert_eq!(last.data["stdout"], "0\n1\n2\n");
    assert_eq!(last.data["stderr"], "warn\n");
    assert_eq!(last.data["exit_code"], 0);
    // The result event is what the plain route answers.
    let plain = post(&server, &format!("{s}/run"), json!({"code": code}));
    let keys = |v: &Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&last.data),
        keys(&plain),
        "the result event has the plain route's shape"
    );
}

#[test]
fn execute_streams_output_then_the_result_or_the_error() {
    let (server, id) = session();
    let s = format!("/v1/sessions/{id}");
    let events = server.sse(
        &format!("{s}/execute"),
        json!({"code": "for i in range(2): print('line', i)\n6 * 7"}),
    );
    let (stdout, _, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!(stdout, "line 0\nline 1\n");
    assert_eq!(last.data["results"], json!([{"text/plain": "42"}]));
    assert_eq!(last.data["stdout"], "line 0\nline 1\n");
    let events = server.sse(
        &format!("{s}/execute"),
        json!({"code": "raise KeyError('k')"}),
    );
    let (_, _, last) = events_of(&events);
    assert_eq!(
        last.event, "result",
        "a failing cell is a result: {events:?}"
    );
    assert_eq!(last.data["error"]["name"], "KeyError");
}

#[test]
fn a_command_streams_output_then_its_exit_code() {
    let (server, id) = session();
    let events = server.sse(
        &format!("/v1/sessions/{id}/commands"),
        json!({"command": "for i in 1 2 3; do echo $i; sleep 0.2; done; echo bad >&2; exit 4"}),
    );
    let (stdout, stderr, last) = events_of(&events);
    assert_eq!(last.event, "result", "{events:?}");
    assert_eq!((stdout.as_str(), stderr.as_str()), ("1\n2\n3\n", "bad\n"));
    assert_eq!(last.data["exit_code"], 4);
    assert!(
        events.len() >= 4,
        "expected several output events: {events:?}"
    );
}

#[test]
fn refusals_come_before_the_stream_as_a_plain_json_error() {
    let (server, id) = session();
    let stream = server.sse_open(
        &format!("/v1/sessions/{id}/run"),
        json!({"code": "1", "timeout": -1}),
    );
    assert_eq!(stream.status, 400);
    assert!(
        stream.content_type.starts_with("application/json"),
        "{}",
        stream.content_type
    );
    let stream = server.sse_open(
        "/v1/sessions/000000000000/commands",
        json!({"command": "true"}),
    );
    assert_eq!(stream.status, 404);
}

#[test]
fn a_sandbox_removed_mid_stream_ends_it_and_the_session_says_it_was_lost() {
    let (server, id) = session();
    let s = format!("/v1/sessions/{id}");
    // A failure once the stream started is an `error` event with the error body: the
    // container removed from outside in the middle of a run.
    let mut stream = server.sse_open(
        &format!("{s}/run"),
        json!({"code": "import time\nfor i in range(100):\n    print(i, flush=True)\n    time.sleep(0.2)"}),
    );
    let first = stream.next_event().expect("the run's first output");
    assert_eq!(first.event, "output");
    crate::server::close_session(&id);
    let rest = stream.collect();
    let last = rest
        .last()
        .unwrap_or_else(|| panic!("the stream ended without an event"));
    // Either the removal broke the run's stream (an `error` event, `gone`), or it killed the
    // program first and the run ended with its exit code 137 (a `result`); the session is gone
    // for the next call either way.
    match last.event.as_str() {
        "error" => {
            assert_eq!(
                last.data["error"], "gone",
                "a container removed from outside is `gone`: {rest:?}"
            );
            assert!(
                last.data["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("gone")),
                "{rest:?}"
            );
        }
        "result" => assert_eq!(last.data["exit_code"], 137, "{rest:?}"),
        other => panic!("the stream ended with a {other:?} event: {rest:?}"),
    }
    // From then on the session says it was lost, and why.
    for _ in 0..2 {
        let (status, body) = server.json("GET", &s, None);
        assert_eq!(
            (status, body["error"].as_str()),
            (410, Some("gone")),
            "the removed session should say it was lost: {body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("lost")),
            "{body}"
        );
    }
}
