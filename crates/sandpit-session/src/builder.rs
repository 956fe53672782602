//! Configuring a session before it opens.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use sandpit_engine::{Connection, Engine, Progress};

use crate::policy::{Network, RuntimeChoice, SecurityPolicy};
use crate::runner::Runner;

/// Settings for [`crate::SandboxSession`]; `open()` creates the container.
#[derive(Clone)]
pub struct SessionBuilder {
    pub(crate) runner: Option<Arc<dyn Runner>>,
    pub(crate) image: Option<String>,
    pub(crate) dockerfile: Option<PathBuf>,
    pub(crate) keep_template: bool,
    pub(crate) template_tag: Option<String>,
    pub(crate) workdir: String,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) extra_ca: Option<PathBuf>,
    pub(crate) connection: Option<Connection>,
    pub(crate) engine: Option<Engine>,
    pub(crate) timeout: Duration,
    pub(crate) install_timeout: Duration,
    pub(crate) output_limit: usize,
    pub(crate) policy: SecurityPolicy,
    pub(crate) lifetime: Duration,
    pub(crate) progress: Option<Progress>,
    pub(crate) libraries: Vec<String>,
    pub(crate) late_installs: bool,
    pub(crate) labels: Vec<(String, String)>,
    pub(crate) tied_to_process: bool,
    pub(crate) recyclable: bool,
}

impl Default for SessionBuilder {
    fn default() -> Self {
        SessionBuilder {
            runner: None,
            image: None,
            dockerfile: None,
            keep_template: false,
            template_tag: None,
            workdir: "/sandbox".into(),
            env: Vec::new(),
            extra_ca: None,
            connection: None,
            engine: None,
            timeout: Duration::from_secs(60),
            install_timeout: Duration::from_secs(600),
            output_limit: 1024 * 1024,
            policy: SecurityPolicy::standard(),
            lifetime: Duration::from_secs(24 * 3600),
            progress: None,
            libraries: Vec::new(),
            late_installs: true,
            labels: Vec::new(),
            tied_to_process: true,
            recyclable: false,
        }
    }
}

