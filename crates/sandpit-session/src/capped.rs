//! One stream's bytes up to a limit, the rest dropped and noted.

/// Collects one stream's bytes up to a limit, dropping the rest.
pub(crate) struct Capped {
    buf: Vec<u8>,
    limit: usize,
    pub(crate) truncated: bool,
}

impl Capped {
    pub(crate) fn new(limit: usize) -> Self {
        Capped {
            buf: Vec::new(),
            limit,
            truncated: false,
        }
    }

    /// Keeps what fits and returns it.
    pub(crate) fn push<'a>(&mut self, data: &'a [u8]) -> &'a [u8] {
        let room = self.limit.saturating_sub(self.buf.len());
        if data.len() > room {
            self.truncated = true;
        }
        let kept = &data[..data.len().min(room)];
        self.buf.extend_from_slice(kept);
        kept
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::Capped;

    #[test]
    fn keeps_the_first_bytes_and_flags_the_rest() {
        let mut c = Capped::new(5);
        c.push(b"abc");
        assert!(!c.truncated);
        c.push(b"defg");
        assert!(c.truncated);
        assert_eq!(c.buf, b"abcde");
        c.push(b"h");
        assert_eq!(c.buf, b"abcde");
    }

    #[test]
    fn exact_limit_is_not_truncated() {
        let mut c = Capped::new(4);
        c.push(b"abcd");
        assert!(!c.truncated);
    }
}
