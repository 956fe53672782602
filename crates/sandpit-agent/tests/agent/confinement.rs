use sandpit_agent::protocol::{ErrorKind, EventBody, FileOp, Ids};

use crate::helpers::*;

/// A root with a secret next to it (outside) and the given symlinks inside.
fn root_with_links(links: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = open_tempdir();
    std::fs::create_dir(dir.path().join("root")).unwrap();
    std::fs::create_dir(dir.path().join("root/inside")).unwrap();
    std::fs::write(dir.path().join("secret"), "outside").unwrap();
    for (link, target) in links {
        std::os::unix::fs::symlink(target, dir.path().join("root").join(link)).unwrap();
    }
    let root = format!("{}/root", path_of(&dir));
    (dir, root)
}

fn outside(agent: &mut Agent, root: &str, path: &str) {
    let e = agent.read_file(root, Ids::ROOT, path).unwrap_err();
    assert_eq!(e.kind, ErrorKind::Outside, "{path}: {}", e.message);
}

#[test]
fn dot_dot_above_the_root_is_outside() {
    let mut agent = Agent::start();
    let (_dir, root) = root_with_links(&[]);
    outside(&mut agent, &root, "../secret");
    outside(&mut agent, &root, "inside/../../secret");
}

#[test]
fn an_absolute_symlink_is_outside() {
    let mut agent = Agent::start();
    let (dir, root) = root_with_links(&[]);
    std::os::unix::fs::symlink(dir.path().join("secret"), format!("{root}/abs")).unwrap();
    outside(&mut agent, &root, "abs");
}

#[test]
fn a_relative_symlink_out_is_outside() {
    let mut agent = Agent::start();
    let (_dir, root) = root_with_links(&[("rel", "../secret"), ("up", "inside/../..")]);
    outside(&mut agent, &root, "rel");
    outside(&mut agent, &root, "up/secret");
}

#[test]
fn a_symlink_swapped_in_for_a_parent_folder_is_outside() {
    let mut agent = Agent::start();
    let (dir, root) = root_with_links(&[]);
    std::fs::write(format!("{root}/inside/file"), "in").unwrap();
    assert_eq!(
        agent.read_file(&root, Ids::ROOT, "inside/file").unwrap(),
        b"in"
    );
    // Code in the sandbox replaces the folder with a link to where the secret is.
    std::fs::remove_dir_all(format!("{root}/inside")).unwrap();
    std::fs::write(dir.path().join("file"), "outside").unwrap();
    std::os::unix::fs::symlink("..", format!("{root}/inside")).unwrap();
    outside(&mut agent, &root, "inside/file");
    let e = agent.write_file(&root, Ids::ROOT, "inside/file", b"overwritten", 16);
    assert!(
        matches!(e, EventBody::Error(ref e) if e.kind == ErrorKind::Outside),
        "{e:?}"
    );
    assert_eq!(std::fs::read(dir.path().join("file")).unwrap(), b"outside");
}

#[test]
fn a_relative_symlink_inside_is_followed() {
    let mut agent = Agent::start();
    let (_dir, root) = root_with_links(&[("alias", "inside/../inside")]);
    std::fs::write(format!("{root}/inside/f"), "ok").unwrap();
    assert_eq!(agent.read_file(&root, Ids::ROOT, "alias/f").unwrap(), b"ok");
}

#[test]
fn an_absolute_path_is_outside() {
    let mut agent = Agent::start();
    let (_dir, root) = root_with_links(&[]);
    let got = agent.file_one(
        &root,
        Ids::ROOT,
        FileOp::Stat {
            path: "/etc/passwd".into(),
        },
    );
    assert!(
        matches!(got, EventBody::Error(ref e) if e.kind == ErrorKind::Outside),
        "{got:?}"
    );
}

#[test]
fn remove_through_a_symlink_out_is_outside() {
    let mut agent = Agent::start();
    let (dir, root) = root_with_links(&[("out", "..")]);
    let got = agent.file_one(
        &root,
        Ids::ROOT,
        FileOp::Remove {
            path: "out/secret".into(),
        },
    );
    assert!(
        matches!(got, EventBody::Error(ref e) if e.kind == ErrorKind::Outside),
        "{got:?}"
    );
    assert!(dir.path().join("secret").exists());
}
