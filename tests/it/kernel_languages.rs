//! Stateful execution in JavaScript and Ruby: one table of the same cases for each kernel
//! (state kept, last value, streams, errors, interrupts, crashes, streaming), then what is
//! particular to each language. The Python kernel has its own tests in `kernel.rs`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sandpit::{ExecuteOptions, ExecuteResult, Language, LanguageExt, SandboxSession};

use crate::per_target;
use crate::support::{engine, Target};

/// One language's code for the shared cases.
struct Row {
    language: Language,
    /// Defines `x = 41`, a function `double` and loads a standard module.
    define: &'static str,
    /// `double(x)`: its value is 82.
    use_function: &'static str,
    /// Uses the loaded module; its value shows as `module_value`.
    use_module: &'static str,
    module_value: &'static str,
    /// Prints [`UTF8`] on stdout and `to stderr` on stderr; its value is nothing.
    streams: &'static str,
    /// Fails with the language's own exception `error_name` whose message is `error_value`.
    error: &'static str,
    error_name: &'static str,
    error_value: &'static str,
    /// `x`.
    read_x: &'static str,
    /// Never ends.
    infinite: &'static str,
    /// What an interrupted request's error is called.
    interrupted: &'static str,
    /// Starts a child process that outlives the kernel, then ends the kernel at once.
    hard_exit: &'static str,
    /// `true` when `x` is not defined.
    x_is_gone: &'static str,
    /// Prints `early`, sleeps 2 s, prints `late`.
    slow: &'static str,
    /// `x = x + 1`, the value of which is the new `x`.
    increment: &'static str,
    /// Sets `y = 1`, then runs forever in a way the interrupt cannot stop.
    unstoppable: &'static str,
    /// `true` when `y` is not defined.
    y_is_gone: &'static str,
}

const UTF8: &str = "héllo wörld ✓ 日本語 🎉";

const ROWS: &[Row] = &[
    Row {
        language: Language::JavaScript,
        define: "let x = 41\nconst path = require('path')\nfunction double(v) {\n  return 2 * v\n}",
        use_function: "double(x)",
        use_module: "path.join('a', 'b')",
        module_value: "'a/b'",
        streams: "console.log('héllo wörld ✓ 日本語 🎉')\nconsole.error('to stderr')",
        error: "null.boom",
        error_name: "TypeError",
        error_value: "Cannot read properties of null (reading 'boom')",
        read_x: "x",
        infinite: "while (true) { x += 0 }",
        interrupted: "Interrupted",
        hard_exit: "require('child_process').spawn('sleep', ['30'], { stdio: 'inherit', detached: true }).unref()\nprocess.exit(1)",
        x_is_gone: "typeof x === 'undefined'",
        slow: "console.log('early')\nrequire('child_process').execSync('sleep 2')\nconsole.log('late')",
        increment: "x = x + 1",
        // A busy loop after an `await` runs outside vm's SIGINT watch: only a restart stops it.
        unstoppable: "globalThis.y = 1\nawait null\nwhile (true) {}",
        y_is_gone: "typeof y === 'undefined'",
    },
    Row {
        language: Language::Ruby,
        define: "x = 41\nrequire 'set'\ndef double(v)\n  2 * v\nend",
        use_function: "double(x)",
        use_module: "Set[1, 2, 2].size",
        module_value: "2",
        streams: "puts 'héllo wörld ✓ 日本語 🎉'\n$stderr.puts 'to stderr'",
        error: "1 / 0",
        error_name: "ZeroDivisionError",
        error_value: "divided by 0",
        read_x: "x",
        infinite: "loop { x += 0 }",
        interrupted: "Interrupt",
        hard_exit: "Process.detach(spawn('sleep 30'))\nexit!(1)",
        x_is_gone: "!binding.local_variable_defined?(:x)",
        slow: "puts 'early'\nsleep 2\nputs 'late'",
        increment: "x = x + 1",
        unstoppable: "$y = 1\ntrap('INT', 'IGNORE')\nloop {}",
        y_is_gone: "$y.nil?",
    },
];

fn row(language: Language) -> &'static Row {
    ROWS.iter()
        .find(|r| r.language == language)
        .expect("a row per kernel language")
}

