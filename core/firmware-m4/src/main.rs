//! eyas-core on a Cortex-M4 (QEMU mps2-an386): one deployment end to end, then the measurements.
//!
//! 1. Parse a hawkBit `deploymentBase` (DDI) and pick the bundle and its `<bundle>.manifest`.
//! 2. Stream the manifest into a caller-owned buffer, check its DDI digest and Ed25519 signature.
//! 3. Stream the 10 000-byte bundle in odd-sized chunks through the size/SHA-256/manifest checks;
//!    also a tampered bundle and a tampered manifest, which must fail with their codes.
//! 4. A/B accounting (U-Boot semantics): booted slot from the kernel command line, mark the other
//!    slot bad, install, mark it active, the bootloader's trial boots and the fallback.
//!
//! Output goes through semihosting; the exit status is failure if any check fails. The stack is
//! painted before the work and scanned after it to report the peak.
#![no_std]
#![no_main]

#[cfg(feature = "client")]
mod deploy;
mod out;

use out::{Hex2, say};

use core::hint::black_box;
use core::mem::size_of;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use eyas_core::ddi::{self, Artifact};
use eyas_core::slots::{Backend, BootState, Booted, FromVarsError, Transition};
use eyas_core::verify::{
    self, ArtifactSpec, MAX_MANIFEST_LEN, Manifest, ManifestCollector, ManifestError, Policy,
    UpdateError, Verifier, VerifyError,
};

/// The test bundle (`core/tests/vectors/manifest/bundle.bin`) is this line repeated, cut at 10 000
/// bytes; it is generated on the fly so it costs no flash.
const LINE: &[u8] = b"eyas test bundle\n";
const BUNDLE_LEN: usize = 10_000;
/// Signed by `make-vector.sh` with `openssl pkeyutl -sign -rawin`.
const MANIFEST: &[u8] = include_bytes!("../../tests/vectors/manifest/bundle.bin.manifest");
const PUBLIC_KEY_DER: &[u8] = include_bytes!("../../tests/vectors/manifest/pub.der");
const COMPATIBLE: &str = "eyas-test";

/// The deploymentBase document (compact JSON, as hawkBit sends it).
const DEPLOYMENT: &[u8] = br#"{"id":"42","deployment":{"download":"forced","update":"forced","chunks":[{"part":"os","version":"2026.11.0","name":"rootfs","artifacts":[{"filename":"bundle.bin","hashes":{"sha1":"74c152b3b6289ccf0e4911239177a81750bacbbf","sha256":"809ae44ad0b291a9d43834773e69be5fe060e576492eed25ca27d682dd0269bc"},"size":10000,"_links":{"download-http":{"href":"http://hb.example/DEFAULT/controller/v1/dev-01/softwaremodules/7/artifacts/bundle.bin"}}},{"filename":"bundle.bin.manifest","hashes":{"sha1":"d1d6c4cb42691acc6b47d5d490050be857536d45","sha256":"390eb51cdaf84c04ae736dc23950652eb29eb12afbc8c4c3e10abc46b4774070"},"size":119,"_links":{"download-http":{"href":"http://hb.example/DEFAULT/controller/v1/dev-01/softwaremodules/7/artifacts/bundle.bin.manifest"}}}]}]}}"#;

/// The external interrupt vectors: the MPS2 AN386 (CMSDK) has 32, and this firmware enables none,
/// so all go to cortex-m-rt's `DefaultHandler`. (Without its `device` feature cortex-m-rt would
/// put a generic 240-entry table here: 832 B more flash for vectors that do not exist.)
#[unsafe(link_section = ".vector_table.interrupts")]
#[unsafe(no_mangle)]
pub static __INTERRUPTS: [unsafe extern "C" fn(); 32] = [DefaultHandler; 32];

unsafe extern "C" {
    /// cortex-m-rt's default exception/interrupt handler.
    fn DefaultHandler();
}

const PAINT: u32 = 0xA5A5_A5A5;

unsafe extern "C" {
    /// cortex-m-rt: first free RAM address after `.data`/`.bss`/`.uninit` (the stack's lowest limit).
    static mut __sheap: u32;
    /// cortex-m-rt: initial stack pointer (top of RAM).
    static _stack_start: u32;
}

/// Fills the free stack below the current stack pointer with [`PAINT`].
#[inline(never)]
fn paint_stack() {
    let bottom = addr_of_mut!(__sheap) as usize;
    let sp = cortex_m::register::msp::read() as usize;
    let mut p = bottom;
    // Keep clear of this function's own frame.
    while p + 64 < sp {
        // SAFETY: [__sheap, sp - 64) is RAM nothing else uses (no heap in this firmware).
        unsafe { core::ptr::write_volatile(p as *mut u32, PAINT) };
        p += 4;
    }
}