impl std::fmt::Debug for SessionBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionBuilder")
            .field("runner", &self.runner)
            .field("image", &self.image)
            .field("dockerfile", &self.dockerfile)
            .field("keep_template", &self.keep_template)
            .field("template_tag", &self.template_tag)
            .field("workdir", &self.workdir)
            .field("timeout", &self.timeout)
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl SessionBuilder {
    /// A builder with defaults: local engine, 60 s timeout, 1 MiB output cap per stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// The language runner (required). The facade crate's `language()` sets it from a `Language`.
    pub fn runner(mut self, runner: Arc<dyn Runner>) -> Self {
        self.runner = Some(runner);
        self
    }

    /// Use this image instead of the language's default (local, else pulled).
    pub fn image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    /// Build the image from this Dockerfile; its folder is the build context.
    /// The image is removed at close unless `keep_template` is set.
    pub fn dockerfile(mut self, path: impl Into<PathBuf>) -> Self {
        self.dockerfile = Some(path.into());
        self
    }

    /// At close, commit the container's state (files, installed libraries) to the template image.
    pub fn keep_template(mut self, keep: bool) -> Self {
        self.keep_template = keep;
        self
    }

    /// The tag to commit to with `keep_template` (default: the session's image tag).
    pub fn template_tag(mut self, tag: impl Into<String>) -> Self {
        self.template_tag = Some(tag.into());
        self
    }

    /// The folder code runs in (default `/sandbox`); created for the sandbox user if missing.
    pub fn workdir(mut self, dir: impl Into<String>) -> Self {
        self.workdir = dir.into();
        self
    }

    /// An environment variable for everything run in the session.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// A PEM file of extra CA certificates (e.g. a TLS-intercepting proxy's), copied into the
    /// container and wired for pip, Python's ssl/requests and Node.
    pub fn extra_ca_certificates(mut self, pem: impl Into<PathBuf>) -> Self {
        self.extra_ca = Some(pem.into());
        self
    }

    /// Connect this way instead of the environment's `DOCKER_HOST`.
    pub fn connection(mut self, connection: Connection) -> Self {
        self.connection = Some(connection);
        self
    }

    /// Reuse an already connected engine (saves a round trip per session).
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Default timeout of each run and command (default 60 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Timeout of a library install (default 600 s).
    pub fn install_timeout(mut self, timeout: Duration) -> Self {
        self.install_timeout = timeout;
        self
    }

    /// Bytes kept of stdout and of stderr each (default 1 MiB); the rest is dropped.
    pub fn output_limit(mut self, bytes: usize) -> Self {
        self.output_limit = bytes;
        self
    }

    /// The whole security policy (default [`SecurityPolicy::standard`]).
    pub fn policy(mut self, policy: SecurityPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// Memory limit in bytes (no extra swap; default 512 MiB).
    pub fn memory(mut self, bytes: u64) -> Self {
        self.policy.memory = bytes;
        self
    }

    /// The network user code sees (default none; installs get the bridge only while they run).
    pub fn network(mut self, network: Network) -> Self {
        self.policy.network = network;
        self
    }

    /// CPUs the session may use (default 1).
    pub fn cpus(mut self, cpus: f64) -> Self {
        self.policy.cpus = cpus;
        self
    }

    /// Most processes at once (default 256).
    pub fn max_processes(mut self, max: i64) -> Self {
        self.policy.max_processes = max;
        self
    }

    /// Bytes code may write in the workdir (default 1 GiB); past it, ENOSPC.
    pub fn disk(mut self, bytes: u64) -> Self {
        self.policy.disk = bytes;
        self
    }

    /// How long the container may live before any Sandpit process may remove it (default 24 h).
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// The OCI runtime the engine should run the container under, e.g. `runsc` for gVisor.
    /// Opening fails with the list of runtimes when the engine does not offer it.
    pub fn runtime(mut self, name: impl Into<String>) -> Self {
        self.policy.runtime = RuntimeChoice::Named(name.into());
        self
    }

    /// Libraries installed while the session opens, before any code runs. Under a runtime that
    /// cannot attach a network later (gVisor), this is the way to have libraries: they are
    /// installed into an image the session then starts from.
    pub fn libraries<I, S>(mut self, libraries: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.libraries = libraries.into_iter().map(Into::into).collect();
        self
    }

    /// Whether libraries may be installed after the session opened (default true). False lets a
    /// session without network skip the network it would need for that, which makes opening
    /// faster; a later install is then refused.
    pub fn late_installs(mut self, allowed: bool) -> Self {
        self.late_installs = allowed;
        self
    }

    /// Builds the sandbox to be reset and used again ([`crate::SandboxSession::reset`]): a
    /// read-only root filesystem, and memory folders (the workdir among them, at most half the
    /// memory limit) as the only places code can write, so that a reset that empties them and
    /// stops every process leaves nothing of the code behind. Libraries given at open go into
    /// an image first; later installs are refused (default false).
    pub fn recyclable(mut self, recyclable: bool) -> Self {
        self.recyclable = recyclable;
        if recyclable {
            self.late_installs = false;
        }
        self
    }

    /// A label of the caller's on the container, as `sandpit.meta.KEY`.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.push((key.into(), value.into()));
        self
    }

    /// Whether `gc` may remove the container once this process is gone (default true). A server
    /// whose sessions outlive a restart turns this off; they then expire only by their lifetime.
    pub fn tied_to_process(mut self, tied: bool) -> Self {
        self.tied_to_process = tied;
        self
    }

    /// Receives image build progress, line by line, when an image has to be built.
    pub fn on_progress(mut self, progress: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.progress = Some(Arc::new(progress));
        self
    }
}

/// Parses sizes like `512m`, `1g`, `1048576`.
pub fn parse_size(text: &str) -> Result<i64, String> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let n: f64 = num.trim().parse().map_err(|_| {
        format!("cannot read size {text:?}: use a number with k, m or g, e.g. 512m")
    })?;
    if n <= 0.0 {
        return Err(format!("size {text:?} must be positive"));
    }
    Ok((n * mult as f64) as i64)
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("lots").is_err());
        assert!(parse_size("-1m").is_err());
    }
}
