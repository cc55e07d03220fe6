//! HTTP(S) and download tests against real local servers: the in-test HTTP server and
//! `openssl s_server` with a test CA.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use common::http_server::{Behaviour, Server};
use common::{Guard, free_port, make_pki, require_tool, test_bytes, wait_port};
use eyas_core::verify::ArtifactSpec;
use eyas_linux::download::{DownloadRequest, Downloaded, download, hex, validator_path};
use eyas_linux::http::{Http, HttpError, HttpErrorKind, HttpSettings, Method};
use sha2::{Digest, Sha256};

fn settings() -> HttpSettings {
    HttpSettings {
        api_timeout: Duration::from_secs(10),
        ..HttpSettings::with_limits(Duration::from_secs(5))
    }
}

fn http() -> Http {
    Http::new(&settings()).expect("agents")
}

fn artifact_server(data: &[u8]) -> Server {
    let mut b = Behaviour::default();
    b.routes.insert(
        "/artifact".into(),
        (200, data.to_vec(), Some("\"v1\"".into())),
    );
    Server::start(b)
}

struct Dl<'a> {
    url: String,
    dest: &'a Path,
    expected: Option<u64>,
    resume: bool,
    keep_partial: bool,
    rate_limit: u64,
    low_speed: (Duration, u64),
    spec: Option<ArtifactSpec>,
    cancel: AtomicBool,
}

impl<'a> Dl<'a> {
    fn new(url: String, dest: &'a Path, expected: usize) -> Self {
        Self {
            url,
            dest,
            expected: Some(expected as u64),
            resume: false,
            keep_partial: false,
            rate_limit: 0,
            low_speed: (Duration::from_secs(60), 1),
            spec: None,
            cancel: AtomicBool::new(false),
        }
    }
    fn run(&self, http: &Http) -> Result<Downloaded, HttpError> {
        let req = DownloadRequest {
            url: &self.url,
            dest: self.dest,
            expected_size: self.expected,
            auth: Some("TargetToken secret-token"),
            client_cert: true,
            resume: self.resume,
            keep_partial: self.keep_partial,
            low_speed_time: self.low_speed.0,
            low_speed_rate: self.low_speed.1,
            rate_limit: self.rate_limit,
            sha1: true,
            spec: self.spec,
            cancel: &self.cancel,
        };
        download(http, &req, &mut |_, _| {})
    }
}

fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

#[test]
fn api_get_and_post_send_headers_and_return_any_status() {
    let mut b = Behaviour::default();
    b.routes.insert(
        "/DEFAULT/controller/v1/dev".into(),
        (
            200,
            br#"{"config":{"polling":{"sleep":"00:00:10"}}}"#.to_vec(),
            None,
        ),
    );
    b.routes.insert("/feedback".into(), (200, Vec::new(), None));
    b.routes
        .insert("/busy".into(), (429, b"slow down".to_vec(), None));
    let server = Server::start(b);
    let http = http();
    let r = http
        .api(
            Method::Get,
            &server.url("/DEFAULT/controller/v1/dev"),
            Some("TargetToken abc"),
            None,
        )
        .expect("GET");
    assert_eq!(r.status, 200);
    assert!(r.body.starts_with(b"{\"config\""));
    let r = http
        .api(
            Method::Post,
            &server.url("/feedback"),
            Some("TargetToken abc"),
            Some(b"{\"x\":1}"),
        )
        .expect("POST");
    assert_eq!(r.status, 200);
    let r = http
        .api(Method::Get, &server.url("/busy"), None, None)
        .expect("429 is a response");
    assert_eq!(r.status, 429);
    let r = http
        .api(Method::Get, &server.url("/missing"), None, None)
        .expect("404 is a response");
    assert_eq!(r.status, 404);
    let reqs = server.recorded();
    assert_eq!(
        reqs[0].headers.get("authorization").map(String::as_str),
        Some("TargetToken abc")
    );
    assert!(
        reqs[0]
            .headers
            .get("user-agent")
            .is_some_and(|u| u.starts_with("eyas/"))
    );
    assert_eq!(reqs[1].method, "POST");
    assert_eq!(reqs[1].body, b"{\"x\":1}");
    assert!(
        reqs[1]
            .headers
            .get("content-type")
            .is_some_and(|c| c.starts_with("application/json"))
    );
    assert!(!reqs[2].headers.contains_key("authorization"));
}

