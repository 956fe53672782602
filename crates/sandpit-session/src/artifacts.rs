//! Files a run leaves for the caller in a memory folder (captured plots), read back through the
//! agent, then removed.

use sandpit_agent::protocol::FileOp;

use crate::error::{Error, Result};
use crate::output::Artifact;
use crate::runner::User;
use crate::session::SandboxSession;

/// Most bytes of artifacts one run may return.
const MAX_ARTIFACT_BYTES: usize = 48 << 20;

/// Where runs leave artifacts: folders named per run under it.
pub(crate) const ARTIFACTS_ROOT: &str = "/tmp";

impl SandboxSession {
    /// Reads the files a run left in the folder `name` under [`ARTIFACTS_ROOT`], then removes
    /// the folder.
    pub(crate) async fn collect_artifacts(&self, name: &str) -> Result<Vec<Artifact>> {
        let listed = self
            .list_files(ARTIFACTS_ROOT, User::Sandbox, name, Some(1), name)
            .await;
        let entries = match listed {
            Ok(entries) => entries,
            // The program never made the folder: no figures.
            Err(Error::PathNotFound { .. }) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut artifacts = Vec::new();
        let mut total = 0usize;
        for entry in entries
            .into_iter()
            .filter(|e| e.kind == crate::files::FileKind::File)
        {
            let room = MAX_ARTIFACT_BYTES.saturating_sub(total);
            let data = self
                .read_file(ARTIFACTS_ROOT, User::Sandbox, &entry.path, room, &entry.path)
                .await
                .map_err(|e| match e {
                    Error::InvalidInput(_) => Error::InvalidInput(format!(
                        "the run's artifacts pass {} MiB; save large files in the workdir and copy them out",
                        MAX_ARTIFACT_BYTES >> 20
                    )),
                    other => other,
                })?;
            total += data.len();
            let mime = if entry.name.ends_with(".png") {
                "image/png"
            } else {
                "application/octet-stream"
            };
            artifacts.push(Artifact {
                name: entry.name,
                mime: mime.into(),
                data,
            });
        }
        self.file_op(
            ARTIFACTS_ROOT,
            User::Sandbox,
            FileOp::Remove {
                path: name.to_string(),
            },
            name,
        )
        .await?;
        Ok(artifacts)
    }
}
