//! One hawkBit deployment driven through `eyas_core::client::Client`, with a tiny in-firmware
//! hawkBit (three canned documents) and a simulated device: artifacts are streamed through
//! `verify`, the signed manifest is checked, the A/B switch is computed by `slots` on a U-Boot
//! environment, and the bootloader's own step decides what boots after the reboot.

use core::ptr::addr_of_mut;

use crate::out::{DebugOptBool, say};
use eyas_core::client::{
    Action, BootReport, Client, ClientConfig, Event, InstallKind, REQUEST_BUF_LEN, Response,
    StopReason, Warning,
};
use eyas_core::record::{RECORD_MAX_LEN, Slot};
use eyas_core::slots::{Backend, BootState, Booted, Transition};
use eyas_core::time::{Duration, Instant};
use eyas_core::verify::{
    ArtifactSpec, MAX_MANIFEST_LEN, Manifest, ManifestCollector, Policy, Verified, Verifier,
};
use heapless::{Deque, String, Vec};

use crate::{
    BUNDLE_LEN, COMPATIBLE, Checks, DEPLOYMENT, MANIFEST, feed_bundle, print_changes_indented,
    read_uboot,
};

const SERVER: &str = "http://hb.example";
const BASE_WITH_ACTION: &[u8] = br#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{"deploymentBase":{"href":"http:\/\/hb.example\/DEFAULT\/controller\/v1\/dev-01\/deploymentBase\/42?c=7"}}}"#;
const BASE_IDLE: &[u8] = br#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{}}"#;

/// The client lives in static RAM (it is long-lived device state), as does its request buffer.
/// The client lives in static RAM (long-lived device state), built by the `const`
/// `Client::unconfigured` and configured in place: no Client-sized temporary on the stack.
static mut CLIENT: Client = Client::unconfigured();
static mut REQUEST_BUF: [u8; REQUEST_BUF_LEN] = [0; REQUEST_BUF_LEN];

type Env = Vec<(String<12>, String<8>), 6>;

/// The simulated device: U-Boot environment, persisted record, downloaded-artifact results.
struct Device {
    env: Env,
    record: [u8; RECORD_MAX_LEN],
    record_len: Option<usize>,
    cmdline_slot: &'static str,
    bundle: Option<Verifier>,
    bundle_ok: Option<Verified>,
    manifest_buf: [u8; MAX_MANIFEST_LEN],
    manifest_len: usize,
    manifest_verifier: Option<Verifier>,
    key: [u8; 32],
}

#[derive(Clone, Copy)]
enum Pending {
    DownloadComplete,
    Verified,
    VerifyFailed(&'static str),
    Installed(Slot),
    InstallFailed(&'static str),
}

fn lookup<'e>(env: &'e Env, name: &str) -> Option<&'e str> {
    env.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn apply(env: &mut Env, what: &str, t: &Transition) {
    print_changes_indented("  ", what, t);
    for (name, value) in t.changes() {
        env.retain(|(k, _)| k != name);
        if let Some(v) = value {
            if let (Ok(k), Ok(v)) = (String::try_from(name), String::try_from(v)) {
                let _ = env.push((k, v));
            }
        }
    }
}

fn read_state(env: &Env) -> Option<BootState> {
    read_uboot(&mut |n: &str| lookup(env, n)).ok()
}

fn slot_of(i: usize) -> Slot {
    if i == 0 { Slot::A } else { Slot::B }
}

fn client_config() -> ClientConfig<'static> {
    let mut cfg = ClientConfig::new(SERVER, "DEFAULT", "dev-01");
    cfg.authorization = Some("TargetToken firmware-m4");
    cfg
}

/// The static client; called once.
#[inline(never)]
fn the_client() -> &'static mut Client {
    // SAFETY: single-threaded firmware, called once: the returned reference is the only one.
    unsafe { &mut *addr_of_mut!(CLIENT) }
}

/// A fresh client in place of the old one (after a power-on), configured in place.
#[inline(never)]
fn renew_client(client: &mut Client) -> Option<()> {
    client.configure(&client_config()).ok()
}

