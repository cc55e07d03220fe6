//! `eyasctl publish --casync`: a signed plain RAUC bundle becomes a casync index bundle
//! (`rauc convert`), its chunks go into one shared chunk store (only the new ones are added), and
//! the bytes a device on the previous release will fetch are computed from the two releases' chunk
//! indexes (shared/reference/delta.md §3).
//!
//! The store is a directory (`--chunk-store DIR`, served by any web server) or the URL of one on a
//! web server that accepts WebDAV `PUT` (`--chunk-store https://…/`). Either way it keeps the
//! index bundles it published under `indexes/` (with the SHA-256 of the plain bundle each came
//! from) and their names in publish order in `indexes/releases.txt`: publishing the same bundle
//! again reuses its index bundle (the same artifact bytes for hawkBit, since a new conversion
//! would carry a new signature), and the newest other index there is the default "previous
//! release".
//!
//! A URL store: `rauc convert` writes into a private staging directory; each chunk of the release
//! is checked with `HEAD` and only the missing ones are `PUT`, then the index bundle, its SHA-256
//! file and the release list. All of it happens before `publish` sends anything to hawkBit, so a
//! device never gets an index whose chunks are missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::api::Api;
use crate::error::Failure;
use crate::output;
use crate::store::Store;

/// The list of published releases (one `NAME_VERSION` a line, oldest first) in `indexes/`.
const RELEASES: &str = "releases.txt";

/// Where `--chunk-store` points.
#[derive(Clone, Debug)]
pub enum ChunkStore {
    /// A local directory.
    Dir(PathBuf),
    /// A directory on a web server that accepts `PUT` (the URL ends with `/`).
    Url(String),
}

fn parse_chunk_store(s: &str) -> Result<ChunkStore, String> {
    let lower = s.to_ascii_lowercase();
    if s.is_empty() {
        Err("empty; give a directory or an http(s):// URL".into())
    } else if lower.starts_with("http://") || lower.starts_with("https://") {
        // checked by Store::new: clap would echo a refused value, and it may hold a password
        Ok(ChunkStore::Url(s.to_owned()))
    } else if s.contains("://") {
        Err(format!(
            "{s:?}: a chunk store is a local directory or an http:// or https:// URL"
        ))
    } else {
        Ok(ChunkStore::Dir(PathBuf::from(s)))
    }
}

/// The `--casync` options of `eyasctl publish`.
#[derive(clap::Args, Debug)]
pub struct CasyncArgs {
    /// Publish a casync bundle: `rauc convert` the bundle, upload the small index bundle as the
    /// artifact and put its chunks into --chunk-store (devices need `[casync] storepath` set to
    /// the store's URL in system.conf).
    #[arg(long, requires = "chunk_store")]
    pub casync: bool,
    /// The chunk store (one for all releases): a directory served by a web server, or the
    /// http(s):// URL of one on a server that accepts WebDAV PUT (only missing chunks are
    /// uploaded, before anything goes to hawkBit).
    #[arg(long, requires = "casync", value_name = "DIR|URL", value_parser = parse_chunk_store)]
    pub chunk_store: Option<ChunkStore>,
    /// User for HTTP Basic authentication at a URL chunk store.
    #[arg(long, env = "EYAS_STORE_USER")]
    pub store_user: Option<String>,
    /// Password for HTTP Basic authentication at a URL chunk store.
    #[arg(long, env = "EYAS_STORE_PASSWORD", hide_env_values = true)]
    pub store_password: Option<String>,
    /// PEM file with the CA certificate(s) that sign a URL chunk store's TLS certificate
    /// (default: --ca-file, else the built-in Mozilla roots).
    #[arg(long, value_name = "PEM", requires = "casync")]
    pub store_ca_file: Option<PathBuf>,
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
    /// The previous release's casync index bundle (a local file), for the download estimate
    /// (default: the newest other index bundle published into this chunk store).
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
    /// A URL store's staging directory (holds `index` until hawkBit has it).
    _staging: Option<Staging>,
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

/// The signing inputs of `rauc convert`.
struct Signing<'a> {
    cert: &'a Path,
    key: &'a Path,
    keyring: &'a Path,
    chunk_size: Option<u64>,
}