#[test]
fn connection_refused_is_a_transient_connect_error() {
    let port = free_port();
    let e = http()
        .api(
            Method::Get,
            &format!("http://127.0.0.1:{port}/x"),
            None,
            None,
        )
        .expect_err("nothing listens");
    assert_eq!(e.kind, HttpErrorKind::Connect, "{e}");
    assert!(e.is_transient());
}

#[test]
fn full_download_hashes_in_the_same_pass() {
    let data = test_bytes(1_000_000, 1);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let d = Dl::new(server.url("/artifact"), &dest, data.len())
        .run(&http())
        .expect("download");
    assert_eq!(d.bytes, data.len() as u64);
    assert_eq!(d.sha256, sha256(&data));
    assert_eq!(hex(&d.sha1), hex(&sha1_of(&data)));
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    let reqs = server.recorded();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("accept").map(String::as_str),
        Some("application/octet-stream")
    );
    assert!(!reqs[0].headers.contains_key("range"));
}

fn sha1_of(data: &[u8]) -> [u8; 20] {
    use sha1::Sha1;
    Sha1::digest(data).into()
}

#[test]
fn cut_mid_download_resumes_with_range_and_if_range() {
    let data = test_bytes(1_000_000, 2);
    let server = artifact_server(&data);
    server.set(|b| b.cuts = vec![300_000]);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.resume = true;
    let d = dl.run(&http()).expect("resumed download");
    assert_eq!(d.resumes, 1);
    assert_eq!(d.sha256, sha256(&data));
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    let reqs = server.recorded();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[1].headers.get("range").map(String::as_str),
        Some("bytes=300000-")
    );
    assert_eq!(
        reqs[1].headers.get("if-range").map(String::as_str),
        Some("\"v1\"")
    );
}

/// The agent's path: the core schedules the retry, so each attempt is its own `download` call
/// continuing the partial file. The validator of the first response is kept beside the file,
/// so the retry asks with `Range` **and** `If-Range`; once complete, nothing is left beside it.
#[test]
fn retry_of_a_cut_download_sends_range_and_if_range_from_the_first_response() {
    let data = test_bytes(600_000, 12);
    let server = artifact_server(&data);
    server.set(|b| b.cuts = vec![250_000]);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    let e = dl.run(&http()).expect_err("cut");
    assert!(e.is_transient(), "{e}");
    assert!(validator_path(&dest).exists());
    dl.keep_partial = true;
    let d = dl.run(&http()).expect("retry");
    assert_eq!(d.sha256, sha256(&data));
    let reqs = server.recorded();
    assert_eq!(reqs.len(), 2);
    let kept = std::fs::metadata(&dest).map(|_| d.reused).expect("file");
    assert!(kept > 0, "the retry continued the partial file");
    assert_eq!(
        reqs[1].headers.get("range").cloned(),
        Some(format!("bytes={kept}-"))
    );
    assert_eq!(
        reqs[1].headers.get("if-range").map(String::as_str),
        Some("\"v1\"")
    );
    assert!(!validator_path(&dest).exists());
}

/// The artifact changed between the cut and the retry: `If-Range` no longer matches, the
/// server sends the whole new body, and the file is the new content from byte 0.
#[test]
fn retry_after_the_artifact_changed_restarts_from_byte_zero() {
    let data = test_bytes(600_000, 13);
    let server = artifact_server(&data);
    server.set(|b| b.cuts = vec![250_000]);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.run(&http()).expect_err("cut");
    let new = test_bytes(600_000, 14);
    server.set(|b| {
        b.routes.insert(
            "/artifact".into(),
            (200, new.clone(), Some("\"v2\"".into())),
        );
    });
    dl.keep_partial = true;
    let d = dl.run(&http()).expect("retry");
    let reqs = server.recorded();
    assert_eq!(
        reqs[1].headers.get("if-range").map(String::as_str),
        Some("\"v1\"")
    );
    assert_eq!(d.sha256, sha256(&new), "the new content, not a splice");
    assert_eq!(std::fs::read(&dest).expect("read"), new);
}

#[test]
fn cut_without_resume_fails_as_transfer_error() {
    let data = test_bytes(500_000, 3);
    let server = artifact_server(&data);
    server.set(|b| b.cuts = vec![100_000]);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let e = Dl::new(server.url("/artifact"), &dest, data.len())
        .run(&http())
        .expect_err("cut");
    assert_eq!(e.kind, HttpErrorKind::Transfer, "{e}");
    assert_eq!(server.recorded().len(), 1);
}

