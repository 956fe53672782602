# Sandpit's Python kernel: state kept between requests, like a notebook.
# Protocol: one JSON request per line on stdin ({"code": ...}); JSON frames, one per line, on
# the process's original stdout: ready, stream, result, error, done. User output (fd 1 and 2,
# so print, C extensions and subprocesses alike) goes through pipes and comes back as stream
# frames; a sentinel written after each request proves both pipes are drained before `done`.
import base64, hashlib, io, json, os, signal, sys, threading, time, traceback, warnings

PROTO = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
LOCK = threading.Lock()
SENTINEL = b"\x00SANDPIT-DRAINED\x00"
LIMIT = int(os.environ.get("SANDPIT_OUTPUT_LIMIT", str(1 << 20)))
# A process forked by user code is a copy of the kernel: it must never speak on the channel,
# and it leaves as soon as it comes back to the kernel's loop.
KERNEL_PID = os.getpid()


def send(frame):
    if os.getpid() != KERNEL_PID:
        return
    line = json.dumps(frame)
    with LOCK:
        PROTO.write(line + "\n")
        PROTO.flush()


class Pump(threading.Thread):
    """Forwards one redirected fd as stream frames, up to the output limit per request."""

    def __init__(self, fd, name):
        super().__init__(daemon=True)
        read, write = os.pipe()
        os.dup2(write, fd)
        os.close(write)
        self.read, self.name = read, name
        self.drained = threading.Event()
        self.sent = 0
        self.tail = b""

    def run(self):
        while True:
            data = os.read(self.read, 65536)
            if not data:
                return
            data = self.tail + data
            self.tail = b""
            while data:
                at = data.find(SENTINEL)
                if at < 0:
                    # Keep a possible partial sentinel for the next read.
                    keep = next((k for k in range(len(SENTINEL) - 1, 0, -1) if data.endswith(SENTINEL[:k])), 0)
                    chunk, self.tail = (data[:-keep], data[-keep:]) if keep else (data, b"")
                    self.forward(chunk)
                    break
                self.forward(data[:at])
                data = data[at + len(SENTINEL):]
                self.drained.set()

    def forward(self, chunk):
        if not chunk:
            return
        room = LIMIT - self.sent
        if room <= 0:
            self.sent += len(chunk)
            return
        part = chunk[:room]
        self.sent += len(chunk)
        send({"type": "stream", "name": self.name, "text": part.decode("utf-8", "replace"), "truncated": len(chunk) > room})


sys.stdout.flush()
sys.stderr.flush()
PUMPS = [Pump(1, "stdout"), Pump(2, "stderr")]
for p in PUMPS:
    p.start()
sys.stdout = io.TextIOWrapper(os.fdopen(1, "wb", buffering=0), encoding="utf-8", errors="replace", line_buffering=True, write_through=True)
sys.stderr = io.TextIOWrapper(os.fdopen(2, "wb", buffering=0), encoding="utf-8", errors="replace", line_buffering=True, write_through=True)
warnings.filterwarnings("ignore", message=".*non-interactive.*")
# A process started by the engine may inherit SIGINT ignored; the interrupt must raise.
signal.signal(signal.SIGINT, signal.default_int_handler)


def drain():
    sys.stdout.flush()
    sys.stderr.flush()
    for p in PUMPS:
        p.drained.clear()
    os.write(1, SENTINEL)
    os.write(2, SENTINEL)
    for p in PUMPS:
        p.drained.wait(5)
        p.sent = 0


def bundle_of(data):
    out = {}
    for mime, value in data.items():
        if isinstance(value, bytes):
            value = base64.b64encode(value).decode()
        elif mime == "image/png" and isinstance(value, str):
            value = value.strip()
        out[mime] = value
    return out


# Figures stay open across requests, as in Jupyter (close_figures=False): a later request can
# still change or save them. A request returns the figures it created or changed.
SHOWN = {}  # figure number -> digest of the PNG last returned


def send_figures():
    if "matplotlib.pyplot" not in sys.modules:
        return
    from matplotlib._pylab_helpers import Gcf

    open_now = set()
    for manager in Gcf.get_all_fig_managers():
        num, fig = manager.num, manager.canvas.figure
        open_now.add(num)
        if num in SHOWN and not fig.stale:
            continue
        buf = io.BytesIO()
        fig.savefig(buf, format="png", bbox_inches="tight")
        png = buf.getvalue()
        digest = hashlib.sha256(png).hexdigest()
        if SHOWN.get(num) == digest:
            continue
        SHOWN[num] = digest
        send({"type": "result", "data": {"image/png": base64.b64encode(png).decode(), "text/plain": repr(fig)}})
    for num in set(SHOWN) - open_now:
        del SHOWN[num]


