//! Sandpit: run untrusted code (most often code an LLM just wrote) in Docker sandboxes.
//!
//! ```no_run
//! use sandpit::{Language, LanguageExt, SandboxSession};
//!
//! # async fn demo() -> sandpit::Result<()> {
//! let session = SandboxSession::builder().language(Language::Python).open().await?;
//! let out = session.run("print(6 * 7)", &[]).await?;
//! assert_eq!(out.stdout, "42\n");
//! session.close().await?;
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

use std::sync::Arc;

pub mod api;
pub mod tools;

pub use sandpit_session::*;

pub use sandpit_cpp::CppRunner;
pub use sandpit_go::GoRunner;
pub use sandpit_java::JavaRunner;
pub use sandpit_javascript::JavaScriptRunner;
pub use sandpit_python::PythonRunner;
pub use sandpit_ruby::RubyRunner;

/// The runner for a language.
pub fn runner(language: Language) -> Arc<dyn Runner> {
    match language {
        Language::Python => Arc::new(PythonRunner),
        Language::Java => Arc::new(JavaRunner),
        Language::JavaScript => Arc::new(JavaScriptRunner),
        Language::Cpp => Arc::new(CppRunner),
        Language::Go => Arc::new(GoRunner),
        Language::Ruby => Arc::new(RubyRunner),
    }
}

/// Carries on with session `id`, opened by another process (a server before its restart) on
/// `engine`; see [`SandboxSession::adopt`].
pub async fn adopt(engine: &Engine, id: &str) -> Result<SandboxSession> {
    SandboxSession::adopt(engine, id, &runner).await
}

/// Choosing a runner by [`Language`] on the session builder.
pub trait LanguageExt {
    /// Sets the runner for `language`.
    fn language(self, language: Language) -> Self;
}

impl LanguageExt for SessionBuilder {
    fn language(self, language: Language) -> Self {
        self.runner(runner(language))
    }
}

/// Everything a typical user needs, in one import.
pub mod prelude {
    pub use crate::{
        with_session, Connection, Language, LanguageExt, RunOptions, SandboxSession, SessionBuilder,
    };
}
