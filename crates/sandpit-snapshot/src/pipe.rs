//! Bridges between async streams and the blocking tar and gzip code, with bounded channels
//! so that memory stays a few chunks whatever the archive's size.

use std::io::{Read, Write};

use bytes::Bytes;
use tokio::sync::mpsc;

/// Chunks in flight between two sides (each at most [`CHUNK`] bytes).
pub(crate) const DEPTH: usize = 8;
/// The size of chunks a [`ChannelWriter`] sends.
pub(crate) const CHUNK: usize = 256 << 10;

/// Reads, on a blocking thread, the chunks an async task sends.
pub(crate) struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelReader {
    pub(crate) fn new(rx: mpsc::Receiver<std::io::Result<Bytes>>) -> Self {
        ChannelReader {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
}

/// Sends, from a blocking thread, what is written as chunks of [`CHUNK`] bytes to an async
/// task; [`Sink::poison`] sends an error instead of the end.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<std::io::Result<Bytes>>,
    buf: Vec<u8>,
    poisoned: bool,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<std::io::Result<Bytes>>) -> Self {
        ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
            poisoned: false,
        }
    }

    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the receiving side stopped")
        })
    }
}

/// A writer that can tell its reader the stream failed, so that what was written so far is
/// never taken as complete (and nothing written afterwards, such as an end marker a dropped
/// tar builder writes, goes through).
pub(crate) trait Sink: Write {
    /// Sends the failure and refuses every later write.
    fn poison(&mut self, reason: &str);
}

impl Sink for ChannelWriter {
    fn poison(&mut self, reason: &str) {
        if !self.poisoned {
            self.poisoned = true;
            self.buf.clear();
            let _ = self
                .tx
                .blocking_send(Err(std::io::Error::other(reason.to_string())));
        }
    }
}

impl Sink for Vec<u8> {
    fn poison(&mut self, _reason: &str) {}
}

impl<W: Sink> Sink for Hashing<W> {
    fn poison(&mut self, reason: &str) {
        self.inner.poison(reason)
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if self.poisoned {
            return Err(std::io::Error::other("the stream failed"));
        }
        let room = CHUNK - self.buf.len();
        let n = data.len().min(room);
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.poisoned {
            return Err(std::io::Error::other("the stream failed"));
        }
        self.send()
    }
}

/// Counts and hashes (SHA-256) what passes through to `inner`.
pub(crate) struct Hashing<W> {
    pub inner: W,
    pub digest: ring::digest::Context,
    pub count: u64,
}

impl<W> Hashing<W> {
    pub(crate) fn new(inner: W) -> Self {
        Hashing {
            inner,
            digest: ring::digest::Context::new(&ring::digest::SHA256),
            count: 0,
        }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(data)?;
        self.digest.update(&data[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.digest.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

/// Lowercase hex of a digest.
pub(crate) fn hex(digest: ring::digest::Digest) -> String {
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}
