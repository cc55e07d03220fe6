//! Parsers for the DDI documents a device receives.

use super::json::{self, JsonStr, Lexer, Value};
use super::{
    ActionId, HandlingType, MAX_ARTIFACTS_PER_CHUNK, MAX_CHUNKS, MAX_METADATA_PER_CHUNK,
    MAX_METADATA_VALUE_LEN, MAX_NAME_LEN, MAX_URL_LEN, MaintenanceWindow, ParseError,
};
use crate::time::Duration;

// ---------------------------------------------------------------------------------------------
// small helpers
//
// The lexer keeps the first error (sticky, see `json::Lexer`): a helper that finds a wrong
// type, value or size reports it with `Lexer::fail` and returns `None`/`false`; every later
// lexer call then ends its loop, and each public parser checks once, with `Lexer::result`.
// Checks run in the same order as they would with an early return, so the first error is the
// one an early return would give.

#[inline(never)]
fn wrong(l: &mut Lexer<'_>, field: &'static str) {
    l.fail(ParseError::WrongType(field));
}

#[inline(never)]
fn invalid(l: &mut Lexer<'_>, field: &'static str) {
    l.fail(ParseError::InvalidValue(field));
}

#[inline(never)]
fn missing(l: &mut Lexer<'_>, present: bool, field: &'static str) {
    if !present {
        l.fail(ParseError::MissingField(field));
    }
}

/// The current value is an object (else `WrongType`).
#[inline(never)]
fn object(l: &mut Lexer<'_>, field: &'static str) -> bool {
    let ok = matches!(l.cur(), Value::Object);
    if !ok {
        wrong(l, field);
    }
    ok
}

/// Read a value that must be an object.
fn open(l: &mut Lexer<'_>, field: &'static str) -> bool {
    l.read() && object(l, field)
}

/// `true` for an object, `false` for `null` (or after an error); other types are `WrongType`.
fn object_or_null(l: &mut Lexer<'_>, field: &'static str) -> bool {
    match l.cur() {
        Value::Object => true,
        Value::Null => false,
        _ => {
            wrong(l, field);
            false
        }
    }
}

#[inline(never)]
fn string<'a>(l: &mut Lexer<'a>, field: &'static str) -> Option<JsonStr<'a>> {
    match l.cur() {
        Value::Str(s) => Some(s),
        _ => {
            wrong(l, field);
            None
        }
    }
}

/// `s` if it decodes to at most `max` bytes (else `Capacity`).
#[inline(never)]
fn capped<'a>(
    l: &mut Lexer<'a>,
    s: Option<JsonStr<'a>>,
    field: &'static str,
    max: usize,
) -> Option<JsonStr<'a>> {
    let s = s?;
    if s.decoded_len() > max {
        l.fail(ParseError::Capacity { field, max });
        return None;
    }
    Some(s)
}

fn name<'a>(l: &mut Lexer<'a>, field: &'static str, max: usize) -> Option<JsonStr<'a>> {
    let s = string(l, field);
    capped(l, s, field, max)
}

#[inline(never)]
fn action_id(l: &mut Lexer<'_>, field: &'static str) -> Option<ActionId> {
    let n = match l.cur() {
        Value::Str(s) => {
            let mut buf = [0u8; 24];
            s.unescape_into(&mut buf).ok().and_then(json::digits_u64)
        }
        Value::Num(n) => n.as_u64(),
        _ => {
            wrong(l, field);
            return None;
        }
    };
    if n.is_none() {
        invalid(l, field);
    }
    n.map(ActionId)
}

/// The current value as `{ "href": "…" }`, unknown members ignored.
#[inline(never)]
fn href<'a>(l: &mut Lexer<'a>, field: &'static str) -> Option<JsonStr<'a>> {
    object(l, field);
    let mut out = None;
    while l.field(&["href"]).is_some() {
        out = string(l, field);
    }
    missing(l, out.is_some(), field);
    out
}

