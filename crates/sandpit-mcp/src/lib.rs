//! Sandpit as an MCP server ([rmcp], the official Rust SDK): the tools of [`sandpit::tools`]
//! over the session manager, on two transports.
//!
//! - **stdio** ([`serve_stdio`]): `sandpit mcp`, for a client that starts the server itself
//!   (Claude Desktop, Cursor, ...). An in-process [`Manager`] acts for one fixed local owner;
//!   files come back as embedded resources; every session is closed when the client goes.
//! - **streamable HTTP** ([`http_service`]): `/mcp` on `sandpit serve`, behind the HTTP
//!   API's keys. Files come back as resource links to signed, expiring download URLs
//!   ([`links`]).
//!
//! The protocol core is [`SandpitMcp`]; the operations are [`ServerTools`], the server-level
//! implementation of [`sandpit::tools::Toolbox`], which function calling uses as well.
#![deny(missing_docs)]

mod handler;
pub mod links;
mod server_tools;

use std::future::Future;
use std::sync::Arc;

use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::ServiceExt as _;
use sandpit_service::{Manager, Owner, ServiceError};

pub use handler::{mcp_result, mcp_tool, mcp_tools, SandpitMcp, INSTRUCTIONS};
pub use links::{Grant, Signer};
pub use server_tools::{tool_error, Links, ServerTools};

/// The owner of the stdio server's sessions.
pub const LOCAL_OWNER: &str = "local";

/// The streamable HTTP service to mount at `/mcp`. Stateless: every request is complete in
/// itself and acts for the [`Owner`] the key check in front of it put in its extensions
/// (requests without one get a tool error). Host checks are off, since every request
/// must carry a key.
pub fn http_service(
    manager: Manager,
    signer: Arc<Signer>,
    fallback_base_url: Arc<String>,
) -> StreamableHttpService<SandpitMcp, LocalSessionManager> {
    let max_body = manager.config().max_body_bytes;
    let handler = SandpitMcp::http(manager, signer, fallback_base_url);
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .with_legacy_session_mode(false)
            .with_json_response(true)
            .with_sse_keep_alive(None)
            .disable_allowed_hosts()
            .with_max_request_body_bytes(max_body),
    )
}

/// Serves MCP on standard input and output for the local owner until the client closes the
/// stream or `shutdown` resolves; then closes every session of that owner and the manager's
/// warm pools, so nothing is left behind.
pub async fn serve_stdio(
    manager: Manager,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServiceError> {
    let owner = Owner(LOCAL_OWNER.into());
    let handler = SandpitMcp::local(manager.clone(), owner.clone());
    let result = async {
        tokio::pin!(shutdown);
        let running = tokio::select! {
            started = handler.serve(rmcp::transport::stdio()) => started.map_err(|e| {
                ServiceError::internal(format!("the MCP client's first messages were not understood: {e}"))
            })?,
            _ = &mut shutdown => return Ok(()),
        };
        let stop = running.cancellation_token();
        tokio::select! {
            done = running.waiting() => {
                done.map_err(|e| ServiceError::internal(format!("the MCP server stopped: {e}")))?;
            }
            _ = &mut shutdown => stop.cancel(),
        }
        Ok::<(), ServiceError>(())
    }
    .await;
    close_all(&manager, &owner).await;
    manager.shutdown().await;
    result
}

/// Closes every session of `owner` at once (a client that stops the server gives it a few
/// seconds before it kills it).
async fn close_all(manager: &Manager, owner: &Owner) {
    let sessions = match manager
        .list(owner, None, None, &std::collections::BTreeMap::new())
        .await
    {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("listing the MCP client's sessions: {e}");
            return;
        }
    };
    let mut closing = tokio::task::JoinSet::new();
    for s in sessions {
        let (manager, owner) = (manager.clone(), owner.clone());
        closing.spawn(async move { (s.id.clone(), manager.destroy(&owner, &s.id).await) });
    }
    let mut closed = 0;
    while let Some(done) = closing.join_next().await {
        match done {
            Ok((_, Ok(()))) => closed += 1,
            Ok((id, Err(e))) => tracing::warn!("closing session {id}: {e}"),
            Err(e) => tracing::warn!("closing a session: {e}"),
        }
    }
    if closed > 0 {
        tracing::info!("closed {closed} sessions the MCP client left open");
    }
}
