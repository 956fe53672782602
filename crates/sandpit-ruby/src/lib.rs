//! The Ruby runner: Debian's Ruby.
//!
//! Libraries come from two places, told apart by how they are written:
//! - `apt:<package>`: a Debian package installed with apt-get, e.g. `apt:ruby-rainbow`
//!   (Debian packages many gems as `ruby-<gem>`; they need only Debian's mirror);
//! - anything else is a gem, `name` or `name:version`, installed with `gem install` from
//!   RubyGems into `GEM_HOME` (`/opt/sandpit/ruby/gems`). Where RubyGems is unreachable the
//!   install fails with an error naming the gems and pointing at the `apt:` form.
//!
//! Both installs run as root, outside the workdir; user code can read, not change, them.
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, KernelSpec, Language, Package, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/ruby/Dockerfile");

/// The stateful kernel: one Binding kept for the session (see the comment at its top).
pub const KERNEL: &str = include_str!("kernel.rb");

/// gem install, with a clear last line when RubyGems is unreachable.
const GEM_INSTALL: &str = r#"if out=$(gem install --no-document "$@" 2>&1); then
  printf '%s\n' "$out"
  exit 0
fi
printf '%s\n' "$out" >&2
case "$out" in
  *"Unable to download data"*|*"SocketError"*|*"getaddrinfo"*|*"Failed to open TCP"*|*"timed out"*|*"SSL_connect"*)
    echo "cannot install gem(s) $*: RubyGems ($(gem sources --list 2>/dev/null | grep -m1 '^http' || echo https://rubygems.org/)) is not reachable from the sandbox; Debian's packaged gems install through apt: pass apt:ruby-<name>, e.g. apt:ruby-rainbow" >&2 ;;
  *)
    echo "cannot install gem(s) $*: gem install failed" >&2 ;;
esac
exit 1"#;

/// Runs Ruby code.
#[derive(Debug, Clone, Copy, Default)]
pub struct RubyRunner;

/// Where a Ruby library comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source<'a> {
    /// A Debian package (written `apt:<package>`).
    Apt(&'a str),
    /// A gem from RubyGems (`name` or `name:version`).
    Gem(&'a str),
}

/// How a library name maps to an installer: `apt:` in front means Debian, anything else a gem.
pub fn source(library: &str) -> Source<'_> {
    let lib = library.trim();
    match lib.strip_prefix("apt:") {
        Some(package) => Source::Apt(package),
        None => Source::Gem(lib),
    }
}

impl Runner for RubyRunner {
    fn language(&self) -> Language {
        Language::Ruby
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/ruby:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, _code: &str) -> String {
        "main.rb".into()
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        match source(library) {
            Source::Apt(package) => {
                if sandpit_session::debian::is_package_name(package) {
                    Ok(())
                } else {
                    Err(format!(
                        "library {library:?}: {package:?} is not a Debian package name (e.g. apt:ruby-rainbow)"
                    ))
                }
            }
            Source::Gem(gem) => {
                let (name, version) = match gem.split_once(':') {
                    Some((n, v)) => (n, Some(v)),
                    None => (gem, None),
                };
                let name_ok = name.starts_with(|c: char| c.is_ascii_alphanumeric())
                    && name
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
                let version_ok = version.is_none_or(|v| {
                    v.starts_with(|c: char| c.is_ascii_digit())
                        && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
                });
                if name_ok && version_ok {
                    Ok(())
                } else {
                    Err(format!(
                        "library {library:?} is not a gem name: write a gem as `name` or `name:version` (e.g. rainbow:3.1.1), or a Debian package as apt:<package> (e.g. apt:ruby-rainbow)"
                    ))
                }
            }
        }
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        let mut apt = Vec::new();
        let mut gems = Vec::new();
        for lib in libraries {
            match source(lib) {
                Source::Apt(p) => apt.push(p.to_string()),
                Source::Gem(g) => gems.push(g.to_string()),
            }
        }
        let mut steps = Vec::new();
        if !apt.is_empty() {
            steps.push(sandpit_session::debian::apt_install(&apt));
        }
        if !gems.is_empty() {
            let mut argv: Vec<String> = vec![
                "/bin/sh".into(),
                "-c".into(),
                GEM_INSTALL.into(),
                "sandpit-gem".into(),
            ];
            argv.extend(gems);
            steps.push(Command::new(argv).as_root());
        }
        steps
    }

