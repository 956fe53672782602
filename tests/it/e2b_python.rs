//! E2B's Python SDKs (`e2b` and `e2b-code-interpreter`), unchanged, against `sandpit serve`:
//! the newest releases, sync and async, and the older pair whose creates use `POST
//! /sandboxes`. Each script asserts as it goes and prints what the test compares.

use crate::e2b::{check_script, nothing_left, python, python_v1, server, CloseAll};

/// The sync SDK: two sandboxes, code, files, the lifecycle; what every SDK test checks.
const SYNC_SCRIPT: &str = r#"
import base64, os, time, urllib.error, urllib.request
from e2b import (
    CommandExitException,
    InvalidArgumentException,
    NotFoundException,
    SandboxQuery,
    SandboxState,
    TimeoutException,
)
from e2b_code_interpreter import Sandbox

a = Sandbox.create(timeout=300, metadata={"suite": "sync"})
b = Sandbox.create(timeout=300, metadata={"suite": "sync"})
print("created two:", a.sandbox_id != b.sandbox_id)

# Code: state kept within a sandbox, not shared between two.
a.run_code("x = 40")
print("value:", a.run_code("x + 2").text)
print("isolated:", b.run_code("'x' in globals()").text)

# Output streams as it is printed.
t0 = time.time()
seen = []
r = a.run_code(
    "import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.6)",
    on_stdout=lambda m: seen.append((m.line, time.time() - t0)),
)
print("stdout:", "".join(line for line, _ in seen).split())
print("streamed:", seen[0][1] < seen[-1][1] - 0.8, r.logs.stdout == [l for l, _ in seen])

# An error, a figure, a table.
r = a.run_code("def f():\n    raise ValueError('bad value')\nf()")
print("error:", r.error.name, r.error.value, "f()" in r.error.traceback)
r = a.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()")
pngs = [base64.b64decode(x.png) for x in r.results if x.png]
print("png:", len(pngs), pngs[0][:8] == b"\x89PNG\r\n\x1a\n")
r = a.run_code("import pandas as pd\npd.DataFrame({'a': [1, 2], 'b': [3, 4]})")
print("html:", "<table" in r.results[0].html, r.results[0].is_main_result)

# A client that gives up interrupts the code; the kernel and its state stay.
try:
    a.run_code("while True: pass", timeout=2)
    print("interrupted: no timeout")
except TimeoutException:
    t1 = time.time()
    print("interrupted:", a.run_code("x").text, time.time() - t1 < 20)

# Files under /home/user, text and binary.
a.files.write("/home/user/data/hello.txt", "hello")
blob = bytes(range(256)) * 64
a.files.write("blob.bin", blob)
print("read:", a.files.read("/home/user/data/hello.txt"))
print("binary:", bytes(a.files.read("blob.bin", format="bytes")) == blob)
print("list:", sorted(e.name for e in a.files.list("/home/user") if not e.name.startswith(".")))
print("deep:", sorted(e.path for e in a.files.list("/home/user/data", depth=2)))
a.run_code("open('/home/user/from_code.txt', 'w').write('made by code')")
print("from code:", a.files.read("from_code.txt"))
print("exists:", a.files.exists("/home/user/data/hello.txt"), a.files.exists("/home/user/nope"))
print("make_dir:", a.files.make_dir("/home/user/new"), a.files.make_dir("/home/user/new"))
a.files.rename("/home/user/data/hello.txt", "/home/user/new/hello.txt")
a.files.remove("/home/user/blob.bin")
print("after:", sorted(e.name for e in a.files.list("/home/user") if not e.name.startswith(".")))
try:
    a.files.read("/home/user/nope.txt")
except NotFoundException:
    print("missing: NotFound")
try:
    a.files.read("/etc/passwd")
    print("outside: read")
except InvalidArgumentException:
    print("outside: refused")

# Presigned URLs work without the token; a changed path does not.
url = a.download_url("/home/user/new/hello.txt")
print("download_url:", urllib.request.urlopen(url).read().decode())
try:
    urllib.request.urlopen(url.replace("hello.txt", "other.txt"))
except urllib.error.HTTPError as e:
    print("tampered:", e.code)

# Commands: output as it comes, a failure's code, background commands with wait() and kill().
out, err = [], []
r = a.commands.run("echo out; echo err >&2; echo $HOME; pwd", on_stdout=out.append, on_stderr=err.append)
print("command:", r.stdout.split(), r.stderr.split(), r.exit_code, "".join(out).split(), "".join(err).split())
try:
    a.commands.run("echo failing; exit 3")
except CommandExitException as e:
    print("exit code:", e.exit_code, e.stdout.strip())
h = a.commands.run("sleep 1; echo done", background=True)
print("listed command:", h.pid in [p.pid for p in a.commands.list()])
print("wait:", h.wait().stdout.strip())
h = a.commands.run("sleep 1; echo later", background=True)
print("connect:", a.commands.connect(h.pid).wait().stdout.strip())
h = a.commands.run("sleep 600", background=True)
print("kill:", h.kill(), a.commands.kill(h.pid))
h = a.commands.run("read line; echo got $line", background=True, stdin=True)
a.commands.send_stdin(h.pid, "hello\n")
print("stdin:", h.wait().stdout.strip())
try:
    a.commands.run("sleep 30", timeout=2)
