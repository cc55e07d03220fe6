//! The benchmark: the real `eyas` release binary downloading and verifying an artifact
//! against `curl -s -o FILE URL` followed by `openssl dgst -sha256 FILE`, over loopback, in one run.
//!
//! `cargo bench -p eyas-linux --bench download_vs_curl [-- --mib N --runs N]`
//! (or `EYAS_BENCH_MIB` / `EYAS_BENCH_RUNS`; defaults 256 MiB, 3 runs per side).
//!
//! * Server: this bench binary re-executed as a tiny static HTTP/1.1 server (`sendfile` via
//!   `std::io::copy`), a separate process, so its CPU is counted for neither side.
//! * eyas: `eyas download-verify URL --sha256 HEX --size N --out FILE --wait-stdin` — the release
//!   binary (`cargo build --release`, opt-level "z", LTO, as shipped; or `$EYAS_BIN`) running the
//!   agent's download path: current-thread runtime + blocking pool, ureq, the core's `Verifier`
//!   fed in the same pass as the write, fsync of file and directory, the core's verdict.
//!   Idle VmHWM is read from `/proc/<pid>/status` after start-up (runtime, HTTP agents with the
//!   system CA bundle, blocking-pool thread) and before the download; peak is `ru_maxrss` (= VmHWM
//!   at exit). CPU is user+sys from `wait4(2)` and includes start-up; wall = start-up + download.
//! * curl + openssl: CPU and wall of both summed, `ru_maxrss` of each. curl does not fsync.
//! * The sides alternate, each runs `--runs` times after one warm-up round (page cache warm for
//!   both); medians are printed with the ratios and PASS/MISS against the targets. The
//!   targets are information: the bench never fails on them (only on a wrong digest).
#![allow(unsafe_code)] // wait4(2): the children's rusage
#![allow(clippy::zombie_processes)] // every child is reaped by `reap` (wait4), not `Child::wait`

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

const SERVE_ENV: &str = "EYAS_BENCH_SERVE";

/// Target: eyas CPU ≤ 1.0 × (curl + openssl).
const CPU_RATIO_TARGET: f64 = 1.0;
/// Target: idle VmHWM ≤ 6 MB.
const IDLE_TARGET_KB: u64 = 6000;
/// Target: peak ≤ idle + 2 MB.
const PEAK_GROWTH_TARGET_KB: u64 = 2000;

fn serve(file: PathBuf) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    println!("{}", listener.local_addr().expect("addr").port());
    let _ = std::io::stdout().flush();
    // Exit when the bench goes away (stdin closes).
    std::thread::spawn(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
        std::process::exit(0);
    });
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let file = file.clone();
        std::thread::spawn(move || {
            let Ok(read_half) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(read_half);
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
                "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            // File → socket: std uses sendfile(2).
            let _ = std::io::copy(&mut f, &mut out);
        });
    }
}

#[derive(Debug, Clone, Copy, Default)]
struct Usage {
    user: f64,
    sys: f64,
    wall: f64,
    maxrss_kb: u64,
}

impl Usage {
    fn cpu(&self) -> f64 {
        self.user + self.sys
    }
}

/// Reaps `child` with wait4(2): (exit code, user s, sys s, maxrss kB).
fn reap(child: &Child) -> (i32, Usage) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    let mut status = 0;
    // SAFETY: rusage is plain old data; wait4 fills it for our own child.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to locals; `pid` is our unreaped child.
    let r = unsafe { libc::wait4(pid, &raw mut status, 0, &raw mut ru) };
    assert_eq!(r, pid, "wait4: {}", std::io::Error::last_os_error());
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        -1
    };
    (
        code,
        Usage {
            user: tv(ru.ru_utime),
            sys: tv(ru.ru_stime),
            wall: 0.0,
            maxrss_kb: u64::try_from(ru.ru_maxrss).unwrap_or(0),
        },
    )
}

