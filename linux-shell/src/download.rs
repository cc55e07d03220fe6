//! Artifact downloads: one pass that writes, hashes (SHA-256 and SHA-1) and rate-limits, with
//! resume after a cut (`Range` + `If-Range`), a free-space check before the first byte, a
//! low-speed abort, fsync of file and directory, and file names that cannot escape the
//! download directory.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use eyas_core::verify::{ArtifactSpec, Policy, Verifier, VerifyError};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::http::{Http, HttpError, HttpErrorKind, redact_url};

const CHUNK: usize = 64 * 1024;

/// Pause between resume attempts (rauc-hawkbit-updater uses 0.5 s too).
pub const RESUME_PAUSE: Duration = Duration::from_millis(500);

/// Give up after this many attempts in a row that brought no new byte (avoids the endless
/// resume loop of rauc-hawkbit-updater#158).
pub const MAX_ATTEMPTS_WITHOUT_PROGRESS: u32 = 5;

/// Where artifact number `index` of a deployment, named `filename` by hawkBit, is stored while
/// it downloads: `<bundle_download_location>.<index>.<filename>`, beside `location` (so on the
/// partition sized for it). The index keeps two artifacts of the same name apart; names that
/// could leave the directory are refused. The OS bundle is moved to exactly `location` for its
/// install ([`install_path`]).
pub fn artifact_path(location: &Path, index: u8, filename: &str) -> Result<PathBuf, HttpError> {
    let bad = |why: &str| {
        HttpError::new(
            HttpErrorKind::BadFilename,
            format!("artifact file name {filename:?} refused: {why}"),
        )
    };
    if filename.is_empty() {
        return Err(bad("empty"));
    }
    if filename == "." || filename == ".." || filename.contains("..") {
        return Err(bad("contains '..'"));
    }
    if filename.contains(['/', '\\']) {
        return Err(bad("contains a path separator"));
    }
    if filename.chars().any(char::is_control) {
        return Err(bad("contains NUL or a control character"));
    }
    let dir = location.parent().unwrap_or_else(|| Path::new("."));
    let base = location
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    // A file name has at most 255 bytes: a long hawkBit name (it allows 256) keeps its end,
    // where the extension is; the index alone keeps artifacts apart.
    let prefix = format!("{base}.{index}.");
    let room = 255usize.saturating_sub(prefix.len());
    let mut cut = filename.len().saturating_sub(room);
    while !filename.is_char_boundary(cut) {
        cut += 1;
    }
    let tail = filename.get(cut..).unwrap_or_default();
    if tail.is_empty() {
        return Err(bad("leaves no room in a 255-byte file name"));
    }
    let name = format!("{prefix}{tail}");
    let path = dir.join(&name);
    // Belt and braces: the joined path must have exactly `dir` as parent.
    if path.parent() != Some(dir) {
        return Err(bad("does not stay in the download directory"));
    }
    Ok(path)
}

/// Where an OS bundle is installed from: exactly `bundle_download_location`, as
/// rauc-hawkbit-updater does (users size a partition for that path).
pub fn install_path(location: &Path) -> &Path {
    location
}

/// What to download and how.
pub struct DownloadRequest<'a> {
    /// Artifact URL.
    pub url: &'a str,
    /// Destination file.
    pub dest: &'a Path,
    /// Size announced by hawkBit, when known.
    pub expected_size: Option<u64>,
    /// `Authorization` value to send, if the policy allows it for this host.
    pub auth: Option<&'a str>,
    /// Present the client certificate to this host.
    pub client_cert: bool,
    /// Resume after network errors (`resume_downloads`).
    pub resume: bool,
    /// Continue a partial file left by an earlier run (same action).
    pub keep_partial: bool,
    /// Abort when slower than `low_speed_rate` B/s for this long (zero = off).
    pub low_speed_time: Duration,
    /// See `low_speed_time`.
    pub low_speed_rate: u64,
    /// Cap in B/s, 0 = unlimited.
    pub rate_limit: u64,
    /// Also compute SHA-1 (when hawkBit gave no SHA-256).
    pub sha1: bool,
    /// Feed the bytes to the core's `Verifier` for this hawkBit spec instead of hashing here
    /// (then `Downloaded::verifier` carries the state and `sha256`/`sha1` stay zero).
    pub spec: Option<ArtifactSpec>,
    /// Set to stop the transfer.
    pub cancel: &'a AtomicBool,
}

