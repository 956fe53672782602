//! `run_code(…, envs=…)`: environment variables for one execution, set by a cell of the
//! context's own language before the code and put back by another after it. The values travel
//! hex-encoded, so no value can be read as code in any of the languages.

use std::collections::BTreeMap;

use sandpit::Language;

/// The two cells around an execution: `set` before it, `restore` after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvCells {
    pub set: String,
    pub restore: &'static str,
}

fn hex(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}

/// The cells that set `env` for one execution in a kernel of `language`; `None` for a
/// language without them.
pub fn env_cells(language: Language, env: &BTreeMap<String, String>) -> Option<EnvCells> {
    let json = hex(&serde_json::to_string(env).unwrap_or_default());
    match language {
        Language::Python => Some(EnvCells {
            set: format!(
                "import os as _e2b_os, json as _e2b_json\n_e2b_env = _e2b_json.loads(bytes.fromhex('{json}').decode())\n_e2b_saved = {{k: _e2b_os.environ.get(k) for k in _e2b_env}}\n_e2b_os.environ.update(_e2b_env)\n"
            ),
            restore: "for _k, _v in _e2b_saved.items():\n    if _v is None:\n        _e2b_os.environ.pop(_k, None)\n    else:\n        _e2b_os.environ[_k] = _v\n",
        }),
        Language::JavaScript => Some(EnvCells {
            set: format!(
                "globalThis[Symbol.for('e2b.env')] = (() => {{ const env = JSON.parse(Buffer.from('{json}', 'hex').toString()); const saved = {{}}; for (const k of Object.keys(env)) {{ saved[k] = process.env[k]; process.env[k] = env[k] }} return saved }})(); undefined"
            ),
            restore: "for (const [k, v] of Object.entries(globalThis[Symbol.for('e2b.env')] || {})) { if (v === undefined) delete process.env[k]; else process.env[k] = v }; undefined",
        }),
        Language::Ruby => Some(EnvCells {
            set: format!(
                "require 'json'; $e2b_env = JSON.parse(['{json}'].pack('H*').force_encoding('UTF-8')).to_h {{ |k, v| old = ENV[k]; ENV[k] = v; [k, old] }}; nil"
            ),
            restore: "($e2b_env || {}).each { |k, v| ENV[k] = v }; nil",
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_travel_as_hex() {
        let env = BTreeMap::from([("A".to_string(), "'); rm -rf / #{x}".to_string())]);
        for language in [Language::Python, Language::JavaScript, Language::Ruby] {
            let cells = env_cells(language, &env).expect("a kernel language");
            assert!(!cells.set.contains("rm -rf"), "{language:?}: {}", cells.set);
            assert!(cells.set.contains(&hex(r#"{"A":"'); rm -rf / #{x}"}"#)));
        }
        assert_eq!(hex("hi"), "6869");
        assert!(env_cells(Language::Go, &env).is_none());
    }
}
