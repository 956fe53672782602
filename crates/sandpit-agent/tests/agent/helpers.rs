//! Starts the agent binary as a child and speaks frames to it.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use sandpit_agent::frame::{self, Decoder, SYNC_ZEROS};
use sandpit_agent::protocol::*;

/// How long a test waits for one event before it fails.
pub const PATIENCE: Duration = Duration::from_secs(15);

/// An event and its payload.
pub type Got = (EventBody, Vec<u8>);

/// A running agent.
pub struct Agent {
    child: Child,
    stdin: Option<ChildStdin>,
    events: Receiver<(u64, Got)>,
    held: HashMap<u64, VecDeque<Got>>,
    next: u64,
}

impl Agent {
    /// Starts the agent in an IPC namespace of its own (a reset removes every IPC object it
    /// sees) and says hello.
    pub fn start() -> Agent {
        let mut agent = Agent::start_silent();
        agent.hello();
        agent
    }

    /// Starts the agent without a hello.
    pub fn start_silent() -> Agent {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandpit-agent"));
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        unsafe {
            cmd.pre_exec(|| {
                // IPC and network namespaces of its own: a reset removes every IPC object the
                // agent sees, and its socket's name is per network namespace.
                if libc::unshare(libc::CLONE_NEWIPC | libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .expect("the agent starts (the tests run as root)");
        Agent::around(child_pipes(&mut child), child)
    }

    /// Decodes the events of `stdout` on a thread of their own.
    fn around((stdin, mut stdout): (ChildStdin, ChildStdout), child: Child) -> Agent {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut decoder = Decoder::new();
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = match stdout.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(n) => n,
                };
                decoder.push(&buf[..n]);
                while let Some(frame) = decoder.next_frame() {
                    // The zero run before a hello answer shows up as skipped bytes.
                    let Ok(frame) = frame else { continue };
                    let event: Event = frame.message().expect("the agent sends events");
                    if tx.send((event.call, (event.body, frame.payload))).is_err() {
                        return;
                    }
                }
            }
        });
        Agent {
            stdin: Some(stdin),
            child,
            events: rx,
            held: HashMap::new(),
            next: 1000,
        }
    }

    /// A second connection to this agent through `sandpit-agent connect` (run in the agent's
    /// network namespace, as `user`), not yet said hello.
    pub fn connect_as(&self, user: Ids) -> Agent {
        let netns = std::fs::File::open(format!("/proc/{}/ns/net", self.pid()))
            .expect("the agent's network namespace");
        let netns = std::os::fd::IntoRawFd::into_raw_fd(netns);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sandpit-agent"));
        cmd.arg("connect")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(netns, libc::CLONE_NEWNET) != 0
                    || libc::setgid(user.gid) != 0
                    || libc::setuid(user.uid) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().expect("sandpit-agent connect starts");
        unsafe { libc::close(netns) };
        let mut connection = Agent::around(child_pipes(&mut child), child);
        // As a host that joins a stream mid-way does: the zero run first.
        connection.send_raw(&frame::resync_prefix());
        connection
    }

