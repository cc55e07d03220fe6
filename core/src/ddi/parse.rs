//! Parsers for the DDI documents a device receives.

use super::json::{self, JsonStr, Lexer, Value};
use super::{
    ActionId, HandlingType, MAX_ARTIFACTS_PER_CHUNK, MAX_CHUNKS, MAX_METADATA_PER_CHUNK,
    MAX_METADATA_VALUE_LEN, MAX_NAME_LEN, MAX_URL_LEN, MaintenanceWindow, ParseError,
};
use crate::time::Duration;

// ---------------------------------------------------------------------------------------------
// small helpers

fn want_object(v: Value<'_>, field: &'static str) -> Result<(), ParseError> {
    if matches!(v, Value::Object) {
        Ok(())
    } else {
        Err(ParseError::WrongType(field))
    }
}

fn want_str<'a>(v: Value<'a>, field: &'static str) -> Result<JsonStr<'a>, ParseError> {
    match v {
        Value::Str(s) => Ok(s),
        _ => Err(ParseError::WrongType(field)),
    }
}

fn want_name<'a>(v: Value<'a>, field: &'static str, max: usize) -> Result<JsonStr<'a>, ParseError> {
    let s = want_str(v, field)?;
    if s.decoded_len() > max {
        return Err(ParseError::Capacity { field, max });
    }
    Ok(s)
}

fn want_url<'a>(s: JsonStr<'a>, field: &'static str) -> Result<JsonStr<'a>, ParseError> {
    if s.decoded_len() > MAX_URL_LEN {
        return Err(ParseError::Capacity {
            field,
            max: MAX_URL_LEN,
        });
    }
    Ok(s)
}

fn action_id(v: Value<'_>, field: &'static str) -> Result<ActionId, ParseError> {
    let n = match v {
        Value::Str(s) => {
            let mut buf = [0u8; 24];
            let txt = s
                .unescape_into(&mut buf)
                .map_err(|_| ParseError::InvalidValue(field))?;
            json::digits_u64(txt).ok_or(ParseError::InvalidValue(field))?
        }
        Value::Num(n) => n.as_u64().ok_or(ParseError::InvalidValue(field))?,
        _ => return Err(ParseError::WrongType(field)),
    };
    Ok(ActionId(n))
}

/// `{ "href": "…" }`, unknown members ignored.
fn href<'a>(l: &mut Lexer<'a>, field: &'static str) -> Result<JsonStr<'a>, ParseError> {
    want_object(l.value()?, field)?;
    let mut out = None;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("href") {
            out = Some(want_str(v, field)?);
        } else {
            l.skip(v)?;
        }
    }
    out.ok_or(ParseError::MissingField(field))
}

fn handling(v: Value<'_>, field: &'static str) -> Result<Option<HandlingType>, ParseError> {
    match v {
        Value::Null => Ok(None),
        Value::Str(s) if s.eq_str("skip") => Ok(Some(HandlingType::Skip)),
        Value::Str(s) if s.eq_str("attempt") => Ok(Some(HandlingType::Attempt)),
        Value::Str(s) if s.eq_str("forced") => Ok(Some(HandlingType::Forced)),
        Value::Str(_) => Err(ParseError::InvalidValue(field)),
        _ => Err(ParseError::WrongType(field)),
    }
}

#[inline(never)]
fn hex_digest<const N: usize>(
    v: Value<'_>,
    field: &'static str,
) -> Result<Option<[u8; N]>, ParseError> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::Str(s) => s,
        _ => return Err(ParseError::WrongType(field)),
    };
    let raw = s.as_plain().ok_or(ParseError::InvalidValue(field))?;
    let b = raw.as_bytes();
    if b.len() != N * 2 {
        return Err(ParseError::InvalidValue(field));
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = (b[2 * i] as char)
            .to_digit(16)
            .ok_or(ParseError::InvalidValue(field))?;
        let lo = (b[2 * i + 1] as char)
            .to_digit(16)
            .ok_or(ParseError::InvalidValue(field))?;
        *o = (hi * 16 + lo) as u8;
    }
    Ok(Some(out))
}

