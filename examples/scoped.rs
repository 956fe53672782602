//! `with_session` opens a session, hands it to the closure and always closes it,
//! also when the closure fails.
//!
//! cargo run -p sandpit --example scoped

use sandpit::{with_session, Language, LanguageExt, RunOptions, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let builder = SandboxSession::builder().language(Language::Python);

    let (sum, shout) = with_session(builder, |s| async move {
        // State lives as long as the session: a file written by one run is there for the next.
        s.execute_command("echo 21 > number.txt").await?;
        let sum = s
            .run("print(int(open('number.txt').read()) * 2)", &[])
            .await?;

        // Standard input and arguments.
        let shout = s
            .run_with(
                "import sys\nprint(sys.stdin.read().upper(), *sys.argv[1:])",
                RunOptions::new().stdin("quiet words").args(["a", "b"]),
            )
            .await?;
        Ok::<_, sandpit::Error>((sum, shout))
    })
    .await?;

    print!("sum: {}", sum.stdout);
    print!("shout: {}", shout.stdout);
    Ok(())
}
