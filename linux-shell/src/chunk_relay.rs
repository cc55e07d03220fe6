//! The casync chunk relay.
//!
//! RAUC installs a casync bundle by running `casync extract`, which fetches the chunks it does not
//! find in the seed itself (libcurl, one request at a time, no retry, no resume). eyas' HTTP
//! settings (CA file, client certificate, proxy, timeouts) would not reach those requests, and
//! nobody could tell how many bytes an update really moved. With `[eyas] casync_store` set and
//! RAUC's `[casync] storepath=http://127.0.0.1:7453/`, casync asks this relay instead: it fetches
//! each chunk from the real store with eyas' own HTTP client, retries transient failures with a
//! backoff, and counts the chunk bytes it fetched ([`ChunkRelay::fetched_bytes`]).
//!
//! It listens on loopback only (the configuration refuses anything else), serves `GET` of store
//! paths only (`/<4 hex>/<64 hex>.cacnk`, or any plain relative path made of `[A-Za-z0-9._-/]`),
//! and treats casync as a possibly broken client: bounded request heads, deadlines on every read
//! and write, a bounded number of connections.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::http::{Http, HttpError, redact_url};

/// Largest chunk relayed. casync's chunks are at most 4× the store's average size (64 KiB by
/// default, so 256 KiB); this leaves room for stores built with much larger chunks.
pub const MAX_CHUNK_BYTES: u64 = 16 * 1024 * 1024;
/// Largest request head accepted from casync (a request line and a few headers).
pub const MAX_HEAD_BYTES: usize = 8 * 1024;
/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 8;
/// A client must send its next request head within this time.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(30);
/// Writing one response to casync may take this long.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(60);
/// One chunk fetched from the store, all attempts and backoff included.
pub const FETCH_DEADLINE: Duration = Duration::from_secs(600);
/// Attempts per chunk when the store fails transiently (connect errors, timeouts, 5xx, 429).
pub const FETCH_ATTEMPTS: u32 = 4;
/// Backoff before the second attempt; doubled for each later one.
pub const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A running relay.
#[derive(Debug)]
pub struct ChunkRelay {
    local: SocketAddr,
    fetched: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ChunkRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the relay needs to reach the store.
#[derive(Clone)]
struct Upstream {
    /// The store URL, ending in `/`.
    store: String,
    http: Arc<Http>,
    with_credentials: bool,
}

impl ChunkRelay {
    /// Binds `listen` and serves until dropped. `store` is the chunk store URL; chunks are
    /// fetched with `http`'s download agent (with the client certificate when `with_credentials`).
    pub async fn start(
        listen: SocketAddr,
        store: &str,
        http: Arc<Http>,
        with_credentials: bool,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(listen).await?;
        let local = listener.local_addr()?;
        let mut store = store.to_owned();
        if !store.ends_with('/') {
            store.push('/');
        }
        let upstream = Upstream {
            store,
            http,
            with_credentials,
        };
        let fetched = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&fetched);
        let task = tokio::spawn(serve(listener, upstream, counter));
        Ok(Self {
            local,
            fetched,
            task,
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Chunk bytes fetched from the store since the relay started (bodies of successful
    /// fetches; what a failed attempt had received before it failed is not counted).
    pub fn fetched_bytes(&self) -> u64 {
        self.fetched.load(Ordering::Relaxed)
    }

    /// The counter behind [`Self::fetched_bytes`], for a task that outlives a borrow.
    pub fn counter(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.fetched)
    }
}

async fn serve(listener: TcpListener, upstream: Upstream, fetched: Arc<AtomicU64>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // e.g. out of file descriptors: do not spin
                tracing::warn!("casync relay: accept: {e}");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let upstream = upstream.clone();
        let fetched = Arc::clone(&fetched);
        tokio::spawn(async move {
            if let Err(e) = connection(stream, &upstream, &fetched).await {
                tracing::debug!("casync relay: {peer}: {e}");
            }
            drop(permit);
        });
    }
}

/// One parsed request head.
#[derive(Debug, PartialEq, Eq)]
struct RequestHead {
    method: String,
    path: String,
    keep_alive: bool,
}

/// Why a request head was refused.
#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    /// Not `METHOD PATH HTTP/1.x`, or not UTF-8.
    Malformed,
}

fn parse_head(head: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    let mut lines = text.split("\r\n");
    let mut parts = lines.next().unwrap_or_default().split(' ');
    let (Some(method), Some(path), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let mut keep_alive = match version {
        "HTTP/1.1" => true,
        "HTTP/1.0" => false,
        _ => return Err(HeadError::Malformed),
    };
    for line in lines {
        if let Some((name, value)) = line.split_once(':')
            && name.trim().eq_ignore_ascii_case("connection")
        {
            let value = value.trim();
            if value.eq_ignore_ascii_case("close") {
                keep_alive = false;
            } else if value.eq_ignore_ascii_case("keep-alive") {
                keep_alive = true;
            }
        }
    }
    Ok(RequestHead {
        method: method.to_owned(),
        path: path.to_owned(),
        keep_alive,
    })
}

/// The store-relative path for a request path, or `None` when it could name anything but a
/// file below the store (`..`, empty segments, a query, odd characters).
fn store_path(path: &str) -> Option<&str> {
    let rel = path.strip_prefix('/')?;
    let ok = !rel.is_empty()
        && rel
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'))
        && rel
            .split('/')
            .all(|seg| !seg.is_empty() && seg != "." && seg != "..");
    ok.then_some(rel)
}

async fn connection(
    mut stream: TcpStream,
    upstream: &Upstream,
    fetched: &AtomicU64,
) -> std::io::Result<()> {
    let mut buf: Vec<u8> = Vec::with_capacity(1024);
    loop {
        let Some(head) = read_head(&mut stream, &mut buf).await? else {
            return Ok(());
        };
        let (status, body, keep_alive) = match parse_head(&head) {
            Err(HeadError::Malformed) => (400, Vec::new(), false),
            Ok(req) if req.method != "GET" => (405, Vec::new(), req.keep_alive),
            Ok(req) => match store_path(&req.path) {
                None => (400, Vec::new(), req.keep_alive),
                Some(rel) => {
                    let url = format!("{}{rel}", upstream.store);
                    let (status, body) = fetch(upstream, url, fetched).await;
                    (status, body, req.keep_alive)
                }
            },
        };
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            _ => "Bad Gateway",
        };
        let mut response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n{}\r\n",
            body.len(),
            if keep_alive { "" } else { "Connection: close\r\n" }
        )
        .into_bytes();
        response.extend_from_slice(&body);
        tokio::time::timeout(WRITE_DEADLINE, stream.write_all(&response))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "response write"))??;
        if !keep_alive {
            return Ok(());
        }
    }
}