fn start_doc<'a>(body: &'a [u8]) -> Result<Lexer<'a>, ParseError> {
    let mut l = Lexer::new(body);
    want_object(l.value()?, "(document)")?;
    Ok(l)
}

// ---------------------------------------------------------------------------------------------
// sleep

/// Parse hawkBit's `config.polling.sleep`: `HH:MM:SS` (hours may exceed 24) or an ISO-8601
/// duration as produced by Java's `Duration.toString()` (`PT26H30M`, `PT0.5S`) or with days
/// (`P1DT2H`). Negative values, empty components and overflow are rejected (`None`).
/// Fractions of seconds below one millisecond are truncated.
#[inline(never)]
pub fn parse_sleep(s: &str) -> Option<Duration> {
    match s.strip_prefix('P') {
        Some(rest) => parse_iso(rest),
        None => parse_hms(s),
    }
}

fn digits_u64(s: &str) -> Option<u64> {
    if s.len() > 12 {
        return None;
    }
    json::digits_u64(s)
}

/// `s` split around its first `a` or `b` byte (both ASCII): `split_once` by bytes, without
/// `str`'s generic pattern searchers.
#[inline(never)]
fn cut(s: &str, a: u8, b: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|c| c == a || c == b)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

fn parse_hms(s: &str) -> Option<Duration> {
    let (h, rest) = cut(s, b':', b':')?;
    let (m, sec) = cut(rest, b':', b':')?;
    // a third `:` leaves one in `sec`, which is then no two-digit number
    if m.len() != 2 || sec.len() != 2 {
        return None;
    }
    let (h, m, sec) = (digits_u64(h)?, digits_u64(m)?, digits_u64(sec)?);
    if m >= 60 || sec >= 60 {
        return None;
    }
    let secs = h.checked_mul(3600)?.checked_add(m * 60 + sec)?;
    Some(Duration::from_millis(secs.checked_mul(1000)?))
}

/// Strips the leading `<digits><unit>` from `*s` (if `unit` occurs) and adds it as `ms` units.
fn iso_part(s: &mut &str, unit: u8, ms: u64, millis: &mut u64, any: &mut bool) -> Option<()> {
    if let Some((n, rest)) = cut(s, unit, unit) {
        let n = digits_u64(n)?;
        *millis = millis.checked_add(n.checked_mul(ms)?)?;
        *s = rest;
        *any = true;
    }
    Some(())
}

