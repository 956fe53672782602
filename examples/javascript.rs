//! Run JavaScript on Node.js: CommonJS by default, an ES module when the code uses
//! `import`, `export` or top-level `await`. With a CA bundle (SANDPIT_CA_BUNDLE) for a
//! TLS-intercepting proxy, npm packages install into the session's workdir.
//!
//! cargo run -p sandpit --example javascript

use sandpit::{Language, LanguageExt, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let mut builder = SandboxSession::builder()
        .language(Language::JavaScript)
        .on_progress(|line| eprintln!("[image] {line}"));
    let ca = std::env::var_os("SANDPIT_CA_BUNDLE");
    if let Some(ca) = &ca {
        builder = builder.extra_ca_certificates(ca);
    }
    let session = builder.open().await?;

    // CommonJS: require, module, __dirname.
    let cjs = session
        .run(
            "const os = require('os');\nconsole.log('CommonJS on', os.platform(), process.version)",
            &[],
        )
        .await;
    // An ES module: import and top-level await.
    let esm = session
        .run(
            "import { setTimeout as sleep } from 'node:timers/promises';\nawait sleep(10);\nconsole.log('ES module, after await')",
            &[],
        )
        .await;
    // A package from npm (installed once per session), when the registry is reachable.
    let npm = match ca {
        Some(_) => Some(
            session
                .run(
                    "const ms = require('ms');\nconsole.log('npm:', ms(90000))",
                    &["ms"],
                )
                .await,
        ),
        None => None,
    };
    session.close().await?;

    print!("{}", cjs?.stdout);
    print!("{}", esm?.stdout);
    match npm {
        Some(Ok(r)) => print!("{}", r.stdout),
        Some(Err(e)) => println!("npm install failed: {e}"),
        None => println!("(set SANDPIT_CA_BUNDLE to try an npm package)"),
    }
    Ok(())
}
