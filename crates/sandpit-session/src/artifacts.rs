//! Files a run leaves for the caller in a memory folder (captured plots), read back in one exec.

use std::time::Duration;

use crate::error::{Error, Result};
use crate::exec::{exec, ExecSpec};
use crate::output::Artifact;
use crate::session::SandboxSession;

/// Most bytes of artifacts (base64) one run may return.
const MAX_ARTIFACT_BYTES: usize = 64 << 20;

impl SandboxSession {
    /// Reads the files a run left in `dir` (a memory folder the copy API cannot reach) as
    /// base64 text, one name line and one data line each, then removes the folder.
    pub(crate) async fn collect_artifacts(&self, dir: &str) -> Result<Vec<Artifact>> {
        use base64::Engine as _;
        let script = format!(
            "[ -d {dir} ] || exit 0; for f in {dir}/*; do [ -f \"$f\" ] || continue; echo \"${{f##*/}}\"; base64 -w0 \"$f\"; echo; done; rm -rf {dir}"
        );
        let inner = &self.inner;
        let listing = exec(
            &inner.engine,
            &inner.container,
            ExecSpec {
                argv: vec!["/bin/sh".into(), "-c".into(), script],
                user: crate::runner::User::Sandbox,
                env: Vec::new(),
                workdir: "/".into(),
                timeout: Duration::from_secs(60),
                // Figures are the caller's own; they are not held to the program's output cap.
                output_limit: MAX_ARTIFACT_BYTES,
                inline_file: None,
                stdin_path: None,
                stdin_data: None,
                sink: None,
                watch: false,
                nproc: None,
                stats: false,
            },
        )
        .await?;
        if listing.truncated {
            return Err(Error::InvalidInput(format!(
                "the run's artifacts pass {} MiB; save large files in the workdir and copy them out",
                MAX_ARTIFACT_BYTES >> 20
            )));
        }
        let lines: Vec<&str> = listing.stdout.lines().collect();
        let mut artifacts = Vec::new();
        for pair in lines.chunks(2) {
            if let [name, data] = pair {
                if let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data.trim()) {
                    let mime = if name.ends_with(".png") {
                        "image/png"
                    } else {
                        "application/octet-stream"
                    };
                    artifacts.push(Artifact {
                        name: name.to_string(),
                        mime: mime.into(),
                        data: bytes,
                    });
                }
            }
        }
        Ok(artifacts)
    }
}
