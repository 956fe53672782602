use std::os::unix::fs::{MetadataExt, PermissionsExt};

use sandpit_agent::frame::MAX_PAYLOAD;
use sandpit_agent::protocol::{ErrorKind, EventBody, FileInfo, FileKind, FileOp, Ids};

use crate::helpers::*;

fn info(body: EventBody) -> FileInfo {
    match body {
        EventBody::File(info) => info,
        other => panic!("a file description expected, got {other:?}"),
    }
}

fn error(body: EventBody) -> sandpit_agent::protocol::AgentError {
    match body {
        EventBody::Error(e) => e,
        other => panic!("an error expected, got {other:?}"),
    }
}

#[test]
fn one_mebibyte_is_written_and_read_back() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let root = path_of(&dir);
    let data: Vec<u8> = (0..1 << 20).map(|i: u32| (i * 7 % 251) as u8).collect();
    let written = info(agent.write_file(&root, USER, "sub/big.bin", &data, MAX_PAYLOAD));
    assert_eq!(
        (written.size, written.kind, written.mode, written.uid),
        (1 << 20, FileKind::File, 0o644, 1000)
    );
    assert_eq!(agent.read_file(&root, USER, "sub/big.bin").unwrap(), data);
}

#[test]
fn an_empty_file_reads_as_empty() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let root = path_of(&dir);
    agent.write_file(&root, Ids::ROOT, "empty", b"", 1);
    assert_eq!(agent.read_file(&root, Ids::ROOT, "empty").unwrap(), b"");
}

#[test]
fn write_applies_the_mode_asked_for() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let root = path_of(&dir);
    let call = agent.send(sandpit_agent::protocol::Op::File(
        sandpit_agent::protocol::FileRequest {
            root: root.clone(),
            user: USER,
            op: FileOp::Write {
                path: "run.sh".into(),
                mode: Some(0o750),
                parents: false,
            },
        },
    ));
    agent.send_on(
        call,
        sandpit_agent::protocol::Op::WriteData(sandpit_agent::protocol::WriteData { eof: true }),
        b"#!/bin/sh\n",
    );
    assert_eq!(info(agent.next_event(call).0).mode, 0o750);
}

#[test]
fn a_listing_is_sorted_and_depth_limited() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    for p in ["b/deep/deeper", "a"] {
        std::fs::create_dir_all(dir.path().join(p)).unwrap();
    }
    std::fs::write(dir.path().join("b/file"), "x").unwrap();
    std::fs::write(dir.path().join("b/deep/deeper/f"), "x").unwrap();
    let root = path_of(&dir);
    let paths = |agent: &mut Agent, depth| -> Vec<String> {
        let got = agent.file(
            &root,
            Ids::ROOT,
            FileOp::List {
                path: "".into(),
                depth,
            },
        );
        let mut out = Vec::new();
        for (body, _) in got {
            let EventBody::Listing { entries, .. } = body else {
                panic!("{body:?}")
            };
            out.extend(entries.into_iter().map(|e| e.path));
        }
        out
    };
    assert_eq!(paths(&mut agent, Some(1)), ["a", "b"]);
    assert_eq!(paths(&mut agent, Some(2)), ["a", "b", "b/deep", "b/file"]);
    assert_eq!(
        paths(&mut agent, None),
        [
            "a",
            "b",
            "b/deep",
            "b/deep/deeper",
            "b/deep/deeper/f",
            "b/file"
        ]
    );
}

#[test]
fn a_large_listing_comes_in_batches() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    for i in 0..2500 {
        std::fs::write(dir.path().join(format!("f{i:05}")), "").unwrap();
    }
    let got = agent.file(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::List {
            path: ".".into(),
            depth: Some(1),
        },
    );
    let sizes: Vec<(usize, bool)> = got
        .into_iter()
        .map(|(b, _)| match b {
            EventBody::Listing { entries, done } => (entries.len(), done),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes, [(1000, false), (1000, false), (500, true)]);
}

#[test]
fn stat_describes_a_symlink_without_following_it() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::os::unix::fs::symlink("target-file", dir.path().join("link")).unwrap();
    let got = info(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Stat {
            path: "link".into(),
        },
    ));
    assert_eq!(got.kind, FileKind::Symlink);
    assert_eq!(got.symlink_target.as_deref(), Some("target-file"));
    assert_eq!((got.path.as_str(), got.name.as_str()), ("link", "link"));
}

#[test]
fn a_move_onto_an_existing_path_is_refused() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("a"), "A").unwrap();
    std::fs::write(dir.path().join("b"), "B").unwrap();
    let e = error(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Move {
            from: "a".into(),
            to: "b".into(),
        },
    ));
    assert_eq!(e.kind, ErrorKind::Exists);
    assert_eq!(std::fs::read(dir.path().join("b")).unwrap(), b"B");
}

#[test]
fn a_move_renames() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("a"), "A").unwrap();
    let moved = info(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Move {
            from: "a".into(),
            to: "c".into(),
        },
    ));
    assert_eq!(moved.path, "c");
    assert!(!dir.path().join("a").exists());
}

