//! The simulated device both images drive: a U-Boot environment changed only through `slots`
//! transitions, artifacts streamed through `verify` (size, digest, signed manifest), and RAUC's
//! install sequence on the inactive slot. The core steps call it directly; the client deployment
//! calls the same functions for the `Client`'s actions, so each piece of device code is in the
//! image once.

use crate::out::say;
#[cfg(feature = "client")]
use eyas_core::record::RECORD_MAX_LEN;
use eyas_core::slots::{Backend, BootState, Booted, Transition};
use eyas_core::verify::{
    ArtifactSpec, MAX_MANIFEST_LEN, Manifest, ManifestCollector, Policy, UpdateError, Verified,
    Verifier,
};
use heapless::{String, Vec};

/// The test bundle (`core/tests/vectors/manifest/bundle.bin`) is this line repeated, cut at 10 000
/// bytes; it is generated on the fly so it costs no flash.
const LINE: &[u8] = b"eyas test bundle\n";
pub const BUNDLE_LEN: usize = 10_000;
/// Signed by `make-vector.sh` with `openssl pkeyutl -sign -rawin`.
pub const MANIFEST: &[u8] = include_bytes!("../../tests/vectors/manifest/bundle.bin.manifest");
pub const COMPATIBLE: &str = "eyas-test";

/// The U-Boot environment: variable name → value.
pub type Env = Vec<(String<12>, String<8>), 6>;

/// The device: boot environment, downloaded-artifact results, the persisted client record.
pub struct Device {
    pub env: Env,
    pub cmdline_slot: &'static str,
    bundle: Option<Verifier>,
    pub bundle_ok: Option<Verified>,
    pub manifest_buf: [u8; MAX_MANIFEST_LEN],
    manifest_len: usize,
    manifest_verifier: Option<Verifier>,
    key: [u8; 32],
    #[cfg(feature = "client")]
    pub record: [u8; RECORD_MAX_LEN],
    #[cfg(feature = "client")]
    pub record_len: Option<usize>,
}