/// Bytes between the top of the stack and the lowest word that is no longer painted.
#[inline(never)]
fn peak_stack() -> usize {
    let bottom = addr_of_mut!(__sheap) as usize;
    let top = addr_of!(_stack_start) as usize;
    let mut p = bottom;
    // SAFETY: reads of RAM inside [__sheap, _stack_start).
    while p < top && unsafe { core::ptr::read_volatile(p as *const u32) } == PAINT {
        p += 4;
    }
    top - p
}

struct Checks {
    failed: u32,
}

/// Runs `f` on a freshly painted stack and prints the stack it used (this frame's caller chain
/// excluded: only what `f` and its callees touched below the current stack pointer). `f` is a
/// `dyn` closure (results go out through its captures): one copy of this function, not one per
/// call site.
#[inline(never)]
fn measured(what: &str, f: &mut dyn FnMut()) {
    paint_stack();
    let sp = cortex_m::register::msp::read() as usize;
    f();
    let peak = peak_stack();
    // Repainting forgets earlier depths: keep the deepest absolute peak of all steps.
    PEAK.fetch_max(peak, Ordering::Relaxed);
    let used = peak.saturating_sub(addr_of!(_stack_start) as usize - sp);
    say!("stack ", what, ": ", used, " bytes\n");
}

/// Deepest stack use seen by any [`measured`] step (from the top of the stack).
static PEAK: AtomicUsize = AtomicUsize::new(0);

impl Checks {
    fn check(&mut self, name: &str, ok: bool) {
        say!("check ", name, ": ", if ok { "ok" } else { "FAILED" }, "\n");
        if !ok {
            self.failed += 1;
        }
    }
}

fn bundle_byte(i: usize) -> u8 {
    LINE[i % LINE.len()]
}

fn spec_of(a: &Artifact<'_>) -> ArtifactSpec {
    ArtifactSpec {
        size: a.size,
        sha256: a.sha256,
        sha1: a.sha1,
    }
}

/// Step 1: the DDI document → (bundle spec, manifest spec).
#[inline(never)]
fn parse_deployment(c: &mut Checks) -> Option<(ArtifactSpec, ArtifactSpec)> {
    let d = match ddi::parse_deployment_base(DEPLOYMENT) {
        Ok(d) => d,
        Err(e) => {
            let _ = e;
            say!("ddi parse error\n");
            c.check("ddi parse", false);
            return None;
        }
    };
    say!(
        "ddi: action ",
        d.id.0,
        " with ",
        d.chunk_count(),
        " chunk(s)\n"
    );
    let chunk = d.chunk(0)?;
    let mut bundle = None;
    let mut manifest = None;
    let mut name_buf = [0u8; 64];
    for a in chunk.artifacts() {
        let Ok(name) = a.filename.unescape_into(&mut name_buf) else {
            continue;
        };
        say!("  artifact ", name, " size ", a.size, "\n");
        if name.ends_with(verify::MANIFEST_SUFFIX) {
            manifest = Some(spec_of(&a));
        } else {
            bundle = Some(spec_of(&a));
        }
    }
    let found = bundle.is_some() && manifest.is_some();
    c.check("ddi parse (bundle + manifest artifacts)", found);
    Some((bundle?, manifest?))
}

/// Step 2: collect the manifest artifact in 23-byte chunks, check its DDI digest and signature.
#[inline(never)]
fn check_manifest<'b>(
    c: &mut Checks,
    spec: &ArtifactSpec,
    buf: &'b mut [u8; MAX_MANIFEST_LEN],
    key: &[u8; 32],
) -> Option<Manifest<'b>> {
    let mut v = Verifier::new(spec, Policy::Off).ok()?;
    let mut col = ManifestCollector::new(&mut *buf);
    for chunk in MANIFEST.chunks(23) {
        if v.update(chunk).is_err() || col.feed(chunk).is_err() {
            c.check("manifest download", false);
            return None;
        }
    }
    c.check(
        "manifest artifact digest",
        v.finish(COMPATIBLE, None).is_ok(),
    );
    // Tampered copy: flip one signature bit.
    let mut bad = [0u8; MAX_MANIFEST_LEN];
    let n = MANIFEST.len();
    bad[..n].copy_from_slice(MANIFEST);
    bad[n - 1] ^= 1;
    let tampered = Manifest::verify_signed(&bad[..n], key);
    c.check(
        "tampered manifest rejected",
        tampered == Err(ManifestError::BadSignature),
    );
    let collected = col.bytes().len();
    drop(col);
    let buf: &'b [u8; MAX_MANIFEST_LEN] = buf;
    let m = Manifest::verify_signed(&buf[..collected], key);
    match m {
        Ok(m) => {
            say!(
                "manifest: compatible=",
                m.compatible,
                " version=",
                m.version,
                " size=",
                m.size,
                "\n"
            );
            c.check("manifest signature (openssl-made)", true);
            Some(m)
        }
        Err(e) => {
            say!("manifest error ", VerifyError::from(e).as_str(), "\n");
            c.check("manifest signature (openssl-made)", false);
            None
        }
    }
}