fn parse_iso(rest: &str) -> Option<Duration> {
    let (mut d, time) = match cut(rest, b'T', b'T') {
        Some((_, "")) => return None,
        Some((d, t)) => (d, Some(t)),
        None => (rest, None),
    };
    let mut millis: u64 = 0;
    let mut any = false;
    // date part: nW and/or nD
    for (unit, ms) in [(b'W', 7 * 86_400_000u64), (b'D', 86_400_000u64)] {
        iso_part(&mut d, unit, ms, &mut millis, &mut any)?;
    }
    if !d.is_empty() {
        return None;
    }
    if let Some(mut t) = time {
        for (unit, ms) in [(b'H', 3_600_000u64), (b'M', 60_000u64)] {
            iso_part(&mut t, unit, ms, &mut millis, &mut any)?;
        }
        if let Some(num) = t.strip_suffix('S') {
            let (whole, frac) = match cut(num, b'.', b',') {
                Some((w, f)) => (w, Some(f)),
                None => (num, None),
            };
            let w = digits_u64(whole)?;
            let mut ms_frac = 0u64;
            if let Some(f) = frac {
                if f.is_empty() || f.len() > 9 || !f.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                for (i, b) in f.bytes().take(3).enumerate() {
                    ms_frac += u64::from(b - b'0') * [100, 10, 1][i];
                }
            }
            millis = millis.checked_add(w.checked_mul(1000)?.checked_add(ms_frac)?)?;
            any = true;
        } else if !t.is_empty() {
            return None;
        }
    }
    any.then_some(Duration::from_millis(millis))
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
    let mut l = start_doc(body)?;
    let mut sleep = None;
    // `_links` members by name: one table instead of a ladder per link
    const LINKS: [(&str, &str); 5] = [
        ("deploymentBase", "_links.deploymentBase.href"),
        ("cancelAction", "_links.cancelAction.href"),
        ("confirmationBase", "_links.confirmationBase.href"),
        ("installedBase", "_links.installedBase.href"),
        ("configData", "_links.configData.href"),
    ];
    let mut links: [Option<JsonStr<'_>>; 5] = [None; 5];
    let mut saw_config = false;
    let mut saw_polling = false;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("config") {
            want_object(v, "config")?;
            saw_config = true;
            while let Some((k, v)) = l.member()? {
                if k.eq_str("polling") {
                    want_object(v, "config.polling")?;
                    saw_polling = true;
                    while let Some((k, v)) = l.member()? {
                        if k.eq_str("sleep") {
                            let s = want_str(v, "config.polling.sleep")?;
                            let mut buf = [0u8; 32];
                            let txt = s
                                .unescape_into(&mut buf)
                                .map_err(|_| ParseError::InvalidValue("config.polling.sleep"))?;
                            sleep = Some(
                                parse_sleep(txt)
                                    .ok_or(ParseError::InvalidValue("config.polling.sleep"))?,
                            );
                        } else {
                            l.skip(v)?;
                        }
                    }
                } else {
                    l.skip(v)?;
                }
            }
        } else if k.eq_str("_links") {
            want_object(v, "_links")?;
            while let Some(k) = l.next_key()? {
                match LINKS.iter().position(|(name, _)| k.eq_str(name)) {
                    Some(i) => {
                        let field = LINKS[i].1;
                        links[i] = Some(want_url(href(&mut l, field)?, field)?);
                    }
                    None => l.skip_value()?,
                }
            }
        } else {
            l.skip(v)?;
        }
    }
    l.finish()?;
    if !saw_config {
        return Err(ParseError::MissingField("config"));
    }
    if !saw_polling {
        return Err(ParseError::MissingField("config.polling"));
    }
    let [
        deployment_base,
        cancel_action,
        confirmation_base,
        installed_base,
        config_data,
    ] = links;
    Ok(ControllerBase {
        sleep: sleep.ok_or(ParseError::MissingField("config.polling.sleep"))?,
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
        ChunkIter {
            lex: Lexer::new(self.chunks_raw),
            started: false,
            done: self.chunks_raw.is_empty(),
        }
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
        ArtifactIter {
            lex: Lexer::new(self.artifacts_raw),
            started: false,
            done: self.artifacts_raw.is_empty(),
        }
    }
    /// Number of metadata entries (≤ [`MAX_METADATA_PER_CHUNK`]).
    pub fn metadata_count(&self) -> usize {
        self.metadata_count
    }
    /// The target-visible metadata entries.
    pub fn metadata(&self) -> MetadataIter<'a> {
        MetadataIter {
            lex: Lexer::new(self.metadata_raw),
            started: false,
            done: self.metadata_raw.is_empty(),
        }
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
            started: bool,
            done: bool,
        }

        impl<'a> Iterator for $name<'a> {
            type Item = $item<'a>;
            fn next(&mut self) -> Option<$item<'a>> {
                if self.done {
                    return None;
                }
                if !self.started {
                    self.started = true;
                    if !matches!(self.lex.value(), Ok(Value::Array)) {
                        self.done = true;
                        return None;
                    }
                }
                match self.lex.next_element() {
                    Ok(true) => {}
                    _ => {
                        self.done = true;
                        return None;
                    }
                }
                match $parse(&mut self.lex) {
                    Ok(x) => Some(x),
                    Err(_) => {
                        self.done = true;
                        None
                    }
                }
            }
        }
    };
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