def bare_ipython_package():
    """IPython/__init__ imports the terminal front end (prompt_toolkit, ~12 MiB) that a kernel
    behind a pipe never uses: load the package bare, and run its __init__ only when code asks
    for something it defines (`IPython.get_ipython`, `IPython.embed`, ...)."""
    import importlib.util

    spec = importlib.util.find_spec("IPython")
    if spec is None or "IPython" in sys.modules:
        return
    pkg = importlib.util.module_from_spec(spec)

    def __getattr__(name):
        if name.startswith("__"):
            raise AttributeError(name)
        try:  # `from IPython import display` names a submodule
            return importlib.import_module("IPython." + name)
        except ModuleNotFoundError:
            pass
        pkg.__dict__.pop("__getattr__", None)
        spec.loader.exec_module(pkg)
        return getattr(pkg, name)

    pkg.__getattr__ = __getattr__
    sys.modules["IPython"] = pkg
    # IPython's own modules import this one from the package root.
    from IPython.core.getipython import get_ipython

    pkg.get_ipython = get_ipython


def make_ipython():
    # A kernel behind a pipe never completes names: keeping jedi out saves about 11 MiB per session.
    sys.modules.setdefault("jedi", None)
    bare_ipython_package()
    from IPython.core.displayhook import DisplayHook
    from IPython.core.displaypub import DisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    class Hook(DisplayHook):
        def write_output_prompt(self):
            pass

        def write_format_data(self, format_dict, md_dict=None):
            # The cell's own value (what E2B calls the main result), not a display() call.
            send({"type": "result", "data": bundle_of(format_dict), "main": True})

        def finish_displayhook(self):
            pass

    class Publisher(DisplayPublisher):
        def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs):
            send({"type": "result", "data": bundle_of(data)})

        def clear_output(self, wait=False):
            pass

    shell = InteractiveShell.instance(displayhook_class=Hook, display_pub_class=Publisher, colors="NoColor")
    shell.display_pub = Publisher(shell=shell)
    errors = []

    def showtraceback(etype, evalue, stb):
        errors.append(stb)

    shell._showtraceback = showtraceback

    def run(code):
        errors.clear()
        result = shell.run_cell(code, store_history=True)
        err = result.error_before_exec or result.error_in_exec
        if err is not None:
            stb = errors[-1] if errors else traceback.format_exception(type(err), err, err.__traceback__)
            return {"name": type(err).__name__, "value": str(err), "traceback": [l for l in "\n".join(stb).split("\n")]}
        return None

    return run


def make_plain():
    import ast

    scope = {"__name__": "__main__", "__builtins__": __builtins__}

    def run(code):
        try:
            tree = ast.parse(code, "<cell>", "exec")
            last = None
            if tree.body and isinstance(tree.body[-1], ast.Expr):
                last = ast.Expression(tree.body.pop().value)
            exec(compile(tree, "<cell>", "exec"), scope)
            if last is not None:
                value = eval(compile(last, "<cell>", "eval"), scope)
                if value is not None:
                    data = {"text/plain": repr(value)}
                    for mime, attr in (("text/html", "_repr_html_"), ("application/json", "_repr_json_")):
                        f = getattr(value, attr, None)
                        if callable(f):
                            data[mime] = f()
                    send({"type": "result", "data": data, "main": True})
        except BaseException as e:  # noqa: BLE001 - report everything, KeyboardInterrupt included
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            return {"name": type(e).__name__, "value": str(e), "traceback": "".join(tb).rstrip("\n").split("\n")}
        return None

    return run


try:
    RUN, FLAVOUR = make_ipython(), "ipython"
except Exception:  # noqa: BLE001 - no IPython in this image
    RUN, FLAVOUR = make_plain(), "plain"

MANAGED_ENV = set()


def apply_env(env):
    """The session's environment comes with each request: variables set since the last one are
    set, and the ones it set before that are gone now are removed."""
    global MANAGED_ENV
    if not isinstance(env, dict):
        return
    for key in MANAGED_ENV - set(env):
        os.environ.pop(key, None)
    for key, value in env.items():
        os.environ[str(key)] = str(value)
    MANAGED_ENV = set(env)


send({"type": "ready", "pid": os.getpid(), "flavour": FLAVOUR})
STDIN = io.TextIOWrapper(os.fdopen(0, "rb", buffering=0), encoding="utf-8")
while True:
    try:
        line = STDIN.readline()
    except KeyboardInterrupt:
        continue
    if not line:
        break
    try:
        request = json.loads(line)
    except ValueError:
        continue
    started = time.monotonic()
    apply_env(request.get("env"))
    try:
        error = RUN(request.get("code", ""))
        if os.getpid() != KERNEL_PID:
            os._exit(0)
        send_figures()
    except KeyboardInterrupt:
        error = {"name": "KeyboardInterrupt", "value": "", "traceback": ["KeyboardInterrupt"]}
    try:
        drain()
    except KeyboardInterrupt:
        pass
    if error is not None:
        send({"type": "error", **error})
    send({"type": "done", "duration": time.monotonic() - started})
