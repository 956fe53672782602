'use strict';
// Sandpit's JavaScript kernel: state kept between requests, like a notebook.
//
// Started by a small shell script (see lib.rs) as `node kernel.js DIR` with fd 3 = the exec's
// stdout (frames), fd 4 = the exec's stdin (requests), fd 5 = the exec's stderr (fatal kernel
// errors only), fd 0 = /dev/null, and fds 1 and 2 = the FIFOs DIR/stdout and DIR/stderr, so all
// user output (console, process.stdout, child processes) goes through them. A worker thread reads
// the FIFOs and is the only writer of frames, so output streams even while the main thread is
// busy; a sentinel written into each FIFO after a request proves both are drained before `done`.
//
// Code runs in the main realm through the inspector's `Runtime.evaluate` in REPL mode: top-level
// `await` works, `let`/`const`/`class`/`function` declarations persist (and may be declared again
// in a later request, as in a browser console), and the value of the last expression comes back.
// The synchronous part runs under vm's `breakOnSigint`, so SIGINT interrupts a busy loop; while
// the request awaits, SIGINT ends the wait.
const fs = require('fs');
const net = require('net');
const path = require('path');
const { isMainThread, Worker, parentPort, workerData } = require('worker_threads');

const SENTINEL = Buffer.from('\0SANDPIT-DRAINED\0');
const LIMIT = Number(process.env.SANDPIT_OUTPUT_LIMIT) > 0 ? Number(process.env.SANDPIT_OUTPUT_LIMIT) : 1 << 20;
const PAUSE = new Int32Array(new SharedArrayBuffer(4));

/** Writes all of `buf` to `fd`, waiting out a full non-blocking pipe. */
function writeAll(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      if (e.code === 'EAGAIN' || e.code === 'EINTR') {
        Atomics.wait(PAUSE, 0, 0, 1);
        continue;
      }
      throw e;
    }
  }
}

if (!isMainThread) {
  pumpThread();
} else {
  mainThread();
}

