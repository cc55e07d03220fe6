//! HTTP(S) with ureq 3 + rustls (ring): agents for DDI API calls and for artifact downloads.
//!
//! * roots: `[eyas] ca_file` if set, else the system bundle (`/etc/ssl/certs/ca-certificates.crt`),
//!   else Mozilla's roots compiled in;
//! * `ssl_verify=false` disables certificate and host checks (as rauc-hawkbit-updater does);
//! * `ssl_key`/`ssl_cert`: client certificate for mTLS;
//! * `[eyas] proxy` or the usual `*_proxy` environment variables;
//! * timeouts: `connect_timeout` for TCP+TLS setup, `timeout` for a whole API call; downloads
//!   have no overall limit but a per-read limit (see [`crate::download`]).
//!
//! The `Authorization` header is added per request by the caller and never logged; it follows a
//! redirect to the same host (same scheme, or up to https) and is dropped on any other.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig, TlsProvider};

use crate::config::Config;

/// The Debian/Ubuntu system CA bundle.
pub const SYSTEM_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// API responses larger than this are refused (a DDI document is a few KiB).
pub const MAX_API_BODY: u64 = 4 * 1024 * 1024;

/// Transport settings shared by every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// TCP connect + TLS handshake limit.
    pub connect_timeout: Duration,
    /// Whole-call limit for API requests.
    pub api_timeout: Duration,
    /// Per-read limit for downloads (a stalled transfer is cut after this).
    pub download_read_timeout: Duration,
    /// Limit for a download's request and response headers (`timeout`): a server that drips
    /// its headers a byte at a time is cut after this, whatever the per-read limit.
    pub download_header_timeout: Duration,
    /// Verify the server certificate and name.
    pub ssl_verify: bool,
    /// Roots (PEM) instead of the system bundle.
    pub ca_file: Option<PathBuf>,
    /// `(certificate chain PEM, private key PEM)` for mTLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
    /// Proxy URL; `None` = environment (`https_proxy`, `no_proxy`, …).
    pub proxy: Option<String>,
}

impl HttpSettings {
    /// Every time limit `limit`; certificates verified against the system roots, no client
    /// certificate, the proxy from the environment (tools and tests that have no file).
    pub fn with_limits(limit: Duration) -> Self {
        Self {
            connect_timeout: limit,
            api_timeout: limit,
            download_read_timeout: limit,
            download_header_timeout: limit,
            ssl_verify: true,
            ca_file: None,
            client_cert: None,
            proxy: None,
        }
    }

