//! Small HTTP helpers shared by the DDI, Mgmt and control layers.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::model::{Failure, clip};

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if self.empty_body {
            return status.into_response();
        }
        let body = json!({
            "exceptionClass": exception_class(self.status),
            "errorCode": self.code,
            "message": self.message,
        });
        let mut r = Response::new(Body::from(body.to_string()));
        *r.status_mut() = status;
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        r
    }
}

fn exception_class(status: u16) -> &'static str {
    match status {
        404 => "org.eclipse.hawkbit.repository.exception.EntityNotFoundException",
        409 => "org.eclipse.hawkbit.repository.exception.EntityAlreadyExistsException",
        410 => "org.eclipse.hawkbit.repository.exception.CancelActionNotAllowedException",
        423 => "org.eclipse.hawkbit.repository.exception.LockedException",
        429 => "org.eclipse.hawkbit.repository.exception.AssignmentQuotaExceededException",
        _ => "org.eclipse.hawkbit.rest.exception.MessageNotReadableException",
    }
}

/// 401 with a JSON message and `WWW-Authenticate: Basic realm="hawkBit"`.
pub fn basic_challenge(message: &str) -> Response {
    let mut r = Failure::new(401, "hawkbit.server.error.unauthorized", message).into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"hawkBit\""),
    );
    r
}

/// JSON response with a status.
pub fn json_resp(status: StatusCode, v: &Value) -> Response {
    let mut r = Response::new(Body::from(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/hal+json"),
    );
    r
}

/// JSON GET response with hawkBit's shallow ETag (`"0<md5 of body>"`) and `304` on `If-None-Match`.
pub fn json_get(headers: &HeaderMap, v: &Value) -> Response {
    let body = v.to_string();
    let etag = format!("\"0{}\"", md5_hex(body.as_bytes()));
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let mut r = if matches {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::NOT_MODIFIED;
        r
    } else {
        let ct =
            if accepts(headers, "application/json") && !accepts(headers, "application/hal+json") {
                "application/json"
            } else {
                "application/hal+json"
            };
        let mut r = Response::new(Body::from(body));
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        r
    };
    if let Ok(v) = HeaderValue::from_str(&etag) {
        r.headers_mut().insert(header::ETAG, v);
    }
    r
}

fn accepts(headers: &HeaderMap, what: &str) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|h| h.to_str().ok())
        .is_some_and(|h| h.to_ascii_lowercase().contains(what))
}

/// 406 unless the Accept header allows JSON (or is absent / a wildcard).
pub fn check_accept(headers: &HeaderMap) -> Result<(), Failure> {
    let Some(a) = headers.get(header::ACCEPT).and_then(|h| h.to_str().ok()) else {
        return Ok(());
    };
    let a = a.to_ascii_lowercase();
    if a.trim().is_empty() || a.contains("json") || a.contains("*/*") || a.contains("application/*")
    {
        return Ok(());
    }
    Err(Failure::new(
        406,
        "hawkbit.server.error.rest.notAcceptable",
        format!(
            "Accept '{}' not supported; use application/json or application/hal+json (hawkbit-sim does not speak CBOR)",
            clip(&a)
        ),
    ))
}

/// 415 unless the body is declared as JSON.
pub fn check_json_ct(headers: &HeaderMap) -> Result<(), Failure> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if ct.starts_with("application/json")
        || ct.starts_with("application/hal+json")
        || ct.contains("+json")
    {
        Ok(())
    } else {
        Err(Failure::new(
            415,
            "hawkbit.server.error.rest.unsupportedMediaType",
            format!(
                "Content-Type '{}' not supported; send application/json",
                clip(&ct)
            ),
        ))
    }
}

/// Largest DDI request body the simulator reads (256 KiB). Real hawkBit sets no limit of its own,
/// but its quotas bound what a body may carry: a feedback stores at most 50 messages of 512 UTF-16
/// units (`maxMessagesPerActionStatus`, `JpaActionStatus.MESSAGE_ENTRY_LENGTH`) — 154 KB of JSON
/// even with every unit written as a `\uXXXX` escape — and configData at most 100 attributes of
/// 128 + 128 characters. A larger body is answered 413 so that no client can make the server buffer
/// megabytes (issue 13 §10: 300 feedbacks with a 1.9 MB detail each grew it to 605 MB).
pub const DDI_BODY_LIMIT: usize = 256 * 1024;

/// A body over the limit is still read and dropped up to this many bytes (memory stays at the
/// limit), so that a client sending it whole gets the 413 rather than a reset connection; beyond
/// it, or with a larger `Content-Length`, reading stops.
const DRAIN_LIMIT: u64 = 64 << 20;

