//! Build and run Go in a module in the workdir. The build cache belongs to the session,
//! so running the same program again skips most of the build.
//!
//! cargo run -p sandpit --example go

use sandpit::{Language, LanguageExt, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let session = SandboxSession::builder()
        .language(Language::Go)
        .on_progress(|line| eprintln!("[image] {line}"))
        .open()
        .await?;

    let code = r#"
package main

import (
	"fmt"
	"runtime"
	"slices"
)

func main() {
	xs := []int{3, 1, 2}
	slices.Sort(xs)
	fmt.Println(xs, runtime.Version())
}
"#;
    let first = session.run(code, &[]).await;
    let second = session.run(code, &[]).await;
    session.close().await?;

    for (name, result) in [("first", first?), ("second", second?)] {
        let build = result
            .compile
            .as_ref()
            .map_or(0, |c| c.duration.as_millis());
        print!(
            "{name} run: build {build} ms, total {} ms: {}",
            result.duration.as_millis(),
            result.stdout
        );
    }
    Ok(())
}