impl Signing<'_> {
    /// `rauc convert` of `bundle` into `index`, the chunks into the directory `store`.
    fn convert(&self, store: &Path, bundle: &Path, index: &Path) -> Result<(), Failure> {
        if store.to_string_lossy().contains(char::is_whitespace) {
            // RAUC splits --casync-args at white space.
            return Err(usage(format!(
                "{}: the chunk store path must not contain white space",
                store.display()
            )));
        }
        let mut casync_args = format!("--store={}", store.display());
        if let Some(n) = self.chunk_size {
            casync_args.push_str(&format!(" --chunk-size={n}"));
        }
        run_tool(
            Command::new("rauc")
                .arg("convert")
                .arg(format!("--cert={}", self.cert.display()))
                .arg(format!("--key={}", self.key.display()))
                .arg(format!("--keyring={}", self.keyring.display()))
                .arg(format!("--casync-args={casync_args}"))
                .arg(bundle)
                .arg(index),
            "rauc convert",
        )
    }
}

/// `NAME_VERSION` with every character outside `[A-Za-z0-9._-]` replaced by `_`.
fn safe_name(name: &str, version: &str) -> String {
    format!("{name}_{version}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The releases in a `releases.txt`, oldest first.
fn listed(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `text` with `safe` appended, or `None` when it is listed already.
fn with_release(text: &str, safe: &str) -> Option<String> {
    let mut names = listed(text);
    if names.contains(&safe) {
        return None;
    }
    names.push(safe);
    Some(names.iter().map(|n| format!("{n}\n")).collect())
}

/// Where a chunk lives in a store: `<4 hex>/<64 hex>.cacnk`.
fn chunk_rel(id: &str) -> String {
    format!("{}/{id}.cacnk", id.get(..4).unwrap_or(id))
}

/// The release's figures every store prints: what a device on the previous release (`Ok((name,
/// its chunks))`, or `Err(why there is none)`) downloads, and without a seed.
struct Estimate<'a> {
    this: &'a BTreeSet<String>,
    this_bytes: u64,
    size: &'a dyn Fn(&str) -> u64,
    index_size: u64,
    full: u64,
}

impl Estimate<'_> {
    fn add(
        &self,
        previous: Result<(String, BTreeSet<String>), String>,
        lines: &mut Vec<String>,
        report: &mut Value,
    ) {
        let (index_size, this_bytes) = (self.index_size, self.this_bytes);
        match previous {
            Ok((prev, old)) => {
                let fetch: Vec<&String> = self.this.difference(&old).collect();
                let bytes: u64 = fetch.iter().map(|c| (self.size)(c)).sum();
                let total = index_size + bytes;
                let pct = if self.full > 0 {
                    100.0 * total as f64 / self.full as f64
                } else {
                    0.0
                };
                lines.push(format!(
                    "publish: a device on {prev} will download {total} bytes: the index bundle + {} chunks ({bytes} bytes), {pct:.2} % of the full bundle",
                    fetch.len()
                ));
                report["patch"] = json!({ "previous": prev, "chunks": fetch.len(), "chunkBytes": bytes,
                                          "bytes": total, "ofFullPercent": (pct * 100.0).round() / 100.0 });
            }
            Err(why) => lines.push(format!(
                "publish: {why}: a device downloads the index bundle + up to {this_bytes} bytes of chunks (less what its booted slot already holds)"
            )),
        }
        lines.push(format!(
            "publish: no seed (booted slot unreadable): {} bytes",
            index_size + this_bytes
        ));
    }
}

/// Converts `bundle` (whose SHA-256 is `sha256`) for `name`/`version` into the store (a URL
/// store: uploads what it lacks).
pub fn convert(
    args: &CasyncArgs,
    api: &Api,
    json: bool,
    bundle: &Path,
    sha256: &str,
    name: &str,
    version: &str,
) -> Result<Converted, Failure> {
    let store = args
        .chunk_store
        .as_ref()
        .ok_or_else(|| usage("--casync needs --chunk-store DIR|URL"))?;
    let signing = Signing {
        cert: need(&args.cert, "--cert")?,
        key: need(&args.key, "--key")?,
        keyring: need(&args.keyring, "--keyring")?,
        chunk_size: args.chunk_size,
    };
    let release = Release {
        bundle,
        sha256,
        name,
        version,
        safe: safe_name(name, version),
    };
    match store {
        ChunkStore::Dir(dir) => convert_dir(args, &signing, dir, &release),
        ChunkStore::Url(url) => convert_url(args, api, json, &signing, url, &release),
    }
}

/// The bundle being published.
struct Release<'a> {
    bundle: &'a Path,
    sha256: &'a str,
    name: &'a str,
    version: &'a str,
    /// `NAME_VERSION`, the file name of its index bundle in `indexes/`.
    safe: String,
}