#[test]
fn changed_artifact_during_resume_restarts_from_zero() {
    // If-Range does not match any more: the server answers 200 with the whole (new) body.
    let data = test_bytes(400_000, 4);
    let server = artifact_server(&data);
    server.set(|b| b.cuts = vec![150_000]);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let new = test_bytes(400_000, 5);
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.resume = true;
    // Swap the content and ETag before the resume request arrives.
    let swapped = std::thread::scope(|s| {
        let h = s.spawn(|| dl.run(&http()));
        common::wait_for("first request", Duration::from_secs(5), || {
            !server.recorded().is_empty()
        });
        server.set(|b| {
            b.routes.insert(
                "/artifact".into(),
                (200, new.clone(), Some("\"v2\"".into())),
            );
        });
        h.join().expect("thread")
    })
    .expect("download");
    assert_eq!(
        swapped.sha256,
        sha256(&new),
        "must be the new content, not a splice"
    );
    assert_eq!(std::fs::read(&dest).expect("read"), new);
}

#[test]
fn server_ignoring_range_restarts_cleanly() {
    let data = test_bytes(300_000, 6);
    let server = artifact_server(&data);
    server.set(|b| {
        b.cuts = vec![100_000];
        b.ignore_range = true;
    });
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.resume = true;
    let d = dl.run(&http()).expect("download");
    assert_eq!(d.sha256, sha256(&data));
    assert_eq!(std::fs::read(&dest).expect("read").len(), data.len());
}

#[test]
fn complete_partial_file_gets_416_and_is_accepted() {
    let data = test_bytes(200_000, 7);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    std::fs::write(&dest, &data).expect("prefill");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.keep_partial = true;
    let d = dl.run(&http()).expect("416 at end is success");
    assert_eq!(d.reused, data.len() as u64);
    assert_eq!(d.sha256, sha256(&data));
    let reqs = server.recorded();
    assert_eq!(reqs.len(), 1);
    assert_eq!(
        reqs[0].headers.get("range").map(String::as_str),
        Some("bytes=200000-")
    );
}

#[test]
fn partial_file_from_earlier_run_is_continued_and_fully_hashed() {
    let data = test_bytes(250_000, 8);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    std::fs::write(&dest, &data[..100_000]).expect("prefill");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.keep_partial = true;
    let d = dl.run(&http()).expect("continued");
    assert_eq!(d.reused, 100_000);
    assert_eq!(d.sha256, sha256(&data));
    // Without keep_partial the old bytes are discarded.
    std::fs::write(&dest, b"garbage").expect("prefill");
    let d = Dl::new(server.url("/artifact"), &dest, data.len())
        .run(&http())
        .expect("fresh");
    assert_eq!(d.reused, 0);
    assert_eq!(std::fs::read(&dest).expect("read"), data);
}

/// A power cut can leave a partial file whose length survived but whose data did not (seen on the
/// emulated board: zeros where the bytes should be). The resumed download then does not match
/// the artifact: it is fetched again from byte 0 instead of failing the update.
#[test]
fn damaged_partial_file_is_downloaded_again_from_byte_zero() {
    let data = test_bytes(250_000, 15);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut damaged = data[..100_000].to_vec();
    damaged[40_960..81_920].fill(0);
    std::fs::write(&dest, &damaged).expect("prefill");
    std::fs::write(validator_path(&dest), "\"v1\"").expect("validator");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.keep_partial = true;
    dl.spec = Some(ArtifactSpec {
        size: data.len() as u64,
        sha256: Some(sha256(&data)),
        sha1: None,
    });
    let d = dl.run(&http()).expect("downloaded");
    assert_eq!(d.reused, 0, "the damaged bytes were not kept");
    assert_eq!(std::fs::read(&dest).expect("read"), data);
    let verdict = d.verifier.map(|v| v.finish("", None).is_ok());
    assert_eq!(verdict, Some(true));
    let reqs = server.recorded();
    assert_eq!(reqs.len(), 2, "one resume, then the whole artifact");
    assert_eq!(
        reqs[0].headers.get("range").cloned(),
        Some("bytes=100000-".to_owned())
    );
    assert_eq!(reqs[1].headers.get("range"), None);
    assert!(!validator_path(&dest).exists());

    // an intact partial file is continued as before
    std::fs::write(&dest, &data[..100_000]).expect("prefill");
    let d = dl.run(&http()).expect("continued");
    assert_eq!(d.reused, 100_000);
    assert_eq!(server.recorded().len(), 3);
}

