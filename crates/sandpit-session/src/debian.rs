//! Debian packages as libraries (C++ `-dev` packages, Ruby's `ruby-*`): one install step and
//! one name check that every runner shares.

use crate::runner::Command;

/// apt-get install, after one `apt-get update` per session (images keep no package lists).
const APT_INSTALL: &str = r#"export DEBIAN_FRONTEND=noninteractive
if ! ls /var/lib/apt/lists/ 2>/dev/null | grep -q '_Packages$'; then
  if ! apt-get update -qq; then
    echo "cannot install Debian package(s) $*: apt-get update failed; is a Debian mirror reachable from the sandbox?" >&2
    exit 1
  fi
fi
if ! apt-get install -y -qq --no-install-recommends "$@"; then
  echo "cannot install Debian package(s) $* with apt-get" >&2
  exit 1
fi
apt-get clean"#;

/// The root step that installs `packages` with apt-get.
pub fn apt_install<S: AsRef<str>>(packages: &[S]) -> Command {
    let mut argv: Vec<String> = ["/bin/sh", "-c", APT_INSTALL, "sandpit-apt"]
        .into_iter()
        .map(String::from)
        .collect();
    argv.extend(packages.iter().map(|p| p.as_ref().to_string()));
    Command::new(argv).as_root()
}

/// True for a Debian package name, optionally `=version`, as apt-get install accepts it.
pub fn is_package_name(spec: &str) -> bool {
    let (name, version) = match spec.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let name_ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '+' | '-' | '.'));
    let version_ok = version.is_none_or(|v| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~' | ':' | '-'))
    });
    name_ok && version_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_names() {
        assert!(is_package_name("nlohmann-json3-dev"));
        assert!(is_package_name("libfmt-dev=9.1.0+ds1-2"));
        assert!(is_package_name("ruby-rainbow"));
        assert!(!is_package_name("-o"));
        assert!(!is_package_name("Bad"));
        assert!(!is_package_name("a b"));
        assert!(!is_package_name("x="));
        let step = apt_install(&["libfmt-dev"]);
        assert_eq!(step.user, crate::runner::User::Root);
        assert_eq!(step.argv.last().map(String::as_str), Some("libfmt-dev"));
    }
}
