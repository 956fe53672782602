//! Keep a session's state as an image, and start later sessions from it.
//!
//! cargo run -p sandpit --example keep_template

use std::error::Error;

use sandpit::{image, Language, LanguageExt, SandboxSession};

const TEMPLATE: &str = "sandpit-example/template:latest";

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    // Session 1: at close, its container is committed to TEMPLATE.
    let first = SandboxSession::builder()
        .language(Language::Python)
        .keep_template(true)
        .template_tag(TEMPLATE)
        .open()
        .await?;
    let written = first
        .run(
            "open('/sandbox/state.txt', 'w').write('kept between sessions')",
            &[],
        )
        .await;
    first.close().await?;
    if !written?.success() {
        return Err("writing the file failed".into());
    }

    // Session 2 starts from the template and finds the file.
    let second = SandboxSession::builder()
        .language(Language::Python)
        .image(TEMPLATE)
        .open()
        .await?;
    let read = second
        .run("print(open('/sandbox/state.txt').read())", &[])
        .await;
    // Keep the engine handle to remove the template once the container is gone.
    let engine = second.engine().clone();
    second.close().await?;
    let read = read?;
    print!("read back: {}", read.stdout);

    image::remove_image(&engine, TEMPLATE).await?;
    println!("removed {TEMPLATE}");
    if read.stdout.trim() != "kept between sessions" {
        return Err(format!("unexpected content: {:?}", read.stdout).into());
    }
    Ok(())
}