except TimeoutException:
    print("command timeout: TimeoutException")
print("envs and cwd:", a.commands.run("echo $GREETING; pwd", envs={"GREETING": "hola"}, cwd="/tmp").stdout.split())
print("as root:", a.commands.run("id -u", user="root").stdout.strip())
print("venv python:", a.commands.run("python3 -c 'import sys; print(sys.prefix)'").stdout.strip())

# Contexts: JavaScript beside Python, each its own kernel.
print("js:", a.run_code("const y = 40; y + 2", language="js").text)
print("js kept:", a.run_code("y * 2", language="javascript").text)
ctx = a.create_code_context(language="js")
print("own context:", ctx.language, ctx.cwd, a.run_code("typeof y", context=ctx).text)
print("ruby:", a.run_code("[1, 2, 3].sum * 7", language="ruby").text)
print("contexts:", sorted(c.language for c in a.list_code_contexts()))
a.remove_code_context(ctx)
print("python still:", a.run_code("x").text)
print("run_code envs:", a.run_code("import os; os.environ.get('ONE')", envs={"ONE": "1"}).text, a.run_code("import os; os.environ.get('ONE', 'unset')").text)
print("js envs:", a.run_code("process.env.ONE", language="js", envs={"ONE": "j's"}).text, a.run_code("process.env.ONE === undefined", language="js").text)
print("ruby envs:", a.run_code("ENV['ONE']", language="ruby", envs={"ONE": "x#{r}"}).text, a.run_code("ENV['ONE'].nil?", language="ruby").text)
r = a.run_code("display(1); 2")
print("main result:", r.text, [x.is_main_result for x in r.results])

# The lifecycle.
a.set_timeout(240)
info = a.get_info()
print("info:", info.state.value, info.metadata, info.template_id, info.cpu_count >= 1, info.memory_mb > 0)
print("running:", a.is_running())
listed = Sandbox.list(query=SandboxQuery(metadata={"suite": "sync"})).next_items()
print("listed:", sorted(s.sandbox_id for s in listed) == sorted([a.sandbox_id, b.sandbox_id]))
c = Sandbox.connect(a.sandbox_id)
print("connected:", c.run_code("x").text)
print("pause:", a.pause())
print("paused:", Sandbox.get_info(a.sandbox_id).state.value,
      [s.sandbox_id for s in Sandbox.list(query=SandboxQuery(state=[SandboxState.PAUSED])).next_items()] == [a.sandbox_id])
c = Sandbox.connect(a.sandbox_id)
print("resumed:", Sandbox.get_info(a.sandbox_id).state.value, c.run_code("x").text)
print("kill:", a.kill(), a.kill(), Sandbox.kill(b.sandbox_id))
print("running after kill:", a.is_running())
"#;

const SYNC_EXPECTED: &str = r#"
created two: True
value: 42
isolated: False
stdout: ['0', '1', '2']
streamed: True True
error: ValueError bad value True
png: 1 True
html: True True
interrupted: 40 True
read: hello
binary: True
list: ['blob.bin', 'data']
deep: ['/home/user/data/hello.txt']
from code: made by code
exists: True False
make_dir: True False
after: ['data', 'from_code.txt', 'new']
missing: NotFound
outside: refused
download_url: hello
tampered: 401
command: ['out', '/home/user', '/home/user'] ['err'] 0 ['out', '/home/user', '/home/user'] ['err']
exit code: 3 failing
listed command: True
wait: done
connect: later
kill: True False
stdin: got hello
command timeout: TimeoutException
envs and cwd: ['hola', '/tmp']
as root: 0
venv python: /opt/venv
js: 42
js kept: 80
own context: javascript /home/user undefined
ruby: 42
contexts: ['javascript', 'javascript', 'python', 'ruby']
python still: 40
run_code envs: 1 unset
js envs: j's true
ruby envs: x\#{r} true
main result: 2 [False, True]
info: running {'suite': 'sync'} code-interpreter-v1 True True
running: True
listed: True
connected: 40
pause: True
paused: paused True
resumed: running 40
kill: True False True
running after kill: False
"#;

#[test]
fn the_sync_sdk_runs_unchanged() {
    let (server, key) = server(&[]);
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    check_script(
        &python(),
        "e2b_sync.py",
        SYNC_SCRIPT,
        SYNC_EXPECTED,
        &server,
        &key,
    );
    nothing_left(&server, "e2b");
}

/// The async SDK: the same calls, awaited.
const ASYNC_SCRIPT: &str = r#"
import asyncio, base64
from e2b import CommandExitException, NotFoundException
from e2b_code_interpreter import AsyncSandbox

