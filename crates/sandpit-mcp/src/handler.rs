//! The MCP server: the tools of `sandpit::tools`, listed with their descriptions and schemas
//! and called through the server-level toolbox, whatever the transport.

use std::sync::Arc;

use base64::Engine as _;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    ListToolsResult, PaginatedRequestParams, Resource, ResourceContents, ServerCapabilities,
    ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use sandpit::tools::{self, FileBody, ToolDef, ToolOutput};
use sandpit_service::{Manager, Owner};

use crate::links::Signer;
use crate::server_tools::{Links, ServerTools};

/// What the server tells a client about itself when it connects.
pub const INSTRUCTIONS: &str = "Sandpit runs code in isolated sandboxes (no network, 512 MiB of memory, 1 CPU). For a one-off program use run_code. To keep state, call create_session once and pass its session_id to execute (Python, JavaScript and Ruby keep variables between calls, like a notebook), run_command, write_file, read_file, list_files and install_packages; close_session when done. Matplotlib figures come back as images.";

/// Who the calls act for.
#[derive(Debug, Clone)]
enum Access {
    /// One fixed owner (the stdio server); files come back attached.
    Local(Owner),
    /// The key of each HTTP request (an [`Owner`] the authentication layer put in the
    /// request's extensions); files come back as signed links.
    Http {
        signer: Arc<Signer>,
        fallback_base_url: Arc<String>,
    },
}

/// Sandpit's MCP server handler. Cheap to clone: one per connection or request.
#[derive(Debug, Clone)]
pub struct SandpitMcp {
    manager: Manager,
    access: Access,
}

impl SandpitMcp {
    /// A server acting for one fixed `owner` (stdio): files are attached to results.
    pub fn local(manager: Manager, owner: Owner) -> Self {
        SandpitMcp {
            manager,
            access: Access::Local(owner),
        }
    }

    /// A server for HTTP: each request acts for the [`Owner`] found in its extensions (put
    /// there by the key check in front of it); files come back as links signed by `signer`
    /// under the address the client used (`fallback_base_url` when its `Host` is unknown).
    pub fn http(manager: Manager, signer: Arc<Signer>, fallback_base_url: Arc<String>) -> Self {
        SandpitMcp {
            manager,
            access: Access::Http {
                signer,
                fallback_base_url,
            },
        }
    }

    /// The toolbox a request acts through.
    fn toolbox(&self, ctx: &RequestContext<RoleServer>) -> Result<ServerTools, String> {
        match &self.access {
            Access::Local(owner) => Ok(ServerTools::new(self.manager.clone(), owner.clone(), None)),
            Access::Http {
                signer,
                fallback_base_url,
            } => {
                let parts = ctx.extensions.get::<http::request::Parts>();
                let owner = parts
                    .and_then(|p| p.extensions.get::<Owner>())
                    .cloned()
                    .ok_or("this request carries no key: send `Authorization: Bearer KEY`")?;
                let base_url = parts
                    .and_then(base_url_of)
                    .unwrap_or_else(|| fallback_base_url.to_string());
                Ok(ServerTools::new(
                    self.manager.clone(),
                    owner,
                    Some(Links {
                        base_url,
                        signer: signer.clone(),
                    }),
                ))
            }
        }
    }
}

/// `scheme://host` as the client reached the server (`X-Forwarded-Proto`/`-Host` first, for
/// a server behind a proxy).
fn base_url_of(parts: &http::request::Parts) -> Option<String> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let host = header("x-forwarded-host")
        .or_else(|| header("host"))
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))?;
    if host.contains(['/', '\\', '@', ' ']) {
        return None;
    }
    let scheme = header("x-forwarded-proto")
        .filter(|s| s == "https" || s == "http")
        .unwrap_or_else(|| "http".into());
    Some(format!("{scheme}://{host}"))
}

/// A tool definition as MCP lists it.
pub fn mcp_tool(def: &ToolDef) -> Tool {
    let schema = match &def.parameters {
        serde_json::Value::Object(o) => o.clone(),
        _ => Default::default(),
    };
    let annotations = ToolAnnotations::new()
        .read_only(def.read_only)
        .destructive(def.destructive)
        .open_world(false);
    Tool::new(def.name, def.description, Arc::new(schema)).with_annotations(annotations)
}

/// The tools as MCP lists them: the snapshot tools only where the server has a snapshot
/// store.
pub fn mcp_tools(snapshots: bool) -> Vec<Tool> {
    tools::offered(snapshots).iter().map(mcp_tool).collect()
}

