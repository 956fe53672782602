//! `GET /openapi.json`: the native API as OpenAPI 3.0, its schemas derived from the service's
//! request and answer types (the same types the handlers use), the paths listed once here.

use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Map, Value};

use sandpit_service::types::*;

/// A body or answer type, as a schema reference.
struct Doc {
    generator: SchemaGenerator,
    paths: Map<String, Value>,
}

impl Doc {
    fn schema<T: JsonSchema>(&mut self) -> Value {
        self.generator.subschema_for::<T>().to_value()
    }

    #[allow(clippy::too_many_arguments)]
    fn op(
        &mut self,
        method: &str,
        path: &str,
        summary: &str,
        body: Option<(&str, Value)>,
        ok: (&str, &str, Option<(&str, Value)>),
        errors: &[u16],
        params: &[Value],
    ) {
        let error = self.schema::<ErrorBody>();
        let mut responses = Map::new();
        let mut answer = json!({ "description": ok.1 });
        if let Some((mime, schema)) = ok.2 {
            answer["content"] = json!({ mime: { "schema": schema } });
        }
        responses.insert(ok.0.to_string(), answer);
        for code in errors {
            responses.insert(
                code.to_string(),
                json!({ "description": describe(*code), "content": { "application/json": { "schema": error } } }),
            );
        }
        let mut op = json!({ "summary": summary, "responses": responses });
        if let Some((mime, schema)) = body {
            op["requestBody"] =
                json!({ "required": true, "content": { mime: { "schema": schema } } });
        }
        let mut parameters: Vec<Value> = path
            .split('/')
            .filter_map(|seg| seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
            .map(|name| {
                let schema = if name == "pid" {
                    json!({ "type": "integer", "minimum": 0 })
                } else {
                    json!({ "type": "string" })
                };
                json!({ "name": name, "in": "path", "required": true, "schema": schema })
            })
            .collect();
        parameters.extend(params.iter().cloned());
        if path != "/health" && !path.starts_with("/v1/downloads/") {
            op["security"] = json!([{ "bearer": [] }]);
        }
        if !parameters.is_empty() {
            op["parameters"] = Value::Array(parameters);
        }
        self.paths
            .entry(path.to_string())
            .or_insert_with(|| json!({}))[method] = op;
    }
}

fn describe(code: u16) -> &'static str {
    match code {
        400 => "invalid input",
        401 => "no key, or an unknown one",
        403 => "refused by the session's policy",
        404 => "no such session (for this key), file or package",
        409 => "it exists already",
        410 => "the session's container is gone",
        413 => "the body passes the server's limit",
        429 => "a limit was reached",
        501 => "the engine or runtime cannot do this",
        503 => "the container engine is out of reach",
        504 => "an engine operation took too long",
        _ => "a failure inside Sandpit or the engine",
    }
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({ "name": name, "in": "query", "required": false, "schema": schema, "description": description })
}

