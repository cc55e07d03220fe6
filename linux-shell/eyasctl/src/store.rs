//! A casync chunk store on a web server (`publish --casync --chunk-store https://…/`): `HEAD`,
//! `GET` and WebDAV-style `PUT` of single files below the store's URL, with the tool's one HTTP
//! agent (`api::agent`: the TLS setup, no redirects), optional HTTP Basic credentials, a deadline
//! on every request and retries of transient failures with backoff.
//!
//! `publish` talks to the store before it sends anything to hawkBit, so a failure here means
//! nothing was published (the error says so).

use std::fmt;
use std::path::Path;
use std::time::Duration;

use ureq::http::Response;

use crate::api;
use crate::error::Failure;

/// Attempts per request (transport errors, 5xx and 429 are tried again).
const ATTEMPTS: u32 = 3;
/// The pause before attempt 2 and 3.
const BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// An upload gets `--timeout` plus one second per this many bytes.
const UPLOAD_BYTES_PER_SEC: u64 = 64 * 1024;
/// The largest file read from the store (an index bundle of a multi-GiB image is a few MiB).
const MAX_GET: u64 = 256 * 1024 * 1024;
/// The longest excerpt of an error body quoted.
const EXCERPT: usize = 200;

/// A request the store refused or did not answer.
#[derive(Debug)]
pub struct StoreError {
    pub method: &'static str,
    pub url: String,
    /// The last HTTP status, when there was an answer.
    pub status: Option<u16>,
    /// The body excerpt (for a status) or the transport error.
    pub detail: String,
    pub attempts: u32,
}

impl StoreError {
    /// What to do about it, for the statuses a misconfigured store answers.
    fn hint(&self) -> &'static str {
        match self.status {
            Some(401 | 403) => {
                "; check --store-user/--store-password (EYAS_STORE_USER/EYAS_STORE_PASSWORD)"
            }
            Some(405) => {
                "; the server does not accept PUT there: enable WebDAV PUT for the store (nginx: dav_methods PUT; create_full_put_path on;)"
            }
            Some(409) => {
                "; the server cannot create the chunk's directory (nginx: create_full_put_path on;)"
            }
            Some(413) => "; the server limits the upload size (nginx: client_max_body_size 0;)",
            Some(300..=399) => "; redirects are not followed: give the store's final URL",
            _ => "",
        }
    }

    /// A JSON rendering for `--json` output.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "error": "store", "method": self.method, "url": self.url, "status": self.status,
            "attempts": self.attempts, "message": self.to_string(),
        })
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tries = if self.attempts == 1 {
            String::new()
        } else {
            format!(" (after {} attempts)", self.attempts)
        };
        match self.status {
            Some(s) => write!(
                f,
                "the chunk store answered {} {} with HTTP {s}{tries}",
                self.method, self.url
            )?,
            None => write!(
                f,
                "{} {}: no answer from the chunk store{tries}",
                self.method, self.url
            )?,
        }
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail)?;
        }
        write!(f, "{}; nothing was published to hawkBit", self.hint())
    }
}

impl std::error::Error for StoreError {}

/// Checks a `--chunk-store` URL: http(s), no credentials, query or fragment in it.
pub fn check_url(url: &str) -> Result<String, String> {
    let lower = url.to_ascii_lowercase();
    let scheme = ["https://", "http://"]
        .into_iter()
        .find(|s| lower.starts_with(s))
        .ok_or_else(|| format!("{url:?}: a chunk store URL starts with http:// or https://"))?;
    let rest = &url[scheme.len()..];
    let authority = rest.split('/').next().unwrap_or("");
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    if let Some(at) = authority.rfind('@') {
        // never echo the password
        return Err(format!(
            "\"{scheme}…@{}\": credentials do not belong in the chunk store URL; give --store-user and --store-password (or EYAS_STORE_USER/EYAS_STORE_PASSWORD)",
            &rest[at + 1..]
        ));
    }
    if rest.contains(['?', '#']) || rest.contains(char::is_whitespace) {
        return Err(format!(
            "{url:?}: a chunk store URL has no query, fragment or white space"
        ));
    }
    Ok(format!("{scheme}{}/", rest.trim_end_matches('/')))
}

/// The store at one base URL.
pub struct Store {
    agent: ureq::Agent,
    /// Ends with `/`.
    base: String,
    auth: Option<String>,
    timeout: Duration,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // never the credentials
        f.debug_struct("Store").field("base", &self.base).finish()
    }
}