/// The outcome of one piece of device work (for the client: the event to feed back).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pending {
    DownloadComplete,
    Verified,
    VerifyFailed(&'static str),
    /// Installed into the slot with this bootname.
    Installed(&'static str),
    InstallFailed(&'static str),
    /// The health check's verdict.
    #[cfg(feature = "client")]
    Health(bool),
    /// Whether a RAUC mark was applied.
    #[cfg(feature = "client")]
    Marked(bool),
}

impl Device {
    /// A device booted from slot A with an empty environment (see [`provision`]).
    pub fn new(key: [u8; 32]) -> Self {
        Self {
            env: Vec::new(),
            cmdline_slot: "root=/dev/mmcblk0p2 rauc.slot=A",
            bundle: None,
            bundle_ok: None,
            manifest_buf: [0; MAX_MANIFEST_LEN],
            manifest_len: 0,
            manifest_verifier: None,
            key,
            #[cfg(feature = "client")]
            record: [0; RECORD_MAX_LEN],
            #[cfg(feature = "client")]
            record_len: None,
        }
    }
}

fn bundle_byte(i: usize) -> u8 {
    LINE[i % LINE.len()]
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

/// `<indent>slots: <what> -> NAME=value …`.
#[inline(never)]
pub fn print_changes(what: &str, t: &Transition) {
    say!("  slots: ", what, " ->");
    for (name, value) in t.changes() {
        say!(" ", name, "=", value.unwrap_or("<delete>"));
    }
    say!("\n");
}

fn lookup<'e>(env: &'e Env, name: &str) -> Option<&'e str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// Prints a transition's change set and writes it to the environment.
#[inline(never)]
fn apply(env: &mut Env, what: &str, t: &Transition) {
    print_changes(what, t);
    for (name, value) in t.changes() {
        env.retain(|(k, _)| k != name);
        if let Some(v) = value {
            if let (Ok(k), Ok(v)) = (String::try_from(name), String::try_from(v)) {
                let _ = env.push((k, v));
            }
        }
    }
}

/// The A/B state as U-Boot's environment holds it (one `from_vars` instance for every caller).
#[inline(never)]
pub fn read_state(env: &Env) -> Option<BootState> {
    BootState::from_vars(Backend::UBoot, &["A", "B"], &mut |n: &str| lookup(env, n)).ok()
}

/// RAUC's bootname of slot `i`.
pub fn slot_of(i: usize) -> &'static str {
    if i == 0 { "A" } else { "B" }
}

/// A factory-fresh environment: both slots good, A first.
#[inline(never)]
pub fn provision(env: &mut Env) -> Option<()> {
    env.clear();
    let init = BootState::initial(Backend::UBoot, &["A", "B"]).ok()?;
    apply(env, "provision", &init);
    Some(())
}

/// The bootloader's choose-and-decrement step, written to the environment.
#[inline(never)]
pub fn bootloader_boot(env: &mut Env) -> Option<usize> {
    let st = read_state(env)?;
    let step = st.boot();
    apply(env, "bootloader boot", &step.transition);
    step.chosen
}

/// The booted slot as RAUC finds it: `rauc.slot=` on the kernel command line.
#[inline(never)]
pub fn booted_slot(env: &Env, cmdline: &str) -> Option<usize> {
    match read_state(env)?.booted_slot(cmdline) {
        Ok(Booted::Slot(i)) => Some(i),
        _ => None,
    }
}

/// Reads the state, runs one operation and writes its change set: one transition live at a time.
#[inline(never)]
pub fn apply_op(
    env: &mut Env,
    what: &str,
    op: &mut dyn FnMut(&BootState) -> Option<Transition>,
) -> Option<()> {
    let st = read_state(env)?;
    let t = op(&st)?;
    apply(env, what, &t);
    Some(())
}

/// Downloads one artifact: the manifest into the device's buffer (29-byte chunks), the bundle
/// through its verifier (61-byte chunks, `flip` corrupts one byte).
#[inline(never)]
pub fn stream_artifact(
    dev: &mut Device,
    is_manifest: bool,
    spec: &ArtifactSpec,
    flip: Option<usize>,
) -> Pending {
    let Ok(mut v) = Verifier::new(spec, Policy::Off) else {
        return Pending::VerifyFailed("no-digest");
    };
    if is_manifest {
        let mut col = ManifestCollector::new(&mut dev.manifest_buf);
        for chunk in MANIFEST.chunks(29) {
            if v.update(chunk).is_err() || col.feed(chunk).is_err() {
                return Pending::VerifyFailed("manifest-too-long");
            }
        }
        dev.manifest_len = col.bytes().len();
        dev.manifest_verifier = Some(v);
    } else {
        if feed_bundle(&mut v, flip).is_err() {
            return Pending::VerifyFailed("too-long");
        }
        dev.bundle = Some(v);
    }
    Pending::DownloadComplete
}

/// Verifies a downloaded artifact: size and server digest; for the manifest also its Ed25519
/// signature and that it matches the verified bundle (policy `required`).
#[inline(never)]
pub fn verify_artifact(dev: &mut Device, is_manifest: bool) -> Pending {
    if !is_manifest {
        let Some(v) = dev.bundle.take() else {
            return Pending::VerifyFailed("not-downloaded");
        };
        return match v.finish(COMPATIBLE, None) {
            Ok(ok) => {
                dev.bundle_ok = Some(ok);
                Pending::Verified
            }
            Err(e) => Pending::VerifyFailed(e.as_str()),
        };
    }
    let Some(v) = dev.manifest_verifier.take() else {
        return Pending::VerifyFailed("not-downloaded");
    };
    if let Err(e) = v.finish(COMPATIBLE, None) {
        return Pending::VerifyFailed(e.as_str());
    }
    let Some(bundle) = dev.bundle_ok.as_mut() else {
        return Pending::VerifyFailed("manifest-before-bundle");
    };
    let m = Manifest::verify_signed(&dev.manifest_buf[..dev.manifest_len], &dev.key);
    match bundle.check_manifest(Policy::Required, COMPATIBLE, Some(m)) {
        Ok(()) => {
            say!(
                "  verify: signed manifest ok, version ",
                bundle.manifest_version.as_deref().unwrap_or("?"),
                "\n"
            );
            Pending::Verified
        }
        Err(e) => Pending::VerifyFailed(e.as_str()),
    }
}

/// Install = the RAUC sequence on the inactive slot: mark it bad, write it, mark it active.
#[inline(never)]
pub fn install(dev: &mut Device) -> Pending {
    if !dev.bundle_ok.as_ref().is_some_and(|v| v.manifest_checked) {
        return Pending::InstallFailed("manifest-missing");
    }
    let Some(booted) = booted_slot(&dev.env, dev.cmdline_slot) else {
        return Pending::InstallFailed("booted-slot");
    };
    let target = 1 - booted;
    if apply_op(&mut dev.env, "mark-bad target (before writing)", &mut |s| {
        s.mark_bad(target).ok()
    })
    .is_none()
    {
        return Pending::InstallFailed("mark-bad");
    }
    say!(
        "  install: writing ",
        BUNDLE_LEN,
        " bytes into slot ",
        target,
        "\n"
    );
    if apply_op(&mut dev.env, "mark-active target", &mut |s| {
        s.mark_active(target).ok()
    })
    .is_none()
    {
        return Pending::InstallFailed("mark-active");
    }
    Pending::Installed(slot_of(target))
}