/// The current value as a `_links` object: the `href` of member `names[i]` (at most
/// [`MAX_URL_LEN`] bytes, errors naming `fields[i]`) into `out[i]`; other members are ignored.
#[inline(never)]
fn read_links<'a>(
    l: &mut Lexer<'a>,
    names: &[&str],
    fields: &[&'static str],
    out: &mut [Option<JsonStr<'a>>],
) {
    object(l, "_links");
    while let Some(i) = l.field(names) {
        if let (Some(slot), Some(&field)) = (out.get_mut(i), fields.get(i)) {
            let h = href(l, field);
            *slot = capped(l, h, field, MAX_URL_LEN);
        }
    }
}

/// `null` → 0, a string equal to `names[i]` → `i + 1`, another string `InvalidValue`, other
/// types `WrongType` (0 after an error).
#[inline(never)]
fn choice(l: &mut Lexer<'_>, field: &'static str, names: &[&str]) -> usize {
    match l.cur() {
        Value::Null => 0,
        Value::Str(s) => match names.iter().position(|n| s.eq_str(n)) {
            Some(i) => i + 1,
            None => {
                invalid(l, field);
                0
            }
        },
        _ => {
            wrong(l, field);
            0
        }
    }
}

fn handling(l: &mut Lexer<'_>, field: &'static str) -> Option<HandlingType> {
    match choice(l, field, &["skip", "attempt", "forced"]) {
        1 => Some(HandlingType::Skip),
        2 => Some(HandlingType::Attempt),
        3 => Some(HandlingType::Forced),
        _ => None,
    }
}

/// `hex` (exactly `2 * out.len()` hex digits, either case) decoded into `out`.
fn decode_hex(hex: &[u8], out: &mut [u8]) -> bool {
    if hex.len() != out.len() * 2 {
        return false;
    }
    for (o, pair) in out.iter_mut().zip(hex.chunks_exact(2)) {
        let &[hi, lo] = pair else { return false };
        match ((hi as char).to_digit(16), (lo as char).to_digit(16)) {
            (Some(hi), Some(lo)) => *o = (hi * 16 + lo) as u8,
            _ => return false,
        }
    }
    true
}

/// The current value as a hex digest of `out.len()` bytes into `out`; `false` for `null`.
#[inline(never)]
fn hex_digest(l: &mut Lexer<'_>, field: &'static str, out: &mut [u8]) -> bool {
    let s = match l.cur() {
        Value::Null => return false,
        Value::Str(s) => s,
        _ => {
            wrong(l, field);
            return false;
        }
    };
    let ok = decode_hex(s.as_plain().map_or(&[][..], str::as_bytes), out);
    if !ok {
        invalid(l, field);
    }
    ok
}

// ---------------------------------------------------------------------------------------------
// sleep

/// Parse hawkBit's `config.polling.sleep`: `HH:MM:SS` (hours may exceed 24) or an ISO-8601
/// duration as produced by Java's `Duration.toString()` (`PT26H30M`, `PT0.5S`) or with days
/// (`P1DT2H`). Negative values, empty components and overflow are rejected (`None`).
/// Fractions of seconds below one millisecond are truncated.
///
/// Every number is 1 to 12 digits. `HH:MM:SS` has exactly two-digit minutes and seconds, each
/// below 60. An ISO duration is `P[nW][nD][T[nH][nM][n[.,f]S]]` with at least one part, a
/// non-empty time part after `T` and a fraction of 1 to 9 digits (of which the first 3 count).
#[inline(never)]
pub fn parse_sleep(s: &str) -> Option<Duration> {
    let b = s.as_bytes();
    let mut i = 0;
    let millis = if b.first() == Some(&b'P') {
        i = 1;
        parse_iso(b, &mut i)?
    } else {
        let h = number(b, &mut i)?;
        let mut two = || {
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
            let start = i;
            let n = number(b, &mut i)?;
            (i - start == 2 && n < 60).then_some(n)
        };
        let (m, sec) = (two()?, two()?);
        // h < 10^12: no overflow
        (h * 3600 + m * 60 + sec) * 1000
    };
    (i == b.len()).then_some(Duration::from_millis(millis))
}

/// The 1 to 12 digits at `b[*i..]` as a number (`*i` moved past them).
fn number(b: &[u8], i: &mut usize) -> Option<u64> {
    let start = *i;
    let mut n = 0u64;
    while let Some(&c) = b.get(*i).filter(|c| c.is_ascii_digit()) {
        // a run longer than 12 digits is rejected below; until then no overflow
        n = n.wrapping_mul(10).wrapping_add(u64::from(c - b'0'));
        *i += 1;
    }
    (1..=12).contains(&(*i - start)).then_some(n)
}

/// `[nW][nD][T[nH][nM][n[.,f]S]]` from `b[*i..]` to its end, in milliseconds.
fn parse_iso(b: &[u8], i: &mut usize) -> Option<u64> {
    const UNITS: [(u8, u64); 5] = [
        (b'W', 7 * 86_400_000),
        (b'D', 86_400_000),
        (b'H', 3_600_000),
        (b'M', 60_000),
        (b'S', 1000),
    ];
    let mut millis: u64 = 0;
    let mut any = false;
    let mut in_time = false;
    // index of the first unit still allowed (each comes at most once, in order)
    let mut next = 0;
    while let Some(&c) = b.get(*i) {
        if c == b'T' && !in_time {
            in_time = true;
            next = 2;
            *i += 1;
            if *i == b.len() {
                return None;
            }
            continue;
        }
        let n = number(b, i)?;
        let mut frac_ms = None;
        if matches!(b.get(*i), Some(b'.' | b',')) {
            *i += 1;
            let start = *i;
            let mut ms = 0;
            let mut scale = 100;
            while let Some(&d) = b.get(*i).filter(|d| d.is_ascii_digit()) {
                ms += u64::from(d - b'0') * scale;
                scale /= 10;
                *i += 1;
            }
            if !(1..=9).contains(&(*i - start)) {
                return None;
            }
            frac_ms = Some(ms);
        }
        let unit = *b.get(*i)?;
        *i += 1;
        let k = UNITS.iter().position(|&(u, _)| u == unit)?;
        let (_, ms) = UNITS.get(k)?;
        if k < next || (k >= 2) != in_time || (frac_ms.is_some() && k != 4) {
            return None;
        }
        next = k + 1;
        millis = millis.checked_add(n.checked_mul(*ms)?.checked_add(frac_ms.unwrap_or(0))?)?;
        any = true;
    }
    any.then_some(millis)
}

// ---------------------------------------------------------------------------------------------
// controller base

/// `GET {controller}`: the base poll document (`DdiControllerBase`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerBase<'a> {
    /// `config.polling.sleep`, parsed.
    pub sleep: Duration,
    /// `_links.deploymentBase.href`: an active action to fetch (href used verbatim).
    pub deployment_base: Option<JsonStr<'a>>,
    /// `_links.cancelAction.href`: the active action is being canceled.
    pub cancel_action: Option<JsonStr<'a>>,
    /// `_links.confirmationBase.href`: an action waits for confirmation.
    pub confirmation_base: Option<JsonStr<'a>>,
    /// `_links.installedBase.href`: the last successfully finished action.
    pub installed_base: Option<JsonStr<'a>>,
    /// `_links.configData.href`: the server asks for attributes.
    pub config_data: Option<JsonStr<'a>>,
}