    /// Settings from the configuration file.
    pub fn from_config(config: &Config) -> Self {
        let c = &config.client;
        let low_speed = if c.low_speed_time.is_zero() {
            Duration::from_secs(60)
        } else {
            c.low_speed_time
        };
        Self {
            connect_timeout: c.connect_timeout,
            api_timeout: c.timeout,
            download_read_timeout: low_speed,
            download_header_timeout: c.timeout,
            ssl_verify: c.ssl_verify,
            ca_file: config.eyas.ca_file.clone(),
            client_cert: c.ssl_cert.clone().zip(c.ssl_key.clone()),
            proxy: config.eyas.proxy.clone(),
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpErrorKind {
    /// Bad local setup (CA file, client key, proxy URL): fix the configuration.
    Setup,
    /// DNS, TCP connect or proxy failure.
    Connect,
    /// TLS handshake or certificate problem.
    Tls,
    /// A time limit was hit.
    Timeout,
    /// The transfer broke off (reset, early EOF).
    Transfer,
    /// The server answered with an unexpected status.
    Status(u16),
    /// Local file-system problem while downloading.
    Io,
    /// Not enough free space for the download.
    NoSpace,
    /// The artifact file name is unsafe.
    BadFilename,
    /// The server's size is not the one hawkBit announced (retrying cannot help).
    SizeMismatch,
    /// Slower than `low_speed_rate` for `low_speed_time`.
    LowSpeed,
    /// The caller cancelled.
    Cancelled,
}

/// A failed request: kind plus a human explanation (never containing a token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// Classification used for retry decisions.
    pub kind: HttpErrorKind,
    /// What happened, where, and what to do.
    pub detail: String,
}

impl HttpError {
    /// A new error.
    pub fn new(kind: HttpErrorKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    /// Worth retrying the same transfer (network trouble, not a refusal).
    pub fn is_transient(&self) -> bool {
        matches!(
            self.kind,
            HttpErrorKind::Connect
                | HttpErrorKind::Timeout
                | HttpErrorKind::Transfer
                | HttpErrorKind::LowSpeed
        )
    }

    /// Classifies a ureq error for `url`.
    pub fn from_ureq(url: &str, e: &ureq::Error) -> Self {
        let kind = match e {
            ureq::Error::StatusCode(code) => HttpErrorKind::Status(*code),
            ureq::Error::Timeout(_) => HttpErrorKind::Timeout,
            ureq::Error::HostNotFound
            | ureq::Error::ConnectionFailed
            | ureq::Error::ConnectProxyFailed(_) => HttpErrorKind::Connect,
            ureq::Error::Tls(_) | ureq::Error::Rustls(_) | ureq::Error::TlsRequired => {
                HttpErrorKind::Tls
            }
            ureq::Error::Io(io)
                if io
                    .get_ref()
                    .is_some_and(|inner| inner.is::<rustls::Error>()) =>
            {
                HttpErrorKind::Tls
            }
            ureq::Error::Io(io) => match io.kind() {
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                    HttpErrorKind::Timeout
                }
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::NotFound => {
                    HttpErrorKind::Connect
                }
                _ => HttpErrorKind::Transfer,
            },
            ureq::Error::BadUri(_) | ureq::Error::InvalidProxyUrl | ureq::Error::Pem(_) => {
                HttpErrorKind::Setup
            }
            _ => HttpErrorKind::Transfer,
        };
        let mut detail = format!("{}: {e}", redact_url(url));
        if kind == HttpErrorKind::Tls {
            detail.push_str(tls_hint(&detail));
        }
        Self::new(kind, detail)
    }
}

/// What to do about a certificate rustls refused, for the messages users see most.
fn tls_hint(detail: &str) -> &'static str {
    if detail.contains("CaUsedAsEndEntity") {
        "; the server presents a CA certificate (basicConstraints CA:TRUE, what `openssl req -x509` \
         makes by default) as its own, which TLS clients refuse. Make the server certificate with \
         `openssl req -x509 -newkey rsa:2048 -nodes -keyout server.key -out server.crt -days 3650 \
         -subj /CN=HOST -addext subjectAltName=DNS:HOST -addext basicConstraints=critical,CA:FALSE` \
         and set ca_file to server.crt (or sign the server certificate with a separate CA and set \
         ca_file to the CA)"
    } else if detail.contains("UnknownIssuer") {
        "; the server's certificate is not signed by a trusted CA: set [eyas] ca_file to the CA \
         (or to the server's own self-signed certificate)"
    } else if detail.contains("NotValidForName") {
        "; the server's certificate does not name this host: it needs a subjectAltName with the \
         host name or IP address of hawkbit_server (the CN alone is not used)"
    } else if detail.contains("Expired") {
        "; the server's certificate has expired (or this device's clock is wrong)"
    } else {
        ""
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for HttpError {}

/// The URL without query string (hawkBit download links may carry signed tokens there).
pub fn redact_url(url: &str) -> &str {
    url.split(['?', '#']).next().unwrap_or(url)
}

/// `scheme://host[:port]` of a URL, lower-cased, for same-origin decisions.
pub fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit('@').next()?;
    if authority.is_empty() {
        return None;
    }
    let scheme = scheme.to_ascii_lowercase();
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => "",
    };
    let authority = authority
        .strip_suffix(default_port)
        .unwrap_or(&authority)
        .to_owned();
    Some(format!("{scheme}://{authority}"))
}

/// The configured agents.
#[derive(Debug, Clone)]
pub struct Http {
    api: ureq::Agent,
    download_with_cert: ureq::Agent,
    download_without_cert: ureq::Agent,
}

/// An HTTP method used by the DDI API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// PUT
    Put,
    /// POST
    Post,
}

/// An API response (any status; the core interprets it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// `Retry-After` in seconds, when the server sent one.
    pub retry_after: Option<Duration>,
    /// `ETag` header.
    pub etag: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

/// User-Agent of every request.
pub const USER_AGENT: &str = concat!("eyas/", env!("CARGO_PKG_VERSION"));