/// Validate an array whose elements are parsed by `f`, return (raw slice, count).
///
/// One copy for every element type: `f` is a plain `fn` that validates one element.
#[inline(never)]
fn array_of<'a>(
    l: &mut Lexer<'a>,
    v: Value<'a>,
    field: &'static str,
    max: usize,
    f: fn(&mut Lexer<'a>) -> Result<(), ParseError>,
) -> Result<(&'a [u8], usize), ParseError> {
    // `v` was read by the caller: an array's `[` is the byte before the lexer's position
    let start = l.pos().saturating_sub(1);
    match v {
        Value::Array => {}
        Value::Null => return Ok((&[], 0)),
        _ => return Err(ParseError::WrongType(field)),
    }
    let mut n = 0;
    while l.next_element()? {
        if n == max {
            return Err(ParseError::Capacity { field, max });
        }
        f(l)?;
        n += 1;
    }
    Ok((l.slice(start, l.pos()), n))
}

#[inline(never)]
fn parse_metadata<'a>(l: &mut Lexer<'a>) -> Result<MetadataEntry<'a>, ParseError> {
    const F: &str = "deployment.chunks[].metadata[]";
    want_object(l.value()?, F)?;
    let mut key = None;
    let mut value = None;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("key") {
            key = Some(want_name(
                v,
                "deployment.chunks[].metadata[].key",
                MAX_NAME_LEN,
            )?);
        } else if k.eq_str("value") {
            value = match v {
                Value::Null => None,
                v => Some(want_name(
                    v,
                    "deployment.chunks[].metadata[].value",
                    MAX_METADATA_VALUE_LEN,
                )?),
            };
        } else {
            l.skip(v)?;
        }
    }
    Ok(MetadataEntry {
        key: key.ok_or(ParseError::MissingField(
            "deployment.chunks[].metadata[].key",
        ))?,
        value,
    })
}

#[inline(never)]
fn parse_artifact<'a>(l: &mut Lexer<'a>) -> Result<Artifact<'a>, ParseError> {
    const F: &str = "deployment.chunks[].artifacts[]";
    want_object(l.value()?, F)?;
    let mut filename = None;
    let mut size = None;
    let (mut sha1, mut md5, mut sha256) = (None, None, None);
    let mut link: Option<(u8, JsonStr<'a>)> = None;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("filename") {
            filename = Some(want_name(
                v,
                "deployment.chunks[].artifacts[].filename",
                MAX_NAME_LEN,
            )?);
        } else if k.eq_str("size") {
            const S: &str = "deployment.chunks[].artifacts[].size";
            size = Some(match v {
                Value::Num(n) => n.as_u64().ok_or(ParseError::InvalidValue(S))?,
                _ => return Err(ParseError::WrongType(S)),
            });
        } else if k.eq_str("hashes") {
            match v {
                Value::Object => {}
                Value::Null => continue,
                _ => {
                    return Err(ParseError::WrongType(
                        "deployment.chunks[].artifacts[].hashes",
                    ));
                }
            }
            while let Some((k, v)) = l.member()? {
                if k.eq_str("sha1") {
                    sha1 = hex_digest(v, "deployment.chunks[].artifacts[].hashes.sha1")?;
                } else if k.eq_str("md5") {
                    md5 = hex_digest(v, "deployment.chunks[].artifacts[].hashes.md5")?;
                } else if k.eq_str("sha256") {
                    sha256 = hex_digest(v, "deployment.chunks[].artifacts[].hashes.sha256")?;
                } else {
                    l.skip(v)?;
                }
            }
        } else if k.eq_str("_links") {
            want_object(v, "deployment.chunks[].artifacts[]._links")?;
            while let Some(rel) = l.next_key()? {
                let h = href(l, "deployment.chunks[].artifacts[]._links.href")?;
                let prio = if rel.eq_str("download") {
                    3
                } else if rel.eq_str("download-http") {
                    2
                } else if rel.contains("download") {
                    1
                } else {
                    0
                };
                if prio > 0 && link.is_none_or(|(p, _)| prio > p) {
                    link = Some((prio, h));
                }
            }
        } else {
            l.skip(v)?;
        }
    }
    let download_url = match link {
        Some((_, h)) => Some(want_url(
            h,
            "deployment.chunks[].artifacts[]._links.download.href",
        )?),
        None => None,
    };
    Ok(Artifact {
        filename: filename.ok_or(ParseError::MissingField(
            "deployment.chunks[].artifacts[].filename",
        ))?,
        size: size.ok_or(ParseError::MissingField(
            "deployment.chunks[].artifacts[].size",
        ))?,
        sha1,
        md5,
        sha256,
        download_url,
    })
}