/// Parse the base poll response.
#[inline(never)]
pub fn parse_controller_base(body: &[u8]) -> Result<ControllerBase<'_>, ParseError> {
    let mut l = Lexer::new(body);
    let out = controller_base(&mut l);
    l.result(out)
}

fn controller_base<'a>(l: &mut Lexer<'a>) -> Option<ControllerBase<'a>> {
    // `_links` members by name: one table instead of a ladder per link
    const LINKS: [&str; 5] = [
        "deploymentBase",
        "cancelAction",
        "confirmationBase",
        "installedBase",
        "configData",
    ];
    const FIELDS: [&str; 5] = [
        "_links.deploymentBase.href",
        "_links.cancelAction.href",
        "_links.confirmationBase.href",
        "_links.installedBase.href",
        "_links.configData.href",
    ];
    const SLEEP: &str = "config.polling.sleep";
    open(l, "(document)");
    let mut sleep = None;
    let mut links: [Option<JsonStr<'_>>; 5] = [None; 5];
    let mut saw_config = false;
    let mut saw_polling = false;
    while let Some(i) = l.field(&["config", "_links"]) {
        if i == 0 {
            object(l, "config");
            saw_config = true;
            while l.field(&["polling"]).is_some() {
                object(l, "config.polling");
                saw_polling = true;
                while l.field(&["sleep"]).is_some() {
                    let s = string(l, SLEEP);
                    let mut buf = [0u8; 32];
                    sleep = s.and_then(|s| parse_sleep(s.unescape_into(&mut buf).ok()?));
                    if s.is_some() && sleep.is_none() {
                        invalid(l, SLEEP);
                    }
                }
            }
        } else {
            read_links(l, &LINKS, &FIELDS, &mut links);
        }
    }
    l.end();
    missing(l, saw_config, "config");
    missing(l, saw_polling, "config.polling");
    missing(l, sleep.is_some(), SLEEP);
    let [
        deployment_base,
        cancel_action,
        confirmation_base,
        installed_base,
        config_data,
    ] = links;
    Some(ControllerBase {
        sleep: sleep?,
        deployment_base,
        cancel_action,
        confirmation_base,
        installed_base,
        config_data,
    })
}

// ---------------------------------------------------------------------------------------------
// deploymentBase / installedBase / confirmationBase/{id}

/// A deployment document: `deploymentBase/{id}`, `installedBase/{id}` or
/// `confirmationBase/{id}` (whose object is called `confirmation` instead of `deployment`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeploymentBase<'a> {
    /// `id`.
    pub id: ActionId,
    /// `deployment.download` (absent ⇒ `None`).
    pub download: Option<HandlingType>,
    /// `deployment.update` (absent ⇒ `None`).
    pub update: Option<HandlingType>,
    /// `deployment.maintenanceWindow` (present only if the action has a schedule).
    pub maintenance_window: Option<MaintenanceWindow>,
    /// `actionHistory.status`, if the history was requested.
    pub action_history_status: Option<JsonStr<'a>>,
    chunks_raw: &'a [u8],
    chunk_count: usize,
}

impl<'a> DeploymentBase<'a> {
    /// Number of chunks (≤ [`MAX_CHUNKS`]).
    pub fn chunk_count(&self) -> usize {
        self.chunk_count
    }

    /// The chunks in document order (already validated by the parse).
    pub fn chunks(&self) -> ChunkIter<'a> {
        ChunkIter::new(self.chunks_raw)
    }

    /// The `n`th chunk.
    pub fn chunk(&self, n: usize) -> Option<Chunk<'a>> {
        self.chunks().nth(n)
    }
}

/// One software module of a deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chunk<'a> {
    /// `part`: the software-module type key (`os`, `bApp` for `application`, custom keys).
    pub part: JsonStr<'a>,
    /// `version`.
    pub version: JsonStr<'a>,
    /// `name`.
    pub name: JsonStr<'a>,
    /// `encrypted` (absent ⇒ `false`).
    pub encrypted: bool,
    artifacts_raw: &'a [u8],
    artifact_count: usize,
    metadata_raw: &'a [u8],
    metadata_count: usize,
}

impl<'a> Chunk<'a> {
    /// Number of artifacts (≤ [`MAX_ARTIFACTS_PER_CHUNK`]).
    pub fn artifact_count(&self) -> usize {
        self.artifact_count
    }
    /// The artifacts in document order.
    pub fn artifacts(&self) -> ArtifactIter<'a> {
        ArtifactIter::new(self.artifacts_raw)
    }
    /// Number of metadata entries (≤ [`MAX_METADATA_PER_CHUNK`]).
    pub fn metadata_count(&self) -> usize {
        self.metadata_count
    }
    /// The target-visible metadata entries.
    pub fn metadata(&self) -> MetadataIter<'a> {
        MetadataIter::new(self.metadata_raw)
    }
}