fn transient(e: &ureq::Error) -> bool {
    matches!(
        e,
        ureq::Error::Io(_)
            | ureq::Error::Timeout(_)
            | ureq::Error::ConnectionFailed
            | ureq::Error::HostNotFound
            | ureq::Error::BodyStalled
            | ureq::Error::Protocol(_)
    )
}

/// A `GET` the store answered with 200 whose body could not be read (or stored).
fn unreadable_answer(url: &str, detail: String) -> Failure {
    Failure::Store(StoreError {
        method: "GET",
        url: url.to_owned(),
        status: Some(200),
        detail,
        attempts: 1,
    })
}

fn local(path: &Path, e: impl fmt::Display) -> Failure {
    Failure::Other(format!("{}: {e}", path.display()))
}

/// Reads what is left of a body (a small one: the connection can be used again) as a one-line
/// excerpt: an HTML error page's title, else the text without tags.
fn excerpt(resp: &mut Response<ureq::Body>) -> String {
    let text = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_to_string()
        .unwrap_or_default();
    let lower = text.to_ascii_lowercase();
    let title = lower
        .find("<title>")
        .map(|a| a + "<title>".len())
        .and_then(|a| Some(a..a + lower.get(a..)?.find("</title>")?))
        .and_then(|r| text.get(r));
    let mut plain = String::new();
    let mut in_tag = false;
    for c in title.unwrap_or(&text).chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                plain.push(' ');
            }
            _ if !in_tag => plain.push(c),
            _ => {}
        }
    }
    let mut out = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > EXCERPT {
        out = out.chars().take(EXCERPT).collect::<String>() + "…";
    }
    out
}

impl Store {
    /// The store at `base` (checked by [`check_url`]); `ca_file` (named `flag` in errors) for
    /// TLS, `credentials` for HTTP Basic, `timeout` the limit of one request.
    pub fn new(
        base: &str,
        ca_file: Option<&Path>,
        flag: &str,
        credentials: Option<(&str, &str)>,
        timeout: Duration,
    ) -> Result<Self, Failure> {
        let base = check_url(base).map_err(Failure::Usage)?;
        Ok(Self {
            agent: api::agent(ca_file, flag, timeout)?,
            base,
            auth: credentials.map(|(u, p)| api::basic_auth(u, p)),
            timeout,
        })
    }

    /// The store's URL (ends with `/`).
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of `rel` (a path below the store, characters `[A-Za-z0-9._/-]` only).
    pub fn url(&self, rel: &str) -> String {
        format!("{}{rel}", self.base)
    }

