//! A session's packages over HTTP: installed from the index (through the proxy's CA where
//! there is one), listed, imported, uninstalled; bad package requests refused.

use serde_json::{json, Value};

use crate::server::{assert_invalid, Server};

fn lists_tomli(list: &Value) -> bool {
    list["packages"].as_array().unwrap().iter().any(|p| {
        p["name"]
            .as_str()
            .is_some_and(|n| n.eq_ignore_ascii_case("tomli"))
    })
}

// One install, then its listing, import and uninstall: a test per step would repeat the install.
#[test]
fn a_package_is_installed_listed_imported_and_uninstalled() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let s = format!("/v1/sessions/{}", server.python_session());
    // tomli: a package the image does not have already, so uninstalling leaves none.
    let (status, out) = server.json(
        "POST",
        &format!("{s}/packages"),
        Some(json!({"packages": ["tomli==2.0.1"]})),
    );
    assert_eq!(status, 200, "install tomli: {out}");
    assert!(
        out["installed"].as_array().is_some_and(|a| !a.is_empty()),
        "{out}"
    );
    let (status, list) = server.json("GET", &format!("{s}/packages"), None);
    assert_eq!(status, 200);
    let tomli = list["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| {
            p["name"]
                .as_str()
                .is_some_and(|n| n.eq_ignore_ascii_case("tomli"))
        })
        .unwrap_or_else(|| panic!("tomli is not listed: {list}"));
    assert_eq!(tomli["version"], "2.0.1");
    let (_, out) = server.json(
        "POST",
        &format!("{s}/run"),
        Some(json!({"code": "import importlib.metadata as m, tomli; print(m.version('tomli'), tomli.loads('a = 1'))"})),
    );
    assert_eq!(out["stdout"], "2.0.1 {'a': 1}\n", "{out}");
    let (status, body) = server.json("DELETE", &format!("{s}/packages/tomli"), None);
    assert_eq!(status, 204, "{body}");
    let (_, list) = server.json("GET", &format!("{s}/packages"), None);
    assert!(
        !lists_tomli(&list),
        "tomli is still listed after the uninstall: {list}"
    );
    let (_, out) = server.json(
        "POST",
        &format!("{s}/run"),
        Some(json!({"code": "import tomli"})),
    );
    assert_ne!(
        out["exit_code"], 0,
        "tomli still imports after the uninstall: {out}"
    );
}

#[test]
fn bad_package_requests_are_refused() {
    let server = Server::start_with(&[("SANDPIT_POOL", "")], &[]);
    let s = format!("/v1/sessions/{}", server.python_session());
    for (what, body) in [
        ("nothing to install", json!({"packages": []})),
        (
            "an option",
            json!({"packages": ["--index-url=http://evil.example/"]}),
        ),
        ("whitespace", json!({"packages": ["six requests"]})),
        ("a shell", json!({"packages": ["six;id"]})),
        ("not a list", json!({"packages": "six"})),
    ] {
        assert_invalid(
            what,
            server.json("POST", &format!("{s}/packages"), Some(body)),
        );
    }
    assert_invalid(
        "uninstall an option",
        server.json("DELETE", &format!("{s}/packages/--yes"), None),
    );
    let (status, body) = server.json(
        "POST",
        &format!("{s}/packages"),
        Some(json!({"packages": ["sandpit-no-such-package-xyz"]})),
    );
    assert!(
        status == 400 || status == 404,
        "a package the index does not have is bad input, not a server failure: {status} {body}"
    );
}
