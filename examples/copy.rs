//! Copy a host folder into the sandbox, change it there, copy it back.
//!
//! cargo run -p sandpit --example copy

use std::error::Error;
use std::fs;

use sandpit::{Language, LanguageExt, SandboxSession};

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // A small folder on the host.
    let base = std::env::temp_dir().join(format!("sandpit-copy-example-{}", std::process::id()));
    let input = base.join("data");
    let output = base.join("data-back");
    let _ = fs::remove_dir_all(&base);
    fs::create_dir_all(input.join("nested"))?;
    fs::write(input.join("numbers.txt"), "1\n2\n3\n")?;
    fs::write(input.join("nested/note.txt"), "hello\n")?;

    let session = SandboxSession::builder()
        .language(Language::Python)
        .open()
        .await?;
    let result = async {
        // Relative container paths are under the workdir (/sandbox).
        session.copy_to_runtime(&input, "data").await?;
        let run = session
            .run(
                r#"
import os
for root, _, files in sorted(os.walk("data")):
    for f in sorted(files):
        print(os.path.join(root, f))
total = sum(int(n) for n in open("data/numbers.txt"))
open("data/total.txt", "w").write(f"{total}\n")
"#,
                &[],
            )
            .await?;
        print!("in the container:\n{}", run.stdout);
        session.copy_from_runtime("data", &output).await?;
        Ok::<_, sandpit::Error>(run)
    }
    .await;
    session.close().await?;
    if !result?.success() {
        return Err("the Python program failed".into());
    }

    println!("copied back to {}:", output.display());
    let mut names: Vec<_> = walk(&output)?;
    names.sort();
    for name in names {
        println!("  {name}");
    }
    print!(
        "total.txt: {}",
        fs::read_to_string(output.join("total.txt"))?
    );
    fs::remove_dir_all(&base)?;
    Ok(())
}

/// Paths of the files under `dir`, relative to it.
fn walk(dir: &std::path::Path) -> std::io::Result<Vec<String>> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            let sub = path.file_name().unwrap().to_string_lossy().into_owned();
            out.extend(walk(&path)?.into_iter().map(|n| format!("{sub}/{n}")));
        } else {
            out.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    Ok(out)
}
