//! `eyasctl publish --casync`: a signed plain RAUC bundle becomes a casync index bundle
//! (`rauc convert`), its chunks go into one shared chunk store directory (only the new ones are
//! added), and the bytes a device on the previous release will fetch are computed from the two
//! releases' chunk indexes (shared/reference/delta.md §3).
//!
//! The store directory keeps the index bundles it published under `indexes/` (with the SHA-256 of
//! the plain bundle each came from): publishing the same bundle again reuses its index bundle (the
//! same artifact bytes for hawkBit, since a new conversion would carry a new signature), and the
//! newest other index there is the default "previous release".

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::error::Failure;

/// The `--casync` options of `eyasctl publish`.
#[derive(clap::Args, Debug)]
pub struct CasyncArgs {
    /// Publish a casync bundle: `rauc convert` the bundle, upload the small index bundle as the
    /// artifact and put its chunks into --chunk-store (devices need `[casync] storepath` set to
    /// the store's URL in system.conf).
    #[arg(long, requires = "chunk_store")]
    pub casync: bool,
    /// The chunk store directory (served by a web server; one store for all releases).
    #[arg(long, requires = "casync")]
    pub chunk_store: Option<PathBuf>,
    /// Signing certificate for `rauc convert` (the index bundle is signed again).
    #[arg(long, requires = "casync")]
    pub cert: Option<PathBuf>,
    /// Signing key for `rauc convert`.
    #[arg(long, requires = "casync")]
    pub key: Option<PathBuf>,
    /// Keyring (CA) that verifies the input bundle, for `rauc convert`.
    #[arg(long, requires = "casync")]
    pub keyring: Option<PathBuf>,
    /// casync's average chunk size in bytes (default: casync's 65536).
    #[arg(long, requires = "casync")]
    pub chunk_size: Option<u64>,
    /// The previous release's casync index bundle, for the download estimate (default: the newest
    /// other index bundle published into this chunk store).
    #[arg(long, requires = "casync")]
    pub previous: Option<PathBuf>,
}

/// What the conversion produced.
pub struct Converted {
    /// The index bundle to upload.
    pub index: PathBuf,
    /// The figures, printed and (with `--json`) returned.
    pub report: Value,
    pub lines: Vec<String>,
}

fn usage(msg: impl Into<String>) -> Failure {
    Failure::Usage(msg.into())
}

fn need<'a>(p: &'a Option<PathBuf>, flag: &str) -> Result<&'a Path, Failure> {
    p.as_deref()
        .ok_or_else(|| usage(format!("--casync needs {flag}")))
}

