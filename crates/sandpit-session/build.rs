//! Builds the agent binary (`crates/sandpit-agent`) the way every sandbox runs it, and puts it
//! with its SHA-256 into `OUT_DIR` for `src/agent_binary.rs` to embed.
//!
//! A nested cargo builds it: static (`-C target-feature=+crt-static`, so no libc or shell is
//! needed in the image) with the workspace's `agent` profile, into a target folder of its own
//! (the outer cargo holds the lock on its own while build scripts run). Nothing the outer cargo
//! was given (its flags, target, wrapper such as clippy's) reaches the nested one. When nothing
//! changed the nested build finds everything fresh and costs well under a second.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The one architecture the agent is built for.
const TARGET: &str = "x86_64-unknown-linux-gnu";

/// What the outer cargo sets that must not reach the nested build.
const LEAKING: &[&str] = &[
    "RUSTFLAGS",
    "CARGO_ENCODED_RUSTFLAGS",
    "CARGO_BUILD_RUSTFLAGS",
    "CARGO_TARGET_DIR",
    "CARGO_BUILD_TARGET_DIR",
    "CARGO_BUILD_TARGET",
    "RUSTC_WORKSPACE_WRAPPER",
    "CARGO_BUILD_RUSTC_WORKSPACE_WRAPPER",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_PKG_NAME",
    "OUT_DIR",
    "TARGET",
    "HOST",
    "PROFILE",
    "OPT_LEVEL",
    "DEBUG",
];

fn main() {
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let workspace = manifest
        .parent()
        .and_then(Path::parent)
        .expect("crates/sandpit-session sits two folders below the workspace");
    let agent = workspace.join("crates/sandpit-agent");
    for input in [
        agent.join("src"),
        agent.join("Cargo.toml"),
        // The `agent` profile lives there.
        workspace.join("Cargo.toml"),
    ] {
        println!("cargo:rerun-if-changed={}", input.display());
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets it"));
    let target_dir = nested_target_dir(&out);

    let mut cargo = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .args(["build", "-p", "sandpit-agent", "--bin", "sandpit-agent"])
        .args(["--profile", "agent", "--target", TARGET])
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for name in LEAKING {
        cargo.env_remove(name);
    }
    for (name, _) in env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_CFG_") || name.starts_with("CARGO_FEATURE_") {
            cargo.env_remove(name.as_ref());
        }
    }
    cargo.env("CARGO_ENCODED_RUSTFLAGS", "-Ctarget-feature=+crt-static");
    let built = cargo
        .output()
        .unwrap_or_else(|e| panic!("the agent binary cannot be built: cargo does not start: {e}"));
    if !built.status.success() {
        eprintln!("{}", String::from_utf8_lossy(&built.stderr));
        panic!(
            "the agent binary (crates/sandpit-agent) failed to build for {TARGET} with \
             `-C target-feature=+crt-static` ({}); its cargo output is above",
            built.status
        );
    }

    let binary = target_dir.join(TARGET).join("agent").join("sandpit-agent");
    let bytes = std::fs::read(&binary)
        .unwrap_or_else(|e| panic!("{} after the agent's build: {e}", binary.display()));
    write_if_changed(&out.join("sandpit-agent"), &bytes);
    write_if_changed(
        &out.join("sandpit-agent.sha256"),
        hex(&sha256(&bytes)).as_bytes(),
    );
}

/// `<target>/sandpit-agent`, beside the outer build's profiles: shared by every profile and
/// command (build, test, clippy), so the agent is built once.
fn nested_target_dir(out_dir: &Path) -> PathBuf {
    // OUT_DIR is <target>[/<triple>]/<profile>/build/sandpit-session-<hash>/out.
    out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("sandpit-agent"))
        .unwrap_or_else(|| out_dir.join("sandpit-agent-build"))
}

/// Writes `path` only when its contents differ: an unchanged agent leaves the embedding
/// crate fresh.
fn write_if_changed(path: &Path, bytes: &[u8]) {
    if std::fs::read(path).is_ok_and(|old| old == bytes) {
        return;
    }
    std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 (FIPS 180-4), here so the build needs no dependency of its own.
fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut message = data.to_vec();
    message.push(0x80);
    while message.len() % 64 != 56 {
        message.push(0);
    }
    message.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in message.chunks_exact(64) {
        let mut w = [0u32; 64];
        for (i, word) in block.chunks_exact(4).enumerate() {
            w[i] = u32::from_be_bytes(word.try_into().expect("4 bytes"));
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (state, add) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *state = state.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 32];
    for (out, word) in digest.chunks_exact_mut(4).zip(h) {
        out.copy_from_slice(&word.to_be_bytes());
    }
    digest
}