#[test]
fn too_little_free_space_stops_before_the_first_request() {
    let data = test_bytes(1000, 9);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, 0);
    dl.expected = Some(u64::MAX / 4);
    let e = dl.run(&http()).expect_err("no space");
    assert_eq!(e.kind, HttpErrorKind::NoSpace, "{e}");
    assert!(e.detail.contains("free"), "{e}");
    assert!(server.recorded().is_empty());
}

#[test]
fn http_errors_are_not_resumed() {
    let server = Server::start(Behaviour::default());
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/nope"), &dest, 10);
    dl.resume = true;
    let e = dl.run(&http()).expect_err("404");
    assert_eq!(e.kind, HttpErrorKind::Status(404));
    assert_eq!(server.recorded().len(), 1);
}

#[test]
fn size_mismatch_with_hawkbit_is_refused() {
    let data = test_bytes(1000, 10);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let e = Dl::new(server.url("/artifact"), &dest, 999)
        .run(&http())
        .expect_err("mismatch");
    assert!(e.detail.contains("hawkBit said 999"), "{e}");
}

#[test]
fn slow_transfer_is_aborted_by_low_speed_limit() {
    let data = test_bytes(100_000, 11);
    let server = artifact_server(&data);
    server.set(|b| b.throttle = Some((200, Duration::from_millis(100)))); // ~2 kB/s
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.low_speed = (Duration::from_secs(1), 50_000);
    let e = dl.run(&http()).expect_err("too slow");
    assert_eq!(e.kind, HttpErrorKind::LowSpeed, "{e}");
    // Aborted in an early low-speed window, not at the end: at ~2 kB/s the server cannot have
    // sent half of the artifact yet (the whole transfer would take ~50 s).
    let got = std::fs::metadata(&dest).map_or(0, |m| m.len());
    assert!(
        got < data.len() as u64 / 2,
        "{got} of {} bytes arrived before the abort",
        data.len()
    );
}

#[test]
fn stalled_transfer_hits_the_read_timeout() {
    let data = test_bytes(100_000, 12);
    let server = artifact_server(&data);
    server.set(|b| b.throttle = Some((50_000, Duration::from_secs(4))));
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut s = settings();
    s.download_read_timeout = Duration::from_millis(800);
    let http = Http::new(&s).expect("agents");
    let e = Dl::new(server.url("/artifact"), &dest, data.len())
        .run(&http)
        .expect_err("stall");
    assert!(e.is_transient(), "{e}");
    // The read timeout ended it during the stall: it is a timeout, and nothing of the second
    // 50 kB chunk (sent only after the 4 s pause) arrived.
    assert_eq!(e.kind, HttpErrorKind::Timeout, "{e}");
    let got = std::fs::metadata(&dest).map_or(0, |m| m.len());
    assert!(
        got <= 50_000,
        "{got} bytes arrived, more than the first chunk"
    );
}

#[test]
fn rate_cap_slows_the_download() {
    let data = test_bytes(300_000, 13);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.rate_limit = 250_000;
    // Order, not a stopwatch: once the capped download is under way, an uncapped download of the
    // same artifact from the same server starts and completes while the capped one still runs.
    let d = std::thread::scope(|scope| {
        let capped = scope.spawn(|| dl.run(&http()));
        common::wait_for(
            "the capped download to start",
            Duration::from_secs(10),
            || std::fs::metadata(&dest).is_ok_and(|m| m.len() > 0),
        );
        let free = dir.path().join("uncapped.raucb");
        let u = Dl::new(server.url("/artifact"), &free, data.len())
            .run(&http())
            .expect("uncapped download");
        assert_eq!(u.sha256, sha256(&data));
        assert!(
            !capped.is_finished(),
            "the capped download finished no later than an uncapped one started after it"
        );
        capped.join().expect("capped thread")
    })
    .expect("download");
    assert_eq!(d.sha256, sha256(&data));
}

#[test]
fn cancel_stops_the_download() {
    let data = test_bytes(10_000, 14);
    let server = artifact_server(&data);
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let dl = Dl::new(server.url("/artifact"), &dest, data.len());
    dl.cancel.store(true, std::sync::atomic::Ordering::Relaxed);
    let e = dl.run(&http()).expect_err("cancelled");
    assert_eq!(e.kind, HttpErrorKind::Cancelled);
}

