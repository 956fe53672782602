//! Compile and run C++17 (g++ -O2): stdin, arguments, the exit code; a compile error
//! comes back as a compile failure with g++'s messages and the program does not run.
//!
//! cargo run -p sandpit --example cpp

use sandpit::{Language, LanguageExt, RunOptions, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    let session = SandboxSession::builder()
        .language(Language::Cpp)
        .on_progress(|line| eprintln!("[image] {line}"))
        .open()
        .await?;

    let code = r#"
#include <algorithm>
#include <iostream>
#include <vector>

int main(int argc, char** argv) {
    std::vector<long> xs;
    for (long x; std::cin >> x;) xs.push_back(x);
    std::sort(xs.begin(), xs.end());
    std::cout << argv[1] << ":";
    for (long x : xs) std::cout << " " << x;
    std::cout << "\n";
    return xs.empty() ? 1 : 0;
}
"#;
    let sorted = session
        .run_with(code, RunOptions::new().stdin("5 3 9 1").args(["sorted"]))
        .await;
    let broken = session.run("int main() { return nope; }", &[]).await;
    session.close().await?;

    let sorted = sorted?;
    print!("{}", sorted.stdout);
    let compile_ms = sorted
        .compile
        .as_ref()
        .map_or(0, |c| c.duration.as_millis());
    println!(
        "exit code {}, compile {} ms, total {} ms",
        sorted.exit_code,
        compile_ms,
        sorted.duration.as_millis()
    );
    let broken = broken?;
    if broken.compile_failed() {
        print!(
            "g++ says:\n{}",
            broken.compile.map(|c| c.stderr).unwrap_or_default()
        );
    }
    Ok(())
}
