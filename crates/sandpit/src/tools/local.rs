//! The tools over sessions this process opens itself (no server).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use super::{
    CreateSessionArgs, ExecuteArgs, Executed, InstallPackagesArgs, ListFilesArgs, RunCodeArgs,
    RunCommandArgs, ToolError, ToolResult, Toolbox,
};
use crate::api::{Installed, RunResponse, SessionInfo, StepResponse};
use crate::{
    CommandOptions, Engine, ExecuteOptions, FileInfo, Language, LanguageExt, ListOptions,
    PackageSpec, RunOptions, SandboxSession, SessionBuilder,
};

struct Held {
    session: SandboxSession,
    language: Language,
    expires: SystemTime,
    last_used: SystemTime,
}

/// The tools over sessions this process opens itself on an engine (no server): the
/// session-level toolbox. Sessions close when their lifetime ends or after
/// [`LocalTools::idle_timeout`] without a call (both checked on every call), with
/// [`LocalTools::close_all`], or when the last handle of the toolbox is dropped.
#[derive(Clone)]
pub struct LocalTools {
    engine: Option<Engine>,
    configure: Arc<dyn Fn(SessionBuilder) -> SessionBuilder + Send + Sync>,
    lifetime: Duration,
    idle: Duration,
    sessions: Arc<Mutex<HashMap<String, Held>>>,
}

impl std::fmt::Debug for LocalTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTools")
            .field("sessions", &self.held().len())
            .finish()
    }
}

impl Default for LocalTools {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalTools {
    /// A toolbox that connects as the CLI does (`DOCKER_HOST`, ...), with sessions of the
    /// standard policy living at most 6 hours, and 30 minutes without a call.
    pub fn new() -> Self {
        LocalTools {
            engine: None,
            configure: Arc::new(|b| b),
            lifetime: Duration::from_secs(6 * 3600),
            idle: Duration::from_secs(30 * 60),
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Opens sessions on `engine`.
    pub fn engine(mut self, engine: Engine) -> Self {
        self.engine = Some(engine);
        self
    }

    /// Adjusts every builder before it opens (policy, CA certificates, image, ...).
    pub fn configure(
        mut self,
        f: impl Fn(SessionBuilder) -> SessionBuilder + Send + Sync + 'static,
    ) -> Self {
        self.configure = Arc::new(f);
        self
    }

    /// The default (and longest) lifetime of a session made by `create_session`.
    pub fn lifetime(mut self, lifetime: Duration) -> Self {
        self.lifetime = lifetime;
        self
    }

    /// How long a session may go without a call before it is closed.
    pub fn idle_timeout(mut self, idle: Duration) -> Self {
        self.idle = idle;
        self
    }

    /// Hands an open session to the toolbox (the model reaches it by its id); it is closed
    /// with the others.
    pub fn adopt(&self, session: SandboxSession) -> String {
        let id = session.id().to_string();
        let language = session.runner().language();
        let now = SystemTime::now();
        self.held().insert(
            id.clone(),
            Held {
                session,
                language,
                expires: now + self.lifetime,
                last_used: now,
            },
        );
        id
    }

    /// Closes every session the toolbox holds.
    pub async fn close_all(&self) {
        let all: Vec<SandboxSession> = self.held().drain().map(|(_, h)| h.session).collect();
        for s in all {
            let _ = s.close().await;
        }
    }

    fn held(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding the lock cannot leave the map half-changed: recover it.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn builder(&self, language: Language) -> SessionBuilder {
        let mut b = SandboxSession::builder().language(language);
        if let Some(e) = &self.engine {
            b = b.engine(e.clone());
        }
        (self.configure)(b)
    }

    /// Closes the sessions whose lifetime ended or that went too long without a call.
    async fn sweep(&self) {
        let now = SystemTime::now();
        let expired: Vec<SandboxSession> = {
            let mut held = self.held();
            let ids: Vec<String> = held
                .iter()
                .filter(|(_, h)| h.expires <= now || h.last_used + self.idle <= now)
                .map(|(k, _)| k.clone())
                .collect();
            ids.iter()
                .filter_map(|k| held.remove(k).map(|h| h.session))
                .collect()
        };
        for s in expired {
            let _ = s.close().await;
        }
    }

    /// The session `id` (after a sweep), its idle clock restarted.
    async fn session(&self, id: &str) -> ToolResult<(SandboxSession, Language)> {
        self.sweep().await;
        let now = SystemTime::now();
        let mut held = self.held();
        let h = held.get_mut(id).ok_or_else(|| {
            ToolError::new(
                "not_found",
                format!("session {id} does not exist (it expired, idled out or was closed): list_sessions shows the open ones, create_session opens a new one"),
            )
        })?;
        h.last_used = now;
        Ok((h.session.clone(), h.language))
    }

    fn info(&self, id: &str, h: &Held) -> SessionInfo {
        let s = &h.session;
        SessionInfo {
            id: id.to_string(),
            name: None,
            language: h.language.name().to_string(),
            image: s.image().to_string(),
            state: "running".into(),
            runtime: s.runtime().map(String::from),
            network: s.policy().network.mode(),
            created_at: crate::time::rfc3339(s.created()),
            expires_at: crate::time::rfc3339(h.expires),
            idle_timeout: self.idle.as_secs(),
            run_timeout: 60.0,
            last_used_at: crate::time::rfc3339(h.last_used),
            metadata: Default::default(),
            libraries: s.installed_libraries(),
            usage: None,
            restored: None,
            node: None,
        }
    }
}

fn language(name: &str) -> ToolResult<Language> {
    name.parse()
        .map_err(|e: crate::UnknownLanguage| ToolError::invalid(e.to_string()))
}

fn seconds(what: &str, secs: Option<f64>) -> ToolResult<Option<Duration>> {
    secs.map(|s| {
        if s > 0.0 && s.is_finite() && s <= 86_400.0 {
            Ok(Duration::from_secs_f64(s))
        } else {
            Err(ToolError::invalid(format!(
                "{what} {s}: give seconds between 0 and 86400"
            )))
        }
    })
    .transpose()
}

impl Toolbox for LocalTools {
    async fn run_code(&self, args: RunCodeArgs) -> ToolResult<RunResponse> {
        let lang = language(&args.language)?;
        let timeout = seconds("timeout", args.timeout)?;
        let session = self.builder(lang).late_installs(false).open().await?;
        let mut options = RunOptions::new()
            .libraries(args.libraries)
            .args(args.args)
            .capture_plots(true);
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        if let Some(stdin) = args.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let result = session.run_with(&args.code, options).await;
        let _ = session.close().await;
        Ok(result?.into())
    }

    async fn create_session(&self, args: CreateSessionArgs) -> ToolResult<SessionInfo> {
        let lang = language(&args.language)?;
        let lifetime = match args.lifetime {
            Some(0) => return Err(ToolError::invalid("lifetime must be at least 1 second")),
            Some(s) => Duration::from_secs(s).min(self.lifetime),
            None => self.lifetime,
        };
        let session = self
            .builder(lang)
            .libraries(args.libraries)
            .lifetime(lifetime)
            .open()
            .await?;
        let id = session.id().to_string();
        let now = SystemTime::now();
        let held = Held {
            session,
            language: lang,
            expires: now + lifetime,
            last_used: now,
        };
        let info = self.info(&id, &held);
        self.held().insert(id, held);
        Ok(info)
    }

    async fn execute(&self, args: ExecuteArgs) -> ToolResult<Executed> {
        let (session, lang) = self.session(&args.session_id).await?;
        let timeout = seconds("timeout", args.timeout)?;
        if crate::runner(lang).kernel().is_none() {
            let mut options = RunOptions::new();
            if let Some(t) = timeout {
                options = options.timeout(t);
            }
            return Ok(Executed::Program(
                session.run_with(&args.code, options).await?.into(),
            ));
        }
        let mut options = ExecuteOptions::new();
        if let Some(t) = timeout {
            options = options.timeout(t);
        }
        Ok(Executed::Kernel(
            session.execute_with(&args.code, options).await?.into(),
        ))
    }

    async fn run_command(&self, args: RunCommandArgs) -> ToolResult<StepResponse> {
        let (session, _) = self.session(&args.session_id).await?;
        let mut options = CommandOptions::new();
        if let Some(t) = seconds("timeout", args.timeout)? {
            options = options.timeout(t);
        }
        if let Some(stdin) = args.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        Ok(session
            .execute_command_with(&args.command, options)
            .await?
            .into())
    }

    async fn write_file(
        &self,
        session_id: &str,
        path: &str,
        data: Vec<u8>,
    ) -> ToolResult<FileInfo> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().write(path, &data, None).await?)
    }

    async fn file_info(&self, session_id: &str, path: &str) -> ToolResult<FileInfo> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().info(path).await?)
    }

