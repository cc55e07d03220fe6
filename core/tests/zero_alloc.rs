//! Proof that a whole update flow (poll, deployment, two downloads with a cut and a resume,
//! verify, install, reboot, record restore, success report, configData) allocates nothing.
//!
//! A counting global allocator counts allocations made by this test's thread while the flag is
//! set; the flow itself uses only stack buffers.
#![allow(unsafe_code)] // the counting allocator; the library stays `forbid(unsafe_code)`

use eyas_core::client::*;
use eyas_core::record::RECORD_MAX_LEN;
use eyas_core::time::{Duration, Instant};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const BASE_DEPLOY: &[u8] = br#"{"config":{"polling":{"sleep":"00:01:00"}},"_links":{"deploymentBase":{"href":"http:\/\/hb\/DEFAULT\/controller\/v1\/dev\/deploymentBase\/42?c=1"},"configData":{"href":"http://hb/DEFAULT/controller/v1/dev/configData"}}}"#;
const BASE_IDLE: &[u8] = br#"{"config":{"polling":{"sleep":"PT1M"}}}"#;
const DEPLOYMENT: &[u8] = br#"{"id":"42","deployment":{"download":"forced","update":"forced","chunks":[
 {"part":"bApp","version":"3","name":"app","artifacts":[{"filename":"app.raucb","size":1000,"hashes":{"sha256":"538ddde648237888d9483ee3eddd3b1e7c49e595c0e39ef754348741abe5c214"},"_links":{"download":{"href":"http://hb/a"}}}]},
 {"part":"os","version":"1.2.0","name":"rootfs","artifacts":[{"filename":"rootfs.raucb","size":5000,"hashes":{"sha1":"68db2d92eaa9d13d99261a344106f3bc510346ac"},"_links":{"download-http":{"href":"http://hb/b"}}}]}]}}"#;

struct Shell {
    record: [u8; RECORD_MAX_LEN],
    health_asked: bool,
    mark_asked: bool,
    record_len: usize,
    downloading: Option<(u64, u64)>, // (received, size)
    verifying: bool,
    installing: Option<bool>, // Some(reboots)
    reboot: bool,
    cut_done: bool,
    finals: u32,
    installs: u32,
    closed_success: bool,
}

/// The client lives in a `static` built at compile time, as on the firmware (no 7 KiB value
/// ever passes through the stack).
static CLIENT: std::sync::Mutex<Client> = std::sync::Mutex::new(Client::unconfigured());

fn run_flow() -> Shell {
    let mut guard = CLIENT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    run_flow_with(&mut guard)
}

fn run_flow_with(client: &mut Client) -> Shell {
    let mut cfg = ClientConfig::new("http://hb", "DEFAULT", "dev");
    cfg.authorization = Some("TargetToken x");
    let mut sh = Shell {
        record: [0; RECORD_MAX_LEN],
        health_asked: false,
        mark_asked: false,
        record_len: 0,
        downloading: None,
        verifying: false,
        installing: None,
        reboot: false,
        cut_done: false,
        finals: 0,
        installs: 0,
        closed_success: false,
    };
    let mut buf = [0u8; REQUEST_BUF_LEN];
    let mut now = Instant::from_secs(10);
    client.configure(&cfg).unwrap();
    client.handle_boot(
        now,
        BootReport {
            record: None,
            booted: Some("system0"),
            rejected: None,
            running: Some(("fw", "1.1.0")),
        },
    );
    client.set_attributes(&[("hw_revision", "2")]).unwrap();
    let mut booted_b = false;
    for _ in 0..500 {
        // 1. actions
        while let Some(a) = client.poll_action() {
            match a {
                Action::PersistRecord(b) => {
                    sh.record[..b.len()].copy_from_slice(b);
                    sh.record_len = b.len();
                }
                Action::ClearRecord => sh.record_len = 0,
                Action::Download(r) => sh.downloading = Some((r.range_start.unwrap_or(0), r.size)),
                Action::Verify(_) => sh.verifying = true,
                Action::Install(r) => {
                    sh.installs += 1;
                    sh.installing = Some(r.kind == InstallKind::RaucReboot);
                }
                Action::Reboot { .. } => sh.reboot = true,
                Action::CheckHealth => sh.health_asked = true,
                Action::MarkSlot { .. } => sh.mark_asked = true,
                _ => {}
            }
        }
        if sh.reboot {
            sh.reboot = false;
            booted_b = true;
            client.configure(&cfg).unwrap(); // in place, as the firmware does
            let rec = sh.record;
            let len = sh.record_len;
            client.handle_boot(
                now,
                BootReport {
                    record: (len > 0).then_some(&rec[..len]),
                    booted: Some("system1"),
                    rejected: None,
                    running: Some(("fw", "1.2.0")),
                },
            );
            client.set_attributes(&[("hw_revision", "2")]).unwrap();
            continue;
        }
        if std::mem::take(&mut sh.health_asked) {
            client
                .handle_event(now, Event::HealthChecked { passed: true })
                .unwrap();
            continue;
        }
        if std::mem::take(&mut sh.mark_asked) {
            client
                .handle_event(now, Event::SlotMarked { ok: true })
                .unwrap();
            continue;
        }
        // 2. one request
        let req = client.poll_request(now, &mut buf).unwrap();
        if let Some(r) = req {
            let (status, body): (u16, &[u8]) = match r.kind {
                RequestKind::Poll => (
                    200,
                    if booted_b || sh.closed_success {
                        BASE_IDLE
                    } else {
                        BASE_DEPLOY
                    },
                ),
                RequestKind::DeploymentBase => (200, DEPLOYMENT),
                RequestKind::Feedback => {
                    if r.body.windows(8).any(|w| w == b"\"closed\"") {
                        sh.finals += 1;
                        sh.closed_success = r.body.windows(9).any(|w| w == b"\"success\"");
                    }
                    (200, b"")
                }
                _ => (200, b""),
            };
            client
                .handle_response(
                    now,
                    Response {
                        status,
                        etag: None,
                        body,
                    },
                )
                .unwrap();
            continue;
        }
        // 3. shell work
        if let Some((got, size)) = sh.downloading {
            sh.downloading = None;
            if !sh.cut_done && size > 2000 {
                sh.cut_done = true;
                client
                    .handle_event(
                        now,
                        Event::DownloadInterrupted {
                            received: got + 2000,
                            reason: "connection cut",
                        },
                    )
                    .unwrap();
            } else {
                client
                    .handle_event(now, Event::DownloadProgress { received: size / 2 })
                    .unwrap();
                client.handle_event(now, Event::DownloadComplete).unwrap();
            }
            continue;
        }
        if sh.verifying {
            sh.verifying = false;
            client.handle_event(now, Event::Verified).unwrap();
            continue;
        }
        if let Some(reboots) = sh.installing.take() {
            client
                .handle_event(now, Event::InstallProgress { percent: 60 })
                .unwrap();
            client
                .handle_event(
                    now,
                    Event::Installed {
                        slot: reboots.then_some("system1"),
                    },
                )
                .unwrap();
            continue;
        }
        if sh.closed_success && client.current_action().is_none() {
            break;
        }
        // 4. time
        now = client
            .poll_timeout()
            .unwrap_or(now + Duration::from_secs(1))
            .max(now);
        client.handle_timeout(now);
    }
    sh
}