async fn session(language: Language) -> SandboxSession {
    SandboxSession::builder()
        .language(language)
        .engine(engine().await)
        .open()
        .await
        .unwrap_or_else(|e| panic!("cannot open a {language} session: {e}"))
}

async fn session_on(t: &Target, language: Language) -> SandboxSession {
    t.builder(language)
        .open()
        .await
        .unwrap_or_else(|e| panic!("{}: cannot open a {language} session: {e}", t.name))
}

/// Collects failed expectations, one line each, so that one run shows them all.
struct Check {
    language: Language,
    failures: Vec<String>,
}

impl Check {
    fn that(&mut self, case: &str, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures
                .push(format!("{} / {case}: {}", self.language, what()));
        }
    }

    /// The request succeeded and its last value shows as `text`.
    fn value(&mut self, case: &str, r: &ExecuteResult, text: &str) {
        self.that(case, r.success(), || format!("failed: {:?}", r.error));
        let got: Vec<_> = r.results.iter().map(|b| b.text()).collect();
        self.that(case, got == [Some(text)], || {
            format!("value {got:?}, expected {text:?}")
        });
    }
}

async fn every_case(t: &Target, language: Language) {
    let row = row(language);
    let s = session_on(t, language).await;
    let mut c = Check {
        language,
        failures: Vec::new(),
    };
    let exec = |code: &'static str| {
        let s = &s;
        async move {
            s.execute(code)
                .await
                .unwrap_or_else(|e| panic!("{language}: sandpit failed on {code:?}: {e}"))
        }
    };

    // State: a variable, a function and a module, kept across calls.
    let r = exec(row.define).await;
    c.that("define", r.success(), || format!("failed: {:?}", r.error));
    c.that("define", r.kernel_started, || {
        "the first call did not say it started the kernel".into()
    });
    let r = exec(row.use_function).await;
    c.that("state", !r.kernel_started, || {
        "a second kernel started".into()
    });
    c.value("function and variable", &r, "82");
    let r = exec(row.use_module).await;
    c.value("module", &r, row.module_value);

    // stdout and stderr apart, UTF-8 intact, no value.
    let r = exec(row.streams).await;
    c.that("streams", r.success(), || format!("failed: {:?}", r.error));
    c.that("streams", r.stdout == format!("{UTF8}\n"), || {
        format!("stdout {:?}", r.stdout)
    });
    c.that("streams", r.stderr == "to stderr\n", || {
        format!("stderr {:?}", r.stderr)
    });
    c.that("streams", r.results.is_empty(), || {
        format!("unexpected value {:?}", r.results)
    });

    // The language's own exception, and the kernel goes on.
    let r = exec(row.error).await;
    match &r.error {
        Some(e) => {
            c.that("error", e.name == row.error_name, || {
                format!("name {:?}, expected {:?}", e.name, row.error_name)
            });
            c.that("error", e.value == row.error_value, || {
                format!("value {:?}, expected {:?}", e.value, row.error_value)
            });
            c.that(
                "error",
                e.traceback.iter().any(|l| l.contains(row.error_name)),
                || format!("traceback {:?}", e.traceback),
            );
        }
        None => c.that("error", false, || format!("no error: {r:?}")),
    }
    c.that("error", !r.state_lost && !r.timed_out, || format!("{r:?}"));
    let r = exec(row.read_x).await;
    c.value("after the error", &r, "41");

    // A timeout interrupts the code and keeps the state.
    let started = Instant::now();
    let r = s
        .execute_with(
            row.infinite,
            ExecuteOptions::new().timeout(Duration::from_secs(2)),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    c.that("timeout", took < Duration::from_secs(6), || {
        format!("took {took:?}")
    });
    c.that("timeout", r.timed_out && !r.state_lost, || format!("{r:?}"));
    c.that(
        "timeout",
        r.error.as_ref().is_some_and(|e| e.name == row.interrupted),
        || format!("error {:?}, expected {}", r.error, row.interrupted),
    );
    let r = exec(row.read_x).await;
    c.that("after the timeout", !r.kernel_started, || {
        "the kernel was restarted".into()
    });
    c.value("after the timeout", &r, "41");

    // A stray SIGINT between requests changes nothing.
    let out = s
        .execute_command(
            "n=0; for p in /proc/[0-9]*; do case $(head -c 7 $p/cmdline 2>/dev/null) in /bin/sh) continue;; esac; grep -qa 'sandpit-kernel[.]' $p/cmdline 2>/dev/null && kill -INT ${p#/proc/} && n=$((n+1)); done; sleep 0.2; echo $n",
        )
        .await
        .unwrap();
    c.that("idle SIGINT", out.stdout == "1\n", || {
        format!("signalled {:?} kernels: {out:?}", out.stdout)
    });
    let r = exec(row.read_x).await;
    c.that("idle SIGINT", !r.kernel_started, || {
        format!("the kernel died: {:?}", r.error)
    });
    c.value("idle SIGINT", &r, "41");

    // Streaming: the first line arrives while the code still sleeps.
    let started = Instant::now();
    let first: Arc<Mutex<Option<Duration>>> = Arc::default();
    let f = first.clone();
    let r = s
        .execute_with(
            row.slow,
            ExecuteOptions::new().on_output(move |chunk| {
                if chunk.text().contains("early") {
                    f.lock().unwrap().get_or_insert(started.elapsed());
                }
            }),
        )
        .await
        .unwrap();
    let total = started.elapsed();
    let early = *first.lock().unwrap();
    c.that(
        "streaming",
        early.is_some_and(|e| total - e > Duration::from_millis(1500)),
        || format!("first chunk at {early:?}, end at {total:?}"),
    );
    c.that("streaming", r.stdout == "early\nlate\n", || {
        format!("stdout {:?} ({:?})", r.stdout, r.error)
    });

    // Code that ignores the interrupt: the kernel is restarted, and says its state is lost.
    let started = Instant::now();
    let r = s
        .execute_with(
            row.unstoppable,
            ExecuteOptions::new().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    c.that("unstoppable", took < Duration::from_secs(10), || {
        format!("took {took:?}")
    });
    c.that("unstoppable", r.timed_out && r.state_lost, || {
        format!("{r:?}")
    });
    c.that(
        "unstoppable",
        r.error
            .as_ref()
            .is_some_and(|e| e.name == "KernelRestarted"),
        || format!("error {:?}", r.error),
    );
    let r = exec(row.y_is_gone).await;
    c.value("after the restart", &r, "true");
    let r = exec(row.define).await;
    c.that("define again", r.success(), || {
        format!("failed: {:?}", r.error)
    });

    // The time of a stateful call.
    let mut times = Vec::new();
    let mut last = String::new();
    for _ in 0..50 {
        let r = exec(row.increment).await;
        times.push(r.duration);
        last = r
            .results
            .first()
            .and_then(|b| b.text())
            .unwrap_or_default()
            .to_string();
    }
    c.that("increment", last == "91", || {
        format!("x = {last:?} after 50 increments")
    });
    times.sort();
    eprintln!(
        "{language} kernel: `x = x + 1` median {:?}, fastest {:?}, slowest {:?} (50 calls)",
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );

    // A hard exit kills the kernel: reported (even with a child still holding its output), and
    // the next call starts afresh.
    let r = exec(row.hard_exit).await;
    c.that("hard exit", r.duration < Duration::from_secs(5), || {
        format!("took {:?}", r.duration)
    });
    c.that("hard exit", r.state_lost, || format!("{r:?}"));
    c.that(
        "hard exit",
        r.error.as_ref().is_some_and(|e| e.name == "KernelDied"),
        || format!("error {:?}", r.error),
    );
    let r = exec(row.x_is_gone).await;
    c.that("after the exit", r.kernel_started, || {
        "the next call did not start a kernel".into()
    });
    c.value("after the exit", &r, "true");

    s.close().await.unwrap();
    assert!(
        c.failures.is_empty(),
        "on {}:\n{}",
        t.name,
        c.failures.join("\n")
    );
}

per_target!(
    javascript_kernel_passes_every_case,
    [docker, gvisor, podman],
    |t: Target| async move { every_case(&t, Language::JavaScript).await }
);

per_target!(
    ruby_kernel_passes_every_case,
    [docker, gvisor, podman],
    |t: Target| async move { every_case(&t, Language::Ruby).await }
);

#[tokio::test(flavor = "multi_thread")]
async fn javascript_await_imports_redeclarations_and_rejections() {
    let s = session(Language::JavaScript).await;
    // Top-level await, and what it declares persists.
    let r = s
        .execute("const answer = await new Promise((r) => setTimeout(() => r(42), 50))\nanswer")
        .await
        .unwrap();
    assert_eq!(r.results[0].text(), Some("42"), "{:?}", r.error);
    let r = s.execute("answer + 1").await.unwrap();
    assert_eq!(r.results[0].text(), Some("43"), "{:?}", r.error);
    // A notebook cell may run again: let, const and class declare again.
    for _ in 0..2 {
        let r = s
            .execute("let n = 1\nconst k = 2\nclass C {}\nn + k")
            .await
            .unwrap();
        assert_eq!(r.results[0].text(), Some("3"), "{:?}", r.error);
    }
    // ES module imports, static and dynamic, stay bound for later calls.
    let r = s
        .execute("import os from 'os'\nimport { join } from 'node:path'\nconst { inspect } = await import('util')\ntypeof os.platform")
        .await
        .unwrap();
    assert_eq!(r.results[0].text(), Some("'function'"), "{:?}", r.error);
    let r = s.execute("[join('a', 'b'), typeof inspect]").await.unwrap();
    assert_eq!(
        r.results[0].text(),
        Some("[ 'a/b', 'function' ]"),
        "{:?}",
        r.error
    );
    // A promise as the last value is awaited; a rejection is an error, handled or not.
    let r = s.execute("Promise.resolve('resolved')").await.unwrap();
    assert_eq!(r.results[0].text(), Some("'resolved'"));
    let r = s
        .execute("Promise.reject(new RangeError('nope'))")
        .await
        .unwrap();
    let e = r.error.as_ref().expect("a rejection is an error");
    assert_eq!((e.name.as_str(), e.value.as_str()), ("RangeError", "nope"));
    let r = s
        .execute("async function f() { throw new Error('lost') }\nf()\n'not awaited'")
        .await
        .unwrap();
    assert_eq!(r.error.as_ref().map(|e| e.value.as_str()), Some("lost"));
    // Awaiting forever is interrupted too, and the kernel keeps its state.
    let r = s
        .execute_with(
            "await new Promise(() => {})",
            ExecuteOptions::new().timeout(Duration::from_secs(1)),
        )
        .await
        .unwrap();
    assert!(r.timed_out && !r.state_lost, "{r:?}");
    let r = s.execute("answer").await.unwrap();
    assert_eq!(r.results[0].text(), Some("42"));
    // Syntax errors say where; child processes print through the same streams.
    let r = s.execute("let = ;").await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().name, "SyntaxError");
    let r = s
        .execute("require('child_process').execSync('echo from a child; echo to stderr >&2', { stdio: 'inherit' }); undefined")
        .await
        .unwrap();
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str()),
        ("from a child\n", "to stderr\n")
    );
    s.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn ruby_keeps_methods_and_constants_and_survives_exit() {
    let s = session(Language::Ruby).await;
    let r = s
        .execute("class Greeter\n  def hi(name) = \"hi #{name}\"\nend\nLIMIT = 3\ng = Greeter.new")
        .await
        .unwrap();
    assert!(r.success(), "{:?}", r.error);
    let r = s.execute("[g.hi('ruby'), LIMIT]").await.unwrap();
    assert_eq!(r.results[0].text(), Some("[\"hi ruby\", 3]"));
    // `exit` raises SystemExit, which a notebook reports and survives (exit! does not).
    let r = s.execute("exit 2").await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().name, "SystemExit");
    assert!(!r.state_lost);
    let r = s
        .execute("system('echo from a child; echo to stderr >&2')\nputs $stdin.read.inspect\nLIMIT")
        .await
        .unwrap();
    assert_eq!(r.stdout, "from a child\n\"\"\n");
    assert_eq!(r.stderr, "to stderr\n");
    assert_eq!(r.results[0].text(), Some("3"));
    let r = s.execute("foo(").await.unwrap();
    assert_eq!(r.error.as_ref().unwrap().name, "SyntaxError");
    let r = s.execute("nil").await.unwrap();
    assert!(r.success() && r.results.is_empty(), "{r:?}");
    s.close().await.unwrap();
}
