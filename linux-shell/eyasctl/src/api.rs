//! A small blocking client for hawkBit's Management API (`/rest/v1`).
//!
//! Every call returns the parsed JSON body (`Value::Null` for an empty body) or an [`ApiError`] that
//! names the request, the HTTP status and hawkBit's own `errorCode`/`message` when the server sent them.

use std::fmt;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};

/// User-Agent of every request.
pub const USER_AGENT: &str = concat!("eyasctl/", env!("CARGO_PKG_VERSION"));

/// The largest response body read (a page of 500 targets is far below this).
const MAX_BODY: u64 = 64 * 1024 * 1024;

/// How the tool authenticates.
#[derive(Clone, Debug)]
pub enum Auth {
    /// HTTP Basic (`--user`/`--password`).
    Basic { user: String, password: String },
    /// `Authorization: Bearer <token>` (`--token`).
    Bearer(String),
}

/// Connection settings.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// Base URL of the hawkBit server, without `/rest/v1`.
    pub url: String,
    pub auth: Auth,
    /// PEM file with the CA certificate(s) to trust instead of the built-in web roots.
    pub ca_file: Option<std::path::PathBuf>,
    /// Limit for one API call (connect + request + response).
    pub timeout: Duration,
}

/// What went wrong with a Management API call.
#[derive(Debug)]
pub enum ApiError {
    /// The server answered with a non-2xx status.
    Status {
        method: &'static str,
        path: String,
        status: u16,
        /// hawkBit's `errorCode` (e.g. `hawkbit.server.error.repo.entitiyAlreadyExists`).
        error_code: Option<String>,
        /// hawkBit's `message`.
        message: Option<String>,
        /// The raw body when it was not hawkBit's error document (shortened).
        body: Option<String>,
    },
    /// The request did not get an answer (DNS, connect, TLS, timeout, I/O).
    Transport {
        method: &'static str,
        path: String,
        detail: String,
    },
    /// The answer was not the JSON expected.
    BadResponse {
        method: &'static str,
        path: String,
        detail: String,
    },
    /// Setting up the client failed (CA file, URL).
    Setup(String),
}

impl ApiError {
    /// The HTTP status, for a status error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// hawkBit's `errorCode`, when the server sent one.
    #[allow(dead_code)] // part of the client's interface; not every command branches on it
    pub fn error_code(&self) -> Option<&str> {
        match self {
            Self::Status { error_code, .. } => error_code.as_deref(),
            _ => None,
        }
    }

