//! Piston's requests, checked in Piston's order with its messages.

use base64::Engine as _;
use sandpit::SecurityPolicy;
use serde_json::Value;

use super::runtimes::{lookup, Runtime};

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
            .then(|| crate::compat::inside_workdir(&name, "/"))
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

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::compat::piston::runtimes::tests::list;

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
}