    /// Sends one request (built anew for each attempt by `send`) until the answer's status is in
    /// `accept` or not transient, at most [`ATTEMPTS`] times with [`BACKOFF`] between.
    fn call(
        &self,
        method: &'static str,
        url: &str,
        accept: &[u16],
        mut send: impl FnMut() -> Result<Response<ureq::Body>, ureq::Error>,
    ) -> Result<Response<ureq::Body>, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let last = attempt >= ATTEMPTS;
            let fail = |status, detail| {
                Failure::Store(StoreError {
                    method,
                    url: url.to_owned(),
                    status,
                    detail,
                    attempts: attempt,
                })
            };
            match send() {
                Ok(resp) if accept.contains(&resp.status().as_u16()) => return Ok(resp),
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let again = status >= 500 || status == 429;
                    let body = excerpt(&mut resp);
                    if !again || last {
                        return Err(fail(Some(status), body));
                    }
                }
                Err(e) => {
                    if !transient(&e) || last {
                        return Err(fail(None, e.to_string()));
                    }
                }
            }
            let pause = BACKOFF[(attempt as usize - 1).min(BACKOFF.len() - 1)];
            std::thread::sleep(pause);
        }
    }

    fn authorize<B>(&self, req: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.auth {
            Some(a) => req.header("Authorization", a),
            None => req,
        }
    }

    /// `HEAD rel`: `Some(size)` (the `Content-Length`, when sent) if the file is there, `None`
    /// on 404/410.
    pub fn head(&self, rel: &str) -> Result<Option<Option<u64>>, Failure> {
        let url = self.url(rel);
        let resp = self.call("HEAD", &url, &[200, 404, 410], || {
            self.authorize(self.agent.head(&url)).call()
        })?;
        if resp.status().as_u16() != 200 {
            return Ok(None);
        }
        let len = resp
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse().ok());
        Ok(Some(len))
    }

    /// `GET rel` into `dest` (streamed); false on 404/410 (nothing written).
    pub fn get_file(&self, rel: &str, dest: &Path) -> Result<bool, Failure> {
        let url = self.url(rel);
        let mut resp = self.call("GET", &url, &[200, 404, 410], || {
            self.authorize(self.agent.get(&url)).call()
        })?;
        if resp.status().as_u16() != 200 {
            let _ = excerpt(&mut resp);
            return Ok(false);
        }
        let mut out = std::fs::File::create(dest).map_err(|e| local(dest, e))?;
        let mut body = resp.body_mut().with_config().limit(MAX_GET).reader();
        std::io::copy(&mut body, &mut out).map_err(|e| {
            unreadable_answer(
                &url,
                format!("reading the answer into {}: {e}", dest.display()),
            )
        })?;
        out.sync_all().map_err(|e| local(dest, e))?;
        Ok(true)
    }

    /// `GET rel` as text (a small file); `None` on 404/410.
    pub fn get_text(&self, rel: &str) -> Result<Option<String>, Failure> {
        let url = self.url(rel);
        let mut resp = self.call("GET", &url, &[200, 404, 410], || {
            self.authorize(self.agent.get(&url)).call()
        })?;
        if resp.status().as_u16() != 200 {
            let _ = excerpt(&mut resp);
            return Ok(None);
        }
        let text = resp
            .body_mut()
            .with_config()
            .limit(1024 * 1024)
            .read_to_string()
            .map_err(|e| unreadable_answer(&url, format!("reading the answer: {e}")))?;
        Ok(Some(text))
    }

    /// `PUT rel` with the file's bytes, streamed from disk with its `Content-Length`; the
    /// request's deadline grows with the size.
    pub fn put_file(&self, rel: &str, file: &Path) -> Result<(), Failure> {
        let url = self.url(rel);
        let len = std::fs::metadata(file).map_err(|e| local(file, e))?.len();
        let limit = self.timeout + Duration::from_secs(len / UPLOAD_BYTES_PER_SEC);
        let mut resp = self.call("PUT", &url, &[200, 201, 204], || {
            // opened again for each attempt: a retry sends the whole file
            let f = std::fs::File::open(file).map_err(ureq::Error::Io)?;
            self.authorize(self.agent.put(&url))
                .config()
                .timeout_global(Some(limit))
                .build()
                .content_type("application/octet-stream")
                .send(f)
        })?;
        let _ = excerpt(&mut resp);
        Ok(())
    }

    /// `PUT rel` with `bytes`.
    pub fn put_bytes(&self, rel: &str, bytes: &[u8]) -> Result<(), Failure> {
        let url = self.url(rel);
        let mut resp = self.call("PUT", &url, &[200, 201, 204], || {
            self.authorize(self.agent.put(&url))
                .content_type("application/octet-stream")
                .send(bytes)
        })?;
        let _ = excerpt(&mut resp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_urls_are_checked() {
        assert_eq!(
            check_url("https://cdn.example.com/fw/acme.castr").as_deref(),
            Ok("https://cdn.example.com/fw/acme.castr/")
        );
        assert_eq!(
            check_url("HTTP://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080/")
        );
        for bad in [
            "ftp://host/store/",
            "https:///store/",
            "https://user:pw@host/store/",
            "https://host/store/?x=1",
            "https://host/store/#frag",
        ] {
            let e = check_url(bad).expect_err(bad);
            assert!(!e.contains("pw"), "the password is not echoed: {e}");
        }
    }

    #[test]
    fn errors_name_the_url_status_and_what_to_do() {
        let e = StoreError {
            method: "PUT",
            url: "https://h/s/abcd/abcd.cacnk".into(),
            status: Some(405),
            detail: "405 Not Allowed".into(),
            attempts: 1,
        };
        let m = e.to_string();
        assert!(
            m.starts_with("the chunk store answered PUT https://h/s/abcd/abcd.cacnk with HTTP 405: 405 Not Allowed; ")
                && m.contains("dav_methods PUT")
                && m.ends_with("nothing was published to hawkBit"),
            "{m}"
        );
        let e = StoreError {
            status: None,
            detail: "connection refused".into(),
            attempts: 3,
            ..e
        };
        assert_eq!(
            e.to_string(),
            "PUT https://h/s/abcd/abcd.cacnk: no answer from the chunk store (after 3 attempts): connection refused; nothing was published to hawkBit"
        );
        assert_eq!(e.to_json()["status"], serde_json::Value::Null);
    }
}
