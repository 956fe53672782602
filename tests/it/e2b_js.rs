//! E2B's npm SDKs (`e2b` and `@e2b/code-interpreter`), unchanged, against `sandpit serve`.

use std::path::Path;

use crate::e2b::{check_script, nothing_left, server, CloseAll};

const JS_SCRIPT: &str = r#"
import { Sandbox } from '@e2b/code-interpreter'
import { CommandExitError, NotFoundError } from 'e2b'

const log = (...a) => console.log(...a)
const [a, b] = await Promise.all([
  Sandbox.create({ timeoutMs: 300_000, metadata: { suite: 'js' } }),
  Sandbox.create({ timeoutMs: 300_000, metadata: { suite: 'js' } }),
])
log('created two:', a.sandboxId !== b.sandboxId)
await a.runCode('x = 40')
log('value:', (await a.runCode('x + 2')).text)
log('isolated:', (await b.runCode("'x' in globals()")).text)

const t0 = Date.now()
const seen = []
await a.runCode('import time\nfor i in range(3):\n    print(i, flush=True)\n    time.sleep(0.6)', {
  onStdout: (m) => seen.push([m.line, Date.now() - t0]),
})
log('stdout:', seen.map((s) => s[0]).join('').split(/\s+/).filter(Boolean).join(','))
log('streamed:', seen[0][1] < seen[seen.length - 1][1] - 800)

let r = await a.runCode("raise KeyError('k')")
log('error:', r.error.name, r.error.value, r.error.traceback.includes('KeyError'))
r = await a.runCode('import matplotlib.pyplot as plt\nplt.plot([3, 1, 2])\nplt.show()')
const png = r.results.find((x) => x.png)
log('png:', Buffer.from(png.png, 'base64').subarray(1, 4).toString())
r = await a.runCode("import pandas as pd\npd.DataFrame({'a': [1]})")
log('html:', r.results[0].html.includes('<table'), r.results[0].isMainResult)

await a.files.write('/home/user/js.txt', 'from js')
const bytes = new Uint8Array(1024).map((_, i) => i % 256)
await a.files.write('/home/user/js.bin', bytes.buffer)
log('read:', await a.files.read('/home/user/js.txt'))
const back = await a.files.read('/home/user/js.bin', { format: 'bytes' })
log('binary:', back.length === 1024 && back.every((v, i) => v === i % 256))
log('list:', (await a.files.list('/home/user')).map((e) => e.name).filter((n) => !n.startsWith('.')).sort().join(','))
log('exists:', await a.files.exists('/home/user/js.txt'), await a.files.exists('/home/user/nope'))
try {
  await a.files.read('/home/user/nope')
} catch (e) {
  log('missing:', e instanceof NotFoundError)
}

let out = ''
const cmd = await a.commands.run('echo out; echo err >&2', { onStdout: (d) => { out += d } })
log('command:', cmd.stdout.trim(), cmd.stderr.trim(), cmd.exitCode, out.trim())
try {
  await a.commands.run('exit 5')
} catch (e) {
  log('exit code:', e instanceof CommandExitError, e.exitCode)
}
let h = await a.commands.run('sleep 1; echo bg', { background: true })
log('listed command:', (await a.commands.list()).some((p) => p.pid === h.pid))
log('wait:', (await h.wait()).stdout.trim())
h = await a.commands.run('sleep 1; echo later', { background: true })
log('connect:', (await (await a.commands.connect(h.pid)).wait()).stdout.trim())
h = await a.commands.run('sleep 600', { background: true })
log('kill:', await h.kill())
h = await a.commands.run('read line; echo got $line', { background: true, stdin: true })
await a.commands.sendStdin(h.pid, 'hi\n')
log('stdin:', (await h.wait()).stdout.trim())
const env = await a.commands.run('echo $GREETING; pwd', { envs: { GREETING: 'hola' }, cwd: '/tmp' })
log('envs and cwd:', env.stdout.trim().split('\n').join(' '))
log('js context:', (await a.runCode('const q = 21; q * 2', { language: 'js' })).text)
log('js envs:', (await a.runCode('process.env.ONE', { language: 'js', envs: { ONE: 'uno' } })).text)
const ctx = await a.createCodeContext({ language: 'js' })
log('own context:', ctx.language, (await a.runCode('typeof q', { context: ctx })).text)

await a.setTimeout(240_000)
const info = await a.getInfo()
log('info:', info.state, JSON.stringify(info.metadata), info.templateId)
log('running:', await a.isRunning())
const listed = await Sandbox.list({ query: { metadata: { suite: 'js' } } }).nextItems()
log('listed:', listed.map((s) => s.sandboxId).sort().join() === [a.sandboxId, b.sandboxId].sort().join())
log('pause:', await a.pause())
log('paused:', (await Sandbox.getInfo(a.sandboxId)).state)
const c = await Sandbox.connect(a.sandboxId)
log('resumed:', (await c.runCode('x')).text)
log('kill:', await a.kill(), await Sandbox.kill(a.sandboxId), await b.kill())
log('running after kill:', await a.isRunning())
"#;

const JS_EXPECTED: &str = r#"
created two: true
value: 42
isolated: False
stdout: 0,1,2
streamed: true
error: KeyError 'k' true
png: PNG
html: true true
read: from js
binary: true
list: js.bin,js.txt
exists: true false
missing: true
command: out err 0 out
exit code: true 5
listed command: true
wait: bg
connect: later
kill: true
stdin: got hi
envs and cwd: hola /tmp
js context: 42
js envs: uno
own context: javascript undefined
info: running {"suite":"js"} code-interpreter-v1
running: true
listed: true
pause: true
paused: paused
resumed: 40
kill: true false true
running after kill: false
"#;

#[test]
fn the_js_sdk_runs_unchanged() {
    let (server, key) = server(&[]);
    let _close = CloseAll {
        server: &server,
        key: key.clone(),
    };
    check_script(
        Path::new("node"),
        "e2b_js.mjs",
        JS_SCRIPT,
        JS_EXPECTED,
        &server,
        &key,
    );
    nothing_left(&server, "e2b");
}
