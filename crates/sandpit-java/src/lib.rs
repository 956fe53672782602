//! The Java runner: OpenJDK 17 from Debian, with the semantics of the single-file source
//! launcher (`java File.java`) but with the compile step apart, so that a compile error is a
//! compile failure with javac's own message and the program does not run.
//!
//! - The code is saved as `<PublicType>.java` when it declares a public top-level type, else as
//!   `Main.java`. The compile helper accepts any file name anyway, as the launcher does.
//! - The compile step (`SandpitJavac`, built into the image) compiles the file with the
//!   launcher's javac options to `.sandpit/java/classes` in the workdir, picks the first
//!   top-level class that has `public static void main(String[])` (the launcher's rule is "the
//!   first top-level class", which must have one), and writes the `java` arguments for the run
//!   step to `.sandpit/java/run.args`.
//! - The class path holds the workdir's `lib/` folder and every jar in it (put jars there with
//!   `copy_to_runtime`), and the jars of installed Maven artifacts.
//! - Libraries are Maven coordinates `group:artifact:version`; the artifact's jar is fetched
//!   from `$SANDPIT_MAVEN_REPOSITORY` (default Maven Central), without its dependencies. Where
//!   no repository is reachable the install fails with an error naming the coordinate.
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, Language, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/java/Dockerfile");

/// Where the compile step leaves class files and the run step's arguments, relative to the
/// workdir (the session's own disk).
pub const STATE_DIR: &str = ".sandpit/java";

/// Where installed Maven artifacts' jars go (root-owned, on the class path).
pub const MAVEN_DIR: &str = "/opt/sandpit/java/maven";

/// The compile helper's jar and its class data sharing archive, both in the image.
const HELPER_JAR: &str = "/opt/sandpit/java/sandpit-javac.jar";
const HELPER_CDS: &str = "/opt/sandpit/java/javac.jsa";

/// Downloads Maven artifacts' jars; arguments are checked coordinates.
const MAVEN_INSTALL: &str = r#"repo=${SANDPIT_MAVEN_REPOSITORY:-https://repo.maven.apache.org/maven2}
repo=${repo%/}
dir=/opt/sandpit/java/maven
mkdir -p "$dir" || exit 1
for coord in "$@"; do
  group=${coord%%:*}; rest=${coord#*:}; artifact=${rest%%:*}; version=${rest#*:}
  jar="$artifact-$version.jar"
  url="$repo/$(printf '%s' "$group" | tr . /)/$artifact/$version/$jar"
  if ! out=$(curl --fail --silent --show-error --location --connect-timeout 20 --max-time 600 \
      --output "$dir/.$jar.part" "$url" 2>&1); then
    rm -f "$dir/.$jar.part"
    case "$out" in
      *"resolve host"*|*"onnect"*|*"timed out"*|*"SSL"*|*"certificate"*|*"proxy"*)
        why="no Maven repository is reachable from the sandbox ($repo)" ;;
      *" 404"*|*" 410"*) why="$repo has no such artifact" ;;
      *) why="the download from $repo failed" ;;
    esac
    echo "$url: $out" >&2
    echo "cannot install Maven artifact $coord: $why; set SANDPIT_MAVEN_REPOSITORY to a reachable repository, or copy the jars to lib/ with copy_to_runtime" >&2
    exit 1
  fi
  mv "$dir/.$jar.part" "$dir/$jar" || exit 1
done"#;

/// Runs Java 17 code.
#[derive(Debug, Clone, Copy, Default)]
pub struct JavaRunner;

impl Runner for JavaRunner {
    fn language(&self) -> Language {
        Language::Java
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/java:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, code: &str) -> String {
        match public_type(code) {
            Some(name) => format!("{name}.java"),
            None => "Main.java".into(),
        }
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        parse_coordinate(library.trim()).map(|_| ())
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        let mut argv: Vec<String> = ["/bin/sh", "-c", MAVEN_INSTALL, "sandpit-maven"]
            .into_iter()
            .map(String::from)
            .collect();
        argv.extend(libraries.iter().map(|l| l.trim().to_string()));
        vec![Command::new(argv).as_root()]
    }

    fn package_spec(&self, name: &str, version: &str) -> String {
        format!("{name}:{version}")
    }

    fn run(&self, source: &str) -> RunPlan {
        let compile = Command::new([
            "java",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            &format!("-XX:SharedArchiveFile={HELPER_CDS}"),
            "-Xshare:auto",
            "-Xlog:disable",
            "-Xlog:all=warning:stderr",
            "-cp",
            HELPER_JAR,
            "SandpitJavac",
            source,
            STATE_DIR,
            "lib",
            MAVEN_DIR,
        ]);
        RunPlan {
            compile: vec![compile],
            run: Command::new(["java".to_string(), format!("@{STATE_DIR}/run.args")]),
        }
    }
}

