//! Shared helpers: engines under test, sessions, label checks, a TLS front for the engine,
//! the CLI binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use sandpit::{Connection, Engine, Language, LanguageExt, SandboxSession, SessionBuilder};

/// The CA bundle that lets containers reach package registries through the proxy here.
pub fn ca_bundle() -> Option<PathBuf> {
    std::env::var_os("SANDPIT_CA_BUNDLE")
        .map(PathBuf::from)
        .or_else(|| Some(PathBuf::from("/etc/ssl/certs/ca-certificates.crt")))
        .filter(|p| p.is_file())
}

/// Sandpit's own log on stderr when `SANDPIT_TEST_LOG` holds a filter (`sandpit=debug`): what
/// a failure under load needs to be understood.
pub fn init_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(filter) = std::env::var("SANDPIT_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    });
}

/// The local engine, with a readable failure when none runs.
pub async fn engine() -> Engine {
    init_log();
    sandpit::connect_env()
        .await
        .unwrap_or_else(|e| panic!("no Docker engine: {e}. Run the tests with scripts/test.sh"))
}

/// An engine and runtime the parametrised tests run against.
#[derive(Clone, Debug)]
pub struct Target {
    /// `docker`, `gvisor` or `podman`.
    pub name: &'static str,
    pub engine: Engine,
    /// The OCI runtime to ask for (`runsc` for gVisor).
    pub runtime: Option<String>,
}

impl Target {
    /// A session builder for `language` on this target.
    pub fn builder(&self, language: Language) -> SessionBuilder {
        let b = SandboxSession::builder()
            .language(language)
            .engine(self.engine.clone());
        match &self.runtime {
            Some(r) => b.runtime(r.clone()),
            None => b,
        }
    }

    /// True under gVisor, where a network cannot be attached while a sandbox runs.
    pub fn is_gvisor(&self) -> bool {
        self.name == "gvisor"
    }

    /// `sandpit run` pointed at this target (`--host`, and `--runtime` after `run`), then
    /// `rest`.
    pub fn run_args(&self, rest: &[&str]) -> Vec<String> {
        let mut args = vec![
            "--host".to_string(),
            self.engine.endpoint().to_string(),
            "run".into(),
        ];
        if let Some(r) = &self.runtime {
            args.extend(["--runtime".to_string(), r.clone()]);
        }
        args.extend(rest.iter().map(|a| a.to_string()));
        args
    }
}

/// Environment variables naming the other engines (`scripts/test.sh` sets them).
pub const PODMAN_ENV: &str = "SANDPIT_PODMAN_HOST";

/// The target named `name`. A target that is not configured fails the test with what to do,
/// unless `SANDPIT_SKIP_<NAME>=1` says it was left out on purpose (then `None`).
pub async fn target(name: &'static str) -> Option<Target> {
    init_log();
    let skip =
        std::env::var(format!("SANDPIT_SKIP_{}", name.to_uppercase())).is_ok_and(|v| v == "1");
    if skip {
        eprintln!("skipped on {name}: SANDPIT_SKIP_{}=1", name.to_uppercase());
        return None;
    }
    match name {
        "docker" => Some(Target {
            name,
            engine: engine().await,
            runtime: None,
        }),
        "gvisor" => {
            let engine = engine().await;
            let info = engine.info().await.expect("engine info");
            assert!(
                info.runtime("runsc").is_some(),
                "the Docker engine offers no runsc runtime: scripts/test.sh registers gVisor (or set SANDPIT_SKIP_GVISOR=1)"
            );
            Some(Target {
                name,
                engine,
                runtime: Some("runsc".into()),
            })
        }
        "podman" => {
            let host = std::env::var(PODMAN_ENV).unwrap_or_else(|_| {
                panic!("{PODMAN_ENV} is not set: scripts/test.sh starts Podman's service and sets it (or set SANDPIT_SKIP_PODMAN=1)")
            });
            // Podman holds its version and info answers while an exec starts in a sandbox
            // whose process limit is full (another test's fork bomb): seen up to 60 s.
            let connection = Connection::from_parts(Some(&host), false, None)
                .expect("podman host")
                .connect_timeout(std::time::Duration::from_secs(180));
            let engine = sandpit::connect(&connection)
                .await
                .unwrap_or_else(|e| panic!("Podman at {host}: {e}"));
            Some(Target {
                name,
                engine,
                runtime: None,
            })
        }
        other => panic!("unknown target {other}"),
    }
}

/// Defines one test per engine target from one body: `per_target!(name, [docker, podman],
/// |t: Target| async move { ... })` makes `name::docker` and `name::podman`.
#[macro_export]
macro_rules! per_target {
    ($name:ident, [$($target:ident),+], $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread")]
                async fn $target() {
                    if let Some(t) = $crate::support::target(stringify!($target)).await {
                        let body = $body;
                        body(t).await;
                    }
                }
            )+
        }
    };
}

