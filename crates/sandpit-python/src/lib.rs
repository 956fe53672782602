//! The Python runner: Debian's python3 in a virtual environment owned by the sandbox user,
//! libraries installed with pip into it.
#![deny(missing_docs)]

use sandpit_session::{Command, ImageSpec, KernelSpec, Language, Package, RunPlan, Runner};

/// The default image's Dockerfile.
pub const DOCKERFILE: &str = include_str!("../../../images/python/Dockerfile");

/// The stateful kernel: IPython's shell where the image has it, plain `exec` otherwise.
pub const KERNEL: &str = include_str!("kernel.py");

/// Runs a program and saves the matplotlib figures it leaves open when it exits.
const PLOT_BOOT: &str = r#"import os, runpy, sys, warnings
warnings.filterwarnings("ignore", message=".*non-interactive.*")
def _sandpit_save_figures():
    plt = sys.modules.get("matplotlib.pyplot")
    if plt is None:
        return
    folder = os.environ["SANDPIT_ARTIFACTS"]
    os.makedirs(folder, exist_ok=True)
    for i, num in enumerate(plt.get_fignums(), 1):
        plt.figure(num).savefig(os.path.join(folder, "figure-%d.png" % i), format="png", bbox_inches="tight")
sys.argv = sys.argv[1:]
# Saved in `finally`, not atexit: matplotlib's own atexit hook closes every figure first.
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
finally:
    _sandpit_save_figures()
"#;

/// Runs Python 3 code.
#[derive(Debug, Clone, Copy, Default)]
pub struct PythonRunner;

impl Runner for PythonRunner {
    fn language(&self) -> Language {
        Language::Python
    }

    fn default_image(&self) -> ImageSpec {
        ImageSpec {
            tag: "sandpit/python:latest".into(),
            dockerfile: DOCKERFILE,
        }
    }

    fn source_file(&self, _code: &str) -> String {
        "main.py".into()
    }

    fn check_library(&self, library: &str) -> Result<(), String> {
        sandpit_session::check_package_spec(
            library,
            "a pip option",
            "requirement specifiers such as `requests` or `six==1.16.0`",
            "requirement",
        )
    }

    fn install(&self, libraries: &[String]) -> Vec<Command> {
        // `pip install --upgrade` is this with the flag after `install` (see `upgrade`).
        let mut argv: Vec<String> = [
            "python",
            "-m",
            "pip",
            "install",
            "--no-input",
            "--progress-bar",
            "off",
            "--disable-pip-version-check",
        ]
        .into_iter()
        .map(String::from)
        .collect();
        argv.extend(libraries.iter().cloned());
        // The venv belongs to root so that user code cannot write outside its workdir.
        vec![Command::new(argv).as_root()]
    }

    fn run(&self, source: &str) -> RunPlan {
        RunPlan {
            compile: Vec::new(),
            run: Command::new(["python", "-u", source]),
        }
    }

    fn upgrade(&self, libraries: &[String]) -> Option<Vec<Command>> {
        let mut step = self.install(libraries).remove(0);
        step.argv.insert(4, "--upgrade".into());
        Some(vec![step])
    }

    fn uninstall(&self, names: &[String]) -> Option<Vec<Command>> {
        let mut argv = pip(&["uninstall", "--yes"]);
        argv.extend(names.iter().cloned());
        Some(vec![Command::new(argv).as_root()])
    }

    fn list_packages(&self) -> Option<Command> {
        Some(Command::new(pip(&["list", "--format=json"])))
    }

    fn parse_packages(&self, output: &str) -> Vec<Package> {
        let list: Vec<serde_json::Value> = serde_json::from_str(output.trim()).unwrap_or_default();
        list.iter()
            .filter_map(|p| {
                Some(Package {
                    name: p["name"].as_str()?.to_string(),
                    version: p["version"].as_str().map(String::from),
                })
            })
            .collect()
    }

    fn requirements(&self) -> Option<Command> {
        let argv = pip(&[
            "install",
            "--no-input",
            "--progress-bar",
            "off",
            "-r",
            "/dev/stdin",
        ]);
        Some(Command::new(argv).as_root())
    }

    fn run_capturing_plots(&self, source: &str) -> Option<RunPlan> {
        Some(RunPlan {
            compile: Vec::new(),
            run: Command::new(["python", "-u", "-c", PLOT_BOOT, source]),
        })
    }

    fn kernel(&self) -> Option<KernelSpec> {
        Some(KernelSpec {
            script: KERNEL,
            file: "sandpit-kernel.py",
            argv: vec!["python".into(), "-u".into()],
        })
    }
}

/// `python -m pip ARGS... --disable-pip-version-check`.
fn pip(args: &[&str]) -> Vec<String> {
    let mut argv: Vec<String> = ["python", "-m", "pip"]
        .into_iter()
        .map(String::from)
        .collect();
    argv.extend(args.iter().map(|a| a.to_string()));
    argv.push("--disable-pip-version-check".into());
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_pip_and_python() {
        let r = PythonRunner;
        assert_eq!(r.source_file("print(1)"), "main.py");
        let install = r.install(&["six".into()]);
        assert_eq!(install.len(), 1);
        assert_eq!(install[0].argv.last().unwrap(), "six");
        assert!(r.run("main.py").compile.is_empty());
        assert!(r.check_library("--index-url=http://x").is_err());
        assert!(r.check_library("six==1.16.0").is_ok());
        assert!(r.check_library("a b").is_err());
        assert!(DOCKERFILE.contains("FROM ${BASE_IMAGE}"));
    }
}