struct SServer {
    _guard: Guard,
    port: u16,
}

fn s_server(dir: &Path, pki: &common::Pki, extra: &[&str]) -> SServer {
    require_tool("openssl");
    let port = free_port();
    let child = Command::new("openssl")
        .args([
            "s_server",
            "-quiet",
            "-WWW",
            "-accept",
            &port.to_string(),
            "-cert",
        ])
        .arg(&pki.server_cert)
        .arg("-key")
        .arg(&pki.server_key)
        .args(extra)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start openssl s_server");
    let guard = Guard(child);
    wait_port(port, Duration::from_secs(10));
    SServer {
        _guard: guard,
        port,
    }
}

#[test]
fn https_get_with_private_ca() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    std::fs::write(dir.path().join("hello.txt"), "hello over tls\n").expect("write");
    let srv = s_server(dir.path(), &pki, &[]);
    let url = format!("https://localhost:{}/hello.txt", srv.port);

    let mut s = settings();
    s.ca_file = Some(pki.ca.clone());
    let r = Http::new(&s)
        .expect("agents")
        .api(Method::Get, &url, None, None)
        .expect("https GET");
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"hello over tls\n");

    // The system roots do not know the test CA.
    let e = http()
        .api(Method::Get, &url, None, None)
        .expect_err("unknown CA");
    assert_eq!(e.kind, HttpErrorKind::Tls, "{e}");

    // ssl_verify=false accepts it (rauc-hawkbit-updater semantics).
    let mut s = settings();
    s.ssl_verify = false;
    let r = Http::new(&s)
        .expect("agents")
        .api(Method::Get, &url, None, None)
        .expect("no verify");
    assert_eq!(r.status, 200);
}

#[test]
fn https_mutual_tls_client_certificate() {
    let dir = tempfile::tempdir().expect("tmp");
    let pki = make_pki(dir.path());
    std::fs::write(dir.path().join("bundle.raucb"), test_bytes(50_000, 15)).expect("write");
    let ca = pki.ca.to_string_lossy().into_owned();
    let srv = s_server(dir.path(), &pki, &["-Verify", "1", "-CAfile", &ca]);
    let url = format!("https://127.0.0.1:{}/bundle.raucb", srv.port);

    let mut s = settings();
    s.ca_file = Some(pki.ca.clone());
    s.client_cert = Some((pki.client_cert.clone(), pki.client_key.clone()));
    let http = Http::new(&s).expect("agents");
    let out = tempfile::tempdir().expect("tmp");
    let dest = out.path().join("b.raucb");
    let mut dl = Dl::new(url.clone(), &dest, 50_000);
    dl.expected = None;
    let d = dl.run(&http).expect("mTLS download");
    assert_eq!(d.sha256, sha256(&test_bytes(50_000, 15)));

    // The same agent without the certificate (external host policy) is refused.
    let req = DownloadRequest {
        url: &url,
        dest: &dest,
        expected_size: None,
        auth: None,
        client_cert: false,
        resume: false,
        keep_partial: false,
        low_speed_time: Duration::ZERO,
        low_speed_rate: 0,
        rate_limit: 0,
        sha1: false,
        spec: None,
        cancel: &AtomicBool::new(false),
    };
    assert!(
        download(&http, &req, &mut |_, _| {}).is_err(),
        "server requires a client certificate"
    );
}

#[test]
fn configured_proxy_carries_the_download() {
    let data = test_bytes(200_000, 16);
    let server = artifact_server(&data);
    let proxy = common::http_server::ConnectProxy::start();
    let mut s = settings();
    s.proxy = Some(format!("http://127.0.0.1:{}", proxy.port));
    let http = Http::new(&s).expect("agents");
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let d = Dl::new(server.url("/artifact"), &dest, data.len())
        .run(&http)
        .expect("download via proxy");
    assert_eq!(d.sha256, sha256(&data));
    let targets = proxy.targets.lock().expect("lock").clone();
    assert_eq!(
        targets,
        [format!("127.0.0.1:{}", server.port)],
        "the transfer went through the proxy"
    );
}

/// What users make first: `openssl req -x509` (OpenSSL 3 marks it `CA:TRUE`), used both as the
/// server's certificate and as `ca_file`.
fn self_signed(dir: &Path, name: &str, extra: &[&str]) -> common::Pki {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-addext", "subjectAltName=DNS:localhost"])
        .args(extra)
        .output()
        .expect("openssl req");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut pki = make_pki(dir);
    pki.ca = cert.clone();
    pki.server_cert = cert;
    pki.server_key = key;
    pki
}