impl Release<'_> {
    fn conflict(&self, store: &str, published_sha: &str) -> Failure {
        Failure::Other(format!(
            "{} {} was published into {store} from another bundle (sha256 {}); publish this one under a new --version",
            self.name,
            self.version,
            published_sha.trim()
        ))
    }
}

fn convert_dir(
    args: &CasyncArgs,
    signing: &Signing<'_>,
    store_arg: &Path,
    rel: &Release<'_>,
) -> Result<Converted, Failure> {
    std::fs::create_dir_all(store_arg)
        .map_err(|e| usage(format!("{}: {e}", store_arg.display())))?;
    let store = std::fs::canonicalize(store_arg)
        .map_err(|e| usage(format!("{}: {e}", store_arg.display())))?;
    let indexes = store.join("indexes");
    std::fs::create_dir_all(&indexes).map_err(|e| usage(format!("{}: {e}", indexes.display())))?;
    let safe = &rel.safe;
    let index = indexes.join(format!("{safe}.raucb"));
    let source = indexes.join(format!("{safe}.source-sha256"));
    let before = store_chunks(&store);
    let reused = match std::fs::read_to_string(&source) {
        Ok(s) if s.trim() == rel.sha256 => index.is_file(),
        Ok(s) => return Err(rel.conflict(&store.display().to_string(), &s)),
        Err(_) => false,
    };
    if !reused {
        let _ = std::fs::remove_file(&index);
        signing.convert(&store, rel.bundle, &index)?;
        std::fs::write(&source, format!("{}\n", rel.sha256))
            .map_err(|e| Failure::Other(format!("{}: {e}", source.display())))?;
    }
    // the release list, so that the store can also be published into by URL later
    let list = indexes.join(RELEASES);
    let listed_text = std::fs::read_to_string(&list).unwrap_or_default();
    if let Some(text) = with_release(&listed_text, safe) {
        std::fs::write(&list, text)
            .map_err(|e| Failure::Other(format!("{}: {e}", list.display())))?;
    }
    let after = store_chunks(&store);
    let added: Vec<&String> = after.difference(&before).collect();
    let added_bytes: u64 = added.iter().map(|c| chunk_size(&store, c)).sum();
    let full = file_size(rel.bundle);
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
        Some(p) => Ok((p.display().to_string(), index_chunks(p)?)),
        None => match newest_other(&indexes, &index) {
            Some(p) => Ok((p.display().to_string(), index_chunks(&p)?)),
            None => Err(format!("no previous release in {}", indexes.display())),
        },
    };
    let size = |c: &str| chunk_size(&store, c);
    Estimate {
        this: &this,
        this_bytes,
        size: &size,
        index_size,
        full,
    }
    .add(previous, &mut lines, &mut report);
    Ok(Converted {
        index,
        report,
        lines,
        _staging: None,
    })
}

