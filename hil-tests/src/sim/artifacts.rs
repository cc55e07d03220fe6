//! Artifact storage (files on disk, hashed while written) and streaming with RFC 7233 ranges and faults.

use std::io::{Read, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use md5::Digest as _;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::http::hex;
use super::model::{Artifact, Failure, State, clip};
use super::time::{http_date, now_ms};

/// Fixed multipart boundary (hawkBit uses a fixed one too).
pub const BOUNDARY: &str = "THIS_STRING_SEPARATES_MULTIPART";
/// maxArtifactSize.
pub const MAX_ARTIFACT_SIZE: u64 = 1 << 30;
/// Artifacts per module.
pub const MAX_ARTIFACTS_PER_MODULE: usize = 50;

/// A fresh temp file name inside the storage dir.
pub fn temp_path(storage: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    storage.join(format!(
        "upload-{}-{}",
        now_ms(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

/// Incremental SHA-1 / MD5 / SHA-256.
#[derive(Default)]
pub struct Hasher {
    sha1: sha1::Sha1,
    md5: md5::Md5,
    sha256: sha2::Sha256,
    /// Bytes seen.
    pub size: u64,
}

/// Final hex digests and size.
#[derive(Debug, Clone)]
pub struct Hashes {
    /// SHA-1 hex.
    pub sha1: String,
    /// MD5 hex.
    pub md5: String,
    /// SHA-256 hex.
    pub sha256: String,
    /// Size.
    pub size: u64,
}

impl Hasher {
    /// Feeds bytes.
    pub fn update(&mut self, b: &[u8]) {
        self.sha1.update(b);
        self.md5.update(b);
        self.sha256.update(b);
        self.size += b.len() as u64;
    }
    /// Finishes.
    pub fn finish(self) -> Hashes {
        Hashes {
            sha1: hex(&self.sha1.finalize()),
            md5: hex(&self.md5.finalize()),
            sha256: hex(&self.sha256.finalize()),
            size: self.size,
        }
    }
}

/// Hashes a file in 64 KiB chunks (blocking).
pub fn hash_file(path: &Path) -> std::io::Result<Hashes> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Hasher::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

/// hawkBit's artifact file name rule: 1..256 characters (`JpaArtifact.filename`, `@Size(min = 1,
/// max = 256)`), clean text (`ArtifactUpload.filename` is `@ValidString`: jsoup `Safelist.none`, so
/// no HTML-like `<`). The simulator also refuses control characters and `/`: the name is sent back
/// in `Content-Disposition`, where a control character cannot be written (issue 13 §12: such a
/// name was stored and its download answered 200 with an empty body), and it names a file.
pub fn check_filename(filename: &str) -> Result<(), Failure> {
    let n = filename.chars().count();
    let bad = filename
        .chars()
        .find(|c| c.is_control() || *c == '/' || *c == '<');
    if n == 0 || n > 256 || bad.is_some() {
        let why = match bad {
            Some(c) if c.is_control() => {
                format!("contains the control character U+{:04X}", u32::from(c))
            }
            Some(c) => format!("contains '{c}'"),
            None => format!("has {n} characters"),
        };
        return Err(Failure::bad(format!(
            "artifact filename '{}' {why}; it must be 1..256 characters without control characters, '/' or '<'",
            clip(&filename.escape_debug().to_string())
        )));
    }
    Ok(())
}

/// Finishes an artifact response. A builder that fails (a header value that cannot be sent) is a
/// 500, never `Response::default()`, which is a 200 with an empty body (issue 13 §12).
fn finish(builder: axum::http::response::Builder, body: Body) -> Response {
    builder.body(body).unwrap_or_else(build_failed)
}

fn build_failed(e: axum::http::Error) -> Response {
    Failure::new(
        500,
        "hawkbit.server.error.artifact.loadFailed",
        format!("the artifact response could not be built: {e}"),
    )
    .into_response()
}

/// Moves an uploaded temp file into place and records it on the module.
pub fn register(
    st: &mut State,
    storage: &Path,
    module: u64,
    filename: &str,
    tmp: &Path,
    h: Hashes,
    now: i64,
) -> Result<Artifact, Failure> {
    check_filename(filename)?;
    if h.size > MAX_ARTIFACT_SIZE {
        return Err(Failure::new(
            413,
            "hawkbit.server.error.quota.artifactSize",
            "artifact larger than maxArtifactSize (1 GiB)",
        ));
    }
    let id = st.id();
    let sm = st
        .modules
        .get_mut(&module)
        .ok_or_else(|| Failure::not_found(format!("software module {module} not found")))?;
    if sm.artifacts.iter().any(|a| a.filename == filename) {
        return Err(Failure::new(
            409,
            "hawkbit.server.error.repo.entitiyAlreadyExists",
            format!("artifact '{filename}' already exists in software module {module}"),
        ));
    }
    if sm.artifacts.len() >= MAX_ARTIFACTS_PER_MODULE {
        return Err(Failure::quota(format!(
            "{MAX_ARTIFACTS_PER_MODULE} artifacts per software module"
        )));
    }
    let path = storage.join(format!("sm{module}-a{id}"));
    std::fs::rename(tmp, &path)
        .map_err(|e| Failure::new(500, "io", format!("storing artifact: {e}")))?;
    let a = Artifact {
        id,
        filename: filename.into(),
        size: h.size,
        sha1: h.sha1,
        md5: h.md5,
        sha256: h.sha256,
        path,
        created_at: now,
    };
    sm.artifacts.push(a.clone());
    Ok(a)
}

/// Fault parameters applied to one download.
#[derive(Debug, Clone, Copy, Default)]
pub struct StreamFaults {
    /// Abort after this many body bytes.
    pub cut_after: Option<u64>,
    /// XOR 0xFF the byte at this file offset.
    pub corrupt_offset: Option<u64>,
    /// Bytes per second.
    pub bandwidth: Option<u64>,
}

enum Segment {
    Bytes(Bytes),
    File { offset: u64, len: u64 },
}

/// Most ranges one request may ask for: Apache httpd's `MaxRanges` default. hawkBit sets no count
/// (only the header size bounds it); with overlaps refused, a response is at most the file plus
/// this many part headers.
pub const MAX_RANGES: usize = 200;

/// Parses `bytes=a-b,c-,-n` into inclusive ranges, in ascending order as hawkBit serves them
/// (`FileStreamingUtil` sorts by start). `Err(())` = unsatisfiable, malformed, more than
/// [`MAX_RANGES`], or overlapping (416): hawkBit refuses overlapping ranges too ("Ranges are
/// overlapping or not in order", a streaming failure), issue 13 §13: 2,000 copies of a 1 MiB file
/// made a 2 GB answer. Adjacent ranges (`0-9,10-19`) do not overlap.
fn parse_ranges(spec: &str, len: u64) -> Result<Vec<(u64, u64)>, ()> {
    let spec = spec.trim();
    let list = spec.strip_prefix("bytes=").ok_or(())?;
    let mut out = Vec::new();
    for part in list.split(',') {
        if out.len() == MAX_RANGES {
            return Err(());
        }
        let part = part.trim();
        let (a, b) = part.split_once('-').ok_or(())?;
        let num = |s: &str| -> Result<Option<u64>, ()> {
            if s.is_empty() {
                Ok(None)
            } else if s.bytes().all(|c| c.is_ascii_digit()) {
                s.parse().map(Some).map_err(|_| ())
            } else {
                Err(())
            }
        };
        let (start, end) = match (num(a)?, num(b)?) {
            (Some(s), Some(e)) => (s, e.min(len.saturating_sub(1))),
            (Some(s), None) => (s, len.saturating_sub(1)),
            (None, Some(n)) if n > 0 => (len.saturating_sub(n), len.saturating_sub(1)),
            _ => return Err(()),
        };
        if start >= len || start > end {
            return Err(());
        }
        out.push((start, end));
    }
    out.sort_unstable();
    if out.windows(2).any(|w| w[1].0 <= w[0].1) {
        return Err(());
    }
    if out.is_empty() { Err(()) } else { Ok(out) }
}

/// Serves an artifact: full body, single range (206), multipart ranges (206), 416, 412, 304, `If-Range`.
pub fn serve(a: &Artifact, headers: &HeaderMap, head: bool, faults: StreamFaults) -> Response {
    let etag = format!("\"{}\"", a.sha1);
    let last_modified = http_date(a.created_at);
    let get = |h: header::HeaderName| headers.get(h).and_then(|v| v.to_str().ok());
    if let Some(m) = get(header::IF_MATCH)
        && !m.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        return StatusCode::PRECONDITION_FAILED.into_response();
    }
    let mut builder = Response::builder()
        .header(header::ETAG, etag.as_str())
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, last_modified.as_str())
        .header("X-Content-Type-Options", "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            format!(
                "attachment;filename={}",
                a.filename.replace(['"', '\r', '\n'], "_")
            ),
        );
    if let Some(m) = get(header::IF_NONE_MATCH)
        && m.split(',').any(|t| t.trim() == etag || t.trim() == "*")
    {
        return finish(builder.status(StatusCode::NOT_MODIFIED), Body::empty());
    }
    let len = a.size;
    let if_range_ok =
        get(header::IF_RANGE).is_none_or(|v| v.trim() == etag || v.trim() == last_modified);
    let range = get(header::RANGE).filter(|_| if_range_ok);
    let (status, segments, total, ctype) = match range {
        None => (
            StatusCode::OK,
            vec![Segment::File { offset: 0, len }],
            len,
            "application/octet-stream".to_string(),
        ),
        Some(spec) => match parse_ranges(spec, len) {
            Err(()) => {
                return finish(
                    builder
                        .status(StatusCode::RANGE_NOT_SATISFIABLE)
                        .header(header::CONTENT_RANGE, format!("bytes */{len}")),
                    Body::empty(),
                );
            }
            Ok(r) if r.len() == 1 => {
                let (s, e) = r[0];
                builder = builder.header(header::CONTENT_RANGE, format!("bytes {s}-{e}/{len}"));
                (
                    StatusCode::PARTIAL_CONTENT,
                    vec![Segment::File {
                        offset: s,
                        len: e - s + 1,
                    }],
                    e - s + 1,
                    "application/octet-stream".into(),
                )
            }
            Ok(r) => {
                let mut segs = Vec::new();
                let mut total = 0u64;
                for (s, e) in r {
                    let head = format!(
                        "\r\n--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Range: bytes {s}-{e}/{len}\r\n\r\n"
                    );
                    total += head.len() as u64 + (e - s + 1);
                    segs.push(Segment::Bytes(Bytes::from(head)));
                    segs.push(Segment::File {
                        offset: s,
                        len: e - s + 1,
                    });
                }
                let tail = format!("\r\n--{BOUNDARY}--");
                total += tail.len() as u64;
                segs.push(Segment::Bytes(Bytes::from(tail)));
                (
                    StatusCode::PARTIAL_CONTENT,
                    segs,
                    total,
                    format!("multipart/byteranges; boundary={BOUNDARY}"),
                )
            }
        },
    };
    builder = builder
        .status(status)
        .header(header::CONTENT_TYPE, ctype)
        .header(header::CONTENT_LENGTH, total);
    if head {
        return finish(builder, Body::empty());
    }
    let body = Body::from_stream(stream(a.path.clone(), segments, faults));
    match builder.body(body) {
        Ok(mut r) => {
            if let Ok(v) = HeaderValue::from_str(&total.to_string()) {
                r.headers_mut().insert(header::CONTENT_LENGTH, v);
            }
            r
        }
        Err(e) => build_failed(e),
    }
}

struct StreamState {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    segments: std::collections::VecDeque<Segment>,
    faults: StreamFaults,
    sent: u64,
    started: Instant,
}

fn stream(
    path: PathBuf,
    segments: Vec<Segment>,
    faults: StreamFaults,
) -> impl futures_util::Stream<Item = Result<Bytes, std::io::Error>> + Send {
    let st = StreamState {
        path,
        file: None,
        segments: segments.into(),
        faults,
        sent: 0,
        started: Instant::now(),
    };
    futures_util::stream::unfold(st, |mut st| async move {
        let res = next_chunk(&mut st).await;
        match res {
            Ok(Some(b)) => Some((Ok(b), st)),
            Ok(None) => None,
            Err(e) => {
                st.segments.clear();
                st.faults.cut_after = Some(0);
                st.sent = u64::MAX;
                Some((Err(e), st))
            }
        }
    })
}

async fn next_chunk(st: &mut StreamState) -> Result<Option<Bytes>, std::io::Error> {
    if let Some(cut) = st.faults.cut_after
        && st.sent >= cut
    {
        if st.sent == u64::MAX {
            return Ok(None);
        }
        // let hyper flush what was sent before the abort (it flushes while the body is pending)
        tokio::time::sleep(Duration::from_millis(100)).await;
        return Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            "hawkbit-sim: injected connection cut",
        ));
    }
    let Some(seg) = st.segments.pop_front() else {
        return Ok(None);
    };
    let mut chunk = match seg {
        Segment::Bytes(b) => b,
        Segment::File { offset, len } => {
            if st.file.is_none() {
                st.file = Some(tokio::fs::File::open(&st.path).await?);
            }
            let want = len.min(64 * 1024);
            let Some(f) = st.file.as_mut() else {
                return Ok(None);
            };
            f.seek(SeekFrom::Start(offset)).await?;
            let mut buf = vec![0u8; want as usize];
            f.read_exact(&mut buf).await?;
            if let Some(c) = st.faults.corrupt_offset
                && c >= offset
                && c < offset + want
            {
                buf[(c - offset) as usize] ^= 0xFF;
            }
            if len > want {
                st.segments.push_front(Segment::File {
                    offset: offset + want,
                    len: len - want,
                });
            }
            Bytes::from(buf)
        }
    };
    if let Some(cut) = st.faults.cut_after {
        let left = cut - st.sent;
        if (chunk.len() as u64) > left {
            let rest = chunk.split_off(left as usize);
            st.segments.push_front(Segment::Bytes(rest));
        }
    }
    st.sent += chunk.len() as u64;
    if let Some(bw) = st.faults.bandwidth.filter(|b| *b > 0) {
        let due = Duration::from_secs_f64(st.sent as f64 / bw as f64);
        let elapsed = st.started.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
    Ok(Some(chunk))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_ranges("bytes=0-9", 100), Ok(vec![(0, 9)]));
        assert_eq!(parse_ranges("bytes=90-", 100), Ok(vec![(90, 99)]));
        assert_eq!(parse_ranges("bytes=-10", 100), Ok(vec![(90, 99)]));
        assert_eq!(parse_ranges("bytes=95-200", 100), Ok(vec![(95, 99)]));
        assert_eq!(parse_ranges("bytes=0-1,5-6", 100), Ok(vec![(0, 1), (5, 6)]));
        assert!(parse_ranges("bytes=100-", 100).is_err());
        assert!(parse_ranges("bytes=5-1", 100).is_err());
        assert!(parse_ranges("items=0-1", 100).is_err());
        assert!(parse_ranges("bytes=a-b", 100).is_err());
        // ascending; adjacent is fine, overlapping and more than MAX_RANGES are not
        assert_eq!(parse_ranges("bytes=5-6,0-1", 100), Ok(vec![(0, 1), (5, 6)]));
        assert_eq!(
            parse_ranges("bytes=0-9,10-19", 100),
            Ok(vec![(0, 9), (10, 19)])
        );
        assert!(parse_ranges("bytes=0-9,9-19", 100).is_err());
        assert!(parse_ranges("bytes=0-99,0-99", 100).is_err());
        assert!(parse_ranges("bytes=-10,80-", 100).is_err());
        let n = |k: usize| {
            format!(
                "bytes={}",
                (0..k)
                    .map(|i| format!("{i}-{i}"))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        assert_eq!(
            parse_ranges(&n(MAX_RANGES), 1000).map(|r| r.len()),
            Ok(MAX_RANGES)
        );
        assert!(parse_ranges(&n(MAX_RANGES + 1), 1000).is_err());
    }
}