#[inline(never)]
fn parse_chunk<'a>(l: &mut Lexer<'a>) -> Result<Chunk<'a>, ParseError> {
    want_object(l.value()?, "deployment.chunks[]")?;
    let (mut part, mut version, mut name) = (None, None, None);
    let mut encrypted = false;
    let (mut artifacts_raw, mut artifact_count): (&[u8], usize) = (&[], 0);
    let (mut metadata_raw, mut metadata_count): (&[u8], usize) = (&[], 0);
    while let Some((k, v)) = l.member()? {
        if k.eq_str("artifacts") {
            (artifacts_raw, artifact_count) = array_of(
                l,
                v,
                "deployment.chunks[].artifacts",
                MAX_ARTIFACTS_PER_CHUNK,
                |l| parse_artifact(l).map(drop),
            )?;
        } else if k.eq_str("metadata") {
            (metadata_raw, metadata_count) = array_of(
                l,
                v,
                "deployment.chunks[].metadata",
                MAX_METADATA_PER_CHUNK,
                |l| parse_metadata(l).map(drop),
            )?;
        } else if k.eq_str("part") {
            part = Some(want_name(v, "deployment.chunks[].part", MAX_NAME_LEN)?);
        } else if k.eq_str("version") {
            version = Some(want_name(v, "deployment.chunks[].version", MAX_NAME_LEN)?);
        } else if k.eq_str("name") {
            name = Some(want_name(v, "deployment.chunks[].name", MAX_NAME_LEN)?);
        } else if k.eq_str("encrypted") {
            encrypted = match v {
                Value::Bool(b) => b,
                Value::Null => false,
                _ => return Err(ParseError::WrongType("deployment.chunks[].encrypted")),
            };
        } else {
            l.skip(v)?;
        }
    }
    Ok(Chunk {
        part: part.ok_or(ParseError::MissingField("deployment.chunks[].part"))?,
        version: version.ok_or(ParseError::MissingField("deployment.chunks[].version"))?,
        name: name.ok_or(ParseError::MissingField("deployment.chunks[].name"))?,
        encrypted,
        artifacts_raw,
        artifact_count,
        metadata_raw,
        metadata_count,
    })
}

#[inline(never)]
fn parse_deployment_object<'a>(
    l: &mut Lexer<'a>,
    out: &mut DeploymentBase<'a>,
) -> Result<(), ParseError> {
    let mut saw_chunks = false;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("chunks") {
            (out.chunks_raw, out.chunk_count) =
                array_of(l, v, "deployment.chunks", MAX_CHUNKS, |l| {
                    parse_chunk(l).map(drop)
                })?;
            saw_chunks = true;
        } else if k.eq_str("download") {
            out.download = handling(v, "deployment.download")?;
        } else if k.eq_str("update") {
            out.update = handling(v, "deployment.update")?;
        } else if k.eq_str("maintenanceWindow") {
            const F: &str = "deployment.maintenanceWindow";
            out.maintenance_window = match v {
                Value::Null => None,
                Value::Str(s) if s.eq_str("available") => Some(MaintenanceWindow::Available),
                Value::Str(s) if s.eq_str("unavailable") => Some(MaintenanceWindow::Unavailable),
                Value::Str(_) => return Err(ParseError::InvalidValue(F)),
                _ => return Err(ParseError::WrongType(F)),
            };
        } else {
            l.skip(v)?;
        }
    }
    if !saw_chunks {
        return Err(ParseError::MissingField("deployment.chunks"));
    }
    Ok(())
}

