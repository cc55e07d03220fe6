//! eyas-core on a Cortex-M4 (QEMU mps2-an386): one deployment end to end, then the measurements.
//!
//! 1. Parse a hawkBit `deploymentBase` (DDI) and pick the bundle and its `<bundle>.manifest`.
//! 2. Stream the 10 000-byte bundle in odd-sized chunks through the size/SHA-256 checks; a
//!    tampered copy must fail with `sha256-mismatch`.
//! 3. Stream the manifest into a caller-owned buffer, check its DDI digest, its Ed25519 signature
//!    and that it names the verified bundle; a tampered signature must fail.
//! 4. A/B accounting (U-Boot semantics) on a U-Boot environment: booted slot from the kernel
//!    command line, mark the other slot bad, install, mark it active, the bootloader's trial
//!    boots and the fallback, and mark-good after a good boot.
//!
//! The device work (streaming, verifying, slot transitions) is in [`device`]; the client
//! deployment (feature `client`) drives the same functions through the `Client`'s actions.
//!
//! Output goes through semihosting; the exit status is failure if any check fails. The stack is
//! painted before the work and scanned after it to report the peak.
#![no_std]
#![no_main]

#[cfg(feature = "client")]
mod deploy;
mod device;
mod out;

use out::{Hex2, say};

use core::hint::black_box;
use core::mem::size_of;
use core::ptr::{addr_of, addr_of_mut};
use core::sync::atomic::{AtomicUsize, Ordering};

use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use device::{
    Device, MANIFEST, Pending, apply_op, booted_slot, bootloader_boot, install, provision,
    read_state, stream_artifact, verify_artifact,
};
use eyas_core::ddi::{self, Artifact};
use eyas_core::slots::{BootState, Transition};
use eyas_core::verify::{self, ArtifactSpec, Manifest, ManifestError, Verifier};

const PUBLIC_KEY_DER: &[u8] = include_bytes!("../../tests/vectors/manifest/pub.der");

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

/// Downloads one artifact into the device and verifies it (the client's Download + Verify).
#[inline(never)]
fn download_and_verify(
    dev: &mut Device,
    is_manifest: bool,
    spec: &ArtifactSpec,
    flip: Option<usize>,
) -> Pending {
    match stream_artifact(dev, is_manifest, spec, flip) {
        Pending::DownloadComplete => verify_artifact(dev, is_manifest),
        p => p,
    }
}

/// Step 2: the bundle, then a copy with one byte flipped (which must be rejected).
#[inline(never)]
fn bundle_step(c: &mut Checks, dev: &mut Device, spec: &ArtifactSpec) {
    let bad = download_and_verify(dev, false, spec, Some(4321));
    if let Pending::VerifyFailed(e) = bad {
        say!("tampered bundle: ", e, "\n");
    }
    c.check(
        "tampered bundle rejected",
        bad == Pending::VerifyFailed("sha256-mismatch"),
    );
    let ok = download_and_verify(dev, false, spec, None) == Pending::Verified;
    if let Some(v) = &dev.bundle_ok {
        say!("bundle: ", v.size, " bytes verified, sha256 ");
        for b in v.sha256 {
            say!(Hex2(b));
        }
        say!("\n");
    }
    c.check("bundle verified (size, sha256)", ok);
}

/// Step 3: the signed manifest (DDI digest, signature, matches the bundle), then a copy with one
/// signature bit flipped.
#[inline(never)]
fn manifest_step(c: &mut Checks, dev: &mut Device, spec: &ArtifactSpec, key: &[u8; 32]) {
    let ok = download_and_verify(dev, true, spec, None) == Pending::Verified;
    c.check(
        "signed manifest (openssl-made) matches the bundle",
        ok && dev.bundle_ok.as_ref().is_some_and(|v| v.manifest_checked),
    );
    let n = MANIFEST.len();
    dev.manifest_buf[n - 1] ^= 1;
    let tampered = Manifest::verify_signed(&dev.manifest_buf[..n], key);
    c.check(
        "tampered manifest rejected",
        tampered == Err(ManifestError::BadSignature),
    );
}

/// Step 4: A/B accounting on a U-Boot environment, with the verified bundle of steps 2 and 3.
#[inline(never)]
fn slots_flow(c: &mut Checks, dev: &mut Device) {
    let fresh = provision(&mut dev.env).is_some();
    let booted = booted_slot(
        &dev.env,
        "console=ttyAMA0 root=/dev/mmcblk0p2 rauc.slot=A rootwait",
    );
    c.check("booted slot from cmdline", fresh && booted == Some(0));
    // RAUC's install sequence on the other slot: mark it bad before writing, active after
    c.check(
        "install into B (mark-bad, write, mark-active)",
        install(dev) == Pending::Installed("B"),
    );
    let env = &mut dev.env;
    // four power-ons without anyone marking B good: the bootloader's choices
    let mut chosen = [None; 4];
    for slot in &mut chosen {
        *slot = bootloader_boot(env);
    }
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
    // the happy path: B boots and the agent marks it good
    let good = provision(env).is_some()
        && apply_op(env, "mark-active B", &mut |s| s.mark_active(1).ok()).is_some()
        && bootloader_boot(env) == Some(1)
        && apply_op(env, "mark-good B", &mut |s| s.mark_good(1).ok()).is_some()
        && read_state(env).is_some_and(|s| s.is_good(1) && s.attempts_left(1) == Some(3));
    c.check("mark-good after a good boot", good);
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
    let mut dev = Device::new(key);
    measured("step 2 bundle", &mut || bundle_step(c, &mut dev, &bundle));
    measured("step 3 manifest", &mut || {
        manifest_step(c, &mut dev, &manifest_spec, &key)
    });
    measured("step 4 slots", &mut || slots_flow(c, &mut dev));
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