/// A Python session builder on the local engine.
pub async fn python() -> SessionBuilder {
    SandboxSession::builder()
        .language(Language::Python)
        .engine(engine().await)
}

/// Containers (running or not) carrying `sandpit.session=<id>`.
pub async fn containers_of(engine: &Engine, session_id: &str) -> usize {
    engine
        .list_containers(&format!("sandpit.session={session_id}"))
        .await
        .expect("list containers")
        .len()
}

/// True when the engine has `image`.
pub async fn image_exists(engine: &Engine, image: &str) -> bool {
    sandpit::image::image_exists(engine, image)
        .await
        .expect("inspect image")
}

/// The `sandpit` binary built next to this test binary.
pub fn sandpit_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    let bin = dir.join("sandpit");
    assert!(
        bin.is_file(),
        "{} is missing: build it first (cargo build -p sandpit-cli, or scripts/test.sh)",
        bin.display()
    );
    bin
}

/// Runs the CLI with `args`, feeding `stdin`; returns (exit code, stdout, stderr).
pub fn sandpit_cli(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut cmd = Command::new(sandpit_bin());
    cmd.args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn sandpit");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let out = child.wait_with_output().expect("wait sandpit");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The local engine served over TLS on 127.0.0.1 with a CA, server and client certificates
/// made for this run: a rustls terminator that verifies the client certificate and forwards
/// to the engine's socket, so the client side is exactly what a remote TLS engine sees.
pub struct TlsEngine {
    pub dir: tempfile::TempDir,
    pub addr: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsEngine {
    pub fn start() -> TlsEngine {
        let dir = tempfile::tempdir().expect("tempdir");
        let d = dir.path();
        make_ca(d, "ca");
        sign(
            d,
            "ca",
            "server",
            "/CN=127.0.0.1",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        );
        sign(
            d,
            "ca",
            "client",
            "/CN=sandpit-client",
            "extendedKeyUsage=clientAuth\n",
        );
        // The docker CLI's names for the client side.
        std::fs::copy(d.join("client.pem"), d.join("cert.pem")).unwrap();
        std::fs::copy(d.join("client-key.pem"), d.join("key.pem")).unwrap();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().unwrap().to_string();
        let (stop, thread) = serve_tls(listener, server_config(d));
        TlsEngine {
            dir,
            addr,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Takes the engine out of reach: stops accepting and cuts the connections open through
    /// the front (the engine itself keeps running).
    pub fn go_away(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Brings the engine back on the same address after [`TlsEngine::go_away`].
    pub fn come_back(&mut self) {
        if self.thread.is_some() {
            return;
        }
        let listener = std::net::TcpListener::bind(&self.addr)
            .unwrap_or_else(|e| panic!("binding {} again: {e}", self.addr));
        let (stop, thread) = serve_tls(listener, server_config(self.dir.path()));
        self.stop = Some(stop);
        self.thread = Some(thread);
    }

    pub fn connection(&self) -> Connection {
        let d = self.dir.path();
        Connection::tls(
            &self.addr,
            d.join("ca.pem"),
            d.join("cert.pem"),
            d.join("key.pem"),
        )
    }

    /// A CA that did not sign the engine's certificate.
    pub fn other_ca(&self) -> PathBuf {
        make_ca(self.dir.path(), "other-ca");
        self.dir.path().join("other-ca.pem")
    }
}

impl Drop for TlsEngine {
    fn drop(&mut self) {
        self.go_away();
    }
}

/// Serves the TLS front on `listener` in a thread of its own until the sender fires; the
/// connections it forwards end with it.
fn serve_tls(
    listener: std::net::TcpListener,
    config: std::sync::Arc<rustls::ServerConfig>,
) -> (
    tokio::sync::oneshot::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    listener.set_nonblocking(true).unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            let acceptor = tokio_rustls::TlsAcceptor::from(config);
            loop {
                let (tcp, _) = tokio::select! {
                    _ = &mut stopped => break,
                    conn = listener.accept() => match conn { Ok(c) => c, Err(_) => continue },
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let Ok(mut unix) =
                        tokio::net::UnixStream::connect("/var/run/docker.sock").await
                    else {
                        return;
                    };
                    let _ = tokio::io::copy_bidirectional(&mut tls, &mut unix).await;
                });
            }
        });
    });
    (stop, thread)
}

fn server_config(d: &Path) -> std::sync::Arc<rustls::ServerConfig> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(d.join("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(d.join("server-key.pem")).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in CertificateDer::pem_file_iter(d.join("ca.pem")).unwrap() {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        std::sync::Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .unwrap();
    std::sync::Arc::new(config)
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed for the TLS tests");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.pem"),
            "-subj",
            &format!("/CN=sandpit test {name}"),
        ],
    );
}

fn sign(dir: &Path, ca: &str, name: &str, subject: &str, ext: &str) {
    std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}-key.pem"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            subject,
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}-key.pem"),
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            &format!("{name}.pem"),
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
}