#[test]
fn a_folder_is_copied_with_modes_files_and_symlinks() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let src = dir.path().join("src");
    std::fs::create_dir_all(src.join("inner")).unwrap();
    std::fs::write(src.join("inner/run"), "#!/bin/sh").unwrap();
    std::fs::set_permissions(src.join("inner/run"), PermissionsExt::from_mode(0o751)).unwrap();
    std::fs::set_permissions(src.join("inner"), PermissionsExt::from_mode(0o705)).unwrap();
    std::os::unix::fs::symlink("inner/run", src.join("link")).unwrap();
    let copied = info(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Copy {
            from: "src".into(),
            to: "dst".into(),
        },
    ));
    assert_eq!(copied.kind, FileKind::Dir);
    let dst = dir.path().join("dst");
    assert_eq!(std::fs::read(dst.join("inner/run")).unwrap(), b"#!/bin/sh");
    assert_eq!(
        std::fs::metadata(dst.join("inner/run")).unwrap().mode() & 0o7777,
        0o751
    );
    assert_eq!(
        std::fs::metadata(dst.join("inner")).unwrap().mode() & 0o7777,
        0o705
    );
    assert_eq!(
        std::fs::read_link(dst.join("link")).unwrap().to_str(),
        Some("inner/run")
    );
}

#[test]
fn a_folder_copied_into_itself_is_copied_once() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::create_dir(dir.path().join("a")).unwrap();
    std::fs::write(dir.path().join("a/f"), "x").unwrap();
    info(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Copy {
            from: "a".into(),
            to: "a/copy".into(),
        },
    ));
    assert!(dir.path().join("a/copy/f").exists());
    assert!(!dir.path().join("a/copy/copy").exists());
}

#[test]
fn remove_takes_a_folder_with_everything_in_it_but_not_a_symlink_s_target() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let keep = open_tempdir();
    std::fs::write(keep.path().join("precious"), "x").unwrap();
    std::fs::create_dir_all(dir.path().join("gone/sub")).unwrap();
    std::fs::write(dir.path().join("gone/sub/f"), "x").unwrap();
    std::os::unix::fs::symlink(keep.path(), dir.path().join("gone/out")).unwrap();
    assert_eq!(
        agent.file_one(
            &path_of(&dir),
            Ids::ROOT,
            FileOp::Remove {
                path: "gone".into()
            }
        ),
        EventBody::Done
    );
    assert!(!dir.path().join("gone").exists());
    assert!(keep.path().join("precious").exists());
}

#[test]
fn the_root_itself_is_never_removed() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let e = error(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Remove { path: ".".into() },
    ));
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    assert!(dir.path().exists());
}

#[test]
fn mkdir_makes_parents_and_accepts_an_existing_folder() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let root = path_of(&dir);
    let made = info(agent.file_one(
        &root,
        USER,
        FileOp::Mkdir {
            path: "x/y/z".into(),
        },
    ));
    assert_eq!((made.kind, made.uid), (FileKind::Dir, 1000));
    info(agent.file_one(&root, USER, FileOp::Mkdir { path: "x/y".into() }));
}

#[test]
fn a_user_cannot_read_a_file_only_root_may_read() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("secret"), "root only").unwrap();
    std::fs::set_permissions(dir.path().join("secret"), PermissionsExt::from_mode(0o600)).unwrap();
    let e = agent.read_file(&path_of(&dir), USER, "secret").unwrap_err();
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{}", e.message);
    assert_eq!(
        agent
            .read_file(&path_of(&dir), Ids::ROOT, "secret")
            .unwrap(),
        b"root only"
    );
}

#[test]
fn a_user_cannot_overwrite_a_file_only_root_may_write() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("config"), "root's").unwrap();
    let e = error(agent.write_file(&path_of(&dir), USER, "config", b"mine", 16));
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{}", e.message);
    assert_eq!(std::fs::read(dir.path().join("config")).unwrap(), b"root's");
}

#[test]
fn reading_a_folder_is_refused() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::create_dir(dir.path().join("d")).unwrap();
    let e = agent.read_file(&path_of(&dir), Ids::ROOT, "d").unwrap_err();
    assert_eq!(e.kind, ErrorKind::IsADirectory);
}

#[test]
fn chown_hands_a_path_to_another_owner_without_following_a_symlink() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    let root = path_of(&dir);
    std::fs::write(dir.path().join("target"), "x").unwrap();
    std::os::unix::fs::symlink("target", dir.path().join("link")).unwrap();
    let chown = |path: &str| FileOp::Chown {
        path: path.into(),
        uid: 1000,
        gid: 1001,
    };
    let link = info(agent.file_one(&root, Ids::ROOT, chown("link")));
    assert_eq!(
        (link.kind, link.uid, link.gid),
        (FileKind::Symlink, 1000, 1001)
    );
    assert_eq!(
        std::fs::metadata(dir.path().join("target")).unwrap().uid(),
        0
    );
    let top = info(agent.file_one(&root, Ids::ROOT, chown("")));
    assert_eq!((top.kind, top.uid, top.gid), (FileKind::Dir, 1000, 1001));
}

#[test]
fn a_user_cannot_chown_to_someone_else() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::fs::write(dir.path().join("mine"), "x").unwrap();
    std::os::unix::fs::chown(dir.path().join("mine"), Some(1000), Some(1000)).unwrap();
    let e = error(agent.file_one(
        &path_of(&dir),
        USER,
        FileOp::Chown {
            path: "mine".into(),
            uid: 0,
            gid: 0,
        },
    ));
    assert_eq!(e.kind, ErrorKind::PermissionDenied, "{}", e.message);
}

#[test]
fn a_copy_of_a_symlink_that_leads_out_is_outside() {
    let mut agent = Agent::start();
    let dir = open_tempdir();
    std::os::unix::fs::symlink("/etc/passwd", dir.path().join("out")).unwrap();
    let e = error(agent.file_one(
        &path_of(&dir),
        Ids::ROOT,
        FileOp::Copy {
            from: "out".into(),
            to: "copy".into(),
        },
    ));
    assert_eq!(e.kind, ErrorKind::Outside, "{}", e.message);
    assert!(!dir.path().join("copy").exists());
}