// One out-of-line wrapper per client input/output, so the stack report shows each one's cost.
#[inline(never)]
fn cl_handle_boot(client: &mut Client, now: Instant, boot: BootReport<'_>) {
    client.handle_boot(now, boot);
}
#[inline(never)]
fn cl_handle_event(client: &mut Client, now: Instant, ev: Event<'_>) {
    let _ = client.handle_event(now, ev);
}
#[inline(never)]
fn cl_handle_response(client: &mut Client, now: Instant, status: u16, body: &[u8]) {
    let _ = client.handle_response(
        now,
        Response {
            status,
            etag: None,
            body,
        },
    );
}
#[inline(never)]
fn cl_handle_timeout(client: &mut Client, now: Instant) {
    client.handle_timeout(now);
}
#[inline(never)]
fn cl_poll_request(
    client: &mut Client,
    now: Instant,
    buf: &mut [u8; REQUEST_BUF_LEN],
    finished: &mut Option<bool>,
) -> Option<(u16, &'static [u8])> {
    let req = client.poll_request(now, buf).ok()??;
    Some(serve(req.url, req.body, finished))
}

/// The bootloader and the first moments of the new system: choose-and-decrement, health check,
/// mark good, hand the record to a fresh client.
#[inline(never)]
fn power_on(dev: &mut Device, now: Instant, client: &mut Client) -> Option<()> {
    let chosen = bootloader_boot(&mut dev.env)?;
    dev.cmdline_slot = if chosen == 0 {
        "root=/dev/mmcblk0p2 rauc.slot=A"
    } else {
        "root=/dev/mmcblk0p3 rauc.slot=B"
    };
    let booted = booted_slot(&dev.env, dev.cmdline_slot)?;
    say!(
        "  boot: bootloader chose ",
        chosen,
        "; cmdline says ",
        booted,
        "\n"
    );
    // Health check passed: mark the booted slot good (before reporting).
    apply_op(&mut dev.env, "mark-good booted", |s| {
        s.mark_good(booted).ok()
    })?;
    // A fresh client after every power-on, as a new process would be.
    renew_client(client)?;
    cl_handle_boot(
        client,
        now,
        BootReport {
            record: dev.record_len.map(|n| &dev.record[..n]),
            booted_slot: Some(slot_of(booted)),
            healthy: true,
            running: Some(("rootfs", "2026.10.0")),
        },
    );
    Some(())
}

/// A factory-fresh environment: both slots good, A first.
#[inline(never)]
fn provision(env: &mut Env) -> Option<()> {
    let init = BootState::initial(Backend::UBoot, &["A", "B"]).ok()?;
    apply(env, "provision", &init);
    Some(())
}

/// The bootloader's choose-and-decrement step, written to the environment.
#[inline(never)]
fn bootloader_boot(env: &mut Env) -> Option<usize> {
    let st = read_state(env)?;
    let step = st.boot();
    apply(env, "bootloader boot", &step.transition);
    step.chosen
}

#[inline(never)]
fn booted_slot(env: &Env, cmdline: &str) -> Option<usize> {
    match read_state(env)?.booted_slot(cmdline) {
        Ok(Booted::Slot(i)) => Some(i),
        _ => None,
    }
}

/// Reads the state, runs one operation and writes its change set: one transition live at a time.
#[inline(never)]
fn apply_op(
    env: &mut Env,
    what: &str,
    op: impl FnOnce(&BootState) -> Option<Transition>,
) -> Option<()> {
    let st = read_state(env)?;
    let t = op(&st)?;
    apply(env, what, &t);
    Some(())
}

#[inline(never)]
fn stream_artifact(dev: &mut Device, is_manifest: bool, spec: &ArtifactSpec) -> Pending {
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
        if feed_bundle(&mut v, None).is_err() {
            return Pending::VerifyFailed("too-long");
        }
        dev.bundle = Some(v);
    }
    Pending::DownloadComplete
}