/// A Maven coordinate `group:artifact:version`, checked so that it is safe in a URL path.
fn parse_coordinate(lib: &str) -> Result<(&str, &str, &str), String> {
    let usage =
        "write Maven coordinates as group:artifact:version, e.g. com.google.code.gson:gson:2.10.1";
    let parts: Vec<&str> = lib.split(':').collect();
    let [group, artifact, version] = parts[..] else {
        return Err(format!(
            "library {lib:?} is not a Maven coordinate: {usage}"
        ));
    };
    for (what, part) in [
        ("group", group),
        ("artifact", artifact),
        ("version", version),
    ] {
        let ok = !part.is_empty()
            && part
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '+'))
            && !part.starts_with(['.', '-'])
            && !part.contains("..");
        if !ok {
            return Err(format!(
                "library {lib:?}: the {what} {part:?} is not valid in a Maven coordinate: {usage}"
            ));
        }
    }
    Ok((group, artifact, version))
}

/// The name of the first public top-level class, interface, enum or record, if any.
/// Comments, strings, text blocks and character literals are skipped.
pub fn public_type(code: &str) -> Option<String> {
    let tokens = tokens(code);
    let mut depth = 0i32;
    let mut i = 0;
    while i < tokens.len() {
        match tokens[i].as_str() {
            "{" => depth += 1,
            "}" => depth -= 1,
            "public" if depth == 0 => {
                // Modifiers and annotations may stand between `public` and the kind.
                let mut j = i + 1;
                while j < tokens.len() {
                    match tokens[j].as_str() {
                        "class" | "interface" | "enum" | "record" => {
                            let name = tokens.get(j + 1)?;
                            return is_identifier(name).then(|| name.clone());
                        }
                        "abstract" | "final" | "static" | "strictfp" | "sealed" | "non" | "-"
                        | "@" => j += 1,
                        _ => break,
                    }
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
}

/// Identifiers (and keywords) and single punctuation characters, without comments and literals.
fn tokens(code: &str) -> Vec<String> {
    let chars: Vec<char> = code.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
        } else if c == '"' && next == Some('"') && chars.get(i + 2) == Some(&'"') {
            // A text block: up to the next unescaped """.
            i += 3;
            while i < chars.len() && !(chars[i] == '"' && chars[i..].starts_with(&['"', '"', '"']))
            {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 3;
        } else if c == '"' || c == '\'' {
            i += 1;
            while i < chars.len() && chars[i] != c && chars[i] != '\n' {
                i += if chars[i] == '\\' { 2 } else { 1 };
            }
            i += 1;
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.push(chars[start..i].iter().collect());
        } else {
            if !c.is_whitespace() {
                out.push(c.to_string());
            }
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_named_after_the_public_type() {
        let r = JavaRunner;
        assert_eq!(r.source_file("class A { }"), "Main.java");
        assert_eq!(
            r.source_file("import java.util.*;\npublic class Hello { }"),
            "Hello.java"
        );
        assert_eq!(
            r.source_file("class Helper {}\n@SuppressWarnings(\"x\")\npublic final class App {}"),
            "App.java"
        );
        assert_eq!(r.source_file("public record Point(int x) {}"), "Point.java");
        assert_eq!(
            r.source_file("public sealed interface Shape permits C {}"),
            "Shape.java"
        );
        // Not at top level, or not code at all.
        assert_eq!(
            r.source_file("class A { public class Inner {} }"),
            "Main.java"
        );
        assert_eq!(
            r.source_file("// public class Comment\n/* public class Block */ class A { String s = \"public class S\"; }"),
            "Main.java"
        );
        assert_eq!(
            r.source_file("class A { String t = \"\"\"\n  public class T {\n  \"\"\"; }\npublic class Real {}"),
            "Real.java"
        );
        assert_eq!(
            r.source_file("class A { char c = '\"'; }\npublic class B {}"),
            "B.java"
        );
        assert_eq!(r.source_file("public class Ünï {}"), "Main.java");
    }

    #[test]
    fn maven_coordinates_are_checked() {
        let r = JavaRunner;
        assert!(r.check_library("com.google.code.gson:gson:2.10.1").is_ok());
        assert!(r.check_library("org.example:lib-x:1.0.0-SNAPSHOT").is_ok());
        for bad in [
            "gson",
            "a:b",
            "a:b:c:d",
            "a:b:",
            "../x:y:1",
            "a b:c:1",
            "-x:y:1",
            "a:b:1/../../etc",
        ] {
            let err = r.check_library(bad).unwrap_err();
            assert!(err.contains("group:artifact:version"), "{bad}: {err}");
        }
    }

    #[test]
    fn compile_then_run_from_class_files() {
        let plan = JavaRunner.run("Hello.java");
        assert_eq!(plan.compile.len(), 1);
        let compile = &plan.compile[0].argv;
        assert!(compile.contains(&"SandpitJavac".to_string()));
        assert!(compile.contains(&"Hello.java".to_string()));
        assert_eq!(plan.run.argv, ["java", "@.sandpit/java/run.args"]);
        let install = JavaRunner.install(&["a:b:1".into()]);
        assert_eq!(install[0].argv.last().unwrap(), "a:b:1");
        assert_eq!(install[0].user, sandpit_session::User::Root);
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
        assert!(DOCKERFILE.contains("LABEL sandpit.language=java"));
    }
}
