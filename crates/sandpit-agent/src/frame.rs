//! Frames on the byte stream between Sandpit and the agent.
//!
//! ```text
//! magic "SPA\x01" | header length (u32 LE) | payload length (u32 LE) | header (JSON) | payload | 0xFE 0xED
//! ```
//!
//! The header is a [`crate::protocol::Request`] or [`crate::protocol::Event`]; the payload is raw
//! bytes (output, input, file data). A reader that joins a stream mid-way (a host attaching to a
//! running agent), or whose writer died mid-frame (the agent, after a host crashed), finds the
//! next frame again: the writer first sends [`resync_prefix`], a run of zero bytes longer than
//! any frame, which completes and spoils a half-read frame; the decoder then skips to the first
//! magic that follows [`SYNC_ZEROS`] zero bytes.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Starts every frame.
pub const MAGIC: [u8; 4] = *b"SPA\x01";
/// Ends every frame.
pub const END: [u8; 2] = [0xFE, 0xED];
/// Largest header.
pub const MAX_HEADER: usize = 1 << 20;
/// Largest payload: bigger data goes in several frames.
pub const MAX_PAYLOAD: usize = 256 << 10;
/// Zero bytes a resynchronising decoder waits for before it trusts a magic again.
pub const SYNC_ZEROS: usize = 16;

const FIXED: usize = MAGIC.len() + 4 + 4 + END.len();

/// Largest frame on the wire.
pub const MAX_FRAME: usize = FIXED + MAX_HEADER + MAX_PAYLOAD;

/// Zero bytes that, written before a frame, let any reader find that frame: longer than the
/// longest frame a reader may be waiting to complete, plus [`SYNC_ZEROS`].
pub fn resync_prefix() -> Vec<u8> {
    vec![0; MAX_FRAME + SYNC_ZEROS]
}

/// Why bytes were not a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header or payload is larger than a frame may be.
    TooLarge {
        /// Header bytes announced.
        header: usize,
        /// Payload bytes announced.
        payload: usize,
    },
    /// The frame does not start with [`MAGIC`] or end with [`END`].
    Garbled,
    /// The header is not the JSON message expected.
    BadHeader(String),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLarge { header, payload } => write!(
                f,
                "a frame announced {header} header and {payload} payload bytes, more than a frame may carry"
            ),
            FrameError::Garbled => f.write_str("bytes that are not a frame"),
            FrameError::BadHeader(e) => write!(f, "a frame's header is not a valid message: {e}"),
        }
    }
}

impl std::error::Error for FrameError {}

/// Appends one frame carrying `header` and `payload` to `out`.
///
/// # Panics
/// When `payload` is longer than [`MAX_PAYLOAD`]: callers cut data into frames.
pub fn encode<T: Serialize>(header: &T, payload: &[u8], out: &mut Vec<u8>) {
    assert!(
        payload.len() <= MAX_PAYLOAD,
        "a frame's payload is at most {MAX_PAYLOAD} bytes"
    );
    let json = serde_json::to_vec(header).expect("protocol messages always serialize");
    out.reserve(FIXED + json.len() + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&(json.len() as u32).to_le_bytes());
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&json);
    out.extend_from_slice(payload);
    out.extend_from_slice(&END);
}

/// One frame as it came off the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The header's JSON.
    pub header: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl RawFrame {
    /// The header as the message `T`.
    pub fn message<T: DeserializeOwned>(&self) -> Result<T, FrameError> {
        serde_json::from_slice(&self.header).map_err(|e| FrameError::BadHeader(e.to_string()))
    }
}

/// Cuts a byte stream into frames, finding its way back after garbage.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Skipping to the next magic after [`SYNC_ZEROS`] zero bytes.
    resyncing: bool,
    /// Zero bytes seen in a row while resyncing.
    zeros: usize,
}

impl Decoder {
    /// A decoder at a frame boundary.
    pub fn new() -> Self {
        Decoder::default()
    }

    /// A decoder that trusts nothing until a frame after a zero run: for a reader that joins a
    /// stream mid-way.
    pub fn joining() -> Self {
        Decoder {
            resyncing: true,
            ..Decoder::default()
        }
    }

    /// Adds bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// Bytes held that are not a whole frame yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// The next whole frame, `None` when more bytes are needed, or an error for bytes that were
    /// not a frame (they are dropped and the decoder resynchronises; call again).
    pub fn next_frame(&mut self) -> Option<Result<RawFrame, FrameError>> {
        if self.resyncing && !self.skip_to_sync() {
            return None;
        }
        if self.buf.len() < MAGIC.len() + 8 {
            // A stream that starts with anything but the magic is garbage from its first byte.
            let n = self.buf.len().min(MAGIC.len());
            if self.buf[..n] != MAGIC[..n] {
                return Some(Err(self.garble(FrameError::Garbled)));
            }
            return None;
        }
        if self.buf[..4] != MAGIC {
            return Some(Err(self.garble(FrameError::Garbled)));
        }
        let header = u32::from_le_bytes(self.buf[4..8].try_into().expect("4 bytes")) as usize;
        let payload = u32::from_le_bytes(self.buf[8..12].try_into().expect("4 bytes")) as usize;
        if header > MAX_HEADER || payload > MAX_PAYLOAD {
            return Some(Err(self.garble(FrameError::TooLarge { header, payload })));
        }
        let total = FIXED + header + payload;
        if self.buf.len() < total {
            return None;
        }
        if self.buf[total - 2..total] != END {
            // Drop the whole frame: its bytes are not trusted, and a resync starts after it.
            self.buf.drain(..total);
            self.resyncing = true;
            self.zeros = 0;
            return Some(Err(FrameError::Garbled));
        }
        let frame = RawFrame {
            header: self.buf[12..12 + header].to_vec(),
            payload: self.buf[12 + header..12 + header + payload].to_vec(),
        };
        self.buf.drain(..total);
        Some(Ok(frame))
    }