    async fn read_file(&self, session_id: &str, path: &str) -> ToolResult<Vec<u8>> {
        let (session, _) = self.session(session_id).await?;
        Ok(session.files().read(path).await?)
    }

    async fn list_files(&self, args: ListFilesArgs) -> ToolResult<Vec<FileInfo>> {
        let (session, _) = self.session(&args.session_id).await?;
        let options = ListOptions {
            recursive: args.recursive.unwrap_or(false),
            pattern: args.pattern.clone(),
            ..ListOptions::default()
        };
        Ok(session
            .files()
            .list(args.path.as_deref().unwrap_or("."), &options)
            .await?)
    }

    async fn install_packages(&self, args: InstallPackagesArgs) -> ToolResult<Installed> {
        let (session, _) = self.session(&args.session_id).await?;
        let specs: Vec<PackageSpec> = args.packages.iter().map(PackageSpec::new).collect();
        Ok(Installed {
            installed: session.install_packages(&specs, false).await?,
        })
    }

    async fn list_sessions(&self) -> ToolResult<Vec<SessionInfo>> {
        self.sweep().await;
        let held = self.held();
        let mut out: Vec<SessionInfo> = held.iter().map(|(id, h)| self.info(id, h)).collect();
        out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
        Ok(out)
    }

    async fn close_session(&self, session_id: &str) -> ToolResult<()> {
        let held = self.held().remove(session_id);
        match held {
            Some(h) => Ok(h.session.close().await?),
            None => Err(ToolError::new(
                "not_found",
                format!("session {session_id} does not exist (it expired or was closed already)"),
            )),
        }
    }
}
