//! The server-level toolbox: the tools over the session manager, for one owner (a key's id,
//! or the stdio server's local owner). Sessions made here are the manager's: they count
//! against the key's limits, expire and idle out like every other session, and show in the
//! HTTP API.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use sandpit::api::{ExecuteResponse, Installed, RunResponse, SessionInfo, StepResponse};
use sandpit::tools::{
    CreateSessionArgs, ExecuteArgs, Executed, InstallPackagesArgs, ListFilesArgs, RunCodeArgs,
    RunCommandArgs, SnapshotSummary, ToolError, ToolResult, Toolbox,
};
use sandpit::{
    CommandOptions, ExecuteOptions, FileInfo, Language, ListOptions, PackageSpec, RunOptions,
};
use sandpit_service::{seconds, Entry, ErrorKind, Manager, Owner, Program, ServiceError, Subject};

use crate::links::Signer;

/// Where download links point: the server's address as the client reached it, and the
/// signer.
#[derive(Debug, Clone)]
pub struct Links {
    /// `http://host:port`, without a trailing slash.
    pub base_url: String,
    /// Signs the tokens.
    pub signer: Arc<Signer>,
}

/// The tools over `manager`, acting for `owner`.
#[derive(Debug, Clone)]
pub struct ServerTools {
    manager: Manager,
    owner: Owner,
    links: Option<Links>,
}

impl ServerTools {
    /// The toolbox of `owner`; without `links`, files come back attached instead of linked.
    pub fn new(manager: Manager, owner: Owner, links: Option<Links>) -> Self {
        ServerTools {
            manager,
            owner,
            links,
        }
    }

    /// The owner it acts for.
    pub fn owner(&self) -> &Owner {
        &self.owner
    }

    /// The manager it drives.
    pub fn manager(&self) -> &Manager {
        &self.manager
    }

    fn entry(&self, id: &str) -> ToolResult<Arc<Entry>> {
        self.manager.get(&self.owner, id).map_err(tool_error)
    }

    /// Runs `op` on the session `id` held busy (counted against the key's concurrent runs),
    /// mapping a failure (and forgetting a session whose container is gone).
    async fn with_session<T, F, Fut>(&self, id: &str, op: F) -> ToolResult<T>
    where
        F: FnOnce(sandpit::SandboxSession) -> Fut,
        Fut: std::future::Future<Output = sandpit::Result<T>>,
    {
        let busy = self
            .manager
            .busy(&self.owner, id)
            .await
            .map_err(tool_error)?;
        let entry = self.entry(id)?;
        let result = op(busy.session().clone()).await;
        drop(busy);
        match result {
            Ok(v) => Ok(v),
            Err(e) => Err(tool_error(self.manager.failed(&entry, e).await)),
        }
    }
}

/// A service error as a tool error, with a hint where the model can do something about it.
pub fn tool_error(e: ServiceError) -> ToolError {
    let hint = match e.kind {
        ErrorKind::NotFound if e.subject == Some(Subject::Session) => {
            "; list_sessions shows the open ones, create_session opens a new one"
        }
        ErrorKind::Gone => "; create_session opens a new one",
        ErrorKind::EngineUnavailable => "; try again in a little while",
        _ => "",
    };
    ToolError::new(e.kind.as_str(), format!("{}{hint}", e.message))
}

fn summary(s: sandpit_service::snapshots::SnapshotInfo) -> SnapshotSummary {
    SnapshotSummary {
        name: s.name,
        language: s.language,
        files: s.files,
        size_bytes: s.size_bytes,
        libraries: s.libraries,
        created_at: s.created_at,
    }
}

fn timeout(t: Option<f64>) -> ToolResult<Option<std::time::Duration>> {
    t.map(|s| seconds("timeout", s))
        .transpose()
        .map_err(tool_error)
}

impl Toolbox for ServerTools {
    async fn snapshot_session(
        &self,
        session_id: &str,
        name: Option<&str>,
    ) -> ToolResult<SnapshotSummary> {
        self.manager
            .snapshot(&self.owner, session_id, name)
            .await
            .map(summary)
            .map_err(tool_error)
    }

    async fn list_snapshots(&self) -> ToolResult<Vec<SnapshotSummary>> {
        self.manager
            .snapshots(&self.owner)
            .await
            .map(|list| list.into_iter().map(summary).collect())
            .map_err(tool_error)
    }