fn parse_deployment_like<'a>(
    body: &'a [u8],
    object_key: &'static str,
) -> Result<DeploymentBase<'a>, ParseError> {
    let mut l = start_doc(body)?;
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
    while let Some((k, v)) = l.member()? {
        if k.eq_str("id") {
            id = Some(action_id(v, "id")?);
        } else if k.eq_str(object_key) {
            want_object(v, "deployment")?;
            parse_deployment_object(&mut l, &mut out)?;
            saw_deployment = true;
        } else if k.eq_str("actionHistory") {
            match v {
                Value::Object => {}
                Value::Null => continue,
                _ => return Err(ParseError::WrongType("actionHistory")),
            }
            while let Some((k, v)) = l.member()? {
                if k.eq_str("status") {
                    out.action_history_status = Some(want_str(v, "actionHistory.status")?);
                } else {
                    l.skip(v)?;
                }
            }
        } else {
            l.skip(v)?;
        }
    }
    l.finish()?;
    out.id = id.ok_or(ParseError::MissingField("id"))?;
    if !saw_deployment {
        return Err(ParseError::MissingField("deployment"));
    }
    Ok(out)
}

/// The top-level `id` of a document whose full parse failed (e.g. a capacity or type error
/// deeper inside), so the rejection can be reported against the right action. `None` if the
/// document is not even well-formed up to its `id`.
pub fn peek_action_id(body: &[u8]) -> Option<ActionId> {
    let mut l = Lexer::new(body);
    if !matches!(l.value().ok()?, Value::Object) {
        return None;
    }
    while let Some(k) = l.next_key().ok()? {
        let v = l.value().ok()?;
        if k.eq_str("id") {
            return action_id(v, "id").ok();
        }
        l.skip(v).ok()?;
    }
    None
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
        ArtifactIter {
            lex: Lexer::new(self.raw),
            started: false,
            done: self.raw.is_empty(),
        }
    }
}

/// Parse `GET softwaremodules/{smId}/artifacts`. Errors name fields with the same paths as
/// inside a deployment (`deployment.chunks[].artifacts[]…`).
#[inline(never)]
pub fn parse_artifacts(body: &[u8]) -> Result<ArtifactList<'_>, ParseError> {
    let mut l = Lexer::new(body);
    let v = l.value()?;
    let (raw, count) = array_of(
        &mut l,
        v,
        "deployment.chunks[].artifacts",
        MAX_ARTIFACTS_PER_CHUNK,
        |l| parse_artifact(l).map(drop),
    )?;
    l.finish()?;
    if raw.is_empty() {
        // `null` is not an artifact list
        return Err(ParseError::WrongType("(document)"));
    }
    Ok(ArtifactList { raw, count })
}

