//! Download benchmark: eyas (ureq + SHA-256 in the same pass + fsync) against
//! `curl -o FILE && openssl dgst -sha256 FILE` (what rauc-hawkbit-updater does: download, then
//! hash) and `curl | tee FILE | openssl dgst -sha256` (a one-pass shell pipeline), over loopback.
//!
//! `cargo run --release -p eyas-linux --example download_bench -- [MiB] [runs]` (default 256 3).
//! Prints one line per tool with the best wall time and MB/s, and checks all digests agree.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::Command;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use eyas_core::verify::ArtifactSpec;
use eyas_linux::download::{DownloadRequest, download, hex};
use eyas_linux::http::{Http, HttpSettings};

fn serve(listener: TcpListener, file: std::path::PathBuf) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let file = file.clone();
        std::thread::spawn(move || {
            let mut reader = BufReader::new(match stream.try_clone() {
                Ok(s) => s,
                Err(_) => return,
            });
            let mut line = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                line.clear();
            }
            let Ok(mut f) = std::fs::File::open(&file) else {
                return;
            };
            let len = f.metadata().map_or(0, |m| m.len());
            let mut out = stream;
            let _ = write!(
                out,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            let _ = std::io::copy(&mut f, &mut out);
        });
    }
}

fn best(runs: u32, mut f: impl FnMut() -> String) -> (Duration, String) {
    let mut best = Duration::MAX;
    let mut digest = String::new();
    for _ in 0..runs {
        let start = Instant::now();
        digest = f();
        best = best.min(start.elapsed());
    }
    (best, digest)
}

fn sh(script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .expect("sh");
    assert!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .last()
        .unwrap_or_default()
        .to_owned()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mib: u64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(256);
    let runs: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(3);
    let dir = tempfile::tempdir().expect("tmp");
    let src = dir.path().join("artifact.bin");
    {
        let mut f = std::fs::File::create(&src).expect("create");
        let mut x = 0x9e37_79b9u32;
        let block: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x >> 7) as u8
            })
            .collect();
        for i in 0..mib {
            let mut b = block.clone();
            b[0] = i as u8;
            f.write_all(&b).expect("write");
        }
    }
    let size = mib << 20;
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!(
        "http://{}/artifact.bin",
        listener.local_addr().expect("addr")
    );
    let served = src.clone();
    std::thread::spawn(move || serve(listener, served));

    let http = Http::new(&HttpSettings {
        connect_timeout: Duration::from_secs(5),
        api_timeout: Duration::from_secs(60),
        download_read_timeout: Duration::from_secs(30),
        ssl_verify: true,
        ca_file: None,
        client_cert: None,
        proxy: None,
    })
    .expect("agent");
    let dest = dir.path().join("eyas.bin");
    let cancel = AtomicBool::new(false);
    let d = dir.path().display();
    let (t_two, d_two) = best(runs, || {
        sh(&format!(
            "curl -sS -o {d}/curl.bin {url} && sync {d}/curl.bin && openssl dgst -sha256 {d}/curl.bin"
        ))
    });
    let (t_pipe, d_pipe) = best(runs, || {
        sh(&format!(
            "curl -sS {url} | tee {d}/pipe.bin | openssl dgst -sha256 && sync {d}/pipe.bin"
        ))
    });
    // eyas as the agent runs it: the core's Verifier fed during the transfer, verdict at the end.
    let mut want = [0u8; 32];
    for (n, byte) in want.iter_mut().enumerate() {
        *byte = u8::from_str_radix(d_two.get(2 * n..2 * n + 2).unwrap_or("00"), 16).unwrap_or(0);
    }
    let spec = ArtifactSpec {
        size,
        sha256: Some(want),
        sha1: None,
    };
    let (t_eyas, d_eyas) = best(runs, || {
        let req = DownloadRequest {
            url: &url,
            dest: &dest,
            expected_size: Some(size),
            auth: None,
            client_cert: false,
            resume: false,
            keep_partial: false,
            low_speed_time: Duration::ZERO,
            low_speed_rate: 0,
            rate_limit: 0,
            sha1: false,
            spec: Some(spec),
            cancel: &cancel,
        };
        let done = download(&http, &req, &mut |_, _| {}).expect("download");
        let verified = done
            .verifier
            .expect("verifier")
            .finish("", None)
            .expect("verified by the core");
        hex(&verified.sha256)
    });
    assert!(
        d_eyas == d_two && d_two == d_pipe,
        "digests differ: {d_eyas} {d_two} {d_pipe}"
    );
    let mbps = |t: Duration| size as f64 / 1e6 / t.as_secs_f64();
    println!("artifact: {mib} MiB over loopback, best of {runs}; SHA-256 {d_eyas}");
    println!(
        "{:<48} {:>8.2} s {:>8.1} MB/s",
        "eyas (ureq, core Verifier in the same pass, fsync)",
        t_eyas.as_secs_f64(),
        mbps(t_eyas)
    );
    println!(
        "{:<48} {:>8.2} s {:>8.1} MB/s",
        "curl -o FILE, sync, openssl dgst -sha256 FILE",
        t_two.as_secs_f64(),
        mbps(t_two)
    );
    println!(
        "{:<48} {:>8.2} s {:>8.1} MB/s",
        "curl | tee FILE | openssl dgst -sha256, sync",
        t_pipe.as_secs_f64(),
        mbps(t_pipe)
    );
}