/// A private temporary directory, removed when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Self, Failure> {
        use std::os::unix::fs::DirBuilderExt;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir = std::env::temp_dir().join(format!(
            "eyasctl-staging-{}-{nanos:08x}-{}",
            std::process::id(),
            unique()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .map_err(|e| {
                usage(format!(
                    "{}: cannot make the staging directory for the chunks ({e}); set TMPDIR to a writable directory",
                    dir.display()
                ))
            })?;
        Ok(Self(dir))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn convert_url(
    args: &CasyncArgs,
    api: &Api,
    json: bool,
    signing: &Signing<'_>,
    url: &str,
    rel: &Release<'_>,
) -> Result<Converted, Failure> {
    let credentials = match (&args.store_user, &args.store_password) {
        (Some(u), Some(p)) => Some((u.as_str(), p.as_str())),
        (None, None) => None,
        (Some(_), None) => {
            return Err(usage(
                "--store-user needs --store-password (or EYAS_STORE_PASSWORD)",
            ));
        }
        (None, Some(_)) => {
            return Err(usage(
                "--store-password needs --store-user (or EYAS_STORE_USER)",
            ));
        }
    };
    let (ca, flag) = match &args.store_ca_file {
        Some(p) => (Some(p.as_path()), "--store-ca-file"),
        None => (api.ca_file(), "--ca-file"),
    };
    let remote = Store::new(url, ca, flag, credentials, api.timeout())?;
    let staging = Staging::new()?;
    let chunks = staging.0.join("chunks");
    std::fs::create_dir(&chunks).map_err(|e| usage(format!("{}: {e}", chunks.display())))?;
    let safe = &rel.safe;
    let index = staging.0.join(format!("{safe}.raucb"));
    let index_rel = format!("indexes/{safe}.raucb");
    let source_rel = format!("indexes/{safe}.source-sha256");
    let list_rel = format!("indexes/{RELEASES}");

    // 1. published before? (the store's answer also tells early whether it can be reached)
    let reused = match remote.get_text(&source_rel)? {
        Some(s) if s.trim() == rel.sha256 => remote.get_file(&index_rel, &index)?,
        Some(s) => return Err(rel.conflict(remote.base(), &s)),
        None => false,
    };
    if !reused {
        signing.convert(&chunks, rel.bundle, &index)?;
    }
    let this = index_chunks(&index)?;

    // 2. the previous release, from the store's list (read before this release is added to it)
    let list = remote.get_text(&list_rel)?.unwrap_or_default();
    let previous = match &args.previous {
        Some(p) => Ok((p.display().to_string(), index_chunks(p)?)),
        None => match listed(&list).into_iter().rev().find(|r| r != safe) {
            Some(prev) => {
                let prev_rel = format!("indexes/{prev}.raucb");
                let dest = staging.0.join("previous.raucb");
                if remote.get_file(&prev_rel, &dest)? {
                    Ok((remote.url(&prev_rel), index_chunks(&dest)?))
                } else {
                    Err(format!(
                        "the previous release's index bundle {} is not in the store",
                        remote.url(&prev_rel)
                    ))
                }
            }
            None => Err(format!(
                "no previous release listed in {}",
                remote.url(&list_rel)
            )),
        },
    };

    // 3. the chunks the store lacks, then the index bundle and the list: a device never finds
    //    an index whose chunks are missing
    output::say(
        json,
        &format!(
            "publish: chunk store {}: checking the release's {} chunks",
            remote.base(),
            this.len()
        ),
    );
    let mut sizes: BTreeMap<&str, u64> = BTreeMap::new();
    let (mut added, mut added_bytes, mut skipped, mut skipped_bytes) = (0usize, 0u64, 0usize, 0u64);
    for id in &this {
        let chunk = chunk_rel(id);
        let file = chunks.join(&chunk);
        let local = std::fs::metadata(&file).ok().map(|m| m.len());
        let size = match (remote.head(&chunk)?, local) {
            (Some(Some(there)), Some(here)) if there == here => {
                skipped += 1;
                skipped_bytes += here;
                here
            }
            (Some(there), None) => {
                let n = there.unwrap_or(0);
                skipped += 1;
                skipped_bytes += n;
                n
            }
            (_, Some(here)) => {
                remote.put_file(&chunk, &file)?;
                added += 1;
                added_bytes += here;
                here
            }
            (None, None) => {
                return Err(Failure::Other(format!(
                    "{} is not in the chunk store, but {}, published before for {} {}, needs it: \
                     delete {} and {} from the store and publish again (nothing was published to hawkBit)",
                    remote.url(&chunk),
                    remote.url(&index_rel),
                    rel.name,
                    rel.version,
                    remote.url(&index_rel),
                    remote.url(&source_rel)
                )));
            }
        };
        sizes.insert(id, size);
    }
    if !reused {
        remote.put_file(&index_rel, &index)?;
        remote.put_bytes(&source_rel, format!("{}\n", rel.sha256).as_bytes())?;
    }
    if let Some(text) = with_release(&list, safe) {
        remote.put_bytes(&list_rel, text.as_bytes())?;
    }

    let full = file_size(rel.bundle);
    let index_size = file_size(&index);
    let this_bytes: u64 = sizes.values().sum();
    let index_url = remote.url(&index_rel);
    let mut lines = vec![
        format!(
            "publish: casync index bundle {index_url} ({index_size} bytes{}) for the {full}-byte bundle",
            if reused { ", converted before" } else { "" }
        ),
        format!(
            "publish: chunk store {}: {added} chunks uploaded ({added_bytes} bytes), {skipped} already there ({skipped_bytes} bytes); this release has {} chunks ({this_bytes} bytes)",
            remote.base(),
            this.len()
        ),
    ];
    let mut report = json!({
        "indexBundle": { "url": index_url, "size": index_size, "reused": reused },
        "fullBundleSize": full,
        "store": { "url": remote.base(), "chunksAdded": added, "bytesAdded": added_bytes,
                   "chunksSkipped": skipped, "bytesSkipped": skipped_bytes },
        "release": { "chunks": this.len(), "bytes": this_bytes },
        "noSeed": { "bytes": index_size + this_bytes },
    });
    let size = |c: &str| sizes.get(c).copied().unwrap_or(0);
    Estimate {
        this: &this,
        this_bytes,
        size: &size,
        index_size,
        full,
    }
    .add(previous, &mut lines, &mut report);
    Ok(Converted {
        index,
        report,
        lines,
        _staging: Some(staging),
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
    fn a_chunk_store_is_a_directory_or_an_http_url() {
        assert!(matches!(
            parse_chunk_store("/srv/store.castr"),
            Ok(ChunkStore::Dir(p)) if p == Path::new("/srv/store.castr")
        ));
        assert!(matches!(
            parse_chunk_store("https://cdn.example.com/acme.castr"),
            Ok(ChunkStore::Url(u)) if u == "https://cdn.example.com/acme.castr"
        ));
        assert!(matches!(
            parse_chunk_store("http://h/"),
            Ok(ChunkStore::Url(_))
        ));
        for bad in ["", "s3://bucket/store"] {
            assert!(parse_chunk_store(bad).is_err(), "{bad}");
        }
        // checked later (Store::new), so that clap does not echo a password
        assert!(parse_chunk_store("https://u:p@h/store/").is_ok());
    }

    #[test]
    fn the_release_list_grows_once_per_release() {
        assert_eq!(with_release("", "a_1").as_deref(), Some("a_1\n"));
        assert_eq!(with_release("a_1\n", "a_2").as_deref(), Some("a_1\na_2\n"));
        assert_eq!(with_release("a_1\n\na_2", "a_1"), None);
        assert_eq!(listed(" a_1 \n\na_2\n"), ["a_1", "a_2"]);
        assert_eq!(safe_name("acme board", "1.0/rc"), "acme_board_1.0_rc");
        assert_eq!(
            chunk_rel(&"ab".repeat(32)),
            format!("abab/{}.cacnk", "ab".repeat(32))
        );
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
