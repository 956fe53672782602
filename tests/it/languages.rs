//! Every language on the real engine: one table-driven test of language × case (a new
//! language is one row of `LANGUAGES`), then what is particular to each language.
//!
//! `SANDPIT_TEST_LANGUAGES=go,java` limits the table to some languages.

use std::time::{Duration, Instant};

use sandpit::{Error, Language, LanguageExt, RunOptions, RunResult, SandboxSession};

use crate::per_target;
use crate::support::{ca_bundle, engine, sandpit_cli, Target};

/// One language's programs for the shared cases.
struct Row {
    language: Language,
    /// Prints its standard input between brackets: `[<stdin>]`.
    stdin: &'static str,
    /// Prints each argument on its own line.
    args: &'static str,
    /// Prints `bye` and exits with code 3.
    exit3: &'static str,
    /// Prints `to stdout` on stdout and `to stderr` on stderr.
    streams: &'static str,
    /// Prints [`UTF8`] and a newline.
    utf8: &'static str,
    /// Fails at run time with the message `boom`.
    error: &'static str,
    /// What the language itself says about that failure (all must appear on stderr).
    error_text: &'static [&'static str],
    /// Prints exactly 1 MiB (1048576 bytes) of `x`.
    mib: &'static str,
}

const UTF8: &str = "héllo wörld ✓ 日本語 🎉";
const STDIN: &str = "line one\nzwei ✓ drei\n";
const ARGS: &[&str] = &["one", "two words", "ünï", "--flag", "$HOME"];
const MIB: usize = 1 << 20;

const LANGUAGES: &[Row] = &[
    Row {
        language: Language::Python,
        stdin: "import sys\nsys.stdout.write('[' + sys.stdin.read() + ']')",
        args: "import sys\nprint('\\n'.join(sys.argv[1:]))",
        exit3: "import sys\nprint('bye')\nsys.exit(3)",
        streams: "import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)",
        utf8: "print('héllo wörld ✓ 日本語 🎉')",
        error: "raise ValueError('boom')",
        error_text: &["Traceback", "ValueError: boom"],
        mib: "import sys\nsys.stdout.write('x' * 1048576)",
    },
    Row {
        language: Language::Java,
        stdin: r#"import java.nio.charset.StandardCharsets;
class Main {
    public static void main(String[] args) throws Exception {
        String in = new String(System.in.readAllBytes(), StandardCharsets.UTF_8);
        System.out.print("[" + in + "]");
    }
}"#,
        args: r#"class Main {
    public static void main(String[] args) {
        for (String a : args) System.out.println(a);
    }
}"#,
        exit3: r#"class Main {
    public static void main(String[] args) {
        System.out.println("bye");
        System.exit(3);
    }
}"#,
        streams: r#"class Main {
    public static void main(String[] args) {
        System.out.println("to stdout");
        System.err.println("to stderr");
    }
}"#,
        utf8: r#"class Main {
    public static void main(String[] args) {
        System.out.println("héllo wörld ✓ 日本語 🎉");
    }
}"#,
        error: r#"class Main {
    public static void main(String[] args) {
        throw new IllegalStateException("boom");
    }
}"#,
        error_text: &[
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "at Main.main(Main.java:3)",
        ],
        mib: r#"class Main {
    public static void main(String[] args) {
        System.out.print("x".repeat(1048576));
        System.out.flush();
    }
}"#,
    },
    Row {
        language: Language::JavaScript,
        stdin: "const input = require('fs').readFileSync(0, 'utf8');\nprocess.stdout.write('[' + input + ']');",
        args: "console.log(process.argv.slice(2).join('\\n'));",
        exit3: "console.log('bye');\nprocess.exitCode = 3;",
        streams: "console.log('to stdout');\nconsole.error('to stderr');",
        utf8: "console.log('héllo wörld ✓ 日本語 🎉');",
        error: "function f() { throw new Error('boom'); }\nf();",
        error_text: &["Error: boom", "at f (", "main.cjs:1"],
        mib: "process.stdout.write('x'.repeat(1048576));",
    },
    Row {
        language: Language::Cpp,
        stdin: r#"#include <iostream>
#include <iterator>
#include <string>
int main() {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    std::cout << "[" << in << "]";
}"#,
        args: r#"#include <iostream>
int main(int argc, char** argv) {
    for (int i = 1; i < argc; i++) std::cout << argv[i] << "\n";
}"#,
        exit3: r#"#include <cstdio>
#include <cstdlib>
int main() {
    std::puts("bye");
    std::exit(3);
}"#,
        streams: r#"#include <iostream>
int main() {
    std::cout << "to stdout" << std::endl;
    std::cerr << "to stderr" << std::endl;
}"#,
        utf8: r#"#include <iostream>
int main() { std::cout << "héllo wörld ✓ 日本語 🎉" << "\n"; }"#,
        error: r#"#include <stdexcept>
int main() { throw std::runtime_error("boom"); }"#,
        error_text: &[
            "terminate called after throwing an instance of 'std::runtime_error'",
            "what():  boom",
        ],
        mib: r#"#include <iostream>
#include <string>
int main() { std::cout << std::string(1048576, 'x'); }"#,
    },
    Row {
        language: Language::Go,
        stdin: r#"package main

import (
	"fmt"
	"io"
	"os"
)

func main() {
	in, _ := io.ReadAll(os.Stdin)
	fmt.Printf("[%s]", in)
}"#,
        args: r#"package main

import (
	"fmt"
	"os"
)

func main() {
	for _, a := range os.Args[1:] {
		fmt.Println(a)
	}
}"#,
        exit3: r#"package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("bye")
	os.Exit(3)
}"#,
        streams: r#"package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Println("to stdout")
	fmt.Fprintln(os.Stderr, "to stderr")
}"#,
        utf8: r#"package main