/// A tool's output as an MCP result: its text, then every image, then files as resource
/// links (a URL) or embedded resources (the bytes); an error as a tool error (`isError`).
pub fn mcp_result(out: ToolOutput) -> CallToolResult {
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut content = vec![ContentBlock::text(out.text)];
    for image in out.images {
        content.push(ContentBlock::image(b64.encode(&image.data), image.mime));
    }
    for file in out.files {
        match file.body {
            FileBody::Link { url, expires_at } => content.push(ContentBlock::resource_link(
                Resource::new(url, file.name)
                    .with_title(file.path.clone())
                    .with_description(format!(
                        "{} in the session's working folder; the link works without a key until {expires_at}",
                        file.path
                    ))
                    .with_mime_type(file.mime)
                    .with_size(file.size),
            )),
            FileBody::Bytes(data) => {
                let text_like = file.mime.starts_with("text/") || file.mime == "application/json";
                let contents = match (text_like, String::from_utf8(data)) {
                    (true, Ok(text)) => ResourceContents::text(text, file.uri),
                    (_, Ok(text)) => ResourceContents::blob(b64.encode(text.as_bytes()), file.uri),
                    (_, Err(e)) => ResourceContents::blob(b64.encode(e.as_bytes()), file.uri),
                };
                content.push(ContentBlock::resource(contents.with_mime_type(file.mime)));
            }
        }
    }
    if out.is_error {
        CallToolResult::error(content)
    } else {
        CallToolResult::success(content)
    }
}

impl ServerHandler for SandpitMcp {
    fn get_info(&self) -> ServerConfig {
        let mut implementation = Implementation::new("sandpit", env!("CARGO_PKG_VERSION"));
        implementation.title = Some("Sandpit code sandboxes".into());
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(implementation)
            .with_instructions(INSTRUCTIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(mcp_tools(
            self.manager.snapshot_store().is_ok(),
        )))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let toolbox = match self.toolbox(&context) {
            Ok(t) => t,
            Err(message) => {
                return Ok(CallToolResult::error(vec![ContentBlock::text(message)]).into())
            }
        };
        let arguments = request
            .arguments
            .map(serde_json::Value::Object)
            .unwrap_or(serde_json::Value::Null);
        // A client that cancels the call drops the work, which stops what it runs.
        let out = tokio::select! {
            out = tools::call(&toolbox, &request.name, arguments) => out,
            _ = context.ct.cancelled() => {
                return Err(ErrorData::internal_error("the call was cancelled by the client", None));
            }
        };
        Ok(mcp_result(out).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_listed_with_an_object_schema() {
        assert_eq!(mcp_tools(false).len(), 10);
        let tools = mcp_tools(true);
        assert_eq!(tools.len(), 12);
        for t in &tools {
            assert_eq!(
                t.input_schema.get("type").and_then(|v| v.as_str()),
                Some("object")
            );
            assert!(
                t.description.as_deref().is_some_and(|d| d.len() > 80),
                "{}",
                t.name
            );
        }
    }

    #[test]
    fn results_carry_every_image_and_errors_are_tool_errors() {
        let out = ToolOutput {
            text: "figures: 2".into(),
            images: vec![
                tools::ImageOutput {
                    name: "figure-1.png".into(),
                    mime: "image/png".into(),
                    data: vec![1, 2],
                },
                tools::ImageOutput {
                    name: "figure-2.png".into(),
                    mime: "image/png".into(),
                    data: vec![3],
                },
            ],
            ..Default::default()
        };
        let r = mcp_result(out);
        assert_eq!(r.content.len(), 3);
        assert_eq!(r.is_error, Some(false));
        let e = mcp_result(ToolOutput::error(tools::ToolError::invalid("no")));
        assert_eq!(e.is_error, Some(true));
    }

    #[test]
    fn links_use_the_address_the_client_reached() {
        let req = http::Request::builder()
            .uri("/mcp")
            .header("host", "sandbox.example:9501")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(base_url_of(&parts).unwrap(), "http://sandbox.example:9501");
        let req = http::Request::builder()
            .uri("/mcp")
            .header("host", "10.0.0.1:9501")
            .header("x-forwarded-host", "code.example")
            .header("x-forwarded-proto", "https")
            .body(())
            .unwrap();
        let (parts, _) = req.into_parts();
        assert_eq!(base_url_of(&parts).unwrap(), "https://code.example");
    }
}