/// One artifact (file) of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Artifact<'a> {
    /// `filename`.
    pub filename: JsonStr<'a>,
    /// `size` in bytes.
    pub size: u64,
    /// `hashes.sha1`, decoded from hex.
    pub sha1: Option<[u8; 20]>,
    /// `hashes.md5`, decoded from hex.
    pub md5: Option<[u8; 16]>,
    /// `hashes.sha256`, decoded from hex (absent for very old uploads).
    pub sha256: Option<[u8; 32]>,
    /// The download link: rel `download`, else `download-http`, else the first rel containing
    /// `download`. `None` if the artifact has no such link.
    pub download_url: Option<JsonStr<'a>>,
}

/// A `{key, value}` metadata entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataEntry<'a> {
    /// `key`.
    pub key: JsonStr<'a>,
    /// `value` (`None` if JSON `null`).
    pub value: Option<JsonStr<'a>>,
}

macro_rules! lazy_iter {
    ($name:ident, $item:ident, $parse:ident, $doc:literal) => {
        #[doc = $doc]
        ///
        /// The elements were validated when the document was parsed, so iteration yields
        /// exactly the validated elements.
        pub struct $name<'a> {
            lex: Lexer<'a>,
        }

        impl<'a> $name<'a> {
            fn new(raw: &'a [u8]) -> Self {
                Self {
                    lex: array_lexer(raw),
                }
            }
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item<'a>;
            fn next(&mut self) -> Option<$item<'a>> {
                // after the `]` or an error the lexer reads as empty: `element()` stays `false`
                if !self.lex.element() {
                    return None;
                }
                $parse(&mut self.lex)
            }
        }
    };
}

/// A lexer inside the validated array `raw` (stopped if `raw` is no array, e.g. empty).
fn array_lexer(raw: &[u8]) -> Lexer<'_> {
    let mut l = Lexer::new(raw);
    if l.read() && !matches!(l.cur(), Value::Array) {
        wrong(&mut l, "");
    }
    l
}

lazy_iter!(
    ChunkIter,
    Chunk,
    parse_chunk,
    "Iterator over the chunks of a deployment."
);
lazy_iter!(
    ArtifactIter,
    Artifact,
    parse_artifact,
    "Iterator over the artifacts of a chunk."
);
lazy_iter!(
    MetadataIter,
    MetadataEntry,
    parse_metadata,
    "Iterator over chunk metadata."
);

/// Validate the current value as an array (or `null`) whose elements are parsed by `f`,
/// return (raw slice, count).
///
/// One copy for every element type: `f` is a plain `fn` that validates one element.
#[inline(never)]
fn array_of<'a>(
    l: &mut Lexer<'a>,
    field: &'static str,
    max: usize,
    f: fn(&mut Lexer<'a>),
) -> (&'a [u8], usize) {
    // the array's `[` is the byte before the lexer's position
    let start = l.pos().saturating_sub(1);
    match l.cur() {
        Value::Array => {}
        Value::Null => return (&[], 0),
        _ => {
            wrong(l, field);
            return (&[], 0);
        }
    }
    let mut n = 0;
    while l.element() {
        if n == max {
            l.fail(ParseError::Capacity { field, max });
            break;
        }
        f(l);
        n += 1;
    }
    (l.slice(start, l.pos()), n)
}

#[inline(never)]
fn parse_metadata<'a>(l: &mut Lexer<'a>) -> Option<MetadataEntry<'a>> {
    const KEY: &str = "deployment.chunks[].metadata[].key";
    open(l, "deployment.chunks[].metadata[]");
    let mut key = None;
    let mut value = None;
    while let Some(i) = l.field(&["key", "value"]) {
        if i == 0 {
            key = name(l, KEY, MAX_NAME_LEN);
        } else {
            value = match l.cur() {
                Value::Null => None,
                _ => name(
                    l,
                    "deployment.chunks[].metadata[].value",
                    MAX_METADATA_VALUE_LEN,
                ),
            };
        }
    }
    missing(l, key.is_some(), KEY);
    Some(MetadataEntry { key: key?, value })
}

#[inline(never)]
fn parse_artifact<'a>(l: &mut Lexer<'a>) -> Option<Artifact<'a>> {
    const FILENAME: &str = "deployment.chunks[].artifacts[].filename";
    const SIZE: &str = "deployment.chunks[].artifacts[].size";
    open(l, "deployment.chunks[].artifacts[]");
    let mut filename = None;
    let mut size = None;
    let (mut sha1, mut md5, mut sha256) = (None, None, None);
    let mut link: Option<(u8, JsonStr<'a>)> = None;
    while let Some(i) = l.field(&["filename", "size", "hashes", "_links"]) {
        match i {
            0 => filename = name(l, FILENAME, MAX_NAME_LEN),
            1 => {
                size = match l.cur() {
                    Value::Num(n) => n.as_u64(),
                    _ => {
                        wrong(l, SIZE);
                        continue;
                    }
                };
                if size.is_none() {
                    invalid(l, SIZE);
                }
            }
            2 => {
                if !object_or_null(l, "deployment.chunks[].artifacts[].hashes") {
                    continue;
                }
                while let Some(i) = l.field(&["sha1", "md5", "sha256"]) {
                    match i {
                        0 => {
                            let mut d = [0u8; 20];
                            let f = "deployment.chunks[].artifacts[].hashes.sha1";
                            sha1 = hex_digest(l, f, &mut d).then_some(d);
                        }
                        1 => {
                            let mut d = [0u8; 16];
                            let f = "deployment.chunks[].artifacts[].hashes.md5";
                            md5 = hex_digest(l, f, &mut d).then_some(d);
                        }
                        _ => {
                            let mut d = [0u8; 32];
                            let f = "deployment.chunks[].artifacts[].hashes.sha256";
                            sha256 = hex_digest(l, f, &mut d).then_some(d);
                        }
                    }
                }
            }
            _ => {
                object(l, "deployment.chunks[].artifacts[]._links");
                while let Some(rel) = l.key() {
                    l.read();
                    let h = href(l, "deployment.chunks[].artifacts[]._links.href");
                    let prio = if rel.eq_str("download") {
                        3
                    } else if rel.eq_str("download-http") {
                        2
                    } else if rel.contains("download") {
                        1
                    } else {
                        0
                    };
                    if let Some(h) = h
                        && prio > 0
                        && link.is_none_or(|(p, _)| prio > p)
                    {
                        link = Some((prio, h));
                    }
                }
            }
        }
    }
    let download_url = capped(
        l,
        link.map(|(_, h)| h),
        "deployment.chunks[].artifacts[]._links.download.href",
        MAX_URL_LEN,
    );
    missing(l, filename.is_some(), FILENAME);
    missing(l, size.is_some(), SIZE);
    Some(Artifact {
        filename: filename?,
        size: size?,
        sha1,
        md5,
        sha256,
        download_url,
    })
}

