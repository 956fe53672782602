//! The languages Sandpit knows by name.

use std::fmt;
use std::str::FromStr;

/// A language with a runner. Runners for each live in their own crate; this enum only names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Language {
    /// Python 3 (Debian's).
    Python,
}

impl Language {
    /// Every language, in display order.
    pub const ALL: &'static [Language] = &[Language::Python];

    /// The canonical name used in the CLI, labels and image tags.
    pub fn name(self) -> &'static str {
        match self {
            Language::Python => "python",
        }
    }

    /// Names a user may type for this language, canonical name first.
    pub fn aliases(self) -> &'static [&'static str] {
        match self {
            Language::Python => &["python", "py", "python3"],
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
    }
}