    async fn run_code(&self, args: RunCodeArgs) -> ToolResult<RunResponse> {
        let language: Language = args
            .language
            .parse()
            .map_err(|e: sandpit::UnknownLanguage| ToolError::invalid(e.to_string()))?;
        let mut options = RunOptions::new()
            .timeout(seconds("timeout", args.timeout.unwrap_or(60.0)).map_err(tool_error)?)
            .libraries(args.libraries)
            .args(args.args)
            .capture_plots(true);
        if let Some(stdin) = args.stdin {
            options = options.stdin(stdin.into_bytes());
        }
        let program = Program {
            language,
            code: args.code,
            options,
            files: Vec::new(),
            memory: None,
            fresh: false,
        };
        self.manager
            .run_program(&self.owner, program)
            .await
            .map(RunResponse::from)
            .map_err(tool_error)
    }

    async fn create_session(&self, args: CreateSessionArgs) -> ToolResult<SessionInfo> {
        let (info, _) = self
            .manager
            .create(&self.owner, args.to_request())
            .await
            .map_err(tool_error)?;
        Ok(info)
    }

    async fn execute(&self, args: ExecuteArgs) -> ToolResult<Executed> {
        let timeout = timeout(args.timeout)?;
        let metrics = self.manager.clone();
        self.with_session(&args.session_id, |s| async move {
            let started = Instant::now();
            let result = if s.runner().kernel().is_some() {
                let mut options = ExecuteOptions::new();
                if let Some(t) = timeout {
                    options = options.timeout(t);
                }
                s.execute_with(&args.code, options)
                    .await
                    .map(|r| Executed::Kernel(ExecuteResponse::from(r)))
            } else {
                let mut options = RunOptions::new();
                if let Some(t) = timeout {
                    options = options.timeout(t);
                }
                s.run_with(&args.code, options)
                    .await
                    .map(|r| Executed::Program(RunResponse::from(r)))
            };
            metrics.metrics().run("execute", started.elapsed());
            result
        })
        .await
    }

    async fn run_command(&self, args: RunCommandArgs) -> ToolResult<StepResponse> {
        let timeout = timeout(args.timeout)?;
        let metrics = self.manager.clone();
        self.with_session(&args.session_id, |s| async move {
            let started = Instant::now();
            let mut options = CommandOptions::new();
            if let Some(t) = timeout {
                options = options.timeout(t);
            }
            if let Some(stdin) = args.stdin {
                options = options.stdin(stdin.into_bytes());
            }
            let result = s.execute_command_with(&args.command, options).await;
            metrics.metrics().run("command", started.elapsed());
            result.map(StepResponse::from)
        })
        .await
    }

    async fn write_file(
        &self,
        session_id: &str,
        path: &str,
        data: Vec<u8>,
    ) -> ToolResult<FileInfo> {
        self.with_session(session_id, |s| async move {
            s.files().write(path, &data, None).await
        })
        .await
    }

    async fn file_info(&self, session_id: &str, path: &str) -> ToolResult<FileInfo> {
        self.with_session(session_id, |s| async move { s.files().info(path).await })
            .await
    }

    async fn read_file(&self, session_id: &str, path: &str) -> ToolResult<Vec<u8>> {
        self.with_session(session_id, |s| async move { s.files().read(path).await })
            .await
    }

    async fn list_files(&self, args: ListFilesArgs) -> ToolResult<Vec<FileInfo>> {
        let options = ListOptions {
            recursive: args.recursive.unwrap_or(false),
            pattern: args.pattern.clone(),
            ..Default::default()
        };
        let folder = args.path.clone().unwrap_or_else(|| ".".into());
        self.with_session(&args.session_id, |s| async move {
            s.files().list(&folder, &options).await
        })
        .await
    }

    async fn install_packages(&self, args: InstallPackagesArgs) -> ToolResult<Installed> {
        let specs: Vec<PackageSpec> = args.packages.iter().map(PackageSpec::new).collect();
        self.with_session(&args.session_id, |s| async move {
            let installed = s.install_packages(&specs, false).await?;
            Ok(Installed { installed })
        })
        .await
    }

    async fn list_sessions(&self) -> ToolResult<Vec<SessionInfo>> {
        self.manager
            .list(&self.owner, None, None, &BTreeMap::new())
            .await
            .map_err(tool_error)
    }

    async fn close_session(&self, session_id: &str) -> ToolResult<()> {
        self.manager
            .destroy(&self.owner, session_id)
            .await
            .map_err(tool_error)
    }

    fn download_link(&self, session_id: &str, path: &str) -> Option<(String, String)> {
        let links = self.links.as_ref()?;
        let (token, grant) = links.signer.grant(session_id, path, &self.owner.0);
        let expires = sandpit::time::rfc3339(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(grant.expires),
        );
        Some((format!("{}/v1/downloads/{token}", links.base_url), expires))
    }
}