import "fmt"

func main() { fmt.Println("héllo wörld ✓ 日本語 🎉") }"#,
        error: r#"package main

func main() { panic("boom") }"#,
        error_text: &["panic: boom", "goroutine 1 [running]", "main.go:3"],
        mib: r#"package main

import (
	"os"
	"strings"
)

func main() { os.Stdout.WriteString(strings.Repeat("x", 1<<20)) }"#,
    },
    Row {
        language: Language::Ruby,
        stdin: "print \"[#{$stdin.read}]\"",
        args: "puts ARGV",
        exit3: "puts 'bye'\nexit 3",
        streams: "puts 'to stdout'\n$stderr.puts 'to stderr'",
        utf8: "puts 'héllo wörld ✓ 日本語 🎉'",
        error: "def f\n  raise 'boom'\nend\nf",
        error_text: &["main.rb:2:in", "boom (RuntimeError)"],
        mib: "$stdout.write('x' * 1048576)",
    },
];

/// A session of `language` on the local engine, with the CA bundle for library installs.
pub async fn session(language: Language) -> SandboxSession {
    let mut builder = SandboxSession::builder()
        .language(language)
        .engine(engine().await);
    if let Some(ca) = ca_bundle() {
        builder = builder.extra_ca_certificates(ca);
    }
    builder
        .open()
        .await
        .unwrap_or_else(|e| panic!("cannot open a {language} session: {e}"))
}

fn selected(language: Language) -> bool {
    match std::env::var("SANDPIT_TEST_LANGUAGES") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .filter_map(|l| l.parse::<Language>().ok())
            .any(|l| l == language),
        _ => true,
    }
}

/// Checks one result; each problem becomes one line of `failures`.
struct Check<'a> {
    failures: &'a mut Vec<String>,
    language: Language,
    case: &'static str,
    compiled: bool,
}

