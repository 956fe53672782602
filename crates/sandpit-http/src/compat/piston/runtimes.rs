//! Piston's runtime list: Sandpit's languages under Piston's names, each with its image's version.

use std::collections::HashMap;
use std::sync::OnceLock;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use sandpit::{Engine, Language, LanguageExt, SandboxSession};
use serde::Serialize;

use crate::compat::{j, json_response, obj, Json};
use crate::state::AppState;

/// One language as Piston lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Runtime {
    /// Piston's name for the language (`c++`, not Sandpit's `cpp`).
    pub language: String,
    /// The image's version, `MAJOR.MINOR.PATCH`.
    pub version: String,
    /// Piston's aliases, then Sandpit's.
    pub aliases: Vec<String>,
    /// The package providing several languages, where Piston has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// Sandpit's language.
    #[serde(skip)]
    pub sandpit: Option<Language>,
}

/// Piston's name for a language.
pub fn piston_name(language: Language) -> &'static str {
    match language {
        Language::Python => "python",
        Language::Java => "java",
        Language::JavaScript => "javascript",
        Language::Cpp => "c++",
        Language::Go => "go",
        Language::Ruby => "ruby",
    }
}

/// The runtime entry of a language at a version.
pub fn runtime(language: Language, version: &str) -> Runtime {
    let name = piston_name(language);
    let minor: String = version.split('.').take(2).collect::<Vec<_>>().join(".");
    let mut aliases: Vec<String> = match language {
        Language::Python => vec![
            "py".into(),
            "py3".into(),
            "python3".into(),
            format!("python{minor}"),
        ],
        Language::Java => vec![],
        Language::JavaScript => vec![
            "node-javascript".into(),
            "node-js".into(),
            "javascript".into(),
            "js".into(),
        ],
        Language::Cpp => vec!["cpp".into(), "g++".into()],
        Language::Go => vec!["go".into(), "golang".into()],
        Language::Ruby => vec!["ruby3".into(), "rb".into()],
    };
    for alias in language.aliases() {
        if *alias != name && !aliases.iter().any(|a| a == alias) {
            aliases.push(alias.to_string());
        }
    }
    Runtime {
        language: name.to_string(),
        version: version.to_string(),
        aliases,
        runtime: match language {
            Language::JavaScript => Some("node".into()),
            Language::Cpp => Some("gcc".into()),
            _ => None,
        },
        sandpit: Some(language),
    }
}

/// The shell command that prints a language's version in its image.
fn version_command(language: Language) -> &'static str {
    match language {
        Language::Python => "python3 -c 'import platform; print(platform.python_version())'",
        Language::Java => "java -version 2>&1 | head -n 1",
        Language::JavaScript => "node -p process.versions.node",
        Language::Cpp => "g++ -dumpfullversion",
        Language::Go => "go version",
        Language::Ruby => "ruby -e 'print RUBY_VERSION'",
    }
}

/// The first version number in a tool's output as strict `MAJOR.MINOR.PATCH`
/// (`openjdk version "17.0.13" 2024-10-15` gives `17.0.13`, `go1.23` gives `1.23.0`).
pub fn strict_version(text: &str) -> Option<String> {
    let start = text.find(|c: char| c.is_ascii_digit())?;
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    let mut parts: Vec<u64> = digits
        .split('.')
        .filter(|p| !p.is_empty())
        .take(3)
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    parts.resize(3, 0);
    Some(format!("{}.{}.{}", parts[0], parts[1], parts[2]))
}

/// Asks a language's image for its version, in a sandbox of its own.
async fn probe(engine: &Engine, language: Language) -> Result<String, String> {
    let session = SandboxSession::builder()
        .language(language)
        .engine(engine.clone())
        .open()
        .await
        .map_err(|e| sandpit::one_line(&e))?;
    let out = session.execute_command(version_command(language)).await;
    let _ = session.close().await;
    let out = out.map_err(|e| sandpit::one_line(&e))?;
    strict_version(&format!("{}\n{}", out.stdout, out.stderr)).ok_or_else(|| {
        format!(
            "`{}` printed no version: {}",
            version_command(language),
            out.stdout.trim()
        )
    })
}

/// Versions by image id, probed once per image.
static VERSIONS: OnceLock<tokio::sync::Mutex<HashMap<String, String>>> = OnceLock::new();

/// The image id behind each language's default image, where it exists.
async fn image_ids(engine: &Engine) -> HashMap<Language, String> {
    let images = engine.list_images().await.unwrap_or_default();
    Language::ALL
        .iter()
        .filter_map(|l| {
            let tag = sandpit::runner(*l).default_image().tag;
            images
                .iter()
                .find(|i| i.tags.contains(&tag))
                .map(|i| (*l, i.id.clone()))
        })
        .collect()
}

/// Every language Sandpit can run, with its image's version (probed once per image and
/// cached; a language whose version cannot be learned is left out, with a warning).
pub async fn runtime_list(engine: &Engine) -> Vec<Runtime> {
    let cache = VERSIONS.get_or_init(Default::default);
    let mut cache = cache.lock().await;
    let mut ids = image_ids(engine).await;
    let unknown: Vec<Language> = Language::ALL
        .iter()
        .copied()
        .filter(|l| ids.get(l).is_none_or(|id| !cache.contains_key(id)))
        .collect();
    if !unknown.is_empty() {
        let probed =
            futures_util::future::join_all(unknown.iter().map(|l| probe(engine, *l))).await;
        // A missing image was built by the probe: its id exists now.
        ids = image_ids(engine).await;
        for (language, version) in unknown.iter().zip(probed) {
            match (version, ids.get(language)) {
                (Ok(version), Some(id)) => {
                    cache.insert(id.clone(), version);
                }
                (Ok(_), None) => tracing::warn!(
                    "the {language} image has no id after probing its version; it is left out of Piston's runtimes"
                ),
                (Err(e), _) => tracing::warn!(
                    "cannot learn the {language} image's version ({e}); it is left out of Piston's runtimes"
                ),
            }
        }
    }
    Language::ALL
        .iter()
        .filter_map(|l| {
            let version = cache.get(ids.get(l)?)?;
            Some(runtime(*l, version))
        })
        .collect()
}

