//! Run Java 17 code: any class name, several classes in one file, stdin and arguments;
//! a compile error comes back as a compile failure with javac's message.
//!
//! cargo run -p sandpit --example java

use sandpit::{Language, LanguageExt, RunOptions, SandboxSession};

#[tokio::main]
async fn main() -> sandpit::Result<()> {
    // sandpit/java:latest is built on first use (OpenJDK 17 from Debian).
    let session = SandboxSession::builder()
        .language(Language::Java)
        .on_progress(|line| eprintln!("[image] {line}"))
        .open()
        .await?;

    // As with `java Main.java`: the first top-level class with a main method runs,
    // public or not, and the other classes of the file come with it.
    let code = r#"
import java.util.*;

class WordCount {
    public static void main(String[] args) {
        Scanner in = new Scanner(System.in);
        Counter c = new Counter();
        while (in.hasNext()) c.add(in.next());
        System.out.println(String.join(" ", args) + ": " + c.top());
    }
}

class Counter {
    private final Map<String, Integer> counts = new TreeMap<>();
    void add(String w) { counts.merge(w, 1, Integer::sum); }
    String top() { return counts.toString(); }
}
"#;
    let options = RunOptions::new()
        .stdin("to be or not to be")
        .args(["counts", "of words"]);
    let ok = session.run_with(code, options).await;

    // A compile error: the program does not run; javac's message is in `compile`.
    let broken = session
        .run(
            "class Broken { public static void main(String[] a) { int x = \"s\"; } }",
            &[],
        )
        .await;
    session.close().await?;

    let ok = ok?;
    print!("stdout: {}", ok.stdout);
    if let Some(compile) = &ok.compile {
        println!(
            "compile took {} ms, the whole run {} ms",
            compile.duration.as_millis(),
            ok.duration.as_millis()
        );
    }
    let broken = broken?;
    println!("compile failed: {}", broken.compile_failed());
    if let Some(compile) = &broken.compile {
        print!("javac says:\n{}", compile.stderr);
    }
    Ok(())
}