impl Check<'_> {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures
                .push(format!("{} / {}: {}", self.language, self.case, what()));
        }
    }

    /// The compile step ran (and succeeded) exactly for compiled languages.
    fn compile(&mut self, r: &RunResult) {
        let compiled = self.compiled;
        match &r.compile {
            Some(c) => self.that(compiled && c.success(), || {
                format!(
                    "unexpected or failed compile step (exit {}): {}{}",
                    c.exit_code, c.stdout, c.stderr
                )
            }),
            None => self.that(!compiled, || "no compile step in the result".into()),
        }
    }
}

per_target!(
    every_language_passes_every_case,
    [docker, gvisor, podman],
    |t: Target| async move { language_table(&t).await }
);

async fn language_table(t: &Target) {
    let mut failures = Vec::new();
    let mut timings = Vec::new();
    for row in LANGUAGES.iter().filter(|r| selected(r.language)) {
        let started = Instant::now();
        let s =
            t.builder(row.language).open().await.unwrap_or_else(|e| {
                panic!("{}: cannot open a {} session: {e}", t.name, row.language)
            });
        let compiled = matches!(row.language, Language::Java | Language::Cpp | Language::Go);
        let run = |code: &'static str, options: RunOptions| {
            let s = &s;
            async move {
                s.run_with(code, options)
                    .await
                    .unwrap_or_else(|e| panic!("{}: sandpit failed: {e}", row.language))
            }
        };
        let mut c = Check {
            failures: &mut failures,
            language: row.language,
            case: "",
            compiled,
        };

        let r = run(row.stdin, RunOptions::new().stdin(STDIN)).await;
        c.case = "stdin";
        c.compile(&r);
        c.that(r.stdout == format!("[{STDIN}]") && r.exit_code == 0, || {
            format!(
                "stdout {:?}, exit {}, stderr {:?}",
                r.stdout, r.exit_code, r.stderr
            )
        });

        let r = run(row.args, RunOptions::new().args(ARGS.iter().copied())).await;
        c.case = "arguments";
        c.compile(&r);
        let expected: String = ARGS.iter().map(|a| format!("{a}\n")).collect();
        c.that(r.stdout == expected && r.exit_code == 0, || {
            format!(
                "stdout {:?}, exit {}, stderr {:?}",
                r.stdout, r.exit_code, r.stderr
            )
        });

        let r = run(row.exit3, RunOptions::new()).await;
        c.case = "exit code";
        c.compile(&r);
        c.that(
            r.exit_code == 3 && r.stdout == "bye\n" && r.stderr.is_empty(),
            || {
                format!(
                    "exit {}, stdout {:?}, stderr {:?}",
                    r.exit_code, r.stdout, r.stderr
                )
            },
        );
        c.that(!r.success() && !r.compile_failed(), || {
            "exit 3 must be a failed run, not a failed compile".into()
        });

        let r = run(row.streams, RunOptions::new()).await;
        c.case = "stdout and stderr apart";
        c.compile(&r);
        c.that(
            r.stdout == "to stdout\n" && r.stderr == "to stderr\n" && r.exit_code == 0,
            || {
                format!(
                    "stdout {:?}, stderr {:?}, exit {}",
                    r.stdout, r.stderr, r.exit_code
                )
            },
        );

        let r = run(row.utf8, RunOptions::new()).await;
        c.case = "UTF-8";
        c.compile(&r);
        c.that(
            r.stdout == format!("{UTF8}\n") && r.stderr.is_empty(),
            || format!("stdout {:?}, stderr {:?}", r.stdout, r.stderr),
        );

        let r = run(row.error, RunOptions::new()).await;
        c.case = "runtime error";
        c.compile(&r);
        c.that(r.exit_code != 0 && !r.timed_out, || {
            format!("exit {} (timed out: {})", r.exit_code, r.timed_out)
        });
        for text in row.error_text {
            c.that(r.stderr.contains(text), || {
                format!("stderr lacks {text:?}: {:?}", r.stderr)
            });
        }

        let r = run(row.mib, RunOptions::new()).await;
        c.case = "1 MiB of output";
        c.compile(&r);
        c.that(
            r.stdout.len() == MIB && r.stdout.bytes().all(|b| b == b'x'),
            || format!("{} bytes of stdout (stderr {:?})", r.stdout.len(), r.stderr),
        );
        c.that(!r.truncated && r.exit_code == 0, || {
            format!("truncated {}, exit {}", r.truncated, r.exit_code)
        });

        s.close().await.unwrap();
        timings.push(format!(
            "{} {:.1} s",
            row.language,
            started.elapsed().as_secs_f64()
        ));
    }
    eprintln!("languages on {}: {}", t.name, timings.join(", "));
    assert!(
        failures.is_empty(),
        "{} failure(s) on {}:\n{}",
        failures.len(),
        t.name,
        failures.join("\n")
    );
}