    /// Drops the first byte and starts resynchronising (a dropped zero counts toward the run).
    fn garble(&mut self, e: FrameError) -> FrameError {
        let dropped = self.buf.drain(..1.min(self.buf.len())).next();
        self.resyncing = true;
        self.zeros = usize::from(dropped == Some(0));
        e
    }

    /// Drops bytes up to a magic that follows at least [`SYNC_ZEROS`] zero bytes; true when
    /// the buffer now starts with that magic.
    fn skip_to_sync(&mut self) -> bool {
        let mut i = 0;
        while i < self.buf.len() {
            let b = self.buf[i];
            if b == 0 {
                self.zeros += 1;
            } else if b == MAGIC[0] && self.zeros >= SYNC_ZEROS {
                self.buf.drain(..i);
                self.resyncing = false;
                self.zeros = 0;
                return true;
            } else {
                self.zeros = 0;
            }
            i += 1;
        }
        self.buf.clear();
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::{Event, EventBody, Op, Request};

    fn frame(call: u64, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode(&Request { call, op: Op::List }, payload, &mut out);
        out
    }

    fn calls(d: &mut Decoder) -> Vec<Result<u64, FrameError>> {
        let mut out = Vec::new();
        while let Some(f) = d.next_frame() {
            out.push(f.map(|f| f.message::<Request>().unwrap().call));
        }
        out
    }

    #[test]
    fn frames_split_anywhere_come_out_whole() {
        let mut bytes = frame(1, b"hello");
        bytes.extend(frame(2, &[0u8; 1000]));
        let mut d = Decoder::new();
        let mut got = Vec::new();
        for chunk in bytes.chunks(3) {
            d.push(chunk);
            got.extend(calls(&mut d));
        }
        assert_eq!(got, vec![Ok(1), Ok(2)]);
        assert_eq!(d.buffered(), 0);
    }

    #[test]
    fn payload_and_header_round_trip() {
        let mut out = Vec::new();
        let event = Event {
            call: 9,
            body: EventBody::Data { eof: true },
        };
        encode(&event, b"\x00\xff bytes", &mut out);
        let mut d = Decoder::new();
        d.push(&out);
        let raw = d.next_frame().unwrap().unwrap();
        assert_eq!(raw.message::<Event>().unwrap(), event);
        assert_eq!(raw.payload, b"\x00\xff bytes");
    }

    #[test]
    fn a_half_written_frame_is_spoiled_by_the_resync_prefix() {
        // A host died after writing half a frame; a new one sends the prefix and a frame.
        let first = frame(1, &[7u8; 5000]);
        let mut d = Decoder::new();
        d.push(&first[..first.len() / 2]);
        assert!(d.next_frame().is_none());
        d.push(&resync_prefix());
        d.push(&frame(2, b"after"));
        let got = calls(&mut d);
        assert_eq!(got.last(), Some(&Ok(2)));
        assert!(got[..got.len() - 1].iter().all(|r| r.is_err()));
        assert!(!got.contains(&Ok(1)));
    }

    #[test]
    fn a_reader_joining_mid_stream_trusts_nothing_before_a_zero_run() {
        // Output that imitates a frame, then the real prefix and frame.
        let mut bytes = b"noise".to_vec();
        bytes.extend(frame(66, b"forged"));
        bytes.extend(resync_prefix());
        bytes.extend(frame(3, b""));
        let mut d = Decoder::joining();
        d.push(&bytes);
        assert_eq!(calls(&mut d), vec![Ok(3)]);
    }

    #[test]
    fn oversized_announcements_are_refused_without_waiting() {
        let mut bytes = MAGIC.to_vec();
        bytes.extend((u32::MAX).to_le_bytes());
        bytes.extend(0u32.to_le_bytes());
        let mut d = Decoder::new();
        d.push(&bytes);
        assert!(matches!(
            d.next_frame(),
            Some(Err(FrameError::TooLarge { .. }))
        ));
    }

    #[test]
    fn a_stream_that_starts_with_the_zero_run_loses_no_frame() {
        let mut d = Decoder::new();
        d.push(&[0; SYNC_ZEROS]);
        d.push(&frame(5, b""));
        assert_eq!(calls(&mut d).last(), Some(&Ok(5)));
    }

    #[test]
    fn garbage_at_the_start_is_skipped_until_a_synced_frame() {
        let mut d = Decoder::new();
        d.push(b"xyz");
        d.push(&[0; SYNC_ZEROS]);
        d.push(&frame(4, b""));
        assert_eq!(calls(&mut d).last(), Some(&Ok(4)));
    }
}
