//! The agent binary every sandbox runs as its PID 1, built by `build.rs` from
//! `crates/sandpit-agent` (static, x86_64) and embedded here.

/// The agent's executable.
pub(crate) const AGENT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandpit-agent"));

/// SHA-256 of [`AGENT`], in hex: names a copy of this very agent.
pub(crate) const AGENT_SHA256: &str =
    include_str!(concat!(env!("OUT_DIR"), "/sandpit-agent.sha256"));

/// The architecture [`AGENT`] runs on (as engines name it in `uname -m`).
pub(crate) const AGENT_ARCH: &str = "x86_64";

#[cfg(test)]
mod tests {
    use super::*;

    /// A little-endian integer of the ELF file at `at`.
    fn word(at: usize, len: usize) -> u64 {
        AGENT[at..at + len]
            .iter()
            .rev()
            .fold(0, |n, &b| (n << 8) | u64::from(b))
    }

    #[test]
    fn the_embedded_agent_is_a_static_x86_64_executable() {
        assert_eq!(&AGENT[..4], b"\x7fELF", "an ELF file");
        assert_eq!(AGENT[4], 2, "64-bit");
        assert_eq!(word(18, 2), 62, "x86_64 (EM_X86_64)");
        let (phoff, phentsize, phnum) = (
            word(32, 8) as usize,
            word(54, 2) as usize,
            word(56, 2) as usize,
        );
        let interpreter = (0..phnum).any(|i| word(phoff + i * phentsize, 4) == 3);
        assert!(
            !interpreter,
            "no program interpreter: nothing of the image's libc is needed"
        );
        assert!(
            AGENT.len() <= 2 << 20,
            "{} bytes: past the 2 MiB target",
            AGENT.len()
        );
    }

    #[test]
    fn the_hash_names_the_embedded_bytes() {
        let path = concat!(env!("OUT_DIR"), "/sandpit-agent");
        let out = std::process::Command::new("sha256sum")
            .arg(path)
            .output()
            .expect("sha256sum runs");
        let text = String::from_utf8(out.stdout).expect("text");
        assert_eq!(text.split_whitespace().next(), Some(AGENT_SHA256));
    }
}
