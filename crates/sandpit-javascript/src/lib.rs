//! The JavaScript runner: Node.js and npm from Debian.
//!
//! - Code runs as CommonJS (`main.cjs`) by default, and as an ES module (`main.mjs`) when it
//!   uses `import` declarations, `export`, `import.meta` or top-level `await` (see
//!   [`is_module`]). In ES modules `require`, `__filename` and `__dirname` are defined too
//!   (a preload in the image), so code that mixes both styles runs.
//! - Libraries are npm package specs (`left-pad`, `ms@2.1.3`, `@scope/pkg`), installed with npm
//!   into the workdir's `node_modules` (and recorded in its `package.json`), once per session,
//!   through the session's extra CA certificates (`NODE_EXTRA_CA_CERTS`).
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, KernelSpec, Language, Package, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/javascript/Dockerfile");

/// The stateful kernel (see the comment at its top).
pub const KERNEL: &str = include_str!("kernel.js");

/// Starts the kernel (its path is `$1`): user output goes to two FIFOs that the kernel reads
/// (fd 1 and 2), frames to the exec's stdout (fd 3), requests come on fd 4, fatal kernel errors
/// go to the exec's stderr (fd 5), and user code reads `/dev/null` on fd 0. Node has no `dup2`,
/// so the shell sets the descriptors up and `exec`s node: the kernel keeps this process's pid.
const KERNEL_LAUNCH: &str = r#"d=$(mktemp -d /tmp/sandpit-kernel.XXXXXX) && mkfifo -m 600 "$d/stdout" "$d/stderr" || exit 70
exec node "$1" "$d" 3>&1 4<&0 5>&2 0</dev/null 1<>"$d/stdout" 2<>"$d/stderr""#;

/// Preloaded before ES modules: defines `require`, `__filename` and `__dirname`.
const ESM_GLOBALS: &str = "/usr/local/lib/sandpit/esm-globals.cjs";

/// npm install into the workdir, with its cache in node_modules/.cache (not in the small home
/// folder), removed afterwards.
const NPM_INSTALL: &str = r#"cache="$PWD/node_modules/.cache/sandpit-npm"
npm install --no-audit --no-fund --no-update-notifier --loglevel=error --cache "$cache" "$@"
rc=$?
rm -rf "$cache"
if [ "$rc" -ne 0 ]; then
  echo "npm could not install $* (exit code $rc)" >&2
fi
exit "$rc""#;

/// Runs JavaScript on Node.js.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaScriptRunner;

impl Runner for JavaScriptRunner {
    fn language(&self) -> Language {
        Language::JavaScript
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/javascript:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, code: &str) -> String {
        if is_module(code) {
            "main.mjs".into()
        } else {
            "main.cjs".into()
        }
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        sandpit_session::check_package_spec(
            library,
            "an npm option",
            "package specs such as `ms` or `ms@2.1.3`",
            "package spec",
        )
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        let mut argv: Vec<String> = ["/bin/sh", "-c", NPM_INSTALL, "sandpit-npm"]
            .into_iter()
            .map(String::from)
            .collect();
        argv.extend(libraries.iter().map(|l| l.trim().to_string()));
        vec![Command::new(argv)]
    }

    fn package_spec(&self, name: &str, version: &str) -> String {
        format!("{name}@{version}")
    }

    fn upgrade(&self, libraries: &[String]) -> Option<Vec<Command>> {
        let latest: Vec<String> = libraries
            .iter()
            .map(|l| {
                // `@scope/name` keeps its leading `@`; only a version after the name counts.
                if l[1..].contains('@') {
                    l.clone()
                } else {
                    format!("{l}@latest")
                }
            })
            .collect();
        Some(self.install(&latest))
    }