/// Reads one request head (up to the blank line) into a new buffer; bytes after it stay in
/// `buf` for the next request. `None` when the client closed the connection between requests.
async fn read_head(stream: &mut TcpStream, buf: &mut Vec<u8>) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = tokio::time::Instant::now() + HEAD_DEADLINE;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = buf[..end].to_vec();
            buf.drain(..end + 4);
            return Ok(Some(head));
        }
        if buf.len() > MAX_HEAD_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("request head longer than {MAX_HEAD_BYTES} bytes"),
            ));
        }
        let mut chunk = [0u8; 1024];
        let n = tokio::time::timeout_at(deadline, stream.read(&mut chunk))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request head"))??;
        if n == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(std::io::ErrorKind::UnexpectedEof.into())
            };
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Fetches `url` from the store: `(200, body)`, `(404, [])` when the store has no such chunk
/// (casync then fails with its own message), `(502, [])` when the store cannot be reached or
/// misbehaves after [`FETCH_ATTEMPTS`].
async fn fetch(upstream: &Upstream, url: String, fetched: &AtomicU64) -> (u16, Vec<u8>) {
    let deadline = tokio::time::Instant::now() + FETCH_DEADLINE;
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=FETCH_ATTEMPTS {
        let up = upstream.clone();
        let u = url.clone();
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let result = tokio::task::spawn_blocking(move || fetch_once(&up, &u, left))
            .await
            .unwrap_or_else(|e| Err(Fetch::Failed(format!("fetch task: {e}"))));
        match result {
            Ok(body) => {
                fetched.fetch_add(body.len() as u64, Ordering::Relaxed);
                return (200, body);
            }
            Err(Fetch::NotFound) => {
                tracing::warn!(
                    "casync relay: {}: 404 from the chunk store",
                    redact_url(&url)
                );
                return (404, Vec::new());
            }
            Err(Fetch::Failed(why)) => {
                tracing::warn!(
                    "casync relay: {} (attempt {attempt} of {FETCH_ATTEMPTS}): {why}",
                    redact_url(&url)
                );
            }
            Err(Fetch::Refused(why)) => {
                tracing::warn!("casync relay: {}: {why}", redact_url(&url));
                return (502, Vec::new());
            }
        }
        if attempt == FETCH_ATTEMPTS || tokio::time::Instant::now() + backoff >= deadline {
            break;
        }
        tokio::time::sleep(backoff).await;
        backoff = backoff.saturating_mul(2);
    }
    (502, Vec::new())
}

