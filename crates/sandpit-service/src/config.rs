//! The server's settings: defaults, then a TOML file, then `SANDPIT_*` environment variables,
//! then command-line flags (applied by the caller).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::error::{ServiceError, ServiceResult};

mod cluster;
mod e2b;

pub use cluster::{etcd_endpoints, ClusterConfig, PeerTls};
pub use e2b::{E2bConfig, E2bTemplate};

/// Everything the service can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceConfig {
    /// Where the HTTP server listens.
    pub addr: String,
    /// Where keys and sessions are kept.
    pub data_dir: PathBuf,
    /// A session's lifetime when the request names none, in seconds (6 h, as Pandora Box).
    pub default_lifetime: u64,
    /// The longest lifetime a session may be given or extended to, in seconds.
    pub max_lifetime: u64,
    /// Idle time after which a session is closed, when the request names none, in seconds.
    pub default_idle_timeout: u64,
    /// Sessions one key may hold at once.
    pub sessions_per_key: usize,
    /// Runs, commands and executes one key may have going at once.
    pub concurrent_runs_per_key: usize,
    /// The largest request body, in bytes (413 past it).
    pub max_body_bytes: usize,
    /// Serve the compatibility routes (Piston, LLM Python Code Sandbox) without a key.
    pub allow_anonymous: bool,
    /// Sessions the anonymous owner may hold at once.
    pub anonymous_sessions: usize,
    /// Runs the anonymous owner may have going at once.
    pub anonymous_concurrent_runs: usize,
    /// Warm sessions kept ready per language for one-shot runs (`python = 2`).
    pub pool: std::collections::BTreeMap<String, usize>,
    /// Serve a key's one-shot run from a sandbox that served one of its earlier runs, reset by
    /// the sandbox's agent (never another key's); a request may still ask for a fresh one.
    pub recycle: bool,
    /// One-shot runs of one key that may wait for a run slot when all of them are busy;
    /// past it a run is refused with 429 and `Retry-After`.
    pub run_queue_length: usize,
    /// The longest a one-shot run waits for a run slot, in seconds (then 429 and `Retry-After`).
    pub run_queue_wait: f64,
    /// A PEM bundle of extra CA certificates for library installs (a TLS-intercepting proxy).
    pub ca_bundle: Option<PathBuf>,
    /// How often expired and idle sessions are looked for, in seconds.
    pub sweep_interval: u64,
    /// Where snapshots are stored (`file:///path`, `s3://bucket/prefix`).
    pub snapshots: Option<String>,
    /// Pause idle sessions instead of closing them (they still close at the end of their
    /// lifetime; paused time does not count).
    pub pause_when_idle: bool,
    /// The E2B compatibility layer (`[e2b]`).
    pub e2b: E2bConfig,
    /// Join a cluster (`[cluster]`): without it the server is a single server and never
    /// reaches a registry.
    pub cluster: Option<ClusterConfig>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            addr: "127.0.0.1:9501".into(),
            data_dir: default_data_dir(),
            default_lifetime: 6 * 3600,
            max_lifetime: 24 * 3600,
            default_idle_timeout: 30 * 60,
            sessions_per_key: 20,
            concurrent_runs_per_key: 8,
            max_body_bytes: 64 << 20,
            allow_anonymous: false,
            anonymous_sessions: 4,
            anonymous_concurrent_runs: 4,
            pool: [("python".to_string(), 2)].into_iter().collect(),
            recycle: true,
            run_queue_length: 256,
            run_queue_wait: 60.0,
            ca_bundle: None,
            sweep_interval: 5,
            snapshots: None,
            pause_when_idle: false,
            e2b: E2bConfig::default(),
            cluster: None,
        }
    }
}

/// `~/.local/share/sandpit`.
pub fn default_data_dir() -> PathBuf {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."))
        .join("sandpit")
}