fn proc_status_kb(pid: u32, key: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct EyasRun {
    usage: Usage,
    idle_hwm_kb: u64,
    idle_rss_kb: u64,
}

fn run_eyas(eyas: &Path, url: &str, digest: &str, size: u64, out: &Path) -> EyasRun {
    let start = Instant::now();
    let mut child = Command::new(eyas)
        .args(["download-verify", url, "--sha256", digest, "--size"])
        .arg(size.to_string())
        .arg("--out")
        .arg(out)
        .arg("--wait-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn eyas");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    stdout.read_line(&mut line).expect("eyas idle line");
    assert_eq!(line.trim(), "idle", "eyas download-verify said {line:?}");
    let startup = start.elapsed();
    // Let it settle (the agent between polls), then read the idle high-water mark.
    std::thread::sleep(Duration::from_millis(300));
    let idle_hwm_kb = proc_status_kb(child.id(), "VmHWM");
    let idle_rss_kb = proc_status_kb(child.id(), "VmRSS");
    let go = Instant::now();
    let mut stdin = child.stdin.take().expect("stdin");
    stdin.write_all(b"go\n").expect("go");
    drop(stdin);
    let mut rest = String::new();
    let _ = stdout.read_to_string(&mut rest);
    let (code, mut usage) = reap(&child);
    usage.wall = (startup + go.elapsed()).as_secs_f64();
    assert_eq!(code, 0, "eyas download-verify failed: {rest}");
    assert!(rest.contains(digest), "eyas reported {rest:?}");
    let _ = std::fs::remove_file(out);
    EyasRun {
        usage,
        idle_hwm_kb,
        idle_rss_kb,
    }
}

fn run_curl_openssl(url: &str, digest: &str, out: &Path) -> (Usage, Usage) {
    let start = Instant::now();
    let curl = Command::new("curl")
        .args(["-s", "-o"])
        .arg(out)
        .arg(url)
        .spawn()
        .expect("spawn curl");
    let (code, mut c) = reap(&curl);
    c.wall = start.elapsed().as_secs_f64();
    assert_eq!(code, 0, "curl failed");
    let start = Instant::now();
    let mut openssl = Command::new("openssl")
        .args(["dgst", "-sha256"])
        .arg(out)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn openssl");
    let mut text = String::new();
    let _ = openssl
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut text);
    let (code, mut o) = reap(&openssl);
    o.wall = start.elapsed().as_secs_f64();
    assert_eq!(code, 0, "openssl failed");
    assert_eq!(
        text.split_whitespace().last(),
        Some(digest),
        "openssl: {text}"
    );
    let _ = std::fs::remove_file(out);
    (c, o)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        0.0
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        f64::midpoint(v[n / 2 - 1], v[n / 2])
    }
}

fn median_usage(v: &[Usage]) -> Usage {
    Usage {
        user: median(v.iter().map(|u| u.user).collect()),
        sys: median(v.iter().map(|u| u.sys).collect()),
        wall: median(v.iter().map(|u| u.wall).collect()),
        maxrss_kb: median(v.iter().map(|u| u.maxrss_kb as f64).collect()) as u64,
    }
}

fn flag(args: &[String], name: &str, env: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
        .or_else(|| std::env::var(env).ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // <target>/release/deps/download_vs_curl-HASH
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors().nth(3).expect("target dir").to_owned()
}

/// The release `eyas` as shipped (opt-level "z", LTO), copied out of the target dir because
/// `cargo bench` itself uplifts a bench-profile `eyas` to the same path.
fn eyas_binary(work: &Path) -> PathBuf {
    if let Some(bin) = std::env::var_os("EYAS_BIN") {
        return PathBuf::from(bin);
    }
    let target = target_dir();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "-p", "eyas-linux", "--bin", "eyas"])
        .env("CARGO_TARGET_DIR", &target)
        .status()
        .expect("cargo build --release");
    assert!(
        status.success(),
        "cargo build --release -p eyas-linux failed"
    );
    let copy = work.join("eyas");
    std::fs::copy(target.join("release").join("eyas"), &copy).expect("copy eyas");
    copy
}

fn write_artifact(path: &Path, mib: u64) -> String {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut x = 0x9e37_79b9u32;
    let mut block: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 7) as u8
        })
        .collect();
    let mut h = Sha256::new();
    for i in 0..mib {
        block[0] = i as u8;
        h.update(&block);
        f.write_all(&block).expect("write");
    }
    f.flush().expect("flush");
    let digest: [u8; 32] = h.finalize().into();
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn verdict(ok: bool) -> &'static str {
    if ok { "PASS" } else { "MISS" }
}

