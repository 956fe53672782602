//! The C++ runner: Debian's g++, C++17.
//!
//! - The code is saved as `main.cpp`, compiled with `g++ -std=c++17 -O2` (plus `$CXXFLAGS`,
//!   `$LDFLAGS` and `$LDLIBS` from the run's or the session's environment, e.g.
//!   `LDLIBS=-lfmt`) to `.sandpit/cpp/main` in the workdir, then run. A compile error is a compile failure carrying g++'s messages,
//!   and the program does not run.
//! - Libraries are Debian packages (the `-dev` ones: `nlohmann-json3-dev`, `libfmt-dev`),
//!   installed with apt-get as root; `apt:` in front of a name is accepted and ignored.
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, Language, Package, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/cpp/Dockerfile");

/// Where the compiled program goes, relative to the workdir (the session's own disk, where
/// programs may be executed; the scratch folders /tmp and the home folder may be `noexec`).
pub const BINARY: &str = "./.sandpit/cpp/main";

/// Compiles "$1" to "$0" (the flags from the environment are split into words on purpose).
const COMPILE: &str = r#"d=${0%/*}; [ -d "$d" ] || mkdir -p "$d" || exit 1
exec g++ -std=c++17 -O2 -pipe -o "$0" "$1" $CXXFLAGS $LDFLAGS $LDLIBS"#;

/// Runs C++ code.
#[derive(Debug, Clone, Copy, Default)]
pub struct CppRunner;

impl Runner for CppRunner {
    fn language(&self) -> Language {
        Language::Cpp
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/cpp:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, _code: &str) -> String {
        "main.cpp".into()
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        check_debian_package(library.trim())
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        let packages: Vec<&str> = libraries.iter().map(|l| debian_name(l)).collect();
        vec![sandpit_session::debian::apt_install(&packages)]
    }

    fn package_spec(&self, name: &str, version: &str) -> String {
        format!("{name}={version}")
    }

    fn uninstall(&self, names: &[String]) -> Option<Vec<Command>> {
        let mut argv: Vec<String> = ["apt-get", "remove", "--yes", "--quiet"]
            .into_iter()
            .map(String::from)
            .collect();
        argv.extend(names.iter().map(|n| debian_name(n).to_string()));
        Some(vec![Command::new(argv)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .as_root()])
    }

    fn list_packages(&self) -> Option<Command> {
        Some(Command::new([
            "dpkg-query",
            "--show",
            "--showformat=${Package}\t${Version}\n",
        ]))
    }

    fn parse_packages(&self, output: &str) -> Vec<Package> {
        output
            .lines()
            .filter_map(|line| {
                let (name, version) = line.split_once('\t')?;
                Some(Package {
                    name: name.to_string(),
                    version: Some(version.to_string()),
                })
            })
            .collect()
    }

    fn run(&self, source: &str) -> RunPlan {
        RunPlan {
            compile: vec![Command::new(["/bin/sh", "-c", COMPILE, BINARY, source])],
            run: Command::new([BINARY]),
        }
    }
}

/// The package name without an optional `apt:` in front.
fn debian_name(library: &str) -> &str {
    let lib = library.trim();
    lib.strip_prefix("apt:").unwrap_or(lib)
}

/// A Debian package name, optionally `=version` (what apt-get install accepts).
fn check_debian_package(library: &str) -> Result<(), String> {
    if sandpit_session::debian::is_package_name(debian_name(library)) {
        Ok(())
    } else {
        Err(format!(
            "library {library:?} is not a Debian package name; C++ libraries are Debian -dev packages such as nlohmann-json3-dev or libfmt-dev"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compiles_then_runs_the_binary() {
        let plan = CppRunner.run("main.cpp");
        assert_eq!(plan.compile.len(), 1);
        assert_eq!(plan.compile[0].argv.last().unwrap(), "main.cpp");
        assert!(plan.compile[0].argv[2].contains("-std=c++17 -O2"));
        assert_eq!(plan.run.argv, [BINARY]);
        assert_eq!(CppRunner.source_file("int main(){}"), "main.cpp");
    }

    #[test]
    fn libraries_are_debian_packages_installed_as_root() {
        let r = CppRunner;
        for ok in [
            "nlohmann-json3-dev",
            "libboost1.81-dev",
            "apt:libfmt-dev",
            "g++=4:12.2.0-3",
        ] {
            assert!(r.check_library(ok).is_ok(), "{ok}");
        }
        for bad in ["-o", "Foo", "a b", "x", "lib;rm", "libfmt-dev=", "../x"] {
            assert!(r.check_library(bad).is_err(), "{bad}");
        }
        let install = r.install(&["apt:libfmt-dev".into()]);
        assert_eq!(install[0].user, sandpit_session::User::Root);
        assert_eq!(install[0].argv.last().unwrap(), "libfmt-dev");
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
    }
}