/// `GET /api/v2/runtimes` (no key): Piston's runtime list.
pub async fn runtimes(State(state): State<AppState>) -> Response {
    json_response(StatusCode::OK, runtime_list(state.manager.engine()).await)
}

/// `GET /api/v2/packages` (no key): the runtimes as installed packages.
pub async fn packages(State(state): State<AppState>) -> Response {
    let list: Vec<Json> = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            obj([
                ("language", j(r.language)),
                ("language_version", j(r.version)),
                ("installed", j(true)),
            ])
        })
        .collect();
    json_response(StatusCode::OK, list)
}

/// `GET /api/v1/piston/runtimes` (no key): an object keyed by language, as `aio-piston`
/// reads it.
pub async fn runtimes_v1(State(state): State<AppState>) -> Response {
    let map = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            let entry = obj([("version", j(r.version)), ("aliases", j(r.aliases))]);
            (r.language, entry)
        })
        .collect();
    json_response(StatusCode::OK, Json::Object(map))
}

/// `GET /api/v1/piston/versions` (no key): v1's list.
pub async fn versions_v1(State(state): State<AppState>) -> Response {
    let list: Vec<Json> = runtime_list(state.manager.engine())
        .await
        .into_iter()
        .map(|r| {
            obj([
                ("name", j(r.language)),
                ("version", j(r.version)),
                ("aliases", j(r.aliases)),
            ])
        })
        .collect();
    json_response(StatusCode::OK, list)
}

/// The newest runtime named `language` (or aliased so, any case) whose version satisfies the
/// node-semver range `range`.
pub fn lookup<'a>(runtimes: &'a [Runtime], language: &str, range: &str) -> Option<&'a Runtime> {
    let wanted = language.trim().to_ascii_lowercase();
    let range = nodejs_semver::Range::parse(range.trim()).ok()?;
    runtimes
        .iter()
        .filter(|r| r.language == wanted || r.aliases.contains(&wanted))
        .filter_map(|r| {
            let version = nodejs_semver::Version::parse(&r.version).ok()?;
            range.satisfies(&version).then_some((version, r))
        })
        .max_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, r)| r)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn list() -> Vec<Runtime> {
        vec![
            runtime(Language::Python, "3.11.2"),
            runtime(Language::Java, "17.0.13"),
            runtime(Language::JavaScript, "18.19.0"),
            runtime(Language::Cpp, "12.2.0"),
            runtime(Language::Go, "1.19.8"),
            runtime(Language::Ruby, "3.1.2"),
        ]
    }

    #[test]
    fn the_runtime_list_has_pistons_names_and_aliases() {
        let text = serde_json::to_string(&list()).unwrap();
        assert!(text.starts_with(
            r#"[{"language":"python","version":"3.11.2","aliases":["py","py3","python3","python3.11"]},{"language":"java","version":"17.0.13","aliases":[]},{"language":"javascript","version":"18.19.0","aliases":["node-javascript","node-js","javascript","js","node","nodejs"],"runtime":"node"},{"language":"c++","version":"12.2.0","aliases":["cpp","g++","cxx"],"runtime":"gcc"}"#
        ), "{text}");
        assert!(
            text.ends_with(r#"{"language":"ruby","version":"3.1.2","aliases":["ruby3","rb"]}]"#)
        );
    }

    #[test]
    fn versions_become_strict() {
        assert_eq!(strict_version("3.11.2\n").unwrap(), "3.11.2");
        assert_eq!(
            strict_version("openjdk version \"17.0.13\" 2024-10-15").unwrap(),
            "17.0.13"
        );
        assert_eq!(
            strict_version("openjdk version \"21\" 2023").unwrap(),
            "21.0.0"
        );
        assert_eq!(
            strict_version("go version go1.19.8 linux/amd64").unwrap(),
            "1.19.8"
        );
        assert_eq!(strict_version("12.2.0").unwrap(), "12.2.0");
        assert_eq!(strict_version("nothing"), None);
    }

    #[test]
    fn version_ranges_match_as_node_semver() {
        let rts = list();
        for range in [
            "*",
            "x",
            "3",
            "3.x",
            "3.*",
            "3.11",
            "3.11.x",
            "^3.10",
            "~3.11.0",
            ">=3.8",
            ">=3.8 <4",
            "3.8 - 3.12",
            "2.x || 3.x",
            "3.11.2",
            "=3.11.2",
            "v3.11.2",
        ] {
            let found = lookup(&rts, "python", range);
            assert_eq!(found.map(|r| r.version.as_str()), Some("3.11.2"), "{range}");
        }
        for range in ["3.10.0", "3.12", "^3.12", "<3", "latest", "abc", "3.11.2.1"] {
            assert!(lookup(&rts, "python", range).is_none(), "{range}");
        }
        assert_eq!(lookup(&rts, "PY", "*").unwrap().language, "python");
        assert_eq!(lookup(&rts, "cpp", "*").unwrap().language, "c++");
        assert_eq!(lookup(&rts, "js", "18.x").unwrap().language, "javascript");
        assert!(lookup(&rts, "cobol", "*").is_none());
    }
}