/// A completed download.
#[derive(Debug, Clone)]
pub struct Downloaded {
    /// Bytes in the file.
    pub bytes: u64,
    /// SHA-256 of the file.
    pub sha256: [u8; 32],
    /// SHA-1 of the file (all zero unless [`DownloadRequest::sha1`] was set).
    pub sha1: [u8; 20],
    /// Wall time of the whole download, resumes included.
    pub elapsed: Duration,
    /// How many times the transfer was resumed.
    pub resumes: u32,
    /// Bytes that were already on disk from an earlier run.
    pub reused: u64,
    /// The core's verifier fed with every byte (when [`DownloadRequest::spec`] was given);
    /// call `finish` on it for the size/digest verdict.
    pub verifier: Option<Verifier>,
}

struct Digests {
    sha256: Option<Sha256>,
    /// Only when asked for: hawkBit's SHA-1 is used only when it sends no SHA-256.
    sha1: Option<Sha1>,
    core: Option<Verifier>,
    spec: Option<ArtifactSpec>,
}

impl Digests {
    fn new(sha1: bool, spec: Option<ArtifactSpec>) -> Self {
        // A spec without any digest cannot be verified by the core: hash here instead.
        let core = spec.and_then(|s| Verifier::new(&s, Policy::Off).ok());
        Self {
            sha256: core.is_none().then(Sha256::new),
            sha1: (core.is_none() && sha1).then(Sha1::new),
            core,
            spec,
        }
    }
    fn fresh(&self) -> Self {
        Self::new(self.sha1.is_some(), self.spec)
    }
    fn update(&mut self, data: &[u8]) {
        if let Some(v) = self.core.as_mut() {
            // Bytes past the announced size make `finish` fail; the transfer checks sizes too.
            let _ = v.update(data);
        }
        if let Some(h) = self.sha256.as_mut() {
            h.update(data);
        }
        if let Some(h) = self.sha1.as_mut() {
            h.update(data);
        }
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// Bytes free for an unprivileged writer in the file system holding `dir`.
pub fn free_space(dir: &Path) -> std::io::Result<u64> {
    let st = rustix::fs::statvfs(dir)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}

fn io_err(what: &str, path: &Path, e: &std::io::Error) -> HttpError {
    HttpError::new(HttpErrorKind::Io, format!("{what} {}: {e}", path.display()))
}

/// Downloads `req.url` to `req.dest`; `progress(done, total)` is called after every chunk.
pub fn download(
    http: &Http,
    req: &DownloadRequest<'_>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<Downloaded, HttpError> {
    let started = Instant::now();
    let dir = match req.dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
        _ => PathBuf::from("."),
    };
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(req.dest)
        .map_err(|e| io_err("cannot open the download file", req.dest, &e))?;
    let mut digests = Digests::new(req.sha1, req.spec);
    let mut offset = file
        .metadata()
        .map_err(|e| io_err("cannot stat", req.dest, &e))?
        .len();
    if !req.keep_partial || req.expected_size.is_some_and(|size| offset > size) {
        offset = 0;
    }
    if offset > 0 {
        offset = hash_prefix(&mut file, req.dest, offset, &mut digests)?;
    } else {
        file.set_len(0)
            .map_err(|e| io_err("cannot truncate", req.dest, &e))?;
    }
    let reused = offset;
    if let Some(size) = req.expected_size {
        let need = size.saturating_sub(offset);
        let free = free_space(&dir).map_err(|e| io_err("cannot query free space of", &dir, &e))?;
        if need > free {
            return Err(HttpError::new(
                HttpErrorKind::NoSpace,
                format!(
                    "{} needs {need} more bytes but only {free} are free in {}",
                    redact_url(req.url),
                    dir.display()
                ),
            ));
        }
    }
    // The validator (strong ETag or Last-Modified) of the response the partial bytes came from
    // is kept beside the file, so that a resume by the core's retry, or after a restart, asks
    // with `If-Range`: a changed artifact then comes whole from byte 0, never spliced.
    let sidecar = validator_path(req.dest);
    let mut validator = if offset > 0 {
        read_validator(&sidecar)
    } else {
        remove_quietly(&sidecar);
        None
    };
    let stored = validator.clone();
    let transferred = transfer(
        http,
        req,
        &mut file,
        &mut offset,
        &mut digests,
        &mut validator,
        progress,
    );
    if transferred.is_ok() {
        remove_quietly(&sidecar);
    } else if validator != stored
        && let Some(v) = validator.as_deref()
        && let Err(e) = std::fs::write(&sidecar, v)
    {
        // Without it the next resume sends Range alone; the digest check still guards it.
        tracing::warn!("{}: {e}", sidecar.display());
    }
    let resumes = transferred?;
    if reused > 0
        && let Some(v) = &digests.core
        && matches!(
            v.clone().finish("", None),
            Err(VerifyError::DigestMismatch(_))
        )
    {
        // The bytes an earlier run left were not the artifact's: a power cut can leave a
        // partial file whose length was journaled before its data reached the medium. Fetch
        // the whole artifact once more rather than fail the update on the device's own damage.
        tracing::warn!(
            "{}: the {reused} bytes kept from an interrupted attempt do not match the artifact (damaged by a power cut?); downloading it again from byte 0",
            req.dest.display()
        );
        drop(file);
        let whole = DownloadRequest {
            keep_partial: false,
            ..*req
        };
        let mut d = download(http, &whole, progress)?;
        d.elapsed = started.elapsed();
        return Ok(d);
    }
    file.sync_all()
        .map_err(|e| io_err("cannot fsync", req.dest, &e))?;
    if let Ok(d) = File::open(&dir) {
        // Make the directory entry durable too; a failure here is not fatal for the data.
        let _ = d.sync_all();
    }
    Ok(Downloaded {
        bytes: offset,
        sha256: digests.sha256.map_or([0; 32], |h| h.finalize().into()),
        sha1: digests.sha1.map_or([0; 20], |h| h.finalize().into()),
        elapsed: started.elapsed(),
        resumes,
        reused,
        verifier: digests.core,
    })
}

/// The transfer with in-call resumes (`req.resume`); returns how many times it resumed.
fn transfer(
    http: &Http,
    req: &DownloadRequest<'_>,
    file: &mut File,
    offset: &mut u64,
    digests: &mut Digests,
    validator: &mut Option<String>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<u32, HttpError> {
    let mut resumes = 0u32;
    let mut fruitless = 0u32;
    loop {
        if req.cancel.load(Ordering::Relaxed) {
            return Err(HttpError::new(
                HttpErrorKind::Cancelled,
                "download cancelled",
            ));
        }
        let before = *offset;
        let attempt = one_attempt(http, req, file, offset, digests, validator, progress);
        match attempt {
            Ok(()) => return Ok(resumes),
            Err(e) if req.resume && e.is_transient() => {
                if *offset > before {
                    fruitless = 0;
                } else {
                    fruitless += 1;
                }
                if fruitless >= MAX_ATTEMPTS_WITHOUT_PROGRESS {
                    return Err(HttpError::new(
                        e.kind.clone(),
                        format!("{e} (gave up after {fruitless} attempts without progress)"),
                    ));
                }
                resumes += 1;
                tracing::info!("download interrupted at {} bytes ({e}); resuming", *offset);
                std::thread::sleep(RESUME_PAUSE);
            }
            Err(e) => return Err(e),
        }
    }
}

/// Where the validator of a partial download is kept: `<dest>.if-range`.
pub fn validator_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".if-range");
    PathBuf::from(name)
}