impl Http {
    /// Builds the agents; fails on an unreadable CA/client-cert file or a bad proxy URL.
    pub fn new(settings: &HttpSettings) -> Result<Self, HttpError> {
        if !settings.ssl_verify {
            tracing::warn!(
                "ssl_verify=false: TLS certificates and host names are NOT checked; anyone on the network path can pose as hawkBit and install software. Set ssl_verify=true and ca_file for a private CA or a self-signed server certificate"
            );
        }
        let roots = load_roots(settings.ca_file.as_deref())?;
        let client_cert = match &settings.client_cert {
            Some((cert, key)) => Some(load_client_cert(cert, key)?),
            None => None,
        };
        let proxy = match &settings.proxy {
            Some(url) => Some(ureq::Proxy::new(url).map_err(|e| {
                HttpError::new(
                    HttpErrorKind::Setup,
                    format!("proxy {url:?}: {e}; check [eyas] proxy"),
                )
            })?),
            None => ureq::Proxy::try_from_env(),
        };
        let build = |cert: Option<ClientCert>,
                     global: Option<Duration>,
                     per_read: Option<Duration>,
                     headers: Option<Duration>| {
            let tls = TlsConfig::builder()
                .provider(TlsProvider::Rustls)
                .unversioned_rustls_crypto_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .root_certs(roots.clone())
                .disable_verification(!settings.ssl_verify)
                .client_cert(cert)
                .build();
            ureq::Agent::config_builder()
                .tls_config(tls)
                .proxy(proxy.clone())
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .timeout_connect(Some(settings.connect_timeout))
                .timeout_global(global)
                .timeout_per_read(per_read)
                .timeout_resolve(Some(settings.connect_timeout))
                .timeout_send_request(headers)
                .timeout_recv_response(headers)
                .max_redirects(8)
                // the token follows a redirect to the same host (same scheme, or up to
                // https), never to another host (a CDN or a hostile server)
                .redirect_auth_headers(ureq::config::RedirectAuthHeaders::SameHost)
                .build()
                .new_agent()
        };
        Ok(Self {
            api: build(client_cert.clone(), Some(settings.api_timeout), None, None),
            download_with_cert: build(
                client_cert,
                None,
                Some(settings.download_read_timeout),
                Some(settings.download_header_timeout),
            ),
            download_without_cert: build(
                None,
                None,
                Some(settings.download_read_timeout),
                Some(settings.download_header_timeout),
            ),
        })
    }

    /// The agent for artifact downloads; `with_credentials` adds the client certificate.
    pub fn download_agent(&self, with_credentials: bool) -> &ureq::Agent {
        if with_credentials {
            &self.download_with_cert
        } else {
            &self.download_without_cert
        }
    }

    /// One DDI API call. `auth` is the whole `Authorization` value; `body` is JSON.
    pub fn api(
        &self,
        method: Method,
        url: &str,
        auth: Option<&str>,
        body: Option<&[u8]>,
    ) -> Result<ApiResponse, HttpError> {
        self.request(&ApiRequest {
            method,
            url,
            authorization: auth,
            if_none_match: None,
            body,
        })
    }

    /// One DDI API call with every header the core may ask for.
    pub fn request(&self, req: &ApiRequest<'_>) -> Result<ApiResponse, HttpError> {
        let accept = "application/hal+json, application/json;charset=UTF-8";
        let url = req.url;
        let result = match req.method {
            Method::Get => {
                let mut b = self.api.get(url).header("Accept", accept);
                if let Some(a) = req.authorization {
                    b = b.header("Authorization", a);
                }
                if let Some(tag) = req.if_none_match {
                    b = b.header("If-None-Match", tag);
                }
                b.call()
            }
            Method::Put | Method::Post => {
                let mut b = if req.method == Method::Put {
                    self.api.put(url)
                } else {
                    self.api.post(url)
                }
                .header("Accept", accept)
                .header("Content-Type", "application/json;charset=UTF-8");
                if let Some(a) = req.authorization {
                    b = b.header("Authorization", a);
                }
                b.send(req.body.unwrap_or(b"{}"))
            }
        };
        let mut response = result.map_err(|e| HttpError::from_ureq(url, &e))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let retry_after = header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let etag = header("etag");
        let body = response
            .body_mut()
            .with_config()
            .limit(MAX_API_BODY)
            .read_to_vec()
            .map_err(|e| HttpError::from_ureq(url, &e))?;
        Ok(ApiResponse {
            status,
            retry_after,
            etag,
            body,
        })
    }
}