    fn uninstall(&self, names: &[String]) -> Option<Vec<Command>> {
        let mut argv: Vec<String> = [
            "npm",
            "uninstall",
            "--no-audit",
            "--no-fund",
            "--loglevel=error",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        argv.extend(names.iter().cloned());
        Some(vec![Command::new(argv)])
    }

    fn list_packages(&self) -> Option<Command> {
        // `npm ls` exits 1 for an empty or unusual tree; its JSON is what counts.
        Some(Command::new([
            "/bin/sh",
            "-c",
            "npm ls --json --depth=0 2>/dev/null; true",
        ]))
    }

    fn parse_packages(&self, output: &str) -> Vec<Package> {
        let tree: serde_json::Value = serde_json::from_str(output.trim()).unwrap_or_default();
        tree["dependencies"]
            .as_object()
            .map(|deps| {
                deps.iter()
                    .map(|(name, d)| Package {
                        name: name.clone(),
                        version: d["version"].as_str().map(String::from),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    fn run(&self, source: &str) -> RunPlan {
        let run = if source.ends_with(".mjs") {
            Command::new(["node", "--require", ESM_GLOBALS, source])
        } else {
            Command::new(["node", source])
        };
        RunPlan {
            compile: Vec::new(),
            run,
        }
    }

    fn kernel(&self) -> Option<KernelSpec> {
        Some(KernelSpec {
            script: KERNEL,
            file: "sandpit-kernel.js",
            argv: vec![
                "/bin/sh".into(),
                "-c".into(),
                KERNEL_LAUNCH.into(),
                "sandpit-kernel".into(),
            ],
        })
    }
}

/// True when Node must load `code` as an ES module: it has `import` declarations, `export`,
/// `import.meta`, or `await` at the top level (outside any function) and does not assign
/// `module.exports`/`exports` (CommonJS-only). Comments, strings, template literals and regular
/// expressions are skipped. A heuristic, as Node's own `--experimental-detect-module` is.
pub fn is_module(code: &str) -> bool {
    let s = Scan::new(code).run();
    s.esm_syntax || (s.top_level_await && !s.commonjs_exports)
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Start,
    Word(String),
    Punct(char),
    Value,
}

#[derive(Default)]
struct Found {
    esm_syntax: bool,
    top_level_await: bool,
    commonjs_exports: bool,
}

struct Scan {
    c: Vec<char>,
    i: usize,
    prev: Tok,
    braces: usize,
    parens: usize,
    /// Open `${` of template literals, as the brace depth they started at.
    templates: Vec<usize>,
    /// `async` was seen in the current top-level statement (an `await` is then in its function).
    async_in_statement: bool,
    found: Found,
}

impl Scan {
    fn new(code: &str) -> Self {
        Scan {
            c: code.chars().collect(),
            i: 0,
            prev: Tok::Start,
            braces: 0,
            parens: 0,
            templates: Vec::new(),
            async_in_statement: false,
            found: Found::default(),
        }
    }

    fn peek(&self, k: usize) -> Option<char> {
        self.c.get(self.i + k).copied()
    }

    /// The next character that is not whitespace or a comment, from `i` on.
    fn next_significant(&self, mut i: usize) -> Option<char> {
        loop {
            let c = *self.c.get(i)?;
            if c.is_whitespace() {
                i += 1;
            } else if c == '/' && self.c.get(i + 1) == Some(&'/') {
                while i < self.c.len() && self.c[i] != '\n' {
                    i += 1;
                }
            } else if c == '/' && self.c.get(i + 1) == Some(&'*') {
                i += 2;
                while i < self.c.len() && !(self.c[i] == '*' && self.c.get(i + 1) == Some(&'/')) {
                    i += 1;
                }
                i += 2;
            } else {
                return Some(c);
            }
        }
    }

    fn regex_allowed(&self) -> bool {
        match &self.prev {
            Tok::Start => true,
            Tok::Punct(p) => !matches!(p, ')' | ']' | '}'),
            Tok::Word(w) => matches!(
                w.as_str(),
                "return"
                    | "typeof"
                    | "instanceof"
                    | "in"
                    | "of"
                    | "new"
                    | "delete"
                    | "void"
                    | "throw"
                    | "case"
                    | "do"
                    | "else"
                    | "yield"
                    | "await"
            ),
            Tok::Value => false,
        }
    }

    fn top_level(&self) -> bool {
        self.braces == 0 && self.parens == 0
    }

    fn run(mut self) -> Found {
        if self.c.starts_with(&['#', '!']) {
            while self.i < self.c.len() && self.c[self.i] != '\n' {
                self.i += 1;
            }
        }
        while let Some(c) = self.peek(0) {
            match c {
                '\n' => {
                    if self.top_level() {
                        self.async_in_statement = false;
                    }
                    self.i += 1;
                }
                c if c.is_whitespace() => self.i += 1,
                '/' if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.i += 1;
                    }
                }
                '/' if self.peek(1) == Some('*') => {
                    self.i += 2;
                    while self.peek(0).is_some()
                        && !(self.peek(0) == Some('*') && self.peek(1) == Some('/'))
                    {
                        self.i += 1;
                    }
                    self.i += 2;
                }
                '/' if self.regex_allowed() => {
                    self.skip_regex();
                    self.prev = Tok::Value;
                }
                '\'' | '"' => {
                    self.skip_string(c);
                    self.prev = Tok::Value;
                }
                '`' => {
                    self.i += 1;
                    self.skip_template();
                }
                c if c.is_alphabetic() || c == '_' || c == '$' || !c.is_ascii() => self.word(),
                c if c.is_ascii_digit() => {
                    while self
                        .peek(0)
                        .is_some_and(|c| c.is_alphanumeric() || c == '.' || c == '_')
                    {
                        self.i += 1;
                    }
                    self.prev = Tok::Value;
                }
                _ => {
                    self.punct(c);
                    self.i += 1;
                }
            }
        }
        self.found
    }

    fn punct(&mut self, c: char) {
        match c {
            '{' => self.braces += 1,
            '}' => {
                if self.templates.last() == Some(&self.braces) {
                    // The end of a `${...}` in a template literal: the template goes on.
                    self.templates.pop();
                    self.braces -= 1;
                    self.i += 1;
                    self.skip_template();
                    self.i -= 1;
                    return;
                }
                self.braces = self.braces.saturating_sub(1);
                if self.top_level() {
                    self.async_in_statement = false;
                }
            }
            '(' | '[' => self.parens += 1,
            ')' | ']' => self.parens = self.parens.saturating_sub(1),
            ';' if self.top_level() => self.async_in_statement = false,
            _ => {}
        }
        self.prev = Tok::Punct(c);
    }

    fn word(&mut self) {
        let start = self.i;
        while self
            .peek(0)
            .is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$' || !c.is_ascii())
        {
            self.i += 1;
        }
        let word: String = self.c[start..self.i].iter().collect();
        let member = matches!(self.prev, Tok::Punct('.'));
        let next = self.next_significant(self.i);
        if !member {
            match word.as_str() {
                "import" => match next {
                    Some('(') => {}
                    Some('.') => self.found.esm_syntax = true,
                    Some(_) if self.top_level() => self.found.esm_syntax = true,
                    _ => {}
                },
                "export"
                    if self.top_level()
                        && next.is_some_and(|c| {
                            c.is_alphabetic() || matches!(c, '{' | '*' | '_' | '$')
                        }) =>
                {
                    self.found.esm_syntax = true;
                }
                "async" => self.async_in_statement = true,
                // `await` used as a plain name (sloppy-mode CommonJS) is followed by an operator.
                "await"
                    if self.braces == 0
                        && !self.async_in_statement
                        && next
                            .is_some_and(|c| !matches!(c, '=' | ';' | ')' | ',' | '.' | ':')) =>
                {
                    self.found.top_level_await = true;
                }
                "module" if next == Some('.') && self.followed_by(".exports") => {
                    self.found.commonjs_exports = true;
                }
                "exports" if matches!(next, Some('.') | Some('[') | Some('=')) => {
                    self.found.commonjs_exports = true;
                }
                _ => {}
            }
        }
        self.prev = Tok::Word(word);
    }

    fn followed_by(&self, text: &str) -> bool {
        let mut i = self.i;
        while self.c.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        text.chars()
            .enumerate()
            .all(|(k, t)| self.c.get(i + k) == Some(&t))
    }

    fn skip_string(&mut self, quote: char) {
        self.i += 1;
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                '\\' => self.i += 1,
                '\n' => return,
                c if c == quote => return,
                _ => {}
            }
        }
    }

    /// From inside a template literal to its end, or to a `${` (then code scanning resumes).
    fn skip_template(&mut self) {
        while let Some(c) = self.peek(0) {
            match c {
                '\\' => self.i += 2,
                '`' => {
                    self.i += 1;
                    self.prev = Tok::Value;
                    return;
                }
                '$' if self.peek(1) == Some('{') => {
                    self.i += 2;
                    self.braces += 1;
                    self.templates.push(self.braces);
                    self.prev = Tok::Punct('{');
                    return;
                }
                _ => self.i += 1,
            }
        }
    }

    fn skip_regex(&mut self) {
        self.i += 1;
        let mut class = false;
        while let Some(c) = self.peek(0) {
            self.i += 1;
            match c {
                '\\' => self.i += 1,
                '\n' => return,
                '[' => class = true,
                ']' => class = false,
                '/' if !class => break,
                _ => {}
            }
        }
        while self.peek(0).is_some_and(|c| c.is_ascii_alphabetic()) {
            self.i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commonjs_by_default() {
        for code in [
            "console.log(1)",
            "const fs = require('fs');\nconsole.log(fs.existsSync('.'))",
            "async function main() { await 1 }\nmain()",
            "const f = async () => await g();",
            "main().then(async (x) => await x)",
            "import('os').then(os => console.log(os.platform()))",
            "const s = 'import x from \"y\"'; // export default 1\n/* await x */",
            "const t = `import ${x} await`;",
            "const re = /import x from/; const d = a / b / c;",
            "obj.import = 1; obj.await = 2; x.export()",
            "module.exports = { f: async () => { await 1 } }",
            "class A { async m() { await this.x } }",
            "#!/usr/bin/env node\nconsole.log(2)",
        ] {
            assert!(!is_module(code), "{code}");
            assert_eq!(JavaScriptRunner.source_file(code), "main.cjs");
        }
    }

    #[test]
    fn es_modules_when_the_code_uses_them() {
        for code in [
            "import fs from 'fs';\nconsole.log(fs)",
            "import { readFileSync } from 'node:fs'",
            "import * as os from 'os'",
            "import 'side-effect'",
            "export const x = 1;",
            "export default function () {}",
            "console.log(import.meta.url)",
            "const x = await Promise.resolve(1);\nconsole.log(x)",
            "await main();",
            "console.log(await f())",
            "for await (const x of gen()) {}",
            "const r = await fetch(`http://${host}/x`)",
            "const f = async () => 1\nawait f()",
            "// a comment\n/* block */\nimport x from 'y'",
            "const fs = require('fs');\nconst x = await fs.promises.readFile('a')",
        ] {
            assert!(is_module(code), "{code}");
            assert_eq!(JavaScriptRunner.source_file(code), "main.mjs");
        }
    }

    #[test]
    fn plans_node_and_npm() {
        let r = JavaScriptRunner;
        assert_eq!(r.run("main.cjs").run.argv, ["node", "main.cjs"]);
        assert_eq!(
            r.run("main.mjs").run.argv,
            ["node", "--require", ESM_GLOBALS, "main.mjs"]
        );
        assert!(r.run("main.cjs").compile.is_empty());
        let install = r.install(&["ms".into()]);
        assert_eq!(install[0].argv.last().unwrap(), "ms");
        assert!(r.check_library("@scope/pkg@1.2.3").is_ok());
        assert!(r.check_library("--registry=http://x").is_err());
        assert!(r.check_library("a b").is_err());
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
        assert!(DOCKERFILE.contains(ESM_GLOBALS));
        let kernel = r.kernel().expect("a kernel");
        assert_eq!(kernel.file, "sandpit-kernel.js");
        assert_eq!(kernel.argv[..2], ["/bin/sh", "-c"]);
        assert!(kernel.script.contains("replMode: true"));
    }
}
