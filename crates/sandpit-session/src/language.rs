//! The languages Sandpit knows by name.

use std::fmt;
use std::str::FromStr;

/// A language with a runner. Runners for each live in their own crate; this enum only names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// Python 3 (Debian's).
    Python,
    /// Java 17 (Debian's OpenJDK), with the single-file source launcher's semantics.
    Java,
    /// JavaScript on Node.js (Debian's): CommonJS, or ES modules when the code uses them.
    JavaScript,
    /// C++17 compiled with Debian's g++.
    Cpp,
    /// Go (Debian's), built in a module in the workdir.
    Go,
    /// Ruby (Debian's).
    Ruby,
}

impl Language {
    /// Every language, in display order.
    pub const ALL: &'static [Language] = &[
        Language::Python,
        Language::Java,
        Language::JavaScript,
        Language::Cpp,
        Language::Go,
        Language::Ruby,
    ];

    /// The canonical name used in the CLI, labels and image tags.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
            Language::Java => "java",
            Language::JavaScript => "javascript",
            Language::Cpp => "cpp",
            Language::Go => "go",
            Language::Ruby => "ruby",
        }
    }

    /// Names a user may type for this language, canonical name first.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["python", "py", "python3"],
            Language::Java => &["java"],
            Language::JavaScript => &["javascript", "js", "node", "nodejs"],
            Language::Cpp => &["cpp", "c++", "g++", "cxx"],
            Language::Go => &["go", "golang"],
            Language::Ruby => &["ruby", "rb"],
        }
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The error for a language name Sandpit does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown language {0:?}: choose one of {names}", names = Language::ALL.iter().map(|l| l.name()).collect::<Vec<_>>().join(", "))]
pub struct UnknownLanguage(pub String);

impl FromStr for Language {
    type Err = UnknownLanguage;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Language::ALL
            .iter()
            .copied()
            .find(|l| l.aliases().contains(&wanted.as_str()))
            .ok_or_else(|| UnknownLanguage(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_aliases() {
        assert_eq!("python".parse::<Language>().unwrap(), Language::Python);
        assert_eq!(" PY ".parse::<Language>().unwrap(), Language::Python);
        let err = "cobol".parse::<Language>().unwrap_err();
        assert!(err.to_string().contains("python"), "{err}");
        assert!(err.to_string().contains("ruby"), "{err}");
    }

    #[test]
    fn every_alias_a_user_would_type_parses() {
        let cases = [
            ("py", Language::Python),
            ("java", Language::Java),
            ("js", Language::JavaScript),
            ("node", Language::JavaScript),
            ("JavaScript", Language::JavaScript),
            ("c++", Language::Cpp),
            ("g++", Language::Cpp),
            ("cpp", Language::Cpp),
            ("golang", Language::Go),
            ("go", Language::Go),
            ("rb", Language::Ruby),
            ("ruby", Language::Ruby),
        ];
        for (name, language) in cases {
            assert_eq!(name.parse::<Language>().unwrap(), language, "{name}");
        }
    }

    #[test]
    fn names_are_the_first_alias_and_aliases_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for language in Language::ALL {
            assert_eq!(language.aliases()[0], language.name());
            assert_eq!(language.name().parse::<Language>().unwrap(), *language);
            for alias in language.aliases() {
                assert!(seen.insert(*alias), "alias {alias} is used twice");
                assert_eq!(alias.to_ascii_lowercase(), *alias);
            }
        }
    }
}