/** The worker: forwards the two FIFOs as stream frames and writes every frame. */
function pumpThread() {
  const { proto, dir } = workerData;
  const send = (frame) => writeAll(proto, Buffer.from(JSON.stringify(frame) + '\n'));
  const EMPTY = Buffer.alloc(0);
  const pumps = ['stdout', 'stderr'].map((name) => {
    const fd = fs.openSync(path.join(dir, name), fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const p = { name, sent: 0, flagged: false, tail: EMPTY, decoder: new TextDecoder('utf-8'), drained: false };
    const sock = new net.Socket({ fd, readable: true, writable: false });
    sock.on('data', (data) => take(p, data));
    sock.on('error', () => {});
    return p;
  });
  let done = null;
  let waitFor = [];
  let timer = null;

  function forward(p, chunk) {
    if (!chunk.length) return;
    const room = LIMIT - p.sent;
    p.sent += chunk.length;
    if (room <= 0) {
      if (!p.flagged) {
        p.flagged = true;
        send({ type: 'stream', name: p.name, text: p.decoder.decode(), truncated: true });
      }
      return;
    }
    if (chunk.length <= room) {
      const text = p.decoder.decode(chunk, { stream: true });
      if (text) send({ type: 'stream', name: p.name, text });
      return;
    }
    // Cut at a character boundary.
    let cut = room;
    while (cut > 0 && (chunk[cut] & 0xc0) === 0x80) cut--;
    p.flagged = true;
    send({ type: 'stream', name: p.name, text: p.decoder.decode(chunk.subarray(0, cut)), truncated: true });
  }

  function take(p, data) {
    if (p.tail.length) data = Buffer.concat([p.tail, data]);
    p.tail = EMPTY;
    for (;;) {
      const at = data.indexOf(SENTINEL);
      if (at < 0) {
        // Keep a possible partial sentinel for the next read.
        let keep = 0;
        for (let k = Math.min(SENTINEL.length - 1, data.length); k > 0; k--) {
          if (data.subarray(data.length - k).equals(SENTINEL.subarray(0, k))) {
            keep = k;
            break;
          }
        }
        forward(p, data.subarray(0, data.length - keep));
        p.tail = Buffer.from(data.subarray(data.length - keep));
        return;
      }
      forward(p, data.subarray(0, at));
      const rest = p.decoder.decode();
      if (rest && !p.flagged) send({ type: 'stream', name: p.name, text: rest });
      p.sent = 0;
      p.flagged = false;
      p.drained = true;
      data = data.subarray(at + SENTINEL.length);
      maybeDone();
    }
  }

  function maybeDone() {
    if (done && pumps.every((p) => p.drained || !waitFor.includes(p.name))) finish();
  }

  function finish() {
    clearTimeout(timer);
    for (const p of pumps) p.drained = false;
    const frame = done;
    done = null;
    if (frame) send(frame);
  }

  parentPort.on('message', (m) => {
    if (m.frame) send(m.frame);
    if (m.done) {
      done = m.done;
      waitFor = m.wait;
      timer = setTimeout(finish, 5000);
      maybeDone();
    }
  });
  parentPort.postMessage({ opened: true });
}

function mainThread() {
  const dir = process.argv[2];
  process.argv.splice(2);
  // Reopen the inherited channels close-on-exec, so that child processes never hold them.
  const reopen = (fd, flags) => {
    try {
      const copy = fs.openSync(`/proc/self/fd/${fd}`, flags);
      fs.closeSync(fd);
      return copy;
    } catch {
      return fd;
    }
  };
  const PROTO = reopen(3, fs.constants.O_WRONLY);
  const REQUESTS = reopen(4, fs.constants.O_RDONLY);
  const FATAL = reopen(5, fs.constants.O_WRONLY);
  const fatal = (what) => {
    try {
      writeAll(FATAL, Buffer.from(`sandpit kernel: ${what && what.stack ? what.stack : what}\n`));
    } finally {
      process.exit(70);
    }
  };

  // process.stdout and process.stderr write synchronously to fds 1 and 2 (the FIFOs), as they
  // would to files: output keeps its order with child processes' and never piles up in memory.
  // Defined before anything touches console, which binds to them on first use.
  const { Writable } = require('stream');
  for (const [name, fd] of [['stdout', 1], ['stderr', 2]]) {
    const stream = new Writable({
      write(chunk, _encoding, cb) {
        try {
          writeAll(fd, chunk);
          cb();
        } catch (e) {
          cb(e);
        }
      },
    });
    Object.assign(stream, { fd, isTTY: false, _type: 'fs', _isStdio: true });
    stream.destroySoon = stream.destroy;
    stream._destroy = (err, cb) => cb(err);
    stream.on('error', () => {});
    Object.defineProperty(process, name, { configurable: true, enumerable: true, get: () => stream });
  }

  const util = require('util');
  const vm = require('vm');
  const inspector = require('inspector');
  const { createRequire, isBuiltin } = require('module');
  const { pathToFileURL } = require('url');

  const cwd = process.cwd();
  const main = path.join(cwd, '[sandpit]');
  globalThis.require = createRequire(main);
  globalThis.__filename = main;
  globalThis.__dirname = cwd;

  const GO = Symbol.for('sandpit.go');
  const TAKE = Symbol.for('sandpit.take');
  const IMPORT = Symbol.for('sandpit.import');
  for (const key of [GO, TAKE, IMPORT]) {
    Object.defineProperty(globalThis, key, { value: null, writable: true, enumerable: false, configurable: true });
  }
  const GO_SCRIPT = new vm.Script('globalThis[Symbol.for("sandpit.go")]()', { filename: 'sandpit-kernel' });
  // `import()` in evaluated code has no module to resolve from: the kernel imports for it, with
  // bare names resolved from the working directory's node_modules.
  globalThis[IMPORT] = (specifier) => {
    let spec = String(specifier);
    if (!/^(node:|file:|data:)/.test(spec) && !isBuiltin(spec)) {
      if (/^\.{0,2}\//.test(spec)) {
        spec = pathToFileURL(path.resolve(process.cwd(), spec)).href;
      } else {
        try {
          spec = pathToFileURL(createRequire(path.join(process.cwd(), '[sandpit]')).resolve(spec)).href;
        } catch {}
      }
    }
    return import(spec);
  };
  const IMPORT_CALL = 'globalThis[Symbol.for("sandpit.import")]';
  let acorn;

  /** Static `import` declarations become `const ... = await import(...)`, and `import()` calls
   * go through the kernel. Code without them, or that does not parse, is left as it is. */
  function rewriteImports(code) {
    if (!/\bimport\b/.test(code)) return code;
    try {
      acorn = acorn || require('acorn');
    } catch {
      return code;
    }
    let ast;
    try {
      ast = acorn.parse(code, {
        ecmaVersion: 'latest',
        sourceType: 'script',
        allowImportExportEverywhere: true,
        allowAwaitOutsideFunction: true,
        allowHashBang: true,
      });
    } catch {
      return code;
    }
    const edits = [];
    const key = (n) => (n.type === 'Identifier' ? n.name : JSON.stringify(n.value));
    const walk = (node) => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (!node || typeof node.type !== 'string') return;
      if (node.type === 'ImportDeclaration') {
        const call = `await ${IMPORT_CALL}(${JSON.stringify(node.source.value)})`;
        const ns = node.specifiers.find((s) => s.type === 'ImportNamespaceSpecifier');
        const named = node.specifiers
          .filter((s) => s.type !== 'ImportNamespaceSpecifier')
          .map((s) => {
            if (s.type === 'ImportDefaultSpecifier') return `default: ${s.local.name}`;
            const from = key(s.imported);
            return from === s.local.name ? from : `${from}: ${s.local.name}`;
          });
        let text;
        if (!node.specifiers.length) text = `${call};`;
        else if (ns && named.length) text = `const ${ns.local.name} = ${call}, {${named.join(', ')}} = ${ns.local.name};`;
        else if (ns) text = `const ${ns.local.name} = ${call};`;
        else text = `const {${named.join(', ')}} = ${call};`;
        // Keep line numbers.
        text += '\n'.repeat((code.slice(node.start, node.end).match(/\n/g) || []).length);
        edits.push([node.start, node.end, text]);
        return;
      }
      if (node.type === 'ImportExpression' && code.startsWith('import', node.start)) {
        edits.push([node.start, node.start + 6, IMPORT_CALL]);
      }
      for (const k of Object.keys(node)) {
        const v = node[k];
        if (v && typeof v === 'object') walk(v);
      }
    };
    walk(ast);
    edits.sort((a, b) => b[0] - a[0]);
    for (const [start, end, text] of edits) code = code.slice(0, start) + text + code.slice(end);
    return code;
  }

  const session = new inspector.Session();
  session.connect();

  const worker = new Worker(__filename, { workerData: { proto: PROTO, dir }, stdout: true, stderr: true });
  const toWorker = (m) => worker.postMessage(m);
  worker.on('error', fatal);
  worker.on('exit', () => fatal('the output thread stopped'));
  worker.once('message', () => {
    for (const name of ['stdout', 'stderr']) {
      try {
        fs.unlinkSync(path.join(dir, name));
      } catch {}
    }
    try {
      fs.rmdirSync(dir);
    } catch {}
    toWorker({ frame: { type: 'ready', pid: process.pid, flavour: 'node-repl' } });
    listen();
  });

  const INTERRUPTED = {
    name: 'Interrupted',
    value: 'the code was interrupted (SIGINT)',
    traceback: ['Interrupted: the code was interrupted (SIGINT)'],
  };
  let seq = 0;
  let current = null;

  // A SIGINT while idle is ignored; while a request awaits, it ends the wait. (While its
  // synchronous part runs, vm's breakOnSigint handles the signal instead of this listener.)
  process.on('SIGINT', () => {
    if (current && current.wake) current.wake({ interrupted: true });
  });
  const late = (err, what) => {
    if (current && !current.closing) {
      if (!current.error) current.error = errorOf(err);
    } else {
      // After its request ended: report it with whatever the next request prints.
      const e = errorOf(err);
      process.stderr.write(`${what} (after the request that started it ended):\n${e.traceback.join('\n')}\n`);
    }
  };
  process.on('unhandledRejection', (reason) => late(reason, 'Unhandled promise rejection'));
  process.on('uncaughtException', (err) => late(err, 'Uncaught exception'));

  /** The frames of the kernel itself in a stack: from the inspector call on. */
  const KERNEL_FRAME = /\((node:inspector|sandpit-kernel|evalmachine\.<anonymous>)|at sigintHandlersWrap|at Script\.runInThisContext|at Object\.runInThisContext/;
  function cleanStack(stack) {
    const lines = String(stack).split('\n');
    const out = [];
    for (const line of lines) {
      if (KERNEL_FRAME.test(line) || line.includes(__filename)) break;
      out.push(line);
    }
    return out;
  }

  function errorOf(e) {
    try {
      if (e !== null && (typeof e === 'object' || typeof e === 'function') && 'message' in e) {
        const name = String(e.name || (e.constructor && e.constructor.name) || 'Error');
        const value = String(e.message);
        const traceback = typeof e.stack === 'string' ? cleanStack(e.stack) : [`${name}: ${value}`];
        return { name, value, traceback };
      }
      const value = util.inspect(e);
      return { name: 'Uncaught', value, traceback: [`Uncaught ${value}`] };
    } catch (inner) {
      return { name: 'Error', value: 'an exception that cannot be shown', traceback: [] };
    }
  }

  /** The value a RemoteObject stands for. */
  function materialize(remote) {
    if (!remote) return undefined;
    if (remote.objectId) {
      let out;
      globalThis[TAKE] = (v) => {
        out = v;
      };
      try {
        session.post(
          'Runtime.callFunctionOn',
          {
            objectId: remote.objectId,
            functionDeclaration: 'function () { "use strict"; globalThis[Symbol.for("sandpit.take")](this); }',
            silent: true,
          },
          () => {}
        );
      } finally {
        globalThis[TAKE] = null;
      }
      return out;
    }
    if ('value' in remote) return remote.value;
    if (remote.unserializableValue) {
      const u = remote.unserializableValue;
      return remote.type === 'bigint' ? BigInt(u.slice(0, -1)) : Number(u);
    }
    return undefined;
  }

  /** Waits for `promise`, or for a SIGINT. */
  function wait(req, promise) {
    return new Promise((resolve) => {
      req.wake = resolve;
      promise.then(resolve, (error) => resolve({ thrown: error }));
    }).finally(() => {
      req.wake = null;
    });
  }

  function evaluate(code, n) {
    return new Promise((resolve) => {
      globalThis[GO] = () =>
        session.post(
          'Runtime.evaluate',
          { expression: `${rewriteImports(code)}\n//# sourceURL=cell-${n}`, replMode: true, objectGroup: 'sandpit', silent: true },
          (err, res) => resolve(err ? { thrown: err } : { res })
        );
      try {
        GO_SCRIPT.runInThisContext({ breakOnSigint: true });
      } catch (e) {
        resolve(e && e.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED' ? { interrupted: true } : { thrown: e });
      } finally {
        globalThis[GO] = null;
      }
    });
  }

  async function handle(code) {
    const n = ++seq;
    const req = { n, error: null, wake: null, closing: false };
    current = req;
    try {
      let out = await wait(req, evaluate(code, n));
      let value;
      if (out.res) {
        const { result, exceptionDetails } = out.res;
        if (exceptionDetails) {
          const thrown = exceptionDetails.exception ? materialize(exceptionDetails.exception) : undefined;
          out = { thrown: thrown === undefined ? new Error(exceptionDetails.text) : thrown, details: exceptionDetails };
        } else {
          value = materialize(result);
          if (util.types.isPromise(value)) out = await wait(req, value.then((v) => ({ value: v })));
          else out = { value };
        }
      }
      if (out.interrupted) {
        req.error = INTERRUPTED;
      } else if ('thrown' in out) {
        const e = errorOf(out.thrown);
        const d = out.details;
        // A syntax error's stack does not say where in the cell it is.
        if (d && out.thrown instanceof SyntaxError && !e.traceback.some((l) => l.includes(`cell-${n}`))) {
          // Past the code's end means in the sourceURL line the kernel added: its last line.
          const lines = code.split('\n');
          const line = Math.min(d.lineNumber + 1, lines.length);
          const column = line === d.lineNumber + 1 ? d.columnNumber + 1 : lines[line - 1].length + 1;
          e.traceback.push(`    at cell-${n}:${line}:${column}`);
        }
        req.error = req.error || e;
      } else if (out.value !== undefined) {
        toWorker({ frame: { type: 'result', data: { 'text/plain': util.inspect(out.value) }, main: true } });
      }
    } catch (e) {
      req.error = req.error || errorOf(e);
    }
    // Let rejections left unhandled by this request be reported with it.
    await new Promise((resolve) => setImmediate(resolve));
    req.closing = true;
    current = null;
    session.post('Runtime.releaseObjectGroup', { objectGroup: 'sandpit' }, () => {});
    // Wait only for the streams that took their sentinel (the code may have closed fd 1 or 2).
    const streams = [];
    for (const [fd, name] of [[1, 'stdout'], [2, 'stderr']]) {
      try {
        writeAll(fd, SENTINEL);
        streams.push(name);
      } catch {}
    }
    if (req.error) toWorker({ frame: { type: 'error', ...req.error } });
    toWorker({ done: { type: 'done' }, wait: streams });
  }

  function listen() {
    // The session's environment comes with each request: variables set since the last one are
    // set, and the ones it set before that are gone now are removed.
    let managed = new Set();
    const applyEnv = (env) => {
      if (!env) return;
      for (const key of managed) if (!(key in env)) delete process.env[key];
      for (const [key, value] of Object.entries(env)) process.env[key] = String(value);
      managed = new Set(Object.keys(env));
    };
    const input = new net.Socket({ fd: REQUESTS, readable: true, writable: false });
    input.setEncoding('utf8');
    let buffered = '';
    let queue = Promise.resolve();
    input.on('data', (text) => {
      buffered += text;
      let nl;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let request;
        try {
          request = JSON.parse(line);
        } catch {
          continue;
        }
        const code = typeof request.code === 'string' ? request.code : '';
        const env = request.env && typeof request.env === 'object' ? request.env : null;
        queue = queue.then(() => { applyEnv(env); return handle(code); }).catch(fatal);
      }
    });
    input.on('end', () => process.exit(0));
    input.on('error', () => process.exit(0));
  }
}