/// A stored validator, if it is one (a short single line without control characters).
fn read_validator(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let v = text.trim();
    (!v.is_empty() && v.len() <= 256 && !v.chars().any(char::is_control)).then(|| v.to_owned())
}

fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!("{}: {e}", path.display());
    }
}

/// Removes a partial or failed download and what belongs to it.
pub fn remove_partial(dest: &Path) {
    remove_quietly(dest);
    remove_quietly(&validator_path(dest));
}

fn hash_prefix(
    file: &mut File,
    path: &Path,
    len: u64,
    digests: &mut Digests,
) -> Result<u64, HttpError> {
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_err("cannot seek", path, &e))?;
    let mut buf = vec![0u8; CHUNK];
    let mut done = 0u64;
    let mut limited = (&mut *file).take(len);
    loop {
        let n = limited
            .read(&mut buf)
            .map_err(|e| io_err("cannot read back", path, &e))?;
        if n == 0 {
            break;
        }
        digests.update(&buf[..n]);
        done += n as u64;
    }
    file.seek(SeekFrom::Start(done))
        .map_err(|e| io_err("cannot seek", path, &e))?;
    Ok(done)
}

/// `bytes START-END/TOTAL` or `bytes */TOTAL` → (start, total).
fn parse_content_range(value: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = if total == "*" {
        None
    } else {
        Some(total.parse().ok()?)
    };
    let start = if range == "*" {
        None
    } else {
        Some(range.split_once('-')?.0.parse().ok()?)
    };
    Some((start, total))
}

