//! Plots from one-shot runs come back as PNG artifacts.

use sandpit::RunOptions;

use crate::support::{python, sandpit_cli};

const TWO_FIGURES: &str =
    "import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.figure()\nplt.bar([1, 2], [3, 4])\nplt.show()\nprint('done')";

#[tokio::test(flavor = "multi_thread")]
async fn figures_left_open_come_back_as_png() {
    let s = python().await.open().await.unwrap();
    let r = s
        .run_with(TWO_FIGURES, RunOptions::new().capture_plots(true))
        .await
        .unwrap();
    assert_eq!(r.stdout, "done\n");
    assert_eq!(r.stderr, "", "show() on a headless backend must not warn");
    let names: Vec<&str> = r.artifacts.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["figure-1.png", "figure-2.png"]);
    for a in &r.artifacts {
        assert_eq!(a.mime, "image/png");
        assert_eq!(&a.data[..8], b"\x89PNG\r\n\x1a\n");
    }
    // Exit codes and tracebacks are the program's own under capture too.
    let r = s
        .run_with("raise SystemExit(4)", RunOptions::new().capture_plots(true))
        .await
        .unwrap();
    assert_eq!(r.exit_code, 4);
    let r = s
        .run_with("1 / 0", RunOptions::new().capture_plots(true))
        .await
        .unwrap();
    assert!(r.stderr.contains("ZeroDivisionError"), "{}", r.stderr);
    // Without the option nothing is captured.
    let r = s.run(TWO_FIGURES, &[]).await.unwrap();
    assert!(r.artifacts.is_empty());
    s.close().await.unwrap();
}

#[test]
fn the_cli_writes_plots_to_a_folder_and_into_json() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("plots");
    let (code, out, err) = sandpit_cli(
        &[
            "run",
            "--lang",
            "python",
            "--artifacts",
            out_dir.to_str().unwrap(),
            "-c",
            TWO_FIGURES,
        ],
        None,
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "done\n");
    for name in ["figure-1.png", "figure-2.png"] {
        let png = std::fs::read(out_dir.join(name)).unwrap();
        assert_eq!(&png[..4], b"\x89PNG");
    }
    let (code, out, err) = sandpit_cli(
        &["run", "--lang", "python", "--json", "-c", TWO_FIGURES],
        None,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let artifacts = v["artifacts"].as_array().unwrap();
    assert_eq!(artifacts.len(), 2);
    assert_eq!(artifacts[0]["mime"], "image/png");
    assert!(artifacts[0]["data_base64"]
        .as_str()
        .unwrap()
        .starts_with("iVBORw0KGgo"));
    let (_, out, _) = sandpit_cli(
        &[
            "run",
            "--lang",
            "python",
            "--json",
            "--no-plots",
            "-c",
            TWO_FIGURES,
        ],
        None,
    );
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(v["artifacts"].as_array().unwrap().is_empty());
}