async def main():
    a, b = await asyncio.gather(AsyncSandbox.create(timeout=300), AsyncSandbox.create(timeout=300))
    await a.run_code("x = 40")
    print("value:", (await a.run_code("x + 2")).text)
    print("isolated:", (await b.run_code("'x' in globals()")).text)
    seen = []
    await a.run_code("print('one'); print('two')", on_stdout=lambda m: seen.append(m.line))
    print("stdout:", "".join(seen).split())
    r = await a.run_code("import math\nmath.sqrt(-1)")
    print("error:", r.error.name, r.error.value, "sqrt" in r.error.traceback)
    r = await a.run_code("import matplotlib.pyplot as plt\nplt.figure()\nplt.bar([1, 2], [3, 4])\nplt.show()")
    print("png:", sum(1 for x in r.results if x.png))
    r = await a.run_code("import pandas as pd\npd.DataFrame({'n': [1]})")
    print("html:", "<table" in r.results[0].html)
    await a.files.write("/home/user/a.txt", "async text")
    await a.files.write("/home/user/b.bin", b"\x00\xff" * 100)
    print("read:", await a.files.read("/home/user/a.txt"))
    print("binary:", bytes(await a.files.read("/home/user/b.bin", format="bytes")) == b"\x00\xff" * 100)
    print("list:", sorted(e.name for e in await a.files.list("/home/user") if not e.name.startswith(".")))
    try:
        await a.files.read("/home/user/none")
    except NotFoundException:
        print("missing: NotFound")
    out = []
    r = await a.commands.run("echo async; echo $ONE; pwd", envs={"ONE": "1"}, cwd="/tmp", on_stdout=out.append)
    print("command:", r.stdout.split(), r.exit_code, "".join(out).split())
    try:
        await a.commands.run("exit 4")
    except CommandExitException as e:
        print("exit code:", e.exit_code)
    h = await a.commands.run("sleep 1; echo bg", background=True)
    print("listed command:", h.pid in [p.pid for p in await a.commands.list()])
    print("wait:", (await h.wait()).stdout.strip())
    h = await a.commands.run("sleep 600", background=True)
    print("kill:", await h.kill())
    h = await a.commands.run("read line; echo got $line", background=True, stdin=True)
    await a.commands.send_stdin(h.pid, "async\n")
    print("stdin:", (await h.wait()).stdout.strip())
    print("js:", (await a.run_code("[1, 2].map(v => v * 21).pop()", language="js")).text)
    await a.set_timeout(200)
    print("info:", (await a.get_info()).state.value, await a.is_running())
    listed = await AsyncSandbox.list().next_items()
    print("listed:", {a.sandbox_id, b.sandbox_id} <= {s.sandbox_id for s in listed})
    print("pause:", await a.pause())
    c = await AsyncSandbox.connect(a.sandbox_id)
    print("resumed:", (await c.run_code("x")).text)
    print("kill:", await a.kill(), await a.kill(), await b.kill())
    print("running after kill:", await a.is_running())

asyncio.run(main())
"#;

const ASYNC_EXPECTED: &str = r#"
value: 42
isolated: False
stdout: ['one', 'two']
error: ValueError math domain error True
png: 1
html: True
read: async text
binary: True
list: ['a.txt', 'b.bin']
missing: NotFound
command: ['async', '1', '/tmp'] 0 ['async', '1', '/tmp']
exit code: 4
listed command: True
wait: bg
kill: True
stdin: got async
js: 42
info: running True
listed: True
pause: True
resumed: 40
kill: True False True
running after kill: False
"#;

#[test]
fn the_async_sdk_runs_unchanged() {
    let (server, key) = server(&[]);
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    check_script(
        &python(),
        "e2b_async.py",
        ASYNC_SCRIPT,
        ASYNC_EXPECTED,
        &server,
        &key,
    );
    nothing_left(&server, "e2b");
}

/// The older SDKs (e2b 2.30.0, e2b-code-interpreter 2.9.0): `POST /sandboxes`, `/connect`.
const V1_SCRIPT: &str = r#"
from e2b_code_interpreter import Sandbox
a = Sandbox.create(timeout=120)
a.run_code("x = 40")
print("value:", a.run_code("x + 2").text)
a.files.write("/home/user/v1.txt", "v1")
print("read:", a.files.read("/home/user/v1.txt"))
print("command:", a.commands.run("cat /home/user/v1.txt").stdout)
print("listed:", a.sandbox_id in [s.sandbox_id for s in Sandbox.list().next_items()])
print("pause:", a.pause())
c = Sandbox.connect(a.sandbox_id)
print("resumed:", c.run_code("x").text)
print("kill:", a.kill(), a.kill())
"#;

const V1_EXPECTED: &str = r#"
value: 42
read: v1
command: v1
listed: True
pause: True
resumed: 40
kill: True False
"#;

#[test]
fn the_older_sdk_runs_unchanged() {
    let (server, key) = server(&[]);
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    check_script(
        &python_v1(),
        "e2b_v1.py",
        V1_SCRIPT,
        V1_EXPECTED,
        &server,
        &key,
    );
    nothing_left(&server, "e2b");
}