#[test]
fn whole_update_flow_allocates_nothing() {
    // warm-up run (also checks that the flow really completes)
    let sh = run_flow();
    assert!(sh.closed_success, "flow did not finish");
    assert_eq!(sh.installs, 2);
    assert_eq!(sh.finals, 1);

    ALLOCS.store(0, Ordering::SeqCst);
    COUNTING.with(|c| c.set(true));
    let sh = run_flow();
    COUNTING.with(|c| c.set(false));
    assert!(sh.closed_success);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 0, "the client allocated");

    // the counter works: an allocation on this thread is seen
    COUNTING.with(|c| c.set(true));
    let v = std::hint::black_box(vec![1u8; 16]);
    COUNTING.with(|c| c.set(false));
    drop(v);
    assert_eq!(ALLOCS.load(Ordering::SeqCst), 1);
}

#[test]
fn client_size_is_modest() {
    let size = core::mem::size_of::<Client>();
    println!("size_of::<Client>() = {size}");
    // regression guard: the firmware keeps one Client in a static (see ARCHITECTURE.md)
    // (a Linux device's capacities make it about three times that; the MCU build is the guard)
    let limit = if cfg!(feature = "large-capacities") {
        24 * 1024
    } else {
        7 * 1024 + 128
    };
    assert!(size <= limit, "Client is {size} bytes");
}

/// Upper bound of the stack a whole update flow needs (client + this test's shell loop), found
/// by running the flow in child processes whose worker thread gets a given stack size, next to
/// a baseline thread that only holds one `Client`. Debug builds need far more stack than the
/// firmware's opt-level "z" build; the numbers are printed
/// (`cargo test --release --test zero_alloc -- --nocapture stack` for the optimized figures).
#[test]
fn stack_needed_by_a_whole_flow() {
    if let Ok(size) = std::env::var("EYAS_STACK_PROBE") {
        let size: usize = size.parse().unwrap();
        let baseline = std::env::var("EYAS_STACK_BASELINE").is_ok();
        let ok = std::thread::Builder::new()
            .stack_size(size)
            .spawn(move || {
                if baseline {
                    let c = std::hint::black_box(Client::new(&ClientConfig::new("h", "t", "c")));
                    c.is_ok()
                } else {
                    run_flow().closed_success
                }
            })
            .unwrap()
            .join()
            .unwrap();
        assert!(ok);
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let probe = |kib: usize, baseline: bool| {
        let mut cmd = std::process::Command::new(&exe);
        cmd.args([
            "--exact",
            "stack_needed_by_a_whole_flow",
            "--test-threads=1",
        ])
        .env("EYAS_STACK_PROBE", (kib * 1024).to_string());
        if baseline {
            cmd.env("EYAS_STACK_BASELINE", "1");
        }
        cmd.output().map(|o| o.status.success()).unwrap_or(false)
    };
    let smallest = |baseline: bool| {
        let (mut lo, mut hi) = (16usize, 512usize); // glibc's minimum thread stack is 16 KiB
        assert!(probe(hi, baseline), "does not even fit {hi} KiB of stack");
        if probe(lo, baseline) {
            return lo;
        }
        while hi - lo > 1 {
            let mid = (lo + hi) / 2;
            if probe(mid, baseline) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        hi
    };
    let base = smallest(true);
    let flow = smallest(false);
    println!(
        "whole flow fits in {flow} KiB of thread stack; a thread holding one Client in {base} KiB ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );
    assert!(flow <= 256);
}