    /// True when the process behind this connection (the agent, or a `connect` relay) ends
    /// within `wait`.
    pub fn ends_within(&mut self, wait: Duration) -> bool {
        let until = Instant::now() + wait;
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// The agent's pid on the host.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Opens the connection; the answer.
    pub fn hello(&mut self) -> HelloReply {
        let call = self.send(Op::Hello(Hello {
            version: PROTOCOL_VERSION,
            token: "t0k3n".into(),
        }));
        match self.next_event(call).0 {
            EventBody::Hello(reply) => {
                assert_eq!(reply.token, "t0k3n");
                reply
            }
            other => panic!("hello answered with {other:?}"),
        }
    }

    /// Sends a request on a new call; its id.
    pub fn send(&mut self, op: Op) -> u64 {
        self.send_with(op, &[])
    }

    /// Sends a request with a payload on a new call; its id.
    pub fn send_with(&mut self, op: Op, payload: &[u8]) -> u64 {
        self.next += 1;
        let call = self.next;
        self.send_on(call, op, payload);
        call
    }

    /// Sends a request on call `call`.
    pub fn send_on(&mut self, call: u64, op: Op, payload: &[u8]) {
        let mut bytes = Vec::new();
        frame::encode(&Request { call, op }, payload, &mut bytes);
        self.send_raw(&bytes);
    }

    /// Writes raw bytes to the agent.
    /// A write to a peer that already ended is dropped: the missing answer tells.
    pub fn send_raw(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        let _ = stdin.write_all(bytes).and_then(|()| stdin.flush());
    }

    /// Writes the zero run after which the agent's decoder trusts a frame again.
    pub fn send_sync(&mut self) {
        self.send_raw(&[0u8; SYNC_ZEROS]);
    }

    /// Closes the agent's input.
    pub fn close_input(&mut self) {
        self.stdin = None;
    }

    /// The next event of call `call`, or `None` when none comes within `wait`.
    pub fn try_next(&mut self, call: u64, wait: Duration) -> Option<Got> {
        if let Some(got) = self.held.get_mut(&call).and_then(VecDeque::pop_front) {
            return Some(got);
        }
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok((c, got)) if c == call => return Some(got),
                Ok((c, got)) => self.held.entry(c).or_default().push_back(got),
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("the agent's output ended (did it crash? see its log above)")
                }
            }
        }
    }

    /// The next event of call `call`.
    pub fn next_event(&mut self, call: u64) -> Got {
        self.try_next(call, PATIENCE)
            .unwrap_or_else(|| panic!("no event for call {call} within {PATIENCE:?}"))
    }

    /// Every event of call `call` up to its final one.
    pub fn finish(&mut self, call: u64) -> Vec<Got> {
        let mut out = Vec::new();
        loop {
            let got = self.next_event(call);
            let last = got.0.is_final();
            out.push(got);
            if last {
                return out;
            }
        }
    }

    /// Sends `op` and returns its one (final) answer.
    pub fn ask(&mut self, op: Op) -> EventBody {
        let call = self.send(op);
        let events = self.finish(call);
        assert_eq!(events.len(), 1, "one answer expected: {events:?}");
        events.into_iter().next().expect("one").0
    }

    /// Starts a process; (call, pid). Panics when it does not start.
    pub fn spawn(&mut self, spec: Spawn) -> (u64, u32) {
        let call = self.send(Op::Spawn(spec));
        match self.next_event(call).0 {
            EventBody::Started { pid } => (call, pid),
            other => panic!("spawn answered with {other:?}"),
        }
    }

    /// Collects a spawn's output until its `Exited`.
    pub fn collect(&mut self, call: u64) -> Ran {
        let mut ran = Ran::default();
        for (body, payload) in self.finish(call) {
            match body {
                EventBody::Output {
                    stream: Stream::Stdout,
                    ..
                } => ran.stdout.extend(payload),
                EventBody::Output {
                    stream: Stream::Stderr,
                    ..
                } => ran.stderr.extend(payload),
                EventBody::Exited(exit) => ran.exit = Some(exit),
                other => panic!("unexpected event {other:?}"),
            }
        }
        ran
    }

    /// Runs `argv` as root in `/` and collects it.
    pub fn run(&mut self, argv: &[&str]) -> Ran {
        let (call, _) = self.spawn(spawn_spec(argv));
        self.collect(call)
    }

    /// Runs a shell command line as root and collects it.
    pub fn sh(&mut self, line: &str) -> Ran {
        self.run(&["/bin/sh", "-c", line])
    }

    /// A file operation as `user` beneath `root`; its answers.
    pub fn file(&mut self, root: &str, user: Ids, op: FileOp) -> Vec<Got> {
        let call = self.send(Op::File(FileRequest {
            root: root.into(),
            user,
            op,
        }));
        self.finish(call)
    }

    /// A file operation answered by one event.
    pub fn file_one(&mut self, root: &str, user: Ids, op: FileOp) -> EventBody {
        let mut got = self.file(root, user, op);
        assert_eq!(got.len(), 1, "one answer expected: {got:?}");
        got.remove(0).0
    }

    /// Writes `data` to `path` beneath `root` in frames of at most `chunk` bytes.
    pub fn write_file(
        &mut self,
        root: &str,
        user: Ids,
        path: &str,
        data: &[u8],
        chunk: usize,
    ) -> EventBody {
        let call = self.send(Op::File(FileRequest {
            root: root.into(),
            user,
            op: FileOp::Write {
                path: path.into(),
                mode: None,
                parents: true,
            },
        }));
        let pieces: Vec<&[u8]> = if data.is_empty() {
            vec![&[][..]]
        } else {
            data.chunks(chunk).collect()
        };
        let count = pieces.len();
        for (i, piece) in pieces.into_iter().enumerate() {
            self.send_on(
                call,
                Op::WriteData(WriteData {
                    eof: i + 1 == count,
                }),
                piece,
            );
        }
        let mut got = self.finish(call);
        assert_eq!(got.len(), 1, "one answer expected: {got:?}");
        got.remove(0).0
    }

    /// Reads a whole file beneath `root`, granting credit as the data comes.
    pub fn read_file(&mut self, root: &str, user: Ids, path: &str) -> Result<Vec<u8>, AgentError> {
        let call = self.send(Op::File(FileRequest {
            root: root.into(),
            user,
            op: FileOp::Read { path: path.into() },
        }));
        let mut data = Vec::new();
        loop {
            let (body, payload) = self.next_event(call);
            match body {
                EventBody::Data { eof } => {
                    if !payload.is_empty() {
                        self.send_on(
                            call,
                            Op::Credit(Credit {
                                bytes: payload.len() as u64,
                            }),
                            &[],
                        );
                    }
                    data.extend(payload);
                    if eof {
                        return Ok(data);
                    }
                }
                EventBody::Error(e) => return Err(e),
                other => panic!("read answered with {other:?}"),
            }
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // The agent outlives its input; asked to stop, it kills what it started.
        self.stdin = None;
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The standard input and output pipes of a child.
fn child_pipes(child: &mut Child) -> (ChildStdin, ChildStdout) {
    (
        child.stdin.take().expect("piped"),
        child.stdout.take().expect("piped"),
    )
}

/// What a process did.
#[derive(Debug, Default)]
pub struct Ran {
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub exit: Option<Exit>,
}

impl Ran {
    /// Standard output as text.
    pub fn out(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// How it ended.
    pub fn exit(&self) -> &Exit {
        self.exit.as_ref().expect("an Exited event")
    }
}

/// A spawn of `argv` as root in `/`, nothing else set.
pub fn spawn_spec(argv: &[&str]) -> Spawn {
    Spawn {
        argv: argv.iter().map(|a| a.to_string()).collect(),
        env: Vec::new(),
        cwd: "/".into(),
        user: Ids::ROOT,
        rlimits: Vec::new(),
        stdin: StdinMode::Null,
        timeout_ms: None,
        output_limit: None,
        detached: false,
        tag: None,
        start_only: false,
    }
}

/// The user code runs as in a sandbox.
pub const USER: Ids = Ids {
    uid: 1000,
    gid: 1000,
};

/// True while a process with this pid exists (a zombie is not counted: it ended).
pub fn exists(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z'),
        Err(_) => false,
    }
}

/// Waits until `pid` is gone; false when it still exists after `wait`.
pub fn gone_within(pid: u32, wait: Duration) -> bool {
    let until = Instant::now() + wait;
    while Instant::now() < until {
        if !exists(pid) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    !exists(pid)
}

/// A temporary folder anyone may enter (files of uid 1000 live in it).
pub fn open_tempdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temp folder");
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .expect("chmod");
    dir
}

/// The path of a temp folder as text.
pub fn path_of(dir: &tempfile::TempDir) -> String {
    dir.path().to_str().expect("utf-8").to_string()
}