    fn package_spec(&self, name: &str, version: &str) -> String {
        match source(name) {
            Source::Apt(_) => format!("{name}={version}"),
            Source::Gem(_) => format!("{name}:{version}"),
        }
    }

    fn uninstall(&self, names: &[String]) -> Option<Vec<Command>> {
        let gems: Vec<String> = names
            .iter()
            .filter_map(|n| match source(n) {
                Source::Gem(g) => Some(g.split(':').next().unwrap_or(g).to_string()),
                Source::Apt(_) => None,
            })
            .collect();
        if gems.len() != names.len() {
            // Debian packages are part of the image's system; they stay.
            return None;
        }
        let mut argv: Vec<String> = [
            "gem",
            "uninstall",
            "--all",
            "--executables",
            "--ignore-dependencies",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        argv.extend(gems);
        Some(vec![Command::new(argv).as_root()])
    }

    fn list_packages(&self) -> Option<Command> {
        Some(Command::new(["gem", "list", "--local"]))
    }

    fn parse_packages(&self, output: &str) -> Vec<Package> {
        // `name (1.2.3, default: 1.2.0)`
        output
            .lines()
            .filter_map(|line| {
                let (name, rest) = line.trim().split_once(" (")?;
                let version = rest
                    .trim_end_matches(')')
                    .split(',')
                    .next()
                    .map(|v| v.trim().trim_start_matches("default:").trim().to_string());
                Some(Package {
                    name: name.to_string(),
                    version,
                })
            })
            .collect()
    }

    fn run(&self, source: &str) -> RunPlan {
        RunPlan {
            compile: Vec::new(),
            run: Command::new(["ruby", source]),
        }
    }

    fn kernel(&self) -> Option<KernelSpec> {
        Some(KernelSpec {
            script: KERNEL,
            file: "sandpit-kernel.rb",
            argv: vec!["ruby".into()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apt_prefix_means_debian_anything_else_a_gem() {
        assert_eq!(source("apt:ruby-rainbow"), Source::Apt("ruby-rainbow"));
        assert_eq!(source("rainbow"), Source::Gem("rainbow"));
        assert_eq!(source("ruby-progressbar"), Source::Gem("ruby-progressbar"));
        let steps = RubyRunner.install(&["apt:ruby-rainbow".into(), "rake:13.0.6".into()]);
        assert_eq!(steps.len(), 2);
        assert!(steps[0].argv[2].contains("apt-get install"));
        assert_eq!(steps[0].argv.last().unwrap(), "ruby-rainbow");
        assert!(steps[1].argv[2].contains("gem install"));
        assert_eq!(steps[1].argv.last().unwrap(), "rake:13.0.6");
        assert!(steps.iter().all(|s| s.user == sandpit_session::User::Root));
        assert_eq!(RubyRunner.install(&["rake".into()]).len(), 1);
    }

    #[test]
    fn library_names_are_checked() {
        let r = RubyRunner;
        for ok in [
            "rainbow",
            "rainbow:3.1.1",
            "apt:ruby-rainbow",
            "net-http",
            "ruby_parser",
        ] {
            assert!(r.check_library(ok).is_ok(), "{ok}");
        }
        for bad in [
            "-v",
            "a b",
            "apt:Ruby",
            "apt:",
            "x:",
            "x:-1",
            "--source=http://x",
        ] {
            assert!(r.check_library(bad).is_err(), "{bad}");
        }
        assert_eq!(r.run("main.rb").run.argv, ["ruby", "main.rb"]);
        let kernel = r.kernel().expect("a kernel");
        assert_eq!(
            (kernel.file, kernel.argv.as_slice()),
            ("sandpit-kernel.rb", &["ruby".to_string()][..])
        );
        assert!(kernel.script.contains("TOPLEVEL_BINDING"));
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
    }
}