/// A DDI API request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiRequest<'a> {
    /// Method.
    pub method: Method,
    /// Absolute URL.
    pub url: &'a str,
    /// `Authorization` value.
    pub authorization: Option<&'a str>,
    /// `If-None-Match` value.
    pub if_none_match: Option<&'a str>,
    /// JSON body for PUT/POST.
    pub body: Option<&'a [u8]>,
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, HttpError> {
    std::fs::read(path).map_err(|e| {
        HttpError::new(
            HttpErrorKind::Setup,
            format!("{what} {}: {e}", path.display()),
        )
    })
}

/// Roots: `ca_file`, else the system bundle, else the compiled-in Mozilla roots.
pub fn load_roots(ca_file: Option<&Path>) -> Result<RootCerts, HttpError> {
    let (path, explicit) = match ca_file {
        Some(p) => (p.to_owned(), true),
        None if Path::new(SYSTEM_CA_BUNDLE).exists() => (PathBuf::from(SYSTEM_CA_BUNDLE), false),
        None => return Ok(RootCerts::WebPki),
    };
    let pem = read_file(&path, "CA file")?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item {
            Ok(PemItem::Certificate(c)) => certs.push(c),
            Ok(_) => {}
            Err(e) => {
                return Err(HttpError::new(
                    HttpErrorKind::Setup,
                    format!("CA file {}: {e}", path.display()),
                ));
            }
        }
    }
    if certs.is_empty() {
        if !explicit {
            return Ok(RootCerts::WebPki);
        }
        return Err(HttpError::new(
            HttpErrorKind::Setup,
            format!("CA file {}: no PEM certificate in it", path.display()),
        ));
    }
    Ok(RootCerts::Specific(Arc::new(certs)))
}

fn load_client_cert(cert: &Path, key: &Path) -> Result<ClientCert, HttpError> {
    let cert_pem = read_file(cert, "ssl_cert")?;
    let chain: Vec<Certificate<'static>> = ureq::tls::parse_pem(&cert_pem)
        .filter_map(|i| match i {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect();
    if chain.is_empty() {
        return Err(HttpError::new(
            HttpErrorKind::Setup,
            format!("ssl_cert {}: no PEM certificate in it", cert.display()),
        ));
    }
    let key_pem = read_file(key, "ssl_key")?;
    let key = PrivateKey::from_pem(&key_pem).map_err(|e| {
        HttpError::new(
            HttpErrorKind::Setup,
            format!(
                "ssl_key {}: {e} (a PEM private key is needed)",
                key.display()
            ),
        )
    })?;
    Ok(ClientCert::new_with_certs(&chain, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins() {
        assert_eq!(
            origin("https://Host:443/a?b").as_deref(),
            Some("https://host")
        );
        assert_eq!(origin("http://h:8080/x").as_deref(), Some("http://h:8080"));
        assert_eq!(origin("https://u:p@h/x").as_deref(), Some("https://h"));
        assert_eq!(origin("nonsense"), None);
        assert_eq!(origin("http:///x"), None);
    }

    #[test]
    fn urls_are_logged_without_query() {
        assert_eq!(
            redact_url("https://cdn/x.raucb?sig=SECRET"),
            "https://cdn/x.raucb"
        );
    }

    #[test]
    fn setup_errors_name_the_file() {
        let e = load_roots(Some(Path::new("/nonexistent/ca.pem"))).expect_err("missing");
        assert_eq!(e.kind, HttpErrorKind::Setup);
        assert!(e.detail.contains("/nonexistent/ca.pem"), "{e}");
        let dir = tempfile::tempdir().expect("tempdir");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not pem").expect("write");
        let e = load_roots(Some(&empty)).expect_err("no certs");
        assert!(e.detail.contains("no PEM certificate"), "{e}");
        let e = load_client_cert(&empty, &empty).expect_err("no certs");
        assert!(e.detail.starts_with("ssl_cert"), "{e}");
        let settings = HttpSettings {
            proxy: Some("ftp://nope".into()),
            ..HttpSettings::with_limits(Duration::from_secs(1))
        };
        let e = Http::new(&settings).expect_err("bad proxy");
        assert_eq!(e.kind, HttpErrorKind::Setup);
    }

    #[test]
    fn system_roots_load() {
        // Debian ships the bundle; without it the compiled-in roots are used.
        assert!(load_roots(None).is_ok());
    }
}
