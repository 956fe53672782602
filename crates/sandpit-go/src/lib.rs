//! The Go runner: Debian's Go (bookworm-backports), in a module in the workdir.
//!
//! - The code is saved as `main.go` and built with `go build` to `.sandpit/go/main` in the
//!   workdir, then run; a build error is a compile failure carrying the compiler's messages.
//! - The workdir is a module (`go mod init sandbox` when it has no `go.mod` yet), so `go get`
//!   has somewhere to record requirements.
//! - The build cache (`GOCACHE`) and module cache (`GOMODCACHE`) are in `.sandpit/go/` in the
//!   workdir (set in the image), so the second build of the same program in a session reuses
//!   the first one's work. The standard library is compiled in the image.
//! - Libraries are module paths (`github.com/google/uuid`, `golang.org/x/exp@v0.0.0-...`),
//!   fetched with `go get` through `GOPROXY`. Where the proxy is unreachable the install fails
//!   with an error naming the modules.
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, Language, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/go/Dockerfile");

/// Where the built program goes, relative to the workdir.
pub const BINARY: &str = "./.sandpit/go/main";

/// Builds "$1" to "$0" in the workdir's module (made when missing).
const BUILD: &str = r#"[ -f go.mod ] || go mod init sandbox >/dev/null 2>&1
exec go build -o "$0" "$1""#;

/// `go get` in the workdir's module, with a clear last line when the proxy is unreachable.
const GO_GET: &str = r#"[ -f go.mod ] || go mod init sandbox >/dev/null 2>&1
if out=$(go get "$@" 2>&1); then
  printf '%s\n' "$out"
  exit 0
fi
printf '%s\n' "$out" >&2
case "$out" in
  *"dial tcp"*|*"no such host"*|*"i/o timeout"*|*"connection refused"*|*"network is unreachable"*|*"TLS handshake"*|*"certificate"*|*"proxyconnect"*)
    echo "cannot install Go module(s) $*: the Go module proxy ($(go env GOPROXY)) is not reachable from the sandbox; set GOPROXY in the session's environment to a reachable proxy" >&2 ;;
  *)
    echo "cannot install Go module(s) $*: go get failed" >&2 ;;
esac
exit 1"#;

/// Runs Go code.
#[derive(Debug, Clone, Copy, Default)]
pub struct GoRunner;

impl Runner for GoRunner {
    fn language(&self) -> Language {
        Language::Go
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/go:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, _code: &str) -> String {
        "main.go".into()
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        let lib = library.trim();
        let usage = "Go libraries are module paths such as github.com/google/uuid or github.com/google/uuid@v1.6.0";
        if lib.is_empty() {
            return Err("a library name is empty".into());
        }
        let (path, version) = match lib.split_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (lib, None),
        };
        let path_ok = !path.is_empty()
            && !path.starts_with(['-', '.', '/'])
            && !path.contains("..")
            && path.chars().all(|c| {
                c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '~' | '/' | '-' | '+')
            });
        let version_ok = version.is_none_or(|v| {
            !v.is_empty()
                && !v.starts_with('-')
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
        });
        if path_ok && version_ok {
            Ok(())
        } else {
            Err(format!("library {lib:?} is not a Go module path: {usage}"))
        }
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        let mut argv: Vec<String> = ["/bin/sh", "-c", GO_GET, "sandpit-go-get"]
            .into_iter()
            .map(String::from)
            .collect();
        argv.extend(libraries.iter().map(|l| l.trim().to_string()));
        vec![Command::new(argv)]
    }

    fn package_spec(&self, name: &str, version: &str) -> String {
        format!("{name}@{version}")
    }

    fn run(&self, source: &str) -> RunPlan {
        RunPlan {
            compile: vec![Command::new(["/bin/sh", "-c", BUILD, BINARY, source])],
            run: Command::new([BINARY]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_in_the_module_then_runs_the_binary() {
        let plan = GoRunner.run("main.go");
        assert_eq!(plan.compile.len(), 1);
        assert!(plan.compile[0].argv[2].contains("go build -o"));
        assert_eq!(plan.compile[0].argv[3], BINARY);
        assert_eq!(plan.compile[0].argv[4], "main.go");
        assert_eq!(plan.run.argv, [BINARY]);
    }

    #[test]
    fn libraries_are_module_paths() {
        let r = GoRunner;
        for ok in [
            "github.com/google/uuid",
            "github.com/google/uuid@v1.6.0",
            "golang.org/x/exp@latest",
        ] {
            assert!(r.check_library(ok).is_ok(), "{ok}");
        }
        for bad in ["-u", "a b", "github.com/x@", "../x", "x@-v", "/abs"] {
            assert!(r.check_library(bad).is_err(), "{bad}");
        }
        let install = r.install(&["github.com/google/uuid".into()]);
        assert_eq!(install[0].argv.last().unwrap(), "github.com/google/uuid");
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
        assert!(DOCKERFILE.contains("GOCACHE="));
    }
}