/// A self-signed certificate from `openssl req -x509` (CA:TRUE by default) is refused by rustls
/// with an error that says exactly what to generate instead; that certificate then works as
/// the server's own and as `ca_file`.
#[test]
fn self_signed_server_certificate_as_ca_file() {
    let dir = tempfile::tempdir().expect("tmp");
    std::fs::write(dir.path().join("hello.txt"), "hello\n").expect("write");
    let get = |pki: &common::Pki| {
        let srv = s_server(dir.path(), pki, &[]);
        let mut s = settings();
        s.ca_file = Some(pki.ca.clone());
        Http::new(&s).expect("agents").api(
            Method::Get,
            &format!("https://localhost:{}/hello.txt", srv.port),
            None,
            None,
        )
    };
    let plain = self_signed(dir.path(), "plain", &[]);
    let e = get(&plain).expect_err("a CA as the server's own certificate");
    assert_eq!(e.kind, HttpErrorKind::Tls);
    assert!(
        e.detail.contains("basicConstraints=critical,CA:FALSE") && e.detail.contains("ca_file"),
        "{e}"
    );
    let leaf = self_signed(
        dir.path(),
        "leaf",
        &["-addext", "basicConstraints=critical,CA:FALSE"],
    );
    let r = get(&leaf).expect("the certificate the hint describes works");
    assert_eq!(r.status, 200);
}

/// The token follows a redirect to the same host and never one to another host.
#[test]
fn authorization_follows_same_host_redirects_only() {
    let data = test_bytes(1_000, 31);
    let mut b = Behaviour::default();
    b.routes
        .insert("/artifact".into(), (200, data.clone(), None));
    // 127.0.0.2 is loopback too, but another host
    let target = Server::start_at("127.0.0.2", b);
    let front = artifact_server(&data);
    // same host and port, another path
    front.set(|b| {
        b.redirects.insert("/moved".into(), front.url("/artifact"));
        b.redirects.insert("/cdn".into(), target.url("/artifact"));
    });
    let http = http();
    for path in ["/moved", "/cdn"] {
        let r = http
            .api(
                Method::Get,
                &front.url(path),
                Some("TargetToken secret"),
                None,
            )
            .expect("redirected GET");
        assert_eq!(r.status, 200, "{path}");
    }
    let same = front.recorded();
    let followed = same
        .iter()
        .find(|r| r.path == "/artifact")
        .expect("the same-host redirect was followed");
    assert_eq!(
        followed.headers.get("authorization").map(String::as_str),
        Some("TargetToken secret")
    );
    let other = target.recorded();
    assert_eq!(other.len(), 1, "{other:?}");
    assert_eq!(
        other[0].headers.get("authorization"),
        None,
        "never to another host"
    );
}

/// A server that drips its response headers (a byte every 300 ms, so no single read waits for
/// long): the download's header deadline (`timeout`, 2 s here) ends it as a timeout, instead of
/// the per-read limit never firing.
#[test]
fn dripped_response_headers_hit_the_header_deadline() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let drip = std::thread::spawn(move || {
        let Ok((mut s, _)) = listener.accept() else {
            return 0;
        };
        let mut sent = 0;
        // bounded: at most a minute of dripping, and it ends when eyas hangs up
        for b in b"HTTP/1.1 200 OK\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
            if s.write_all(&[*b]).and_then(|()| s.flush()).is_err() {
                break;
            }
            sent += 1;
            std::thread::sleep(Duration::from_millis(300));
        }
        sent
    });
    let dir = tempfile::tempdir().expect("tmp");
    let dest = dir.path().join("bundle.raucb");
    let mut s = settings();
    s.download_read_timeout = Duration::from_secs(5);
    s.download_header_timeout = Duration::from_secs(2);
    let http = Http::new(&s).expect("agents");
    let dl = Dl::new(format!("http://127.0.0.1:{port}/artifact"), &dest, 100);
    let e = dl.run(&http).expect_err("the headers never end");
    assert_eq!(e.kind, HttpErrorKind::Timeout, "{e}");
    let sent = drip.join().expect("drip thread");
    assert!(
        sent < 60,
        "the connection was dropped early ({sent} bytes dripped)"
    );
}