    /// hawkBit's `message`, when the server sent one.
    #[allow(dead_code)] // part of the client's interface
    pub fn message(&self) -> Option<&str> {
        match self {
            Self::Status { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// A JSON rendering for `--json` output.
    pub fn to_json(&self) -> Value {
        match self {
            Self::Status {
                method,
                path,
                status,
                error_code,
                message,
                body,
            } => serde_json::json!({
                "error": "http_status", "method": method, "path": path, "status": status,
                "errorCode": error_code, "message": message, "body": body,
            }),
            Self::Transport {
                method,
                path,
                detail,
            } => serde_json::json!({
                "error": "transport", "method": method, "path": path, "message": detail,
            }),
            Self::BadResponse {
                method,
                path,
                detail,
            } => serde_json::json!({
                "error": "bad_response", "method": method, "path": path, "message": detail,
            }),
            Self::Setup(detail) => serde_json::json!({ "error": "setup", "message": detail }),
        }
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status {
                method,
                path,
                status,
                error_code,
                message,
                body,
            } => {
                write!(f, "hawkBit answered {method} {path} with HTTP {status}")?;
                if let Some(code) = error_code {
                    write!(f, ": {code}")?;
                }
                if let Some(msg) = message {
                    write!(f, ": {msg}")?;
                }
                if error_code.is_none()
                    && message.is_none()
                    && let Some(body) = body.as_deref().filter(|b| !b.is_empty())
                {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            Self::Transport {
                method,
                path,
                detail,
            } => write!(f, "{method} {path}: no answer from hawkBit: {detail}"),
            Self::BadResponse {
                method,
                path,
                detail,
            } => write!(f, "{method} {path}: unexpected answer: {detail}"),
            Self::Setup(detail) => write!(f, "{detail}"),
        }
    }
}

impl std::error::Error for ApiError {}

/// A Management API client (blocking; one agent, connections kept alive).
pub struct Api {
    agent: ureq::Agent,
    base: String,
    auth_header: String,
    ca_file: Option<std::path::PathBuf>,
    timeout: Duration,
}

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api").field("base", &self.base).finish()
    }
}

/// The trusted roots: the certificates in `ca_file` (named `flag` in errors), else the built-in
/// Mozilla roots.
fn load_roots(ca_file: Option<&Path>, flag: &str) -> Result<RootCerts, ApiError> {
    let Some(path) = ca_file else {
        return Ok(RootCerts::WebPki);
    };
    let pem = std::fs::read(path)
        .map_err(|e| ApiError::Setup(format!("{flag} {}: {e}", path.display())))?;
    let mut certs: Vec<Certificate<'static>> = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(ApiError::Setup(format!(
                    "{flag} {}: not PEM: {e}",
                    path.display()
                )));
            }
        }
    }
    if certs.is_empty() {
        return Err(ApiError::Setup(format!(
            "{flag} {}: no certificate in it",
            path.display()
        )));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

/// The one HTTP(S) agent setup of the tool (hawkBit's API and a `publish --casync` chunk store):
/// rustls with ring, the roots of `ca_file` (named `flag` in errors) or the built-in ones, a 10 s
/// connect limit and `timeout` for a whole call, statuses returned as answers, no redirects
/// (credentials never follow one).
pub fn agent(
    ca_file: Option<&Path>,
    flag: &str,
    timeout: Duration,
) -> Result<ureq::Agent, ApiError> {
    let roots = load_roots(ca_file, flag)?;
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .root_certs(roots)
        .build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .user_agent(USER_AGENT)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .build()
        .new_agent())
}

/// `Authorization: Basic …` for `user`/`password`.
pub fn basic_auth(user: &str, password: &str) -> String {
    format!("Basic {}", base64(format!("{user}:{password}").as_bytes()))
}