#[inline(never)]
fn parse_chunk<'a>(l: &mut Lexer<'a>) -> Option<Chunk<'a>> {
    const PART: &str = "deployment.chunks[].part";
    const VERSION: &str = "deployment.chunks[].version";
    const NAME: &str = "deployment.chunks[].name";
    open(l, "deployment.chunks[]");
    let (mut part, mut version, mut name_) = (None, None, None);
    let mut encrypted = false;
    let (mut artifacts_raw, mut artifact_count): (&[u8], usize) = (&[], 0);
    let (mut metadata_raw, mut metadata_count): (&[u8], usize) = (&[], 0);
    let keys = [
        "artifacts",
        "metadata",
        "part",
        "version",
        "name",
        "encrypted",
    ];
    while let Some(i) = l.field(&keys) {
        match i {
            0 => {
                (artifacts_raw, artifact_count) = array_of(
                    l,
                    "deployment.chunks[].artifacts",
                    MAX_ARTIFACTS_PER_CHUNK,
                    |l| {
                        parse_artifact(l);
                    },
                );
            }
            1 => {
                (metadata_raw, metadata_count) = array_of(
                    l,
                    "deployment.chunks[].metadata",
                    MAX_METADATA_PER_CHUNK,
                    |l| {
                        parse_metadata(l);
                    },
                );
            }
            2 => part = name(l, PART, MAX_NAME_LEN),
            3 => version = name(l, VERSION, MAX_NAME_LEN),
            4 => name_ = name(l, NAME, MAX_NAME_LEN),
            _ => {
                encrypted = match l.cur() {
                    Value::Bool(b) => b,
                    Value::Null => false,
                    _ => {
                        wrong(l, "deployment.chunks[].encrypted");
                        false
                    }
                };
            }
        }
    }
    missing(l, part.is_some(), PART);
    missing(l, version.is_some(), VERSION);
    missing(l, name_.is_some(), NAME);
    Some(Chunk {
        part: part?,
        version: version?,
        name: name_?,
        encrypted,
        artifacts_raw,
        artifact_count,
        metadata_raw,
        metadata_count,
    })
}

#[inline(never)]
fn parse_deployment_object<'a>(l: &mut Lexer<'a>, out: &mut DeploymentBase<'a>) {
    let mut saw_chunks = false;
    while let Some(i) = l.field(&["chunks", "download", "update", "maintenanceWindow"]) {
        match i {
            0 => {
                (out.chunks_raw, out.chunk_count) =
                    array_of(l, "deployment.chunks", MAX_CHUNKS, |l| {
                        parse_chunk(l);
                    });
                saw_chunks = true;
            }
            1 => out.download = handling(l, "deployment.download"),
            2 => out.update = handling(l, "deployment.update"),
            _ => {
                let names = ["available", "unavailable"];
                out.maintenance_window = match choice(l, "deployment.maintenanceWindow", &names) {
                    1 => Some(MaintenanceWindow::Available),
                    2 => Some(MaintenanceWindow::Unavailable),
                    _ => None,
                };
            }
        }
    }
    missing(l, saw_chunks, "deployment.chunks");
}

fn parse_deployment_like<'a>(
    body: &'a [u8],
    object_key: &'static str,
) -> Result<DeploymentBase<'a>, ParseError> {
    let mut l = Lexer::new(body);
    open(&mut l, "(document)");
    let mut id = None;
    let mut saw_deployment = false;
    let mut out = DeploymentBase {
        id: ActionId(0),
        download: None,
        update: None,
        maintenance_window: None,
        action_history_status: None,
        chunks_raw: &[],
        chunk_count: 0,
    };
    while let Some(i) = l.field(&["id", object_key, "actionHistory"]) {
        match i {
            0 => id = action_id(&mut l, "id"),
            1 => {
                object(&mut l, "deployment");
                parse_deployment_object(&mut l, &mut out);
                saw_deployment = true;
            }
            _ => {
                if object_or_null(&mut l, "actionHistory") {
                    while l.field(&["status"]).is_some() {
                        out.action_history_status = string(&mut l, "actionHistory.status");
                    }
                }
            }
        }
    }
    l.end();
    missing(&mut l, id.is_some(), "id");
    missing(&mut l, saw_deployment, "deployment");
    l.result(id.map(|id| DeploymentBase { id, ..out }))
}