/// Why one fetch did not bring a chunk.
enum Fetch {
    /// 404/410: the store has no such chunk; retrying does not help.
    NotFound,
    /// Transient: worth another attempt.
    Failed(String),
    /// The store answered, but not with something to relay (another status, too large).
    Refused(String),
}

fn fetch_once(upstream: &Upstream, url: &str, limit: Duration) -> Result<Vec<u8>, Fetch> {
    let agent = upstream.http.download_agent(upstream.with_credentials);
    let mut response = agent
        .get(url)
        .config()
        .timeout_global(Some(limit))
        .build()
        .call()
        .map_err(|e| Fetch::Failed(HttpError::from_ureq(url, &e).to_string()))?;
    let status = response.status().as_u16();
    match status {
        200 => {}
        404 | 410 => return Err(Fetch::NotFound),
        429 | 500..=599 => return Err(Fetch::Failed(format!("HTTP {status}"))),
        other => return Err(Fetch::Refused(format!("HTTP {other} from the chunk store"))),
    }
    let mut body = Vec::new();
    let read = response
        .body_mut()
        .as_reader()
        .take(MAX_CHUNK_BYTES + 1)
        .read_to_end(&mut body);
    match read {
        Ok(_) if body.len() as u64 > MAX_CHUNK_BYTES => Err(Fetch::Refused(format!(
            "chunk larger than {MAX_CHUNK_BYTES} bytes"
        ))),
        Ok(_) => Ok(body),
        Err(e) => Err(Fetch::Failed(format!("reading the chunk: {e}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpSettings;

    /// A store on loopback: `/s/ok.cacnk` is `hello`, `/s/big.cacnk` one byte over the limit,
    /// `/s/teapot.cacnk` a 418, anything else 404. Returns its URL and the paths it was asked for.
    async fn store() -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}/s/", listener.local_addr().expect("addr"));
        let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let Ok(Some(head)) = read_head(&mut s, &mut buf).await else {
                        return;
                    };
                    let path = parse_head(&head).map(|h| h.path).unwrap_or_default();
                    log.lock().map(|mut l| l.push(path.clone())).ok();
                    let (status, body) = match path.as_str() {
                        "/s/ok.cacnk" => ("200 OK", b"hello".to_vec()),
                        "/s/big.cacnk" => ("200 OK", vec![0; MAX_CHUNK_BYTES as usize + 1]),
                        "/s/teapot.cacnk" => ("418 I'm a teapot", Vec::new()),
                        _ => ("404 Not Found", Vec::new()),
                    };
                    let mut r = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(&body);
                    let _ = s.write_all(&r).await;
                });
            }
        });
        (url, asked)
    }

    fn http() -> Arc<Http> {
        let settings = HttpSettings::with_limits(Duration::from_secs(5));
        Arc::new(Http::new(&settings).expect("http"))
    }

    /// Sends `request` raw and reads until the relay closes; returns the response text.
    async fn ask(relay: &ChunkRelay, request: &[u8]) -> String {
        let mut s = TcpStream::connect(relay.local_addr())
            .await
            .expect("connect");
        s.write_all(request).await.expect("send");
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    }

    #[tokio::test]
    async fn relays_counts_and_refuses() {
        let (url, asked) = store().await;
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let relay = ChunkRelay::start(listen, &url, http(), false)
            .await
            .expect("relay");

        // two requests on one kept-alive connection, the second closing it
        let r = ask(
            &relay,
            b"GET /ok.cacnk HTTP/1.1\r\nHost: x\r\n\r\nGET /ok.cacnk HTTP/1.1\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(r.matches("HTTP/1.1 200 OK\r\n").count(), 2, "{r}");
        assert!(r.ends_with("\r\n\r\nhello"), "{r}");
        assert_eq!(relay.fetched_bytes(), 10);

        let r = ask(&relay, b"GET /nope.cacnk HTTP/1.0\r\n\r\n").await;
        assert!(
            r.starts_with("HTTP/1.1 404 "),
            "the store's 404 is casync's: {r}"
        );
        let r = ask(&relay, b"GET /teapot.cacnk HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 502 "), "{r}");
        let r = ask(&relay, b"GET /big.cacnk HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 502 "), "over MAX_CHUNK_BYTES: {r}");
        assert_eq!(relay.fetched_bytes(), 10, "refused bodies are not counted");

        // never reaches the store
        let r = ask(&relay, b"GET /../etc/passwd HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
        let r = ask(&relay, b"POST /ok.cacnk HTTP/1.0\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
        let r = ask(&relay, b"GARBAGE\r\n\r\n").await;
        assert!(r.starts_with("HTTP/1.1 400 "), "{r}");
        let endless = vec![b'a'; MAX_HEAD_BYTES + 2048];
        let r = ask(&relay, &endless).await;
        assert!(r.is_empty(), "an endless head is cut: {r}");

        let asked = asked.lock().map(|l| l.clone()).unwrap_or_default();
        assert_eq!(
            asked,
            [
                "/s/ok.cacnk",
                "/s/ok.cacnk",
                "/s/nope.cacnk",
                "/s/teapot.cacnk",
                "/s/big.cacnk"
            ],
            "4xx are not retried; the store saw only valid paths"
        );
    }

    #[test]
    fn request_heads() {
        let h = parse_head(b"GET /a1b2/a1b2c3.cacnk HTTP/1.1\r\nHost: x\r\nAccept: */*")
            .expect("valid");
        assert_eq!(h.method, "GET");
        assert_eq!(h.path, "/a1b2/a1b2c3.cacnk");
        assert!(h.keep_alive);
        assert!(
            !parse_head(b"GET /x HTTP/1.1\r\nConnection: Close")
                .expect("valid")
                .keep_alive
        );
        assert!(!parse_head(b"GET /x HTTP/1.0").expect("valid").keep_alive);
        for bad in [
            &b"GET /x"[..],
            b"GET /x HTTP/2",
            b"GET  /x HTTP/1.1",
            b"GET /x HTTP/1.1 extra",
            b"\xff\xfe /x HTTP/1.1",
            b"",
        ] {
            assert_eq!(parse_head(bad), Err(HeadError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn only_paths_below_the_store() {
        assert_eq!(store_path("/a1b2/a1b2c3.cacnk"), Some("a1b2/a1b2c3.cacnk"));
        assert_eq!(
            store_path("/default.castr/x_y-z.cacnk"),
            Some("default.castr/x_y-z.cacnk")
        );
        for bad in [
            "",
            "/",
            "a1b2",
            "/../etc/passwd",
            "/a/../b",
            "/a//b",
            "/a/./b",
            "/a?x=1",
            "/a%2e%2e",
            "/a b",
            "http://evil/x",
            "/a/",
        ] {
            assert_eq!(store_path(bad), None, "{bad:?}");
        }
    }
}
