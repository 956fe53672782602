"""Files of a session, against a real Sandpit server (see conftest.py)."""

import pytest

import sandpit

pytestmark = pytest.mark.server

# not UTF-8: a lone continuation byte, 0xff, a NUL, invalid sequences
BINARY = b"\xff\xfe\x00\x80\xc3\x28sandpit\xa0\xa1" + bytes(range(256))


def test_write_read_list_delete_round_trip(py):
    info = py.files.write("data/in.bin", BINARY)
    assert isinstance(info, sandpit.FileInfo)
    assert info.name == "in.bin" and info.path == "data/in.bin" and info.size == len(BINARY)
    assert info.kind == "file"
    assert py.files.read("data/in.bin") == BINARY
    # the program in the sandbox sees the same bytes
    r = py.run("print(open('data/in.bin', 'rb').read().hex())")
    assert r.stdout.strip() == BINARY.hex()
    listing = py.files.list("data")
    assert "in.bin" in [f.name for f in listing]
    assert py.files.exists("data/in.bin")
    assert py.files.info("data/in.bin").size == len(BINARY)
    assert any(f.name == "data" and f.is_dir for f in py.files.list())
    py.files.delete("data/in.bin")
    assert not py.files.exists("data/in.bin")
    with pytest.raises(sandpit.NotFound):
        py.files.read("data/in.bin")


def test_text_is_utf8(py):
    py.files.write("notes/héllo.txt", "héllo wörld ✓")
    assert py.files.read("notes/héllo.txt") == "héllo wörld ✓".encode("utf-8")
    assert py.files.read_text("notes/héllo.txt") == "héllo wörld ✓"
    assert py.run("print(open('notes/héllo.txt', encoding='utf-8').read())").stdout == "héllo wörld ✓\n"


def test_file_written_by_code_can_be_read(py):
    py.run("open('made.bin', 'wb').write(bytes([0xff, 0, 0xfe]))")
    assert py.files.read("made.bin") == b"\xff\x00\xfe"
    assert py.files.read("/sandbox/made.bin") == b"\xff\x00\xfe"


def test_list_recursive_and_pattern(py):
    py.files.write("tree/a.csv", b"1")
    py.files.write("tree/sub/b.csv", b"2")
    py.files.write("tree/sub/c.txt", b"3")
    flat = {f.name for f in py.files.list("tree")}
    assert flat == {"a.csv", "sub"}
    deep = {f.path for f in py.files.list("tree", recursive=True)}
    assert {"tree/a.csv", "tree/sub/b.csv", "tree/sub/c.txt"} <= deep
    csv = {f.path for f in py.files.list("tree", recursive=True, pattern="*.csv")}
    assert csv == {"tree/a.csv", "tree/sub/b.csv"}
    py.files.delete("tree")
    assert not py.files.exists("tree")


def test_copy_move_mkdir(py):
    py.files.write("ops/src.bin", BINARY)
    copied = py.files.copy("ops/src.bin", "ops/copy.bin")
    assert copied.path == "ops/copy.bin" and py.files.read("ops/copy.bin") == BINARY
    moved = py.files.move("ops/copy.bin", "ops/moved.bin")
    assert moved.path == "ops/moved.bin"
    assert not py.files.exists("ops/copy.bin") and py.files.read("ops/moved.bin") == BINARY
    made = py.files.mkdir("ops/empty/deeper")
    assert made.is_dir and py.files.info("ops/empty/deeper").is_dir


def test_upload_and_download(py, tmp_path):
    local = tmp_path / "payload.bin"
    local.write_bytes(BINARY * 50)
    info = py.files.upload(local, "up/payload.bin")
    assert info.name == "payload.bin" and info.size == len(BINARY) * 50
    info = py.files.upload(local)  # to the workdir, under its own name
    assert info.path == "payload.bin"
    info = py.files.upload(local, "up/folder/")
    assert info.path == "up/folder/payload.bin"
    back = py.files.download("up/payload.bin", tmp_path / "back" / "copy.bin")
    assert back.read_bytes() == local.read_bytes()
    into_dir = py.files.download("up/folder/payload.bin", tmp_path / "back")
    assert into_dir == tmp_path / "back" / "payload.bin" and into_dir.read_bytes() == local.read_bytes()


def test_upload_dir(py, tmp_path):
    root = tmp_path / "proj"
    (root / "pkg").mkdir(parents=True)
    (root / "main.py").write_text("from pkg import mod; print(mod.X)")
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("X = 'uploaded'")
    py.files.upload_dir(root, "proj")
    assert py.command("cd proj && python3 main.py").stdout == "uploaded\n"


def test_dotdot_is_invalid_input(py):
    with pytest.raises(sandpit.InvalidInput) as info:
        py.files.read("../etc/passwd")
    assert info.value.status == 400
    with pytest.raises(sandpit.InvalidInput):
        py.files.write("data/../../escape.txt", b"x")
    with pytest.raises(sandpit.InvalidInput):
        py.files.list("..")
    with pytest.raises(sandpit.InvalidInput):
        py.files.read("/etc/passwd")


def test_symlink_out_of_workdir_is_refused(py):
    py.command("ln -sf /etc/passwd link-out")
    with pytest.raises(sandpit.InvalidInput):
        py.files.read("link-out")


def test_missing_file_is_not_found(py):
    with pytest.raises(sandpit.NotFound):
        py.files.read("no/such/file.txt")
    assert not py.files.exists("no/such/file.txt")