/// The top-level `id` of a document whose full parse failed (e.g. a capacity or type error
/// deeper inside), so the rejection can be reported against the right action. `None` if the
/// document is not even well-formed up to its `id`.
pub fn peek_action_id(body: &[u8]) -> Option<ActionId> {
    let mut l = Lexer::new(body);
    if !(l.read() && matches!(l.cur(), Value::Object)) {
        return None;
    }
    l.field(&["id"])?;
    action_id(&mut l, "id")
}

/// Parse `GET deploymentBase/{actionId}`.
#[inline(never)]
pub fn parse_deployment_base(body: &[u8]) -> Result<DeploymentBase<'_>, ParseError> {
    parse_deployment_like(body, "deployment")
}

/// Parse `GET installedBase/{actionId}` (same schema as deploymentBase).
#[inline(never)]
pub fn parse_installed_base(body: &[u8]) -> Result<DeploymentBase<'_>, ParseError> {
    parse_deployment_like(body, "deployment")
}

/// Parse `GET confirmationBase/{actionId}`: like deploymentBase, but the object is called
/// `confirmation` (errors still name it `deployment.*`).
#[inline(never)]
pub fn parse_confirmation_action(body: &[u8]) -> Result<DeploymentBase<'_>, ParseError> {
    parse_deployment_like(body, "confirmation")
}

// ---------------------------------------------------------------------------------------------
// softwaremodules/{id}/artifacts and .MD5SUM

/// `GET softwaremodules/{smId}/artifacts`: a JSON array of artifacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactList<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> ArtifactList<'a> {
    /// Number of artifacts (≤ [`MAX_ARTIFACTS_PER_CHUNK`]).
    pub fn len(&self) -> usize {
        self.count
    }
    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    /// The artifacts in document order.
    pub fn iter(&self) -> ArtifactIter<'a> {
        ArtifactIter::new(self.raw)
    }
}

/// Parse `GET softwaremodules/{smId}/artifacts`. Errors name fields with the same paths as
/// inside a deployment (`deployment.chunks[].artifacts[]…`).
#[inline(never)]
pub fn parse_artifacts(body: &[u8]) -> Result<ArtifactList<'_>, ParseError> {
    let mut l = Lexer::new(body);
    l.read();
    let (raw, count) = array_of(
        &mut l,
        "deployment.chunks[].artifacts",
        MAX_ARTIFACTS_PER_CHUNK,
        |l| {
            parse_artifact(l);
        },
    );
    l.end();
    if raw.is_empty() {
        // `null` is not an artifact list
        wrong(&mut l, "(document)");
    }
    l.result(Some(ArtifactList { raw, count }))
}

/// Parse the body of `GET …/{filename}.MD5SUM`: `"<md5hex>  <filename>"` (`md5sum -c`
/// format, one or two spaces, optional trailing newline). Returns the digest and file name.
pub fn parse_md5sum(body: &str) -> Option<([u8; 16], &str)> {
    let line = body.strip_suffix('\n').unwrap_or(body);
    let (hex, rest) = line.split_once(' ')?;
    let name = rest.trim_start_matches(' ');
    let name = name.strip_prefix('*').unwrap_or(name);
    if name.is_empty() || name.contains('\n') {
        return None;
    }
    let mut out = [0u8; 16];
    decode_hex(hex.as_bytes(), &mut out).then_some((out, name))
}

// ---------------------------------------------------------------------------------------------
// cancelAction

/// `GET cancelAction/{actionId}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CancelAction {
    /// `id`: the cancel action's id.
    pub id: ActionId,
    /// `cancelAction.stopId`: the action to stop.
    pub stop_id: ActionId,
}

/// Parse `GET cancelAction/{actionId}`.
#[inline(never)]
pub fn parse_cancel_action(body: &[u8]) -> Result<CancelAction, ParseError> {
    let mut l = Lexer::new(body);
    open(&mut l, "(document)");
    let (mut id, mut stop_id) = (None, None);
    let mut saw_cancel = false;
    while let Some(i) = l.field(&["id", "cancelAction"]) {
        if i == 0 {
            id = action_id(&mut l, "id");
        } else {
            object(&mut l, "cancelAction");
            saw_cancel = true;
            while l.field(&["stopId"]).is_some() {
                stop_id = action_id(&mut l, "cancelAction.stopId");
            }
        }
    }
    l.end();
    missing(&mut l, id.is_some(), "id");
    missing(&mut l, saw_cancel, "cancelAction");
    missing(&mut l, stop_id.is_some(), "cancelAction.stopId");
    let out = match (id, stop_id) {
        (Some(id), Some(stop_id)) => Some(CancelAction { id, stop_id }),
        _ => None,
    };
    l.result(out)
}

// ---------------------------------------------------------------------------------------------
// confirmationBase (auto-confirm state)

/// `autoConfirm` object of `GET confirmationBase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoConfirmState<'a> {
    /// `active`.
    pub active: bool,
    /// `initiator`.
    pub initiator: Option<JsonStr<'a>>,
    /// `remark`.
    pub remark: Option<JsonStr<'a>>,
    /// `activatedAt` (ms since epoch; hawkBit sends `0` when inactive).
    pub activated_at: Option<i64>,
}