fn restart(
    file: &mut File,
    path: &Path,
    offset: &mut u64,
    digests: &mut Digests,
) -> Result<(), HttpError> {
    file.set_len(0)
        .map_err(|e| io_err("cannot truncate", path, &e))?;
    file.seek(SeekFrom::Start(0))
        .map_err(|e| io_err("cannot seek", path, &e))?;
    *offset = 0;
    *digests = digests.fresh();
    Ok(())
}

fn one_attempt(
    http: &Http,
    req: &DownloadRequest<'_>,
    file: &mut File,
    offset: &mut u64,
    digests: &mut Digests,
    validator: &mut Option<String>,
    progress: &mut dyn FnMut(u64, Option<u64>),
) -> Result<(), HttpError> {
    let agent = http.download_agent(req.client_cert);
    let mut builder = agent
        .get(req.url)
        .header("Accept", "application/octet-stream");
    if let Some(auth) = req.auth {
        builder = builder.header("Authorization", auth);
    }
    if *offset > 0 {
        builder = builder.header("Range", format!("bytes={}-", *offset));
        if let Some(v) = validator.as_deref() {
            builder = builder.header("If-Range", v);
        }
    }
    let mut response = builder
        .call()
        .map_err(|e| HttpError::from_ureq(req.url, &e))?;
    let status = response.status().as_u16();
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_range = header("content-range");
    let new_validator = header("etag")
        .filter(|e| !e.starts_with("W/"))
        .or_else(|| header("last-modified"));
    let total = match status {
        200 => {
            if *offset > 0 {
                tracing::info!("server ignored the range request; downloading from the start");
                restart(file, req.dest, offset, digests)?;
            }
            response.body().content_length()
        }
        206 => {
            let (start, total) = content_range
                .as_deref()
                .and_then(parse_content_range)
                .unwrap_or((None, None));
            if start != Some(*offset) {
                // Not the range we asked for: start over rather than splice wrong bytes.
                restart(file, req.dest, offset, digests)?;
                return Err(HttpError::new(
                    HttpErrorKind::Transfer,
                    format!(
                        "{}: 206 with Content-Range {content_range:?} does not start at the requested offset",
                        redact_url(req.url)
                    ),
                ));
            }
            total
        }
        416 => {
            let total = content_range
                .as_deref()
                .and_then(parse_content_range)
                .and_then(|(_, t)| t);
            let complete = total.or(req.expected_size) == Some(*offset);
            if complete {
                progress(*offset, Some(*offset));
                return Ok(());
            }
            restart(file, req.dest, offset, digests)?;
            return Err(HttpError::new(
                HttpErrorKind::Transfer,
                format!(
                    "{}: 416 at offset that is not the end; restarting",
                    redact_url(req.url)
                ),
            ));
        }
        other => {
            return Err(HttpError::new(
                HttpErrorKind::Status(other),
                format!(
                    "{}: HTTP {other} for the artifact download",
                    redact_url(req.url)
                ),
            ));
        }
    };
    if new_validator.is_some() {
        *validator = new_validator;
    }
    let total = total.or(req.expected_size);
    if let (Some(t), Some(e)) = (total, req.expected_size)
        && t != e
    {
        return Err(HttpError::new(
            HttpErrorKind::SizeMismatch,
            format!(
                "{}: server announces {t} bytes but hawkBit said {e}",
                redact_url(req.url)
            ),
        ));
    }
    let mut reader = response.body_mut().as_reader();
    let mut buf = vec![0u8; CHUNK];
    let attempt_start = Instant::now();
    let mut attempt_bytes = 0u64;
    let mut window_start = Instant::now();
    let mut window_bytes = 0u64;
    loop {
        if req.cancel.load(Ordering::Relaxed) {
            return Err(HttpError::new(
                HttpErrorKind::Cancelled,
                "download cancelled",
            ));
        }
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) => {
                let kind = if e.kind() == std::io::ErrorKind::TimedOut
                    || e.to_string().contains("timeout")
                {
                    HttpErrorKind::Timeout
                } else {
                    HttpErrorKind::Transfer
                };
                return Err(HttpError::new(
                    kind,
                    format!(
                        "{}: transfer broke off after {} bytes: {e}",
                        redact_url(req.url),
                        *offset
                    ),
                ));
            }
        };
        if let Some(t) = total
            && *offset + n as u64 > t
        {
            return Err(HttpError::new(
                HttpErrorKind::SizeMismatch,
                format!(
                    "{}: server sent more than the {t} bytes announced",
                    redact_url(req.url)
                ),
            ));
        }
        file.write_all(&buf[..n])
            .map_err(|e| io_err("cannot write", req.dest, &e))?;
        digests.update(&buf[..n]);
        *offset += n as u64;
        attempt_bytes += n as u64;
        window_bytes += n as u64;
        progress(*offset, total);
        if !req.low_speed_time.is_zero() && window_start.elapsed() >= req.low_speed_time {
            let rate = window_bytes as f64 / window_start.elapsed().as_secs_f64();
            if rate < req.low_speed_rate as f64 {
                return Err(HttpError::new(
                    HttpErrorKind::LowSpeed,
                    format!(
                        "{}: {rate:.0} B/s for {} s is below low_speed_rate {} B/s",
                        redact_url(req.url),
                        req.low_speed_time.as_secs(),
                        req.low_speed_rate
                    ),
                ));
            }
            window_start = Instant::now();
            window_bytes = 0;
        }
        if req.rate_limit > 0 {
            let due = Duration::from_secs_f64(attempt_bytes as f64 / req.rate_limit as f64);
            let spent = attempt_start.elapsed();
            if due > spent {
                std::thread::sleep(due - spent);
            }
        }
    }
    if let Some(t) = total
        && *offset != t
    {
        return Err(HttpError::new(
            HttpErrorKind::Transfer,
            format!(
                "{}: transfer ended after {} of {t} bytes",
                redact_url(req.url),
                *offset
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filename_attacks_are_refused() {
        let dir = Path::new("/var/lib/eyas/dl");
        let loc = dir.join("bundle.raucb");
        for bad in [
            "",
            ".",
            "..",
            "../etc/passwd",
            "a/../../b",
            "/etc/shadow",
            "sub/x",
            "x\0y",
            "a\\b",
            "x\ny",
            "a..b",
        ] {
            let e = artifact_path(&loc, 0, bad).expect_err(bad);
            assert_eq!(e.kind, HttpErrorKind::BadFilename, "{bad:?}");
        }
        // hawkBit allows 256-byte names: the file keeps the end of it, within 255 bytes
        let long = format!("{}.raucb", "a".repeat(250));
        let p = artifact_path(&loc, 0, &long).expect("long name");
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        assert_eq!(name.len(), 255);
        assert!(name.starts_with("bundle.raucb.0.aaa") && name.ends_with("a.raucb"));
        let wide = "ü".repeat(128);
        let p = artifact_path(&loc, 1, &wide).expect("multi-byte name");
        assert!(p.file_name().expect("name").len() <= 255);
        assert_eq!(
            artifact_path(&loc, 0, "rootfs-1.1.0.raucb").expect("ok"),
            dir.join("bundle.raucb.0.rootfs-1.1.0.raucb")
        );
        assert_eq!(
            artifact_path(&loc, 3, ".hidden").expect("ok"),
            dir.join("bundle.raucb.3..hidden")
        );
        // two artifacts with one name never share a file
        assert_ne!(
            artifact_path(&loc, 1, "app.raucb").expect("ok"),
            artifact_path(&loc, 2, "app.raucb").expect("ok")
        );
    }

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((Some(100), Some(200)))
        );
        assert_eq!(parse_content_range("bytes */200"), Some((None, Some(200))));
        assert_eq!(parse_content_range("bytes 0-1/*"), Some((Some(0), None)));
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }

    #[test]
    fn hex_is_lower_case() {
        assert_eq!(hex(&[0x00, 0xab, 0x10]), "00ab10");
    }
}