/// Base64 (standard alphabet, padded) for the Basic credentials.
fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Percent-encodes a query value (RFC 3986 unreserved characters pass).
pub fn encode_query(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl Api {
    /// Builds the client. Fails on an unreadable `--ca-file` or a URL that is not http(s).
    pub fn new(config: &ApiConfig) -> Result<Self, ApiError> {
        let url = config.url.trim_end_matches('/');
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            return Err(ApiError::Setup(format!(
                "--url {url:?}: must start with http:// or https://"
            )));
        }
        let agent = agent(config.ca_file.as_deref(), "--ca-file", config.timeout)?;
        let auth_header = match &config.auth {
            Auth::Basic { user, password } => basic_auth(user, password),
            Auth::Bearer(token) => format!("Bearer {token}"),
        };
        Ok(Self {
            agent,
            base: format!("{url}/rest/v1"),
            auth_header,
            ca_file: config.ca_file.clone(),
            timeout: config.timeout,
        })
    }

    /// `--ca-file`, for other servers the tool talks to (a chunk store).
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_deref()
    }

    /// `--timeout`: the limit of one call.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// `GET /rest/v1{path}`.
    pub fn get(&self, path: &str) -> Result<Value, ApiError> {
        let req = self
            .agent
            .get(format!("{}{path}", self.base))
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json");
        Self::finish("GET", path, req.call())
    }

    /// `POST /rest/v1{path}` with a JSON body.
    pub fn post(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json")
            .content_type("application/json");
        Self::finish("POST", path, req.send(body.to_string()))
    }

    /// `POST /rest/v1{path}` without a body (rollout start/pause/resume).
    pub fn post_empty(&self, path: &str) -> Result<Value, ApiError> {
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json");
        Self::finish("POST", path, req.send_empty())
    }

    /// `PUT /rest/v1{path}` with a JSON body.
    #[allow(dead_code)] // part of the client's interface
    pub fn put(&self, path: &str, body: &Value) -> Result<Value, ApiError> {
        let req = self
            .agent
            .put(format!("{}{path}", self.base))
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json")
            .content_type("application/json");
        Self::finish("PUT", path, req.send(body.to_string()))
    }

    /// `DELETE /rest/v1{path}`.
    #[allow(dead_code)] // part of the client's interface
    pub fn delete(&self, path: &str) -> Result<Value, ApiError> {
        let req = self
            .agent
            .delete(format!("{}{path}", self.base))
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json");
        Self::finish("DELETE", path, req.call())
    }

    /// `POST /rest/v1{path}` as `multipart/form-data` with the file as part `file`, streamed
    /// from disk (never held whole in memory).
    pub fn upload(&self, path: &str, file: &Path, filename: &str) -> Result<Value, ApiError> {
        let f = std::fs::File::open(file).map_err(|e| ApiError::Transport {
            method: "POST",
            path: path.to_owned(),
            detail: format!("{}: {e}", file.display()),
        })?;
        let len = f
            .metadata()
            .map_err(|e| ApiError::Transport {
                method: "POST",
                path: path.to_owned(),
                detail: format!("{}: {e}", file.display()),
            })?
            .len();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let boundary = format!(
            "eyasctl-{:016x}{:016x}",
            fnv(filename.as_bytes()) ^ len,
            fnv(&nanos.to_le_bytes())
        );
        let safe_name: String = filename
            .chars()
            .map(|c| if c == '"' || c.is_control() { '_' } else { c })
            .collect();
        let head = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
        );
        let tail = format!("\r\n--{boundary}--\r\n");
        let total = head.len() as u64 + len + tail.len() as u64;
        let mut reader = head.as_bytes().chain(f).chain(tail.as_bytes());
        // an upload may take far longer than an API call: no global limit, a stall still ends it
        let req = self
            .agent
            .post(format!("{}{path}", self.base))
            .config()
            .timeout_global(None)
            .timeout_per_read(Some(Duration::from_secs(600)))
            .build()
            .header("Authorization", &self.auth_header)
            .header("Accept", "application/json")
            .header("Content-Length", total.to_string())
            .content_type(format!("multipart/form-data; boundary={boundary}"));
        Self::finish(
            "POST",
            path,
            req.send(ureq::SendBody::from_reader(&mut reader)),
        )
    }

    fn finish(
        method: &'static str,
        path: &str,
        result: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Value, ApiError> {
        let mut resp = result.map_err(|e| ApiError::Transport {
            method,
            path: path.to_owned(),
            detail: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_string()
            .map_err(|e| ApiError::Transport {
                method,
                path: path.to_owned(),
                detail: format!("reading the answer: {e}"),
            })?;
        if !(200..300).contains(&status) {
            let doc: Option<Value> = serde_json::from_str(&text).ok();
            let field = |k: &str| {
                doc.as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let error_code = field("errorCode");
            let message = field("message");
            let body = if error_code.is_none() && message.is_none() {
                Some(text.chars().take(300).collect())
            } else {
                None
            };
            return Err(ApiError::Status {
                method,
                path: path.to_owned(),
                status,
                error_code,
                message,
                body,
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ApiError::BadResponse {
            method,
            path: path.to_owned(),
            detail: format!("not JSON ({e})"),
        })
    }
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o, "{i:?}");
        }
    }

    #[test]
    fn query_encoding_escapes_fiql() {
        assert_eq!(
            encode_query("controllerid==dev-*;x=in=(a,b)"),
            "controllerid%3D%3Ddev-%2A%3Bx%3Din%3D%28a%2Cb%29"
        );
    }
}