fn run_tool(cmd: &mut Command, what: &str) -> Result<(), Failure> {
    let out = cmd
        .output()
        .map_err(|e| usage(format!("cannot run {what} ({e}); install it")))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(Failure::Other(format!(
            "{what} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

/// Converts `bundle` (whose SHA-256 is `sha256`) for `name`/`version` into the store.
pub fn convert(
    args: &CasyncArgs,
    bundle: &Path,
    sha256: &str,
    name: &str,
    version: &str,
) -> Result<Converted, Failure> {
    let store_arg = need(&args.chunk_store, "--chunk-store DIR")?;
    let cert = need(&args.cert, "--cert")?;
    let key = need(&args.key, "--key")?;
    let keyring = need(&args.keyring, "--keyring")?;
    std::fs::create_dir_all(store_arg)
        .map_err(|e| usage(format!("{}: {e}", store_arg.display())))?;
    let store = std::fs::canonicalize(store_arg)
        .map_err(|e| usage(format!("{}: {e}", store_arg.display())))?;
    if store.to_string_lossy().contains(char::is_whitespace) {
        // RAUC splits --casync-args at white space.
        return Err(usage(format!(
            "{}: the chunk store path must not contain white space",
            store.display()
        )));
    }
    let indexes = store.join("indexes");
    std::fs::create_dir_all(&indexes).map_err(|e| usage(format!("{}: {e}", indexes.display())))?;
    let safe: String = format!("{name}_{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let index = indexes.join(format!("{safe}.raucb"));
    let source = indexes.join(format!("{safe}.source-sha256"));
    let before = store_chunks(&store);
    let reused = match std::fs::read_to_string(&source) {
        Ok(s) if s.trim() == sha256 && index.is_file() => true,
        Ok(s) => {
            return Err(Failure::Other(format!(
                "{name} {version} was published into {} from another bundle (sha256 {}); publish this one under a new --version",
                store.display(),
                s.trim()
            )));
        }
        Err(_) => false,
    };
    if !reused {
        let _ = std::fs::remove_file(&index);
        let mut casync_args = format!("--store={}", store.display());
        if let Some(n) = args.chunk_size {
            casync_args.push_str(&format!(" --chunk-size={n}"));
        }
        run_tool(
            Command::new("rauc")
                .arg("convert")
                .arg(format!("--cert={}", cert.display()))
                .arg(format!("--key={}", key.display()))
                .arg(format!("--keyring={}", keyring.display()))
                .arg(format!("--casync-args={casync_args}"))
                .arg(bundle)
                .arg(&index),
            "rauc convert",
        )?;
        std::fs::write(&source, format!("{sha256}\n"))
            .map_err(|e| Failure::Other(format!("{}: {e}", source.display())))?;
    }
    let after = store_chunks(&store);
    let added: Vec<&String> = after.difference(&before).collect();
    let added_bytes: u64 = added.iter().map(|c| chunk_size(&store, c)).sum();
    let full = file_size(bundle);
    let index_size = file_size(&index);
    let this = index_chunks(&index)?;
    let this_bytes: u64 = this.iter().map(|c| chunk_size(&store, c)).sum();
    let mut lines = vec![
        format!(
            "publish: casync index bundle {} ({index_size} bytes{}) for the {full}-byte bundle",
            index.display(),
            if reused { ", converted before" } else { "" }
        ),
        format!(
            "publish: chunk store {}: {} chunks added ({added_bytes} bytes), {} in all; this release has {} chunks ({this_bytes} bytes)",
            store.display(),
            added.len(),
            after.len(),
            this.len()
        ),
    ];
    let mut report = json!({
        "indexBundle": { "path": index, "size": index_size, "reused": reused },
        "fullBundleSize": full,
        "store": { "path": store, "chunks": after.len(), "chunksAdded": added.len(), "bytesAdded": added_bytes },
        "release": { "chunks": this.len(), "bytes": this_bytes },
        "noSeed": { "bytes": index_size + this_bytes },
    });
    let previous = match &args.previous {
        Some(p) => Some(p.clone()),
        None => newest_other(&indexes, &index),
    };
    match previous {
        Some(prev) => {
            let old = index_chunks(&prev)?;
            let fetch: Vec<&String> = this.difference(&old).collect();
            let bytes: u64 = fetch.iter().map(|c| chunk_size(&store, c)).sum();
            let total = index_size + bytes;
            let pct = if full > 0 {
                100.0 * total as f64 / full as f64
            } else {
                0.0
            };
            lines.push(format!(
                "publish: a device on {} will download {total} bytes: the index bundle + {} chunks ({bytes} bytes), {pct:.2} % of the full bundle",
                prev.display(),
                fetch.len()
            ));
            report["patch"] = json!({ "previous": prev, "chunks": fetch.len(), "chunkBytes": bytes,
                                      "bytes": total, "ofFullPercent": (pct * 100.0).round() / 100.0 });
        }
        None => lines.push(format!(
            "publish: no previous release in {}: a device downloads the index bundle + up to {this_bytes} bytes of chunks (less what its booted slot already holds)",
            indexes.display()
        )),
    }
    lines.push(format!(
        "publish: no seed (booted slot unreadable): {} bytes",
        index_size + this_bytes
    ));
    Ok(Converted {
        index,
        report,
        lines,
    })
}

fn file_size(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// The newest `*.raucb` in `indexes` other than `this`.
fn newest_other(indexes: &Path, this: &Path) -> Option<PathBuf> {
    std::fs::read_dir(indexes)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p != this && p.extension().is_some_and(|e| e == "raucb"))
        .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
        .max()
        .map(|(_, p)| p)
}

/// Chunk ids (64 hex) in the store: `<4 hex>/<64 hex>.cacnk`.
fn store_chunks(store: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(store).into_iter().flatten().flatten() {
        if d.file_name().len() != 4 {
            continue;
        }
        for c in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            let n = c.file_name().to_string_lossy().into_owned();
            if let Some(id) = n.strip_suffix(".cacnk") {
                out.insert(id.to_owned());
            }
        }
    }
    out
}

fn chunk_size(store: &Path, id: &str) -> u64 {
    file_size(
        &store
            .join(id.get(..4).unwrap_or(id))
            .join(format!("{id}.cacnk")),
    )
}

/// The chunk ids every casync index (`.caibx`/`.caidx`) inside an index bundle refers to
/// (the bundle's squashfs is read with `unsquashfs`; the signature is RAUC's business).
pub fn index_chunks(bundle: &Path) -> Result<BTreeSet<String>, Failure> {
    let tmp = std::env::temp_dir().join(format!(
        "eyasctl-index-{}-{}",
        std::process::id(),
        crate::casync::unique()
    ));
    let _ = std::fs::remove_dir_all(&tmp);
    let result = (|| {
        run_tool(
            Command::new("unsquashfs")
                .args(["-no-progress", "-quiet", "-d"])
                .arg(&tmp)
                .arg(bundle),
            "unsquashfs (squashfs-tools)",
        )?;
        let mut ids = BTreeSet::new();
        let mut found = false;
        for e in std::fs::read_dir(&tmp)
            .map_err(|e| Failure::Other(format!("{}: {e}", tmp.display())))?
            .flatten()
        {
            let p = e.path();
            if p.extension().is_some_and(|x| x == "caibx" || x == "caidx") {
                let bytes = std::fs::read(&p)
                    .map_err(|e| Failure::Other(format!("{}: {e}", p.display())))?;
                ids.extend(parse_index(&bytes).map_err(|m| {
                    Failure::Other(format!("{} in {}: {m}", p.display(), bundle.display()))
                })?);
                found = true;
            }
        }
        if found {
            Ok(ids)
        } else {
            Err(usage(format!(
                "{}: not a casync bundle (no .caibx/.caidx inside)",
                bundle.display()
            )))
        }
    })();
    let _ = std::fs::remove_dir_all(&tmp);
    result
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

const CA_FORMAT_INDEX: u64 = 0x9682_4d9c_7b12_9ff9;
const CA_FORMAT_TABLE: u64 = 0xe75b_9e11_2f17_417d;
const CA_FORMAT_TABLE_TAIL_MARKER: u64 = 0x4b4f_050e_5549_ecd1;

fn le64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at + 8)
        .and_then(|s| s.try_into().ok())
        .map(u64::from_le_bytes)
}

/// Chunk ids of a casync index: a 48-byte index header, a table header (size `u64::MAX`), 40-byte
/// items (end offset + 32-byte digest) and a 40-byte tail ending in the tail marker.
pub fn parse_index(b: &[u8]) -> Result<BTreeSet<String>, String> {
    let bad = |what: &str| format!("not a casync index: {what}");
    if le64(b, 0) != Some(48) || le64(b, 8) != Some(CA_FORMAT_INDEX) {
        return Err(bad("index header"));
    }
    if le64(b, 48) != Some(u64::MAX) || le64(b, 56) != Some(CA_FORMAT_TABLE) {
        return Err(bad("table header"));
    }
    let body = b
        .len()
        .checked_sub(64 + 40)
        .ok_or_else(|| bad("too short"))?;
    if body % 40 != 0 || le64(b, b.len() - 8) != Some(CA_FORMAT_TABLE_TAIL_MARKER) {
        return Err(bad("table tail"));
    }
    let mut ids = BTreeSet::new();
    for item in b[64..64 + body].chunks_exact(40) {
        let hex: String = item[8..].iter().map(|x| format!("{x:02x}")).collect();
        ids.insert(hex);
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(digests: &[[u8; 32]]) -> Vec<u8> {
        let mut b = Vec::new();
        for v in [
            48u64,
            CA_FORMAT_INDEX,
            0,
            16384,
            65536,
            262_144,
            u64::MAX,
            CA_FORMAT_TABLE,
        ] {
            b.extend(v.to_le_bytes());
        }
        for (i, d) in digests.iter().enumerate() {
            b.extend(((i as u64 + 1) * 1000).to_le_bytes());
            b.extend(d);
        }
        for v in [0u64, 0, 48, 0, CA_FORMAT_TABLE_TAIL_MARKER] {
            b.extend(v.to_le_bytes());
        }
        b
    }

    #[test]
    fn reads_the_chunk_ids_of_an_index() {
        let ids = parse_index(&index(&[[0xab; 32], [0x01; 32], [0xab; 32]])).expect("index");
        assert_eq!(ids.len(), 2);
        assert!(ids.contains(&"ab".repeat(32)));
        assert!(ids.contains(&"01".repeat(32)));
    }

    #[test]
    fn refuses_what_is_not_an_index() {
        let good = index(&[[1; 32]]);
        assert!(parse_index(&good[..good.len() - 1]).is_err());
        assert!(parse_index(&good[..50]).is_err());
        assert!(parse_index(b"").is_err());
        let mut wrong = good.clone();
        wrong[8] ^= 1;
        assert!(parse_index(&wrong).is_err());
        let mut tail = good;
        let n = tail.len();
        tail[n - 1] ^= 1;
        assert!(parse_index(&tail).is_err());
    }
}
