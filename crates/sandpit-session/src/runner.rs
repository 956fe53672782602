//! The `Runner` trait: what one language needs, with no knowledge of Docker.

use crate::language::Language;

/// Who runs a command inside the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum User {
    /// The unprivileged sandbox user (uid 1000) that runs user code.
    Sandbox,
    /// root, for setup steps such as system package installs.
    Root,
}

/// One command to run in the container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Program and arguments, run without a shell.
    pub argv: Vec<String>,
    /// Who runs it.
    pub user: User,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Command {
    /// A command run by the sandbox user.
    pub fn new<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            argv: argv.into_iter().map(Into::into).collect(),
            user: User::Sandbox,
            env: Vec::new(),
        }
    }

    /// The same command run as root.
    pub fn as_root(mut self) -> Self {
        self.user = User::Root;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The command as one line, for messages.
    pub fn display(&self) -> String {
        self.argv.join(" ")
    }
}

/// A language's default image: its tag and the Dockerfile it is built from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageSpec {
    /// The tag, `sandpit/<language>:latest`.
    pub tag: String,
    /// The Dockerfile's text (built with an otherwise empty context).
    pub dockerfile: &'static str,
}

/// What running one source file takes: compile steps (maybe none), then the run step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// Steps before the run; a failing step is a compile failure and skips the run.
    pub compile: Vec<Command>,
    /// The program itself; the caller's arguments are appended to it.
    pub run: Command,
}

/// Checks one package spec handed to an installer as its own argument: not empty, not an
/// option (`option` names the installer's, e.g. "a pip option"), no whitespace. `hint` says what
/// to pass instead and `unit` what one entry is, for the messages.
pub fn check_package_spec(
    library: &str,
    option: &str,
    hint: &str,
    unit: &str,
) -> Result<(), String> {
    let lib = library.trim();
    if lib.is_empty() {
        return Err("a library name is empty".into());
    }
    if lib.starts_with('-') {
        return Err(format!("library {lib:?} looks like {option}; pass {hint}"));
    }
    if lib.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "library {lib:?} contains whitespace; pass one {unit} per entry"
        ));
    }
    Ok(())
}

/// A language's stateful kernel: a script that keeps state between requests (see the
/// session's `execute`). It reads one JSON request per line on stdin (`{"code": ...}`) and
/// writes JSON frames, one per line, on stdout: `ready` (with its `pid`), then per request any
/// `stream` (`name`, `text`), `result` (`data`: a mime bundle) and `error` (`name`, `value`,
/// `traceback`) frames, and last `done`. It stops the running request on SIGINT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelSpec {
    /// The script's text.
    pub script: &'static str,
    /// Its file name (written to /tmp).
    pub file: &'static str,
    /// The interpreter command; the script's path is appended.
    pub argv: Vec<String>,
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Package {
    /// Its name, as the package manager writes it.
    pub name: String,
    /// Its version, where the package manager says.
    pub version: Option<String>,
}

/// One language: files, commands, libraries. Implementations plug into [`crate::SandboxSession`].
pub trait Runner: Send + Sync + std::fmt::Debug {
    /// The language.
    fn language(&self) -> Language;

    /// The default image for this language.
    fn default_image(&self) -> ImageSpec;

    /// The file name the code is saved under, relative to the workdir (e.g. `main.py`).
    fn source_file(&self, code: &str) -> String;

    /// Commands run once when a session opens (may be empty).
    fn setup(&self) -> Vec<Command> {
        Vec::new()
    }

    /// Checks one library name before anything runs; the message says what is wrong.
    fn check_library(&self, library: &str) -> Result<(), String> {
        if library.trim().is_empty() {
            return Err("a library name is empty".into());
        }
        if library.starts_with('-') {
            return Err(format!(
                "library {library:?} looks like an option; pass package names only"
            ));
        }
        Ok(())
    }

    /// Commands that install the given libraries (never empty input).
    fn install(&self, libraries: &[String]) -> Vec<Command>;

    /// How to compile (where needed) and run the saved source file.
    fn run(&self, source: &str) -> RunPlan;

    /// Like [`Runner::run`], but the program also saves the figures it leaves open as PNG files in
    /// the folder `$SANDPIT_ARTIFACTS` when it exits. `None` for languages without plots.
    fn run_capturing_plots(&self, _source: &str) -> Option<RunPlan> {
        None
    }

    /// The stateful kernel, for languages that have one.
    fn kernel(&self) -> Option<KernelSpec> {
        None
    }

    /// `name` pinned to `version`, as [`Runner::install`] takes it (pip's `name==1.0`,
    /// npm's `name@1.0`, ...).
    fn package_spec(&self, name: &str, version: &str) -> String {
        format!("{name}=={version}")
    }

    /// Commands that install or upgrade to the newest version; `None` where the installer has
    /// no such mode.
    fn upgrade(&self, _libraries: &[String]) -> Option<Vec<Command>> {
        None
    }

    /// Commands that remove installed packages; `None` where the language cannot.
    fn uninstall(&self, _names: &[String]) -> Option<Vec<Command>> {
        None
    }

    /// A command listing installed packages (parsed by [`Runner::parse_packages`]); `None`
    /// where only the session's own installs are known.
    fn list_packages(&self) -> Option<Command> {
        None
    }

    /// The packages in [`Runner::list_packages`]'s output.
    fn parse_packages(&self, _output: &str) -> Vec<Package> {
        Vec::new()
    }

    /// A command that installs a requirements file given on its standard input; `None` where
    /// the ecosystem has no such file.
    fn requirements(&self) -> Option<Command> {
        None
    }
}