/// Reads a request body of at most `limit` bytes. `Err` is a 413 (JSON, naming the limit, never
/// the content) or a 400 for a body that could not be read.
pub async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Bytes, Failure> {
    use futures_util::StreamExt as _;
    let too_large = |got: &str| {
        Failure::new(
            413,
            "hawkbit.sim.bodyTooLarge",
            format!(
                "request body of {got} bytes is larger than hawkbit-sim's limit of {limit} bytes for this route (hawkBit's quotas: at most 50 messages of 512 characters per feedback)"
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(n) = declared.filter(|n| *n > DRAIN_LIMIT) {
        return Err(too_large(&n.to_string()));
    }
    let mut chunks = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut total: u64 = 0;
    while let Some(data) = chunks.next().await {
        let data =
            data.map_err(|e| Failure::bad(format!("request body could not be read: {e}")))?;
        total += data.len() as u64;
        if total > limit as u64 {
            buf = bytes::BytesMut::new();
            if total > DRAIN_LIMIT {
                return Err(too_large(&format!("more than {DRAIN_LIMIT}")));
            }
            continue;
        }
        buf.extend_from_slice(&data);
    }
    if total > limit as u64 {
        return Err(too_large(&total.to_string()));
    }
    Ok(buf.freeze())
}

/// Parses a JSON body (400 with the parser's message otherwise).
pub fn parse_body(body: &[u8]) -> Result<Value, Failure> {
    serde_json::from_slice(body).map_err(|e| {
        Failure::new(
            400,
            "hawkbit.server.error.rest.body.notReadable",
            format!("request body is not valid JSON: {e}"),
        )
    })
}

/// `http://<Host>` of the incoming request (links are built from it, as hawkBit does).
pub fn base_url(headers: &HeaderMap, fallback: &str) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_graphic()))
        .unwrap_or(fallback);
    format!("http://{host}")
}

/// Percent-encodes one path segment.
pub fn encode_segment(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// MD5 hex of a buffer.
pub fn md5_hex(b: &[u8]) -> String {
    use md5::Digest;
    hex(&md5::Md5::digest(b))
}

/// `{"href": url}`.
pub fn href(url: String) -> Value {
    json!({ "href": url })
}

/// Collects `Warning` lines for fields real hawkBit silently ignores.
#[derive(Debug, Default)]
pub struct Warnings(pub Vec<String>);

impl Warnings {
    /// Warns about every key of `obj` not in `known`, naming the real field when `hints` knows it.
    pub fn unknown_fields(
        &mut self,
        ctx: &str,
        obj: &Map<String, Value>,
        known: &[&str],
        hints: &[(&str, &str)],
    ) {
        for k in obj.keys() {
            if known.contains(&k.as_str()) {
                continue;
            }
            let msg = match hints.iter().find(|(bad, _)| bad.eq_ignore_ascii_case(k)) {
                Some((_, good)) => {
                    format!(
                        "{ctx}: field '{}' is ignored by hawkBit; the real field is '{good}'",
                        clip(k)
                    )
                }
                None => format!("{ctx}: unknown field '{}' is ignored by hawkBit", clip(k)),
            };
            eprintln!("hawkbit-sim: warning: {msg}");
            self.0.push(msg);
        }
    }

    /// Adds the collected warnings as `Warning: 299 hawkbit-sim "…"` headers.
    pub fn apply(self, mut r: Response) -> Response {
        for w in self.0 {
            let text = format!("299 hawkbit-sim \"{}\"", w.replace('"', "'"));
            if let Ok(v) = HeaderValue::from_str(&text) {
                r.headers_mut().append(header::WARNING, v);
            }
        }
        r
    }
}

/// Decodes standard base64 (for Basic auth).
pub fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = 0u32;
    let mut bits = 0;
    for c in s.trim().bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// Encodes standard base64 (clients, tests).
pub fn base64_encode(b: &[u8]) -> String {
    const T: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for ch in b.chunks(3) {
        let n = (u32::from(ch[0]) << 16)
            | (u32::from(*ch.get(1).unwrap_or(&0)) << 8)
            | u32::from(*ch.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= ch.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn b64() {
        assert_eq!(base64_encode(b"admin:admin"), "YWRtaW46YWRtaW4=");
        assert_eq!(base64_decode("YWRtaW46YWRtaW4=").unwrap(), b"admin:admin");
        assert_eq!(base64_decode("YQ==").unwrap(), b"a");
        assert!(base64_decode("!!").is_none());
        assert_eq!(encode_segment("a b.swu"), "a%20b.swu");
    }
}