/// Parse the body of `GET …/{filename}.MD5SUM`: `"<md5hex>  <filename>"` (`md5sum -c`
/// format, one or two spaces, optional trailing newline). Returns the digest and file name.
pub fn parse_md5sum(body: &str) -> Option<([u8; 16], &str)> {
    let line = body.strip_suffix('\n').unwrap_or(body);
    let (hex, rest) = line.split_once(' ')?;
    let name = rest.trim_start_matches(' ');
    let name = name.strip_prefix('*').unwrap_or(name);
    if hex.len() != 32 || name.is_empty() || name.contains('\n') {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, o) in out.iter_mut().enumerate() {
        let hi = char::from(*hex.as_bytes().get(2 * i)?).to_digit(16)?;
        let lo = char::from(*hex.as_bytes().get(2 * i + 1)?).to_digit(16)?;
        *o = (hi * 16 + lo) as u8;
    }
    Some((out, name))
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
    let mut l = start_doc(body)?;
    let (mut id, mut stop_id) = (None, None);
    let mut saw_cancel = false;
    while let Some((k, v)) = l.member()? {
        if k.eq_str("id") {
            id = Some(action_id(v, "id")?);
        } else if k.eq_str("cancelAction") {
            want_object(v, "cancelAction")?;
            saw_cancel = true;
            while let Some((k, v)) = l.member()? {
                if k.eq_str("stopId") {
                    stop_id = Some(action_id(v, "cancelAction.stopId")?);
                } else {
                    l.skip(v)?;
                }
            }
        } else {
            l.skip(v)?;
        }
    }
    l.finish()?;
    let id = id.ok_or(ParseError::MissingField("id"))?;
    if !saw_cancel {
        return Err(ParseError::MissingField("cancelAction"));
    }
    Ok(CancelAction {
        id,
        stop_id: stop_id.ok_or(ParseError::MissingField("cancelAction.stopId"))?,
    })
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

fn opt_str<'a>(v: Value<'a>, field: &'static str) -> Result<Option<JsonStr<'a>>, ParseError> {
    match v {
        Value::Null => Ok(None),
        v => want_str(v, field).map(Some),
    }
}

/// Parse `GET confirmationBase`.
#[inline(never)]
pub fn parse_confirmation_base(body: &[u8]) -> Result<ConfirmationBase<'_>, ParseError> {
    let mut l = start_doc(body)?;
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
    while let Some((k, v)) = l.member()? {
        if k.eq_str("autoConfirm") {
            want_object(v, "autoConfirm")?;
            saw_auto = true;
            while let Some((k, v)) = l.member()? {
                if k.eq_str("active") {
                    active = Some(match v {
                        Value::Bool(b) => b,
                        _ => return Err(ParseError::WrongType("autoConfirm.active")),
                    });
                } else if k.eq_str("initiator") {
                    out.auto_confirm.initiator = opt_str(v, "autoConfirm.initiator")?;
                } else if k.eq_str("remark") {
                    out.auto_confirm.remark = opt_str(v, "autoConfirm.remark")?;
                } else if k.eq_str("activatedAt") {
                    out.auto_confirm.activated_at = match v {
                        Value::Null => None,
                        Value::Num(n) => Some(
                            n.as_i64()
                                .ok_or(ParseError::InvalidValue("autoConfirm.activatedAt"))?,
                        ),
                        _ => return Err(ParseError::WrongType("autoConfirm.activatedAt")),
                    };
                } else {
                    l.skip(v)?;
                }
            }
        } else if k.eq_str("_links") {
            want_object(v, "_links")?;
            while let Some(k) = l.next_key()? {
                let slot = if k.eq_str("activateAutoConfirm") {
                    Some((
                        &mut out.activate_auto_confirm,
                        "_links.activateAutoConfirm.href",
                    ))
                } else if k.eq_str("deactivateAutoConfirm") {
                    Some((
                        &mut out.deactivate_auto_confirm,
                        "_links.deactivateAutoConfirm.href",
                    ))
                } else if k.eq_str("confirmationBase") {
                    Some((&mut out.confirmation_base, "_links.confirmationBase.href"))
                } else {
                    None
                };
                match slot {
                    Some((dst, field)) => *dst = Some(want_url(href(&mut l, field)?, field)?),
                    None => l.skip_value()?,
                }
            }
        } else {
            l.skip(v)?;
        }
    }
    l.finish()?;
    if !saw_auto {
        return Err(ParseError::MissingField("autoConfirm"));
    }
    out.auto_confirm.active = active.ok_or(ParseError::MissingField("autoConfirm.active"))?;
    Ok(out)
}