// ------------------------------------------------------------------ Java

#[tokio::test(flavor = "multi_thread")]
async fn java_follows_the_source_launcher_but_compiles_apart() {
    let s = session(Language::Java).await;
    // Several classes, a non-public class holding main, declared first (the launcher's rule).
    let r = s
        .run(
            r#"import java.util.*;
class Prog {
    public static void main(String[] args) {
        System.out.println(new Helper().greet(List.of("a", "b")));
    }
}
class Helper {
    String greet(List<String> names) { return "hi " + String.join("+", names); }
}"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "hi a+b\n", "{}", r.stderr);
    let compile = r.compile.as_ref().expect("a compile step");
    assert!(compile.success());
    // A public class: the file is named after it, as javac wants.
    let r = s
        .run(
            "public class Greeter { public static void main(String[] a) { System.out.println(\"greeter\"); } }",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "greeter\n", "{}", r.stderr);
    let ls = s.execute_command("ls Greeter.java").await.unwrap();
    assert_eq!(ls.stdout, "Greeter.java\n");
    // Types before the class with main, a record, an interface; and a package.
    let r = s
        .run(
            r#"package demo;
interface Shape { double area(); }
record Square(double side) implements Shape { public double area() { return side * side; } }
public class Areas {
    public static void main(String[] args) {
        Shape s = new Square(3);
        System.out.println(Areas.class.getName() + " " + s.area());
    }
}"#,
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "demo.Areas 9.0\n", "{}", r.stderr);

    // A compile error: javac's message, a compile failure, no run.
    let r = s
        .run(
            "class Broken {\n    public static void main(String[] a) {\n        int x = \"text\";\n        System.out.println(\"ran\");\n    }\n}",
            &[],
        )
        .await
        .unwrap();
    assert!(r.compile_failed(), "{r:?}");
    let compile = r.compile.as_ref().unwrap();
    assert!(
        compile
            .stderr
            .contains("Main.java:3: error: incompatible types"),
        "{}",
        compile.stderr
    );
    assert!(r.stdout.is_empty() && r.exit_code != 0);
    // No main method anywhere: the launcher's message, as a compile failure.
    let r = s.run("class NoMain { }", &[]).await.unwrap();
    assert!(r.compile_failed());
    assert!(
        r.compile
            .as_ref()
            .unwrap()
            .stderr
            .contains("can't find main(String[]) method in class: NoMain"),
        "{r:?}"
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn java_jars_in_lib_are_on_the_class_path() {
    let s = session(Language::Java).await;
    // Build a jar in the container, bring it to the host, put it in lib/ with copy_to_runtime.
    // (In the workdir: the engine's archive calls do not see the tmpfs scratch folders.)
    let build = s
        .execute_command(
            "set -e; mkdir -p g/src/greet g/classes
printf '%s\\n' 'package greet;' 'public class Greet { public static String hello(String n) { return \"hello \" + n + \" from a jar\"; } }' > g/src/greet/Greet.java
javac -d g/classes g/src/greet/Greet.java
jar --create --file g/greet.jar -C g/classes .",
        )
        .await
        .unwrap();
    assert!(build.success(), "{}", build.stderr);
    let host = tempfile::tempdir().unwrap();
    s.copy_from_runtime("g/greet.jar", host.path().join("greet.jar"))
        .await
        .unwrap();
    s.execute_command("rm -r g").await.unwrap();
    s.copy_to_runtime(host.path().join("greet.jar"), "/sandbox/lib/greet.jar")
        .await
        .unwrap();
    let r = s
        .run(
            "import greet.Greet;\nclass Main { public static void main(String[] a) { System.out.println(Greet.hello(\"Sandpit\")); } }",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "hello Sandpit from a jar\n", "{r:?}");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn java_maven_coordinates_fail_clearly_without_a_repository() {
    let s = session(Language::Java).await;
    let coordinate = "com.google.code.gson:gson:2.10.1";
    let err = s
        .run(
            "class Main { public static void main(String[] a) { } }",
            &[coordinate],
        )
        .await
        .unwrap_err();
    match &err {
        Error::LibraryInstall { message, .. } => {
            assert!(
                message.contains(&format!("cannot install Maven artifact {coordinate}")),
                "{message}"
            );
            assert!(
                message.contains("no Maven repository is reachable"),
                "{message}"
            );
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    assert!(err.to_string().contains(coordinate), "{err}");
    assert!(s.installed_libraries().is_empty());
    // Not a coordinate: refused before anything runs.
    let err = s.run("class Main {}", &["gson"]).await.unwrap_err();
    assert!(
        matches!(&err, Error::InvalidInput(m) if m.contains("group:artifact:version")),
        "{err}"
    );
    s.close().await.unwrap();
}

// ------------------------------------------------------------------ JavaScript

#[tokio::test(flavor = "multi_thread")]
async fn javascript_is_commonjs_unless_the_code_uses_modules() {
    let s = session(Language::JavaScript).await;
    let cases = [
        (
            "console.log(typeof require, typeof module, require('path').basename(__filename))",
            "function object main.cjs\n",
        ),
        (
            "import os from 'node:os';\nconsole.log(typeof os.cpus, import.meta.url.endsWith('/main.mjs'))",
            "function true\n",
        ),
        (
            "const v = await new Promise((r) => setTimeout(() => r(41), 10));\nconsole.log(v + 1)",
            "42\n",
        ),
        (
            // Mixed styles still run: require and __filename exist in ES modules too.
            "import path from 'path';\nconst fs = require('fs');\nconsole.log(path.basename(__filename), typeof fs.readFileSync)",
            "main.mjs function\n",
        ),
        (
            "import('node:os').then((os) => console.log('dynamic', typeof os.platform, typeof require))",
            "dynamic function function\n",
        ),
    ];
    for (code, expected) in cases {
        let r = s.run(code, &[]).await.unwrap();
        assert_eq!(r.stdout, expected, "{code}\nstderr: {}", r.stderr);
        assert_eq!(r.exit_code, 0);
    }
    let r = s.run("const = 1", &[]).await.unwrap();
    assert_eq!(r.exit_code, 1);
    assert!(r.stderr.contains("SyntaxError"), "{}", r.stderr);
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn javascript_npm_packages_install_once_into_the_workdir() {
    let s = session(Language::JavaScript).await;
    let r = s
        .run(
            "const ms = require('ms');\nconsole.log(ms(7200000), ms('1m'))",
            &["ms"],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "2h 60000\n", "{}", r.stderr);
    // The ES module form finds the same package; the second run installs nothing.
    let t = Instant::now();
    let r = s
        .run("import ms from 'ms';\nconsole.log(ms(1000))", &["ms"])
        .await
        .unwrap();
    assert_eq!(r.stdout, "1s\n", "{}", r.stderr);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(s.installed_libraries(), vec!["ms".to_string()]);
    let files = s
        .execute_command("ls node_modules/ms/package.json && grep -c '\"ms\"' package.json && ls node_modules/.cache 2>&1 | grep -c sandpit-npm")
        .await
        .unwrap();
    assert_eq!(
        files.stdout, "node_modules/ms/package.json\n1\n0\n",
        "{}",
        files.stderr
    );

    let err = s
        .run("1", &["sandpit-no-such-package-4242"])
        .await
        .unwrap_err();
    match &err {
        Error::LibraryInstall { message, .. } => {
            assert!(
                message.contains("sandpit-no-such-package-4242"),
                "{message}"
            );
            assert!(message.contains("404"), "{message}");
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    s.close().await.unwrap();
}

// ------------------------------------------------------------------ C++

#[tokio::test(flavor = "multi_thread")]
async fn cpp_compile_errors_are_compile_failures_and_skip_the_run() {
    let s = session(Language::Cpp).await;
    let r = s
        .run(
            "#include <cstdio>\nint main() { std::puts(\"first\"); }",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "first\n");
    let r = s
        .run("int main() {\n    return undefined_name;\n}", &[])
        .await
        .unwrap();
    assert!(r.compile_failed(), "{r:?}");
    let compile = r.compile.as_ref().unwrap();
    assert!(
        compile
            .stderr
            .contains("main.cpp:2:12: error: ‘undefined_name’ was not declared in this scope"),
        "{}",
        compile.stderr
    );
    assert_eq!(compile.exit_code, 1);
    // The program did not run: not even the previous binary.
    assert!(r.stdout.is_empty() && r.stderr.is_empty());
    // Flags from the environment reach g++.
    let r = s
        .run_with(
            "#include <cstdio>\nint main() { std::printf(\"%d %ld\\n\", ANSWER, __cplusplus); }",
            RunOptions::new().env("CXXFLAGS", "-DANSWER=42 -Wall"),
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "42 201703\n", "{r:?}");
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn cpp_debian_dev_packages_install_with_apt() {
    let s = session(Language::Cpp).await;
    let r = s
        .run(
            r#"#include <nlohmann/json.hpp>
#include <iostream>
int main() {
    nlohmann::json j = {{"lang", "c++"}, {"n", 3}};
    std::cout << j.dump() << "\n";
}"#,
            &["nlohmann-json3-dev"],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "{\"lang\":\"c++\",\"n\":3}\n", "{r:?}");
    let err = s
        .install(&["sandpit-no-such-package-dev"])
        .await
        .unwrap_err();
    match &err {
        Error::LibraryInstall { message, .. } => {
            assert!(
                message.contains("Unable to locate package sandpit-no-such-package-dev"),
                "{message}"
            );
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    let err = s.install(&["-o=Dpkg::x"]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    s.close().await.unwrap();
}

// ------------------------------------------------------------------ Go

#[tokio::test(flavor = "multi_thread")]
async fn go_builds_in_a_module_and_reuses_the_build_cache() {
    let s = session(Language::Go).await;
    // A program no earlier session built: the first build compiles it, the second reuses it.
    let code = format!(
        "package main\n\nimport (\n\t\"fmt\"\n\t\"sort\"\n)\n\nfunc main() {{\n\tx := []int{{3, 1, 2}}\n\tsort.Ints(x)\n\tfmt.Println(x, {})\n}}\n",
        std::process::id()
    );
    let first = s.run(&code, &[]).await.unwrap();
    let second = s.run(&code, &[]).await.unwrap();
    let expected = format!("[1 2 3] {}\n", std::process::id());
    assert_eq!(first.stdout, expected, "{first:?}");
    assert_eq!(second.stdout, expected, "{second:?}");
    let (c1, c2) = (
        first.compile.as_ref().unwrap().duration,
        second.compile.as_ref().unwrap().duration,
    );
    eprintln!("go build: first {c1:?}, second (cached) {c2:?}");
    assert!(
        c2 < c1,
        "the second build ({c2:?}) should be faster than the first ({c1:?})"
    );
    let env = s
        .execute_command("head -n1 go.mod; go env GOCACHE GOMODCACHE; ls -d .sandpit/go/cache")
        .await
        .unwrap();
    assert_eq!(
        env.stdout,
        "module sandbox\n/sandbox/.sandpit/go/cache\n/sandbox/.sandpit/go/mod\n.sandpit/go/cache\n",
        "{}",
        env.stderr
    );
    // A build error is a compile failure with the compiler's message.
    let r = s
        .run("package main\n\nfunc main() {\n\tvar unused int\n}\n", &[])
        .await
        .unwrap();
    assert!(r.compile_failed(), "{r:?}");
    assert!(
        r.compile
            .as_ref()
            .unwrap()
            .stderr
            .contains("main.go:4:6: declared and not used: unused"),
        "{r:?}"
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn go_get_fails_clearly_without_the_module_proxy() {
    let s = session(Language::Go).await;
    let err = s
        .run(
            "package main\n\nfunc main() {}\n",
            &["github.com/google/uuid@v1.6.0"],
        )
        .await
        .unwrap_err();
    match &err {
        Error::LibraryInstall { message, .. } => {
            assert!(
                message.contains("cannot install Go module(s) github.com/google/uuid@v1.6.0"),
                "{message}"
            );
            assert!(message.contains("is not reachable"), "{message}");
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    // Importing a module that is not installed: the compiler says what to do.
    let r = s
        .run(
            "package main\n\nimport \"github.com/google/uuid\"\n\nfunc main() { _ = uuid.New() }\n",
            &[],
        )
        .await
        .unwrap();
    assert!(r.compile_failed());
    assert!(
        r.compile
            .as_ref()
            .unwrap()
            .stderr
            .contains("github.com/google/uuid"),
        "{r:?}"
    );
    s.close().await.unwrap();
}

// ------------------------------------------------------------------ Ruby

#[tokio::test(flavor = "multi_thread")]
async fn ruby_gems_fail_clearly_and_debian_packages_work() {
    let s = session(Language::Ruby).await;
    let err = s.run("puts 1", &["rainbow"]).await.unwrap_err();
    match &err {
        Error::LibraryInstall { message, .. } => {
            assert!(
                message.contains("cannot install gem(s) rainbow"),
                "{message}"
            );
            assert!(message.contains("RubyGems"), "{message}");
            assert!(message.contains("apt:ruby-rainbow"), "{message}");
        }
        other => panic!("expected LibraryInstall, got {other}"),
    }
    let r = s
        .run(
            "require 'rainbow'\nRainbow.enabled = true\np Rainbow('sandpit').red",
            &["apt:ruby-rainbow"],
        )
        .await
        .unwrap();
    assert_eq!(r.stdout, "\"\\e[31msandpit\\e[0m\"\n", "{r:?}");
    assert_eq!(
        s.installed_libraries(),
        vec!["apt:ruby-rainbow".to_string()]
    );
    s.close().await.unwrap();
}

// ------------------------------------------------------------------ CLI

#[test]
fn the_cli_takes_every_language_by_the_names_users_type() {
    let go = "package main\n\nimport (\n\t\"fmt\"\n\t\"os\"\n)\n\nfunc main() {\n\tfmt.Println(os.Args[1:])\n\tos.Exit(3)\n}\n";
    let (code, out, err) = sandpit_cli(
        &["run", "--lang", "golang", "-c", go, "--", "a", "b c"],
        None,
    );
    assert_eq!((code, out.as_str()), (3, "[a b c]\n"), "{err}");

    let (code, out, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "c++",
            "--json",
            "-c",
            "#include <cstdio>\nint main() { std::puts(\"hi\"); }",
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["stdout"], "hi\n");
    assert_eq!(v["compile"]["exit_code"], 0);
    assert!(v["compile"]["duration_ms"].as_u64().unwrap() > 0, "{v}");

    for (lang, code_text, expected) in [
        ("node", "console.log(6 * 7)", "42\n"),
        ("rb", "puts 6 * 7", "42\n"),
        (
            "java",
            "class A { public static void main(String[] a) { System.out.println(6 * 7); } }",
            "42\n",
        ),
    ] {
        let (code, out, err) = sandpit_cli(&["run", "--lang", lang, "-c", code_text], None);
        assert_eq!((code, out.as_str()), (0, expected), "{lang}: {err}");
    }
}