/// Step 3: stream the bundle (61-byte chunks) through the verifier; `flip` corrupts one byte.
#[inline(never)]
fn stream_bundle(
    spec: &ArtifactSpec,
    manifest: Option<Manifest<'_>>,
    flip: Option<usize>,
) -> Result<verify::Verified, VerifyError> {
    let mut v = Verifier::new(spec, Policy::Required)?;
    if let Some(m) = &manifest {
        v.precheck(COMPATIBLE, m)?;
    }
    feed_bundle(&mut v, flip)?;
    v.finish(COMPATIBLE, manifest.map(Ok))
}

/// Streams the bundle into `v` in 61-byte chunks; `flip` corrupts one byte.
#[inline(never)]
fn feed_bundle(v: &mut Verifier, flip: Option<usize>) -> Result<(), UpdateError> {
    let mut chunk = [0u8; 61];
    let mut pos = 0;
    while pos < BUNDLE_LEN {
        let n = chunk.len().min(BUNDLE_LEN - pos);
        for (k, b) in chunk[..n].iter_mut().enumerate() {
            *b = bundle_byte(pos + k);
            if flip == Some(pos + k) {
                *b ^= 0x20;
            }
        }
        v.update(&chunk[..n])?;
        pos += n;
    }
    Ok(())
}

fn print_changes(what: &str, t: &Transition) {
    print_changes_indented("", what, t);
}

/// `<indent>slots: <what> -> NAME=value …` (one copy for the core steps and the deployment).
#[inline(never)]
pub fn print_changes_indented(indent: &str, what: &str, t: &Transition) {
    say!(indent, "slots: ", what, " ->");
    for (name, value) in t.changes() {
        say!(" ", name, "=", value.unwrap_or("<delete>"));
    }
    say!("\n");
}

/// The U-Boot A/B state read through `lookup` (one `from_vars` instance for every caller).
#[inline(never)]
pub fn read_uboot<'v>(
    lookup: &mut dyn FnMut(&str) -> Option<&'v str>,
) -> Result<BootState, FromVarsError> {
    BootState::from_vars(Backend::UBoot, &["A", "B"], lookup)
}

/// Applies one operation: prints its change set and returns the new state (one transition live).
#[inline(never)]
fn step(
    st: &BootState,
    what: &str,
    op: impl FnOnce(&BootState) -> Option<Transition>,
) -> Option<BootState> {
    let t = op(st)?;
    print_changes(what, &t);
    Some(t.into_state())
}

/// RAUC's install sequence on slot B: mark it bad before writing, mark it active after.
#[inline(never)]
fn install_into_b(st: BootState) -> Option<BootState> {
    let st = step(&st, "mark-bad B (before writing it)", |s| {
        s.mark_bad(1).ok()
    })?;
    step(&st, "mark-active B (after install)", |s| {
        s.mark_active(1).ok()
    })
}

/// Four power-ons without anyone marking B good: the bootloader's choices.
#[inline(never)]
fn trial_boots(mut st: BootState) -> [Option<usize>; 4] {
    let mut chosen = [None; 4];
    for slot in &mut chosen {
        st = boot_once(&st, slot);
    }
    chosen
}

#[inline(never)]
fn boot_once(st: &BootState, chosen: &mut Option<usize>) -> BootState {
    let step = st.boot();
    *chosen = step.chosen;
    print_changes("bootloader boot", &step.transition);
    step.transition.into_state()
}

/// Step 4: A/B accounting on a U-Boot environment.
#[inline(never)]
fn slots_flow(c: &mut Checks) {
    let env: [(&str, &str); 3] = [
        ("BOOT_ORDER", "A B"),
        ("BOOT_A_LEFT", "3"),
        ("BOOT_B_LEFT", "3"),
    ];
    let st = match read_uboot(&mut |n: &str| env.iter().find(|(k, _)| *k == n).map(|(_, v)| *v)) {
        Ok(s) => s,
        Err(e) => {
            let _ = e;
            say!("slots error\n");
            c.check("slots read", false);
            return;
        }
    };
    let booted = st.booted_slot("console=ttyAMA0 root=/dev/mmcblk0p2 rauc.slot=A rootwait");
    c.check("booted slot from cmdline", booted == Ok(Booted::Slot(0)));
    let Some(st) = install_into_b(st) else {
        c.check("mark-bad / mark-active", false);
        return;
    };
    let chosen = trial_boots(st);
    say!("slots: boots chose");
    for c in chosen {
        match c {
            Some(i) => say!(" ", i),
            None => say!(" none"),
        }
    }
    say!(" (B never marked good)\n");
    c.check(
        "trial boots then fallback",
        chosen == [Some(1), Some(1), Some(1), Some(0)],
    );
    // The happy path: B boots and the agent marks it good.
    let st = active_state_after_good_boot();
    c.check("mark-good after a good boot", st);
}