/// The whole document.
pub fn document() -> Value {
    let mut d = Doc {
        generator: SchemaSettings::openapi3().into_generator(),
        paths: Map::new(),
    };
    const COMMON: &[u16] = &[400, 401, 404, 410, 429, 500, 503];
    let json_of = |v: Value| Some(("application/json", v));

    let create = d.schema::<CreateSession>();
    let info = d.schema::<SessionInfo>();
    d.op(
        "post",
        "/v1/sessions",
        "Open a session (or return the key's session of that name)",
        json_of(create),
        ("201", "the new session", json_of(info.clone())),
        &[400, 401, 413, 429, 500, 501, 503],
        &[],
    );
    let list = d.schema::<SessionList>();
    d.op(
        "get",
        "/v1/sessions",
        "The key's sessions",
        None,
        ("200", "the sessions", json_of(list)),
        &[400, 401],
        &[
            query("language", json!({"type": "string"}), "only this language"),
            query("name", json!({"type": "string"}), "only this name"),
        ],
    );
    d.op(
        "get",
        "/v1/sessions/{id}",
        "A session and what it uses now",
        None,
        ("200", "the session", json_of(info.clone())),
        COMMON,
        &[],
    );
    let update = d.schema::<UpdateSession>();
    d.op(
        "patch",
        "/v1/sessions/{id}",
        "Change a session's lifetime, idle timeout or metadata",
        json_of(update),
        ("200", "the session", json_of(info.clone())),
        COMMON,
        &[],
    );
    d.op(
        "delete",
        "/v1/sessions/{id}",
        "Close a session",
        None,
        ("204", "closed", None),
        COMMON,
        &[],
    );
    d.op(
        "post",
        "/v1/sessions/{id}/pause",
        "Freeze a session (its lifetime clock stops)",
        None,
        ("200", "the session", json_of(info.clone())),
        COMMON,
        &[],
    );
    d.op(
        "post",
        "/v1/sessions/{id}/resume",
        "Thaw a paused session",
        None,
        ("200", "the session", json_of(info.clone())),
        COMMON,
        &[],
    );
    let snapshot_req = d.schema::<sandpit_service::snapshots::CreateSnapshot>();
    let snapshot = d.schema::<sandpit_service::snapshots::SnapshotInfo>();
    d.op(
        "post",
        "/v1/sessions/{id}/snapshots",
        "Snapshot the session's files, libraries and environment to the server's store (not its memory); the body is optional",
        json_of(snapshot_req),
        ("201", "the snapshot", json_of(snapshot.clone())),
        &[400, 401, 404, 409, 410, 429, 500, 501, 503],
        &[],
    );
    let snapshots = d.schema::<sandpit_service::snapshots::SnapshotList>();
    d.op(
        "get",
        "/v1/snapshots",
        "The key's snapshots",
        None,
        ("200", "the snapshots", json_of(snapshots)),
        &[401, 500, 501],
        &[],
    );
    d.op(
        "get",
        "/v1/snapshots/{name}",
        "One of the key's snapshots, with a download URL for its archive (valid an hour)",
        None,
        ("200", "the snapshot", json_of(snapshot)),
        &[400, 401, 404, 500, 501],
        &[],
    );
    d.op(
        "delete",
        "/v1/snapshots/{name}",
        "Remove one of the key's snapshots",
        None,
        ("204", "removed", None),
        &[400, 401, 404, 500, 501],
        &[],
    );

    let exec = d.schema::<ExecuteRequest>();
    let exec_answer = d.schema::<ExecuteResponse>();
    d.op(
        "post",
        "/v1/sessions/{id}/execute",
        "Run code in the session's kernel (state is kept); events with Accept: text/event-stream",
        json_of(exec),
        ("200", "the outcome", json_of(exec_answer)),
        &[400, 401, 404, 410, 413, 429, 500, 501, 503],
        &[],
    );
    let run = d.schema::<RunRequest>();
    let run_answer = d.schema::<RunResponse>();
    d.op(
        "post",
        "/v1/sessions/{id}/run",
        "Run a program in the session; events with Accept: text/event-stream",
        json_of(run),
        ("200", "the outcome", json_of(run_answer.clone())),
        &[400, 401, 404, 410, 413, 429, 500, 503],
        &[],
    );
    let cmd = d.schema::<CommandRequest>();
    let step = d.schema::<StepResponse>();
    d.op(
        "post",
        "/v1/sessions/{id}/commands",
        "Run a shell command in the session; events with Accept: text/event-stream",
        json_of(cmd),
        ("200", "the outcome", json_of(step)),
        &[400, 401, 403, 404, 410, 413, 429, 500, 503],
        &[],
    );
    let start = d.schema::<StartProcess>();
    let process = d.schema::<ProcessEntry>();
    let processes = d.schema::<ProcessList>();
    let input = d.schema::<ProcessInput>();
    let signal = d.schema::<ProcessSignal>();
    d.op(
        "post",
        "/v1/sessions/{id}/processes",
        "Start a process in the background (it outlives this request)",
        json_of(start),
        ("201", "the process", json_of(process)),
        &[400, 401, 403, 404, 410, 413, 429, 500, 503],
        &[],
    );
    d.op(
        "get",
        "/v1/sessions/{id}/processes",
        "The session's background processes",
        None,
        ("200", "the processes", json_of(processes)),
        COMMON,
        &[],
    );
    d.op(
        "get",
        "/v1/sessions/{id}/processes/{pid}/output",
        "Follow a background process: server-sent events `output` (what it wrote while nobody followed, then as it writes) and a last `exit`",
        None,
        ("200", "the events", Some(("text/event-stream", json!({ "type": "string" })))),
        COMMON,
        &[],
    );
    d.op(
        "post",
        "/v1/sessions/{id}/processes/{pid}/stdin",
        "Write to a background process's standard input (and close it with eof)",
        json_of(input),
        ("204", "written", None),
        COMMON,
        &[],
    );
    d.op(
        "post",
        "/v1/sessions/{id}/processes/{pid}/signal",
        "Send a signal to a background process (kill takes what it started too)",
        json_of(signal),
        ("204", "sent", None),
        COMMON,
        &[],
    );
    let one = d.schema::<OneShotRequest>();
    d.op(
        "post",
        "/v1/run",
        "Run a program in a fresh sandbox (from a warm pool)",
        json_of(one),
        ("200", "the outcome", json_of(run_answer)),
        &[400, 401, 413, 429, 500, 503],
        &[],
    );

    let entry = d.schema::<FileEntry>();
    let files = d.schema::<FileList>();
    d.op(
        "get",
        "/v1/sessions/{id}/files",
        "List files",
        None,
        ("200", "the files", json_of(files.clone())),
        COMMON,
        &[
            query(
                "path",
                json!({"type": "string"}),
                "the folder, relative to the workdir",
            ),
            query("recursive", json!({"type": "boolean"}), "everything below"),
            query(
                "pattern",
                json!({"type": "string"}),
                "a glob the names match",
            ),
        ],
    );
    d.op("post", "/v1/sessions/{id}/files", "Upload files (multipart: `file` parts, optional `path` folder)",
        Some(("multipart/form-data", json!({"type": "object", "properties": {"file": {"type": "string", "format": "binary"}, "path": {"type": "string"}}}))),
        ("201", "the files written", json_of(files)), &[400, 401, 404, 410, 413, 429, 500, 503], &[]);
    d.op(
        "put",
        "/v1/sessions/{id}/files/{path}",
        "Write a file from the raw body",
        Some((
            "application/octet-stream",
            json!({"type": "string", "format": "binary"}),
        )),
        ("201", "the file", json_of(entry.clone())),
        &[400, 401, 404, 410, 413, 429, 500, 503],
        &[query(
            "mode",
            json!({"type": "string"}),
            "permission bits, octal",
        )],
    );
    d.op(
        "get",
        "/v1/sessions/{id}/files/{path}",
        "Read a file",
        None,
        (
            "200",
            "its bytes",
            Some((
                "application/octet-stream",
                json!({"type": "string", "format": "binary"}),
            )),
        ),
        COMMON,
        &[],
    );
    d.op(
        "delete",
        "/v1/sessions/{id}/files/{path}",
        "Delete a file or folder",
        None,
        ("204", "deleted", None),
        COMMON,
        &[],
    );
    let fop = d.schema::<FileOp>();
    d.op(
        "post",
        "/v1/sessions/{id}/files/ops",
        "Copy, move, make a folder, describe",
        json_of(fop),
        ("200", "the result", json_of(entry)),
        COMMON,
        &[],
    );

    let pk = d.schema::<InstallPackages>();
    let installed = d.schema::<Installed>();
    d.op(
        "post",
        "/v1/sessions/{id}/packages",
        "Install packages",
        json_of(pk),
        ("200", "installed", json_of(installed)),
        &[400, 401, 404, 410, 429, 500, 501, 503],
        &[],
    );
    let pl = d.schema::<PackageList>();
    d.op(
        "get",
        "/v1/sessions/{id}/packages",
        "Installed packages",
        None,
        ("200", "the packages", json_of(pl)),
        COMMON,
        &[],
    );
    d.op(
        "delete",
        "/v1/sessions/{id}/packages/{name}",
        "Uninstall a package",
        None,
        ("204", "removed", None),
        &[400, 401, 404, 410, 429, 500, 501, 503],
        &[],
    );
    let env = d.schema::<EnvVars>();
    d.op(
        "get",
        "/v1/sessions/{id}/env",
        "The session's environment",
        None,
        ("200", "the environment", json_of(env.clone())),
        &[401, 404],
        &[],
    );
    d.op(
        "put",
        "/v1/sessions/{id}/env",
        "Replace the session's environment",
        json_of(env.clone()),
        ("200", "the environment", json_of(env)),
        &[400, 401, 404, 413],
        &[],
    );

    d.op("get", "/v1/tools", "The tools for function calling, as OpenAI or Anthropic tools", None,
        ("200", "the tools", json_of(json!({"type": "object", "properties": {"format": {"type": "string"}, "tools": {"type": "array", "items": {"type": "object"}}}}))),
        &[400, 401],
        &[query("format", json!({"type": "string", "enum": ["openai", "anthropic"]}), "openai (default) or anthropic")]);
    d.op(
        "get",
        "/v1/downloads/{token}",
        "A file through a signed, expiring link (the token is the credential)",
        None,
        (
            "200",
            "its bytes",
            Some((
                "application/octet-stream",
                json!({"type": "string", "format": "binary"}),
            )),
        ),
        &[401, 404, 410],
        &[],
    );

    let health = d.schema::<Health>();
    d.op(
        "get",
        "/health",
        "Engine reachable? (no key needed)",
        None,
        ("200", "ok", json_of(health)),
        &[503],
        &[],
    );
    d.op(
        "get",
        "/metrics",
        "Prometheus metrics",
        None,
        (
            "200",
            "metrics",
            Some(("text/plain", json!({"type": "string"}))),
        ),
        &[401],
        &[],
    );

    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Sandpit",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Run untrusted code in sandboxes: sessions with files, packages and a stateful kernel, one-shot runs, in Python, Java, JavaScript, C++, Go and Ruby."
        },
        "paths": d.paths,
        "components": {
            "schemas": d.generator.take_definitions(true),
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } }
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_reference_resolves() {
        let doc = super::document();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"$ref\":\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
        assert!(doc["paths"]["/v1/sessions/{id}/execute"]["post"].is_object());
    }
}