impl ServiceConfig {
    /// Defaults, overlaid by the TOML file at `path` (when given), then by the environment.
    pub fn load(path: Option<&Path>) -> ServiceResult<Self> {
        let mut config = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    ServiceError::invalid(format!(
                        "cannot read the config file {}: {e}",
                        path.display()
                    ))
                })?;
                toml::from_str(&text).map_err(|e| {
                    ServiceError::invalid(format!(
                        "the config file {} is not valid: {e}",
                        path.display()
                    ))
                })?
            }
            None => ServiceConfig::default(),
        };
        config.apply_env(|k| std::env::var(k).ok())?;
        config.validate()?;
        Ok(config)
    }

    /// Applies `SANDPIT_*` variables read through `var`.
    pub fn apply_env(&mut self, var: impl Fn(&str) -> Option<String>) -> ServiceResult<()> {
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> ServiceResult<T> {
            v.trim()
                .parse()
                .map_err(|_| ServiceError::invalid(format!("{name}={v:?} is not a number")))
        }
        fn flag(name: &str, v: &str) -> ServiceResult<bool> {
            match v.trim() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" | "" => Ok(false),
                other => Err(ServiceError::invalid(format!(
                    "{name}={other:?}: use true or false"
                ))),
            }
        }
        if let Some(v) = var("SANDPIT_ADDR") {
            self.addr = v;
        }
        if let Some(v) = var("SANDPIT_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        let numbers: [(&str, &mut u64); 4] = [
            ("SANDPIT_DEFAULT_LIFETIME", &mut self.default_lifetime),
            ("SANDPIT_MAX_LIFETIME", &mut self.max_lifetime),
            ("SANDPIT_IDLE_TIMEOUT", &mut self.default_idle_timeout),
            ("SANDPIT_SWEEP_INTERVAL", &mut self.sweep_interval),
        ];
        for (name, field) in numbers {
            if let Some(v) = var(name) {
                *field = num(name, &v)?;
            }
        }
        let sizes: [(&str, &mut usize); 6] = [
            ("SANDPIT_SESSIONS_PER_KEY", &mut self.sessions_per_key),
            ("SANDPIT_RUN_QUEUE_LENGTH", &mut self.run_queue_length),
            ("SANDPIT_RUNS_PER_KEY", &mut self.concurrent_runs_per_key),
            ("SANDPIT_MAX_BODY_BYTES", &mut self.max_body_bytes),
            ("SANDPIT_ANONYMOUS_SESSIONS", &mut self.anonymous_sessions),
            (
                "SANDPIT_ANONYMOUS_RUNS",
                &mut self.anonymous_concurrent_runs,
            ),
        ];
        for (name, field) in sizes {
            if let Some(v) = var(name) {
                *field = num(name, &v)?;
            }
        }
        if let Some(v) = var("SANDPIT_ALLOW_ANONYMOUS") {
            self.allow_anonymous = flag("SANDPIT_ALLOW_ANONYMOUS", &v)?;
        }
        if let Some(v) = var("SANDPIT_RECYCLE") {
            self.recycle = flag("SANDPIT_RECYCLE", &v)?;
        }
        if let Some(v) = var("SANDPIT_RUN_QUEUE_WAIT") {
            self.run_queue_wait = num("SANDPIT_RUN_QUEUE_WAIT", &v)?;
        }
        if let Some(v) = var("SANDPIT_PAUSE_WHEN_IDLE") {
            self.pause_when_idle = flag("SANDPIT_PAUSE_WHEN_IDLE", &v)?;
        }
        if let Some(v) = var("SANDPIT_CA_BUNDLE").filter(|v| !v.is_empty()) {
            self.ca_bundle = Some(PathBuf::from(v));
        }
        if let Some(v) = var("SANDPIT_SNAPSHOTS").filter(|v| !v.is_empty()) {
            self.snapshots = Some(v);
        }
        self.e2b.apply_env(&var)?;
        if let Some(v) = var("SANDPIT_POOL") {
            // `python=2,javascript=1`
            self.pool.clear();
            for part in v.split(',').filter(|p| !p.trim().is_empty()) {
                let (lang, n) = part.split_once('=').ok_or_else(|| {
                    ServiceError::invalid(format!(
                        "SANDPIT_POOL part {part:?}: write language=count"
                    ))
                })?;
                self.pool
                    .insert(lang.trim().to_string(), num("SANDPIT_POOL", n)?);
            }
        }
        Ok(())
    }

    /// Refuses settings that cannot work.
    pub fn validate(&self) -> ServiceResult<()> {
        if self.default_lifetime == 0 || self.default_lifetime > self.max_lifetime {
            return Err(ServiceError::invalid(format!(
                "default_lifetime ({} s) must be between 1 s and max_lifetime ({} s)",
                self.default_lifetime, self.max_lifetime
            )));
        }
        if self.sessions_per_key == 0 || self.concurrent_runs_per_key == 0 {
            return Err(ServiceError::invalid(
                "sessions_per_key and concurrent_runs_per_key must be at least 1",
            ));
        }
        if !(0.0..=3600.0).contains(&self.run_queue_wait) {
            return Err(ServiceError::invalid(format!(
                "run_queue_wait ({} s) must be between 0 and 3600 seconds",
                self.run_queue_wait
            )));
        }
        if self.max_body_bytes < 1024 {
            return Err(ServiceError::invalid(
                "max_body_bytes must be at least 1024",
            ));
        }
        for lang in self.pool.keys() {
            lang.parse::<sandpit::Language>()
                .map_err(|e| ServiceError::invalid(format!("pool: {e}")))?;
        }
        if let Some(cluster) = &self.cluster {
            cluster.validate()?;
        }
        self.e2b.validate()
    }

    /// `default_lifetime` as a duration.
    pub fn lifetime(&self) -> Duration {
        Duration::from_secs(self.default_lifetime)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_then_the_environment_decide() {
        let mut c: ServiceConfig =
            toml::from_str("addr = \"0.0.0.0:1\"\nsessions_per_key = 3\n[pool]\nruby = 1\n")
                .unwrap();
        assert_eq!(c.addr, "0.0.0.0:1");
        assert_eq!(c.sessions_per_key, 3);
        assert_eq!(c.pool.get("ruby"), Some(&1));
        assert_eq!(c.default_lifetime, 6 * 3600, "defaults fill the rest");
        let env = |k: &str| match k {
            "SANDPIT_SESSIONS_PER_KEY" => Some("7".to_string()),
            "SANDPIT_ALLOW_ANONYMOUS" => Some("true".to_string()),
            "SANDPIT_POOL" => Some("python=1, go=0".to_string()),
            "SANDPIT_RECYCLE" => Some("false".to_string()),
            "SANDPIT_RUN_QUEUE_WAIT" => Some("2.5".to_string()),
            _ => None,
        };
        c.apply_env(env).unwrap();
        assert_eq!(c.sessions_per_key, 7);
        assert!(c.allow_anonymous);
        assert_eq!(c.pool.get("go"), Some(&0));
        assert!(!c.recycle);
        assert_eq!(c.run_queue_wait, 2.5);
        c.validate().unwrap();
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        assert!(
            toml::from_str::<ServiceConfig>("adr = 1").is_err(),
            "unknown keys refused"
        );
        let mut c = ServiceConfig::default();
        let err = c
            .apply_env(|k| (k == "SANDPIT_RUNS_PER_KEY").then(|| "many".to_string()))
            .unwrap_err();
        assert!(err.message.contains("SANDPIT_RUNS_PER_KEY"), "{err}");
        c.default_lifetime = c.max_lifetime + 1;
        assert!(c.validate().is_err());
        let mut c = ServiceConfig::default();
        c.pool.insert("cobol".into(), 1);
        assert!(c.validate().is_err());
    }

    #[test]
    fn a_cluster_section_names_etcd_the_node_and_its_address() {
        let c: ServiceConfig = toml::from_str(
            "[cluster]\netcd = \"etcd://10.0.0.2:2379,10.0.0.3:2379\"\nnode_name = \"n1\"\nadvertise = \"http://10.0.0.5:9501\"\n",
        )
        .unwrap();
        let cluster = c.cluster.clone().unwrap();
        assert_eq!(
            cluster.endpoints().unwrap(),
            ["http://10.0.0.2:2379", "http://10.0.0.3:2379"]
        );
        assert_eq!(cluster.lease_ttl, 5);
        c.validate().unwrap();
        for bad in ["etcd://", "etcd://host", "etcd://h:x", "etcd://h:1/path"] {
            assert!(etcd_endpoints(bad).is_err(), "{bad}");
        }
        let mut wrong = cluster.clone();
        wrong.advertise = "10.0.0.5:9501".into();
        assert!(wrong.validate().unwrap_err().message.contains("advertise"));
        let mut wrong = cluster;
        wrong.node_name = "a b".into();
        assert!(wrong.validate().is_err());
    }

    #[test]
    fn mtls_between_nodes_needs_an_https_advertise_and_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("x.pem");
        std::fs::write(&pem, "").unwrap();
        let text = format!(
            "[cluster]\netcd = \"etcd://10.0.0.2:2379\"\nnode_name = \"n1\"\nadvertise = \"https://10.0.0.5:9502\"\n\
             [cluster.tls]\naddr = \"10.0.0.5:9502\"\nca = {p:?}\ncert = {p:?}\nkey = {p:?}\n",
            p = pem
        );
        let c: ServiceConfig = toml::from_str(&text).unwrap();
        c.validate().unwrap();
        let cluster = c.cluster.unwrap();
        let mut wrong = cluster.clone();
        wrong.advertise = "http://10.0.0.5:9501".into();
        assert!(wrong.validate().unwrap_err().message.contains("https://"));
        let mut wrong = cluster;
        wrong.tls.as_mut().unwrap().key = dir.path().join("missing.pem");
        let message = wrong.validate().unwrap_err().message;
        assert!(message.contains("cluster.tls.key"), "{message}");
    }
}