/// A factory-fresh U-Boot A/B state (its transition's frame is gone before the next step).
#[inline(never)]
fn initial_state() -> Option<BootState> {
    BootState::initial(Backend::UBoot, &["A", "B"])
        .ok()
        .map(Transition::into_state)
}

#[inline(never)]
fn active_state_after_good_boot() -> bool {
    let Some(st) = initial_state() else {
        return false;
    };
    let Some(st) = step(&st, "mark-active B", |s| s.mark_active(1).ok()) else {
        return false;
    };
    let mut chosen = None;
    let st = boot_once(&st, &mut chosen);
    let Some(st) = step(&st, "mark-good B", |s| s.mark_good(1).ok()) else {
        return false;
    };
    chosen == Some(1) && st.attempts_left(1) == Some(3)
}

#[inline(never)]
fn core_steps(c: &mut Checks) -> Option<[u8; 32]> {
    let Ok(key) = verify::public_key_from_spki_der(PUBLIC_KEY_DER) else {
        c.check("public key", false);
        return None;
    };
    measured("ddi::parse_deployment_base alone", &mut || {
        black_box(ddi::parse_deployment_base(black_box(DEPLOYMENT)).map(|d| d.id)).ok();
    });
    measured("Manifest::verify_signed alone", &mut || {
        black_box(Manifest::verify_signed(black_box(MANIFEST), &key).map(|m| m.size)).ok();
    });
    let mut specs = None;
    measured("step 1 ddi", &mut || specs = parse_deployment(c));
    let (bundle, manifest_spec) = specs?;
    let mut buf = [0u8; MAX_MANIFEST_LEN];
    let mut manifest = None;
    let mut buf_once = Some(&mut buf); // the manifest borrows it beyond the closure
    measured("step 2 manifest", &mut || {
        if let Some(buf) = buf_once.take() {
            manifest = check_manifest(c, &manifest_spec, buf, &key);
        }
    });
    let mut verified = None;
    measured("step 3 bundle", &mut || {
        verified = Some(stream_bundle(&bundle, manifest, None));
    });
    match verified? {
        Ok(v) => {
            say!("bundle: ", v.size, " bytes verified, sha256 ");
            for b in v.sha256 {
                say!(Hex2(b));
            }
            say!(" manifest_checked=", v.manifest_checked, "\n");
            c.check(
                "bundle verified (size, sha256, signed manifest)",
                v.manifest_checked,
            );
        }
        Err(e) => {
            say!("bundle error ", e.as_str(), " (", e.code(), ")\n");
            c.check("bundle verified", false);
        }
    }
    let bad = stream_bundle(&bundle, manifest, Some(4321));
    if let Err(e) = bad {
        say!("tampered bundle: ", e.as_str(), " (code ", e.code(), ")\n");
    }
    c.check(
        "tampered bundle rejected",
        bad == Err(VerifyError::DigestMismatch(verify::HashAlgo::Sha256)),
    );
    measured("step 4 slots", &mut || slots_flow(c));
    Some(key)
}

/// All steps; the core steps' locals are gone before the client deployment runs.
#[inline(never)]
fn run(c: &mut Checks) {
    let Some(key) = core_steps(c) else {
        return;
    };
    #[cfg(feature = "client")]
    measured("step 5 client deployment", &mut || {
        deploy::run(c, key);
    });
    #[cfg(not(feature = "client"))]
    let _ = key;
}

#[entry]
fn main() -> ! {
    paint_stack();
    let mut checks = Checks { failed: 0 };
    run(&mut checks);
    let peak = PEAK.load(Ordering::Relaxed).max(peak_stack());
    say!("size_of Verifier=", size_of::<Verifier>(), "\n");
    say!("size_of BootState=", size_of::<BootState>(), "\n");
    say!("size_of Transition=", size_of::<Transition>(), "\n");
    say!("peak_stack=", peak, "\n");
    say!("checks_failed=", checks.failed, "\n");
    debug::exit(if checks.failed == 0 {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    // Not reached with -C panic=immediate-abort (a panic is a `udf` trap); kept for other builds.
    say!("PANIC\n");
    debug::exit(debug::EXIT_FAILURE);
    #[allow(clippy::empty_loop)]
    loop {}
}
