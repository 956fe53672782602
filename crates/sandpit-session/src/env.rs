//! The session's environment: set, read and unset variables; later runs, commands and kernel
//! calls see the change (the kernel gets the environment with each request).

use std::collections::BTreeMap;

use crate::error::{Error, Result};
use crate::session::SandboxSession;

/// Checks a variable's name: not empty, no `=`, no NUL.
pub(crate) fn check_name(key: &str) -> Result<()> {
    if key.is_empty() || key.contains('=') || key.contains('\0') {
        return Err(Error::InvalidInput(format!(
            "{key:?} is not an environment variable name (it must be non-empty, without = or NUL)"
        )));
    }
    Ok(())
}

impl SandboxSession {
    /// The session's environment variables (those given when it opened and set since).
    pub fn env_vars(&self) -> BTreeMap<String, String> {
        self.env_now().into_iter().collect()
    }

    /// Sets one variable for everything that runs from now on.
    pub fn set_env(&self, key: &str, value: &str) -> Result<()> {
        check_name(key)?;
        if value.contains('\0') {
            return Err(Error::InvalidInput(format!(
                "the value of {key} holds a NUL byte"
            )));
        }
        let mut env = self.inner.env.write().expect("session env");
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
        Ok(())
    }

    /// Removes one variable; true when it was set.
    pub fn unset_env(&self, key: &str) -> bool {
        let mut env = self.inner.env.write().expect("session env");
        let before = env.len();
        env.retain(|(k, _)| k != key);
        env.len() != before
    }

    /// Replaces the whole environment.
    pub fn replace_env(&self, vars: BTreeMap<String, String>) -> Result<()> {
        for (key, value) in &vars {
            check_name(key)?;
            if value.contains('\0') {
                return Err(Error::InvalidInput(format!(
                    "the value of {key} holds a NUL byte"
                )));
            }
        }
        *self.inner.env.write().expect("session env") = vars.into_iter().collect();
        Ok(())
    }
}