fn main() {
    if let Some(file) = std::env::var_os(SERVE_ENV) {
        serve(PathBuf::from(file));
        return;
    }
    let args: Vec<String> = std::env::args().collect();
    let mib = flag(&args, "--mib", "EYAS_BENCH_MIB", 256).max(1);
    let runs = flag(&args, "--runs", "EYAS_BENCH_RUNS", 3).max(1);
    let load_start = loadavg();
    let work = tempfile::Builder::new()
        .prefix("eyas-bench-")
        .tempdir()
        .expect("tmp");
    let eyas = eyas_binary(work.path());
    let eyas_size = std::fs::metadata(&eyas).map_or(0, |m| m.len());
    let src = work.path().join("artifact.bin");
    let digest = write_artifact(&src, mib);
    let size = mib << 20;

    let mut server = Command::new(std::env::current_exe().expect("exe"))
        .env(SERVE_ENV, &src)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn server");
    let mut port = String::new();
    BufReader::new(server.stdout.take().expect("stdout"))
        .read_line(&mut port)
        .expect("port");
    let url = format!("http://127.0.0.1:{}/artifact.bin", port.trim());

    let eyas_out = work.path().join("eyas.bin");
    let curl_out = work.path().join("curl.bin");
    // Warm-up round (page cache, server threads), not counted.
    let _ = run_eyas(&eyas, &url, &digest, size, &eyas_out);
    let _ = run_curl_openssl(&url, &digest, &curl_out);
    let mut e_runs = Vec::new();
    let mut c_runs = Vec::new();
    let mut o_runs = Vec::new();
    let mut idle_hwm = Vec::new();
    let mut idle_rss = Vec::new();
    for i in 0..runs {
        let mut one_eyas = || {
            let r = run_eyas(&eyas, &url, &digest, size, &eyas_out);
            e_runs.push(r.usage);
            idle_hwm.push(r.idle_hwm_kb as f64);
            idle_rss.push(r.idle_rss_kb as f64);
        };
        let mut one_curl = || {
            let (c, o) = run_curl_openssl(&url, &digest, &curl_out);
            c_runs.push(c);
            o_runs.push(o);
        };
        if i % 2 == 0 {
            one_eyas();
            one_curl();
        } else {
            one_curl();
            one_eyas();
        }
    }
    drop(server.stdin.take());
    let _ = server.kill();
    let _ = server.wait();
    let load_end = loadavg();

    let e = median_usage(&e_runs);
    let c = median_usage(&c_runs);
    let o = median_usage(&o_runs);
    let sums: Vec<Usage> = c_runs
        .iter()
        .zip(&o_runs)
        .map(|(c, o)| Usage {
            user: c.user + o.user,
            sys: c.sys + o.sys,
            wall: c.wall + o.wall,
            maxrss_kb: c.maxrss_kb.max(o.maxrss_kb),
        })
        .collect();
    let s = median_usage(&sums);
    let idle = median(idle_hwm) as u64;
    let idle_rss = median(idle_rss) as u64;
    let peak = e.maxrss_kb;

    println!();
    println!(
        "download_vs_curl: {mib} MiB artifact over 127.0.0.1, median of {runs} runs per side (alternating, after 1 warm-up)"
    );
    println!(
        "eyas: {} ({eyas_size} bytes), `download-verify` = production download path + core Verifier + fsync",
        eyas.display()
    );
    println!("sha256 {digest}; load average at start {load_start}, at end {load_end}");
    println!();
    println!(
        "{:<30} {:>8} {:>8} {:>8} {:>8} {:>10} {:>10}",
        "side", "user s", "sys s", "cpu s", "wall s", "idle kB", "VmHWM kB"
    );
    let row = |name: &str, u: &Usage, idle: Option<u64>| {
        println!(
            "{:<30} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>10} {:>10}",
            name,
            u.user,
            u.sys,
            u.cpu(),
            u.wall,
            idle.map_or("-".to_owned(), |v| v.to_string()),
            u.maxrss_kb
        );
    };
    row("eyas download-verify", &e, Some(idle));
    row("curl -s -o FILE URL", &c, None);
    row("openssl dgst -sha256 FILE", &o, None);
    row("curl + openssl (sum; max kB)", &s, None);
    println!();
    let cpu_ratio = e.cpu() / s.cpu().max(1e-9);
    let wall_ratio = e.wall / s.wall.max(1e-9);
    let growth = peak.saturating_sub(idle);
    println!(
        "cpu_ratio  = eyas_cpu / (curl_cpu + openssl_cpu) = {:.3} / {:.3} = {cpu_ratio:.2}  (target <= {CPU_RATIO_TARGET:.1})  {}",
        e.cpu(),
        s.cpu(),
        verdict(cpu_ratio <= CPU_RATIO_TARGET)
    );
    println!(
        "wall_ratio = eyas_wall / (curl_wall + openssl_wall) = {:.3} / {:.3} = {wall_ratio:.2}  (information; eyas fsyncs, curl does not)",
        e.wall, s.wall
    );
    println!(
        "idle_vmhwm = {idle} kB = {:.2} MB  (VmRSS {idle_rss} kB; target <= 6 MB)  {}",
        idle as f64 / 1000.0,
        verdict(idle <= IDLE_TARGET_KB)
    );
    println!(
        "peak - idle = {peak} - {idle} = {growth} kB = {:.2} MB  (target <= 2 MB)  {}",
        growth as f64 / 1000.0,
        verdict(growth <= PEAK_GROWTH_TARGET_KB)
    );
}