#[inline(never)]
fn verify_artifact(dev: &mut Device, is_manifest: bool) -> Pending {
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
fn install(dev: &mut Device) -> Pending {
    if !dev.bundle_ok.as_ref().is_some_and(|v| v.manifest_checked) {
        return Pending::InstallFailed("manifest-missing");
    }
    let Some(booted) = booted_slot(&dev.env, dev.cmdline_slot) else {
        return Pending::InstallFailed("booted-slot");
    };
    let target = 1 - booted;
    if apply_op(&mut dev.env, "mark-bad target (before writing)", |s| {
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
    if apply_op(&mut dev.env, "mark-active target", |s| {
        s.mark_active(target).ok()
    })
    .is_none()
    {
        return Pending::InstallFailed("mark-active");
    }
    Pending::Installed(slot_of(target))
}

/// The variant name of a warning (what `{:?}` starts with).
fn warning_name(w: &Warning) -> &'static str {
    match w {
        Warning::RecordCorrupt(_) => "RecordCorrupt",
        Warning::MalformedResponse { .. } => "MalformedResponse",
        Warning::Refused { .. } => "Refused",
        Warning::QuotaExceeded { .. } => "QuotaExceeded",
        Warning::ActionGone { .. } => "ActionGone",
        Warning::ActionQueueFull => "ActionQueueFull",
        _ => "Warning",
    }
}

fn stop_name(s: StopReason) -> &'static str {
    match s {
        StopReason::Unauthorized => "Unauthorized",
        StopReason::NotConfigured => "NotConfigured",
        _ => "Stopped",
    }
}

/// Canned hawkBit: returns (status, body) and notes the final feedback.
fn serve(url: &str, body: &[u8], finished: &mut Option<bool>) -> (u16, &'static [u8]) {
    let has = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    if has(url.as_bytes(), b"/feedback") {
        if has(body, b"\"closed\"") {
            *finished = Some(has(body, b"\"success\""));
        }
        (200, b"")
    } else if has(url.as_bytes(), b"/deploymentBase/") {
        (200, DEPLOYMENT)
    } else if finished.is_none() {
        (200, BASE_WITH_ACTION)
    } else {
        (200, BASE_IDLE)
    }
}

/// Drains `poll_action`: does the device work for each action (queueing its result as a
/// [`Pending`] event) and returns whether a reboot was requested (`None`: the client stopped).
#[inline(never)]
fn drain_actions(
    client: &mut Client,
    dev: &mut Device,
    pending: &mut Deque<Pending, 4>,
) -> Option<bool> {
    let mut reboot = false;
    while let Some(a) = client.poll_action() {
        match a {
            Action::PersistRecord(b) => {
                let n = b.len().min(RECORD_MAX_LEN);
                dev.record[..n].copy_from_slice(&b[..n]);
                dev.record_len = Some(n);
            }
            Action::ClearRecord => dev.record_len = None,
            Action::Download(r) => {
                let is_manifest = r.filename.ends_with(eyas_core::verify::MANIFEST_SUFFIX);
                say!("  action: download ", r.filename, " (", r.size, " bytes)\n");
                let spec = ArtifactSpec {
                    size: r.size,
                    sha256: r.sha256,
                    sha1: r.sha1,
                };
                let p = stream_artifact(dev, is_manifest, &spec);
                let _ = pending.push_back(p);
            }
            Action::Verify(r) => {
                let is_manifest = r.filename.ends_with(eyas_core::verify::MANIFEST_SUFFIX);
                say!("  action: verify ", r.filename, "\n");
                let p = verify_artifact(dev, is_manifest);
                let _ = pending.push_back(p);
            }
            Action::Install(r) => {
                say!(
                    "  action: install chunk ",
                    r.chunk,
                    " (",
                    r.name,
                    ") ",
                    r.version,
                    "\n"
                );
                let p = if r.kind == InstallKind::RaucReboot {
                    install(dev)
                } else {
                    Pending::InstallFailed("unsupported")
                };
                let _ = pending.push_back(p);
            }
            Action::RunConfigHook(_) => {
                let _ = pending.push_back(Pending::InstallFailed("unsupported"));
            }
            Action::Reboot { .. } => {
                say!("  action: reboot\n");
                reboot = true;
            }
            Action::Telemetry(_) | Action::AbortDownload { .. } => {}
            Action::AskConfirmation { .. } | Action::AttributesRequested => {}
            Action::Warning(w) => say!("  warning: ", warning_name(&w), "\n"),
            Action::Stopped(s) => {
                say!("  stopped: ", stop_name(s), "\n");
                return None;
            }
        }
    }
    Some(reboot)
}

/// Runs the deployment; returns `true` if hawkBit got `closed/success` after the reboot.
#[inline(never)]
pub fn run(c: &mut Checks, key: [u8; 32]) -> bool {
    say!("size_of Client=", core::mem::size_of::<Client>(), "\n");
    let mut dev = Device {
        env: Vec::new(),
        record: [0; RECORD_MAX_LEN],
        record_len: None,
        cmdline_slot: "root=/dev/mmcblk0p2 rauc.slot=A",
        bundle: None,
        bundle_ok: None,
        manifest_buf: [0; MAX_MANIFEST_LEN],
        manifest_len: 0,
        manifest_verifier: None,
        key,
    };
    if provision(&mut dev.env).is_none() {
        return false;
    }
    let mut now = Instant::from_secs(1_000);
    let client = the_client();
    if power_on(&mut dev, now, client).is_none() {
        c.check("first boot", false);
        return false;
    }
    // SAFETY: single-threaded; this is the only reference to the buffer.
    let buf: &mut [u8; REQUEST_BUF_LEN] = unsafe { &mut *addr_of_mut!(REQUEST_BUF) };
    let mut pending: Deque<Pending, 4> = Deque::new();
    let mut finished: Option<bool> = None;
    let mut requests = 0u32;
    let mut booted_b = false;
    for _ in 0..2_000 {
        if finished.is_some() {
            break;
        }
        // 1. actions
        let reboot = match drain_actions(client, &mut dev, &mut pending) {
            Some(r) => r,
            None => return false,
        };
        if reboot {
            now = now + Duration::from_secs(30);
            if power_on(&mut dev, now, client).is_none() {
                c.check("reboot into the new slot", false);
                return false;
            }
            booted_b = dev.cmdline_slot.ends_with("rauc.slot=B");
            continue;
        }
        // 2. results of the device's work
        if let Some(p) = pending.pop_front() {
            let ev = match p {
                Pending::DownloadComplete => Event::DownloadComplete,
                Pending::Verified => Event::Verified,
                Pending::VerifyFailed(reason) => {
                    say!("  verify failed: ", reason, "\n");
                    Event::VerifyFailed { reason }
                }
                Pending::Installed(slot) => Event::Installed { slot: Some(slot) },
                Pending::InstallFailed(reason) => Event::InstallFailed { reason },
            };
            cl_handle_event(client, now, ev);
            continue;
        }
        // 3. the request in flight
        if let Some((status, body)) = cl_poll_request(client, now, buf, &mut finished) {
            requests += 1;
            cl_handle_response(client, now, status, body);
            continue;
        }
        // 4. nothing to do: sleep until the client's next timer
        now = client
            .poll_timeout()
            .filter(|t| *t > now)
            .unwrap_or(now + Duration::from_secs(1));
        cl_handle_timeout(client, now);
    }
    say!(
        "deploy: ",
        requests,
        " requests, hawkBit final feedback: ",
        DebugOptBool(finished),
        "\n"
    );
    let st = read_state(&dev.env);
    let b_good = st
        .as_ref()
        .is_some_and(|s| s.is_good(1) && s.primary() == Some(1));
    c.check(
        "client deployment: closed/success after reboot into B",
        finished == Some(true) && booted_b && b_good,
    );
    finished == Some(true)
}
