//! Shared test helpers: temp dirs, a seeded RNG, tool runners.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let p = std::env::temp_dir().join(format!(
            "eyas-glue-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Self(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    pub fn join(&self, s: &str) -> PathBuf {
        self.0.join(s)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// xorshift64*: deterministic, seeded.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }
    pub fn name(&mut self) -> String {
        const C: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
        let n = 1 + self.below(12) as usize;
        (0..n)
            .map(|_| C[self.below(C.len() as u64) as usize] as char)
            .collect()
    }
    /// Printable ASCII (no newline), possibly with spaces, '=', '\\', '#'.
    pub fn value(&mut self) -> String {
        let n = 1 + self.below(24) as usize;
        let mut s: String = (0..n)
            .map(|_| (b' ' + self.below(95) as u8) as char)
            .collect();
        // Tools strip or split on surrounding blanks in places; keep both ends non-blank.
        if s.starts_with(' ') {
            s.replace_range(0..1, "x");
        }
        if s.ends_with(' ') {
            s.pop();
            s.push('y');
        }
        s
    }
}

/// Runs a command; panics with its output when it fails or is missing.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| {
        panic!("cannot run {cmd:?}: {e} (CI installs it via .ci/install-deps)")
    });
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub type Vars = std::collections::BTreeMap<String, String>;
pub type ChangeList = Vec<(String, Option<String>)>;

/// An independent model of RAUC's contrib/uboot.sh: returns the chosen slot and the variables
/// it changes before `saveenv` (one env write).
pub fn uboot_script(vars: &Vars) -> (Option<&'static str>, ChangeList) {
    let mut ch: ChangeList = Vec::new();
    let get = |n: &str, default: &str, ch: &mut ChangeList| -> String {
        match vars.get(n).filter(|v| !v.is_empty()) {
            Some(v) => v.clone(),
            None => {
                ch.push((n.to_string(), Some(default.to_string())));
                default.to_string()
            }
        }
    };
    let order = get("BOOT_ORDER", "A B", &mut ch);
    let a = get("BOOT_A_LEFT", "3", &mut ch);
    let b = get("BOOT_B_LEFT", "3", &mut ch);
    let mut chosen = None;
    for slot in order.split_whitespace() {
        if chosen.is_some() {
            break;
        }
        let (name, left) = match slot {
            "A" => ("BOOT_A_LEFT", &a),
            "B" => ("BOOT_B_LEFT", &b),
            _ => continue,
        };
        // `test 0x${LEFT} -gt 0`, then `setexpr LEFT ${LEFT} - 1` (hex result).
        let n = u32::from_str_radix(left, 16).unwrap_or(0);
        if n > 0 {
            ch.retain(|(c, _)| c != name);
            ch.push((name.to_string(), Some(format!("{:x}", n - 1))));
            chosen = Some(if slot == "A" { "A" } else { "B" });
        }
    }
    if chosen.is_none() {
        // No slot left: reset both counters, saveenv, reset the board.
        ch.retain(|(c, _)| c != "BOOT_A_LEFT" && c != "BOOT_B_LEFT");
        ch.push(("BOOT_A_LEFT".into(), Some("3".into())));
        ch.push(("BOOT_B_LEFT".into(), Some("3".into())));
    }
    (chosen, ch)
}

/// Copies a test vector to `dst` as a new, writable file (a checkout may have the vectors
/// read-only, and `fs::copy` would carry that over; the vectors themselves are never written).
pub fn copy_vector(rel: &str, dst: &Path) {
    let p = vectors().join(rel);
    let bytes =
        std::fs::read(&p).unwrap_or_else(|e| panic!("test vector {} missing: {e}", p.display()));
    let _ = std::fs::remove_file(dst);
    std::fs::write(dst, bytes).unwrap();
}
