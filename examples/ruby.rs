//! Run Ruby code with arguments and standard input. Libraries: `apt:ruby-<name>` installs
//! Debian's package of a gem; a plain name is a gem from RubyGems.
//!
//! cargo run -p sandpit --example ruby

use sandpit::{Language, LanguageExt, RunOptions, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let session = SandboxSession::builder()
        .language(Language::Ruby)
        .on_progress(|line| eprintln!("[image] {line}"))
        .open()
        .await?;

    let code = r##"
words = $stdin.read.split
puts "#{ARGV.first}: #{words.tally.sort_by { |w, n| [-n, w] }.first(2).to_h}"
puts "Ruby #{RUBY_VERSION}"
"##;
    let result = session
        .run_with(
            code,
            RunOptions::new()
                .stdin("the cat and the hat and the bat")
                .args(["top words"]),
        )
        .await;
    session.close().await?;
    let result = result?;
    print!("{}", result.stdout);
    print!("{}", result.stderr);
    Ok(())
}