/// `GET confirmationBase`: auto-confirm state and links.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmationBase<'a> {
    /// `autoConfirm`.
    pub auto_confirm: AutoConfirmState<'a>,
    /// `_links.activateAutoConfirm.href`.
    pub activate_auto_confirm: Option<JsonStr<'a>>,
    /// `_links.deactivateAutoConfirm.href`.
    pub deactivate_auto_confirm: Option<JsonStr<'a>>,
    /// `_links.confirmationBase.href`: an action waiting for confirmation.
    pub confirmation_base: Option<JsonStr<'a>>,
}

fn opt_str<'a>(l: &mut Lexer<'a>, field: &'static str) -> Option<JsonStr<'a>> {
    match l.cur() {
        Value::Null => None,
        _ => string(l, field),
    }
}

/// Parse `GET confirmationBase`.
#[inline(never)]
pub fn parse_confirmation_base(body: &[u8]) -> Result<ConfirmationBase<'_>, ParseError> {
    let mut l = Lexer::new(body);
    open(&mut l, "(document)");
    let mut active = None;
    let mut saw_auto = false;
    let mut out = ConfirmationBase {
        auto_confirm: AutoConfirmState {
            active: false,
            initiator: None,
            remark: None,
            activated_at: None,
        },
        activate_auto_confirm: None,
        deactivate_auto_confirm: None,
        confirmation_base: None,
    };
    let mut links: [Option<JsonStr<'_>>; 3] = [None; 3];
    while let Some(i) = l.field(&["autoConfirm", "_links"]) {
        if i == 0 {
            object(&mut l, "autoConfirm");
            saw_auto = true;
            let keys = ["active", "initiator", "remark", "activatedAt"];
            while let Some(i) = l.field(&keys) {
                let a = &mut out.auto_confirm;
                match i {
                    0 => {
                        active = match l.cur() {
                            Value::Bool(b) => Some(b),
                            _ => {
                                wrong(&mut l, "autoConfirm.active");
                                None
                            }
                        };
                    }
                    1 => a.initiator = opt_str(&mut l, "autoConfirm.initiator"),
                    2 => a.remark = opt_str(&mut l, "autoConfirm.remark"),
                    _ => {
                        const F: &str = "autoConfirm.activatedAt";
                        a.activated_at = match l.cur() {
                            Value::Null => None,
                            Value::Num(n) => {
                                let v = n.as_i64();
                                if v.is_none() {
                                    invalid(&mut l, F);
                                }
                                v
                            }
                            _ => {
                                wrong(&mut l, F);
                                None
                            }
                        };
                    }
                }
            }
        } else {
            read_links(
                &mut l,
                &[
                    "activateAutoConfirm",
                    "deactivateAutoConfirm",
                    "confirmationBase",
                ],
                &[
                    "_links.activateAutoConfirm.href",
                    "_links.deactivateAutoConfirm.href",
                    "_links.confirmationBase.href",
                ],
                &mut links,
            );
        }
    }
    [
        out.activate_auto_confirm,
        out.deactivate_auto_confirm,
        out.confirmation_base,
    ] = links;
    l.end();
    missing(&mut l, saw_auto, "autoConfirm");
    missing(&mut l, active.is_some(), "autoConfirm.active");
    out.auto_confirm.active = active.unwrap_or(false);
    l.result(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ParseError::*;

    /// The lexer keeps the first error: a field error is not replaced by a later syntax, type
    /// or missing-field error, and a syntax error is not replaced by a later field error
    /// (the results an early return gives; pinned before the sticky lexer).
    #[test]
    fn first_error_wins() {
        let deployment: &[(&[u8], ParseError)] = &[
            (br#"{"id":"x","deployment":5}"#, InvalidValue("id")),
            (br#"{"id":"x","#, InvalidValue("id")),
            (br#"{"id" 1}"#, Syntax { offset: 6 }),
            (br#"{"id":1.}"#, Syntax { offset: 8 }),
            (br#"{"id":tru}"#, Syntax { offset: 6 }),
            (br#"{} x"#, Syntax { offset: 3 }),
            (br#"{"a":"\q"}"#, Syntax { offset: 6 }),
            (b"{\"a\":\"\xff\"}", Syntax { offset: 6 }),
            (
                br#"{"id":"1","deployment":{"chunks":[{"part":7,"version":"1","name":"n","artifacts":5}]}}"#,
                WrongType("deployment.chunks[].part"),
            ),
            (
                br#"{"id":"1","deployment":{"chunks":[{"artifacts":5,"part":7}]}}"#,
                WrongType("deployment.chunks[].artifacts"),
            ),
            (
                br#"{"id":"1","deployment":{"chunks":[{"part":"p","version":"1","name":"n","artifacts":[{"filename":"f","size":1,"_links":{"download":{"href":"a"},"x":{}}}]}]}}"#,
                MissingField("deployment.chunks[].artifacts[]._links.href"),
            ),
            (
                br#"{"id":"1","deployment":{"chunks":[{"part":"p","version":"1","name":"n","artifacts":[{"hashes":{"md5":"zz"},"size":-1}]}]}}"#,
                InvalidValue("deployment.chunks[].artifacts[].hashes.md5"),
            ),
            (
                br#"{"id":"1","deployment":{"chunks":[{"part":"p","version":"1","name":"n","artifacts":[{"size":1}]}]}"#,
                MissingField("deployment.chunks[].artifacts[].filename"),
            ),
            (
                br#"{"id":"1","deployment":{"download":"x","chunks":[]},"actionHistory":7}"#,
                InvalidValue("deployment.download"),
            ),
            (
                br#"{"deployment":{"chunks":[]},"actionHistory":{"status":1}}"#,
                WrongType("actionHistory.status"),
            ),
            (br#"{"deployment":{}}"#, MissingField("deployment.chunks")),
            (
                br#"{"x":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]],"id":"x"}"#,
                TooDeep { offset: 20 },
            ),
        ];
        for (doc, want) in deployment {
            assert_eq!(parse_deployment_base(doc).unwrap_err(), *want, "{doc:?}");
        }
        let base: &[(&str, ParseError)] = &[
            (
                r#"{"config":{"polling":{"sleep":"bad"}}, x}"#,
                InvalidValue("config.polling.sleep"),
            ),
            (
                r#"{"_links":{"configData":{"href":"x","href":1}},"config":5}"#,
                WrongType("_links.configData.href"),
            ),
            (r#"{"config":{"polling":{}},"#, Syntax { offset: 25 }),
        ];
        for (doc, want) in base {
            assert_eq!(
                parse_controller_base(doc.as_bytes()).unwrap_err(),
                *want,
                "{doc}"
            );
        }
        let cancel: &[(&str, ParseError)] = &[
            (r#"{"cancelAction":{"stopId":"1"}}"#, MissingField("id")),
            (
                r#"{"id":"1","cancelAction":{"stopId":[}}"#,
                WrongType("cancelAction.stopId"),
            ),
            (
                r#"{"id":"1","cancelAction":{"x":[}}"#,
                Syntax { offset: 31 },
            ),
            (
                r#"{"id":"1","cancelAction":{}}"#,
                MissingField("cancelAction.stopId"),
            ),
        ];
        for (doc, want) in cancel {
            assert_eq!(
                parse_cancel_action(doc.as_bytes()).unwrap_err(),
                *want,
                "{doc}"
            );
        }
        assert_eq!(
            parse_artifacts(b"null").unwrap_err(),
            WrongType("(document)")
        );
        assert_eq!(
            parse_artifacts(b"[{}] 1").unwrap_err(),
            MissingField("deployment.chunks[].artifacts[].filename")
        );
    }

    /// `peek_action_id` reads past members it cannot use, stops at the first `id`.
    #[test]
    fn peek_action_id_skips_members() {
        let doc = br#"{"deployment":{"chunks":7},"id":"5","id":"x"}"#;
        assert_eq!(peek_action_id(doc), Some(ActionId(5)));
        assert_eq!(peek_action_id(br#"{"x":[1,}],"id":"5"}"#), None);
        assert_eq!(peek_action_id(br#"{"id":"x"}"#), None);
        assert_eq!(peek_action_id(br#"[]"#), None);
    }

    /// The lazy iterators stop at the end of the array and stay stopped.
    #[test]
    fn iterators_end_and_stay_ended() {
        let doc = br#"{"id":"1","deployment":{"chunks":[
            {"part":"a","version":"1","name":"x","metadata":[{"key":"k","value":null}],
             "artifacts":[{"filename":"f","size":1},{"filename":"g","size":2}]},
            {"part":"b","version":"2","name":"y"}]}}"#;
        let d = parse_deployment_base(doc).unwrap();
        let mut it = d.chunks();
        let c = it.next().unwrap();
        assert_eq!(c.part.raw(), "a");
        assert_eq!(it.next().unwrap().part.raw(), "b");
        assert!(it.next().is_none() && it.next().is_none());
        let sizes: heapless::Vec<u64, 4> = c.artifacts().map(|a| a.size).collect();
        assert_eq!(sizes.as_slice(), [1, 2]);
        assert_eq!(c.metadata().count(), 1);
        assert!(d.chunk(1).unwrap().artifacts().next().is_none());
        assert!(d.chunk(2).is_none());
    }

    /// Edges of the sleep grammar the byte scanner must keep (pinned on the `cut`-based
    /// parser it replaced).
    #[test]
    fn sleep_edges() {
        let ms = |s: &str| parse_sleep(s).map(Duration::as_millis);
        for (txt, want) in [
            ("999999999999:59:59", Some(3_599_999_999_999_999_000)),
            ("0:00:00", Some(0)),
            ("PT0S", Some(0)),
            ("P0D", Some(0)),
            ("PT1,5S", Some(1_500)),
            ("PT1.123456789S", Some(1_123)),
            ("P2W1DT1H2M3.004S", Some(1_299_723_004)),
            ("PT999999999999S", Some(999_999_999_999_000)),
            ("P999999999999W", None), // overflows u64 milliseconds
            ("P30000000000W", Some(18_144_000_000_000_000_000)),
            ("P31000000000W", None),    // overflows u64 milliseconds
            ("PT1.1234567890S", None),  // fraction of 10 digits
            ("PT1234567890123S", None), // 13 digits
            ("1234567890123:00:00", None),
            ("99999999999999999999999999:00:00", None),
            ("PT1.5M", None),
            ("PT1.5.5S", None),
            ("PT1.5", None),
            ("PTT1H", None),
            ("P1DT1HT", None),
            ("P1D1W", None),
            ("P1W1W", None),
            ("PT1D", None),
            ("P1T", None),
            ("PT5S1M", None),
            ("PT1HS", None),
            ("1:000:00", None),
            ("1:0a:00", None),
            ("+1:00:00", None),
            ("p1D", None),
            ("P1d", None),
            ("PT\u{663}S", None),
        ] {
            assert_eq!(ms(txt), want, "{txt:?}");
        }
    }
}
