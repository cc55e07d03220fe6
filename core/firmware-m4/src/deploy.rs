//! One hawkBit deployment driven through `eyas_core::client::Client`, with a tiny in-firmware
//! hawkBit (three canned documents) and a simulated device: artifacts are streamed through
//! `verify`, the signed manifest is checked, the A/B switch is computed by `slots` on a U-Boot
//! environment, and the bootloader's own step decides what boots after the reboot.

use core::ptr::addr_of_mut;

use crate::device::{
    Device, Pending, apply_op, booted_slot, bootloader_boot, install, provision, read_state,
    slot_of, stream_artifact, verify_artifact,
};
use crate::out::{DebugOptBool, say};
use crate::{Checks, DEPLOYMENT};
use eyas_core::client::{
    Action, BootReport, Client, ClientConfig, Event, InstallKind, REQUEST_BUF_LEN, Response,
    SlotMark, StopReason, Warning,
};
use eyas_core::record::RECORD_MAX_LEN;
use eyas_core::time::{Duration, Instant};
use eyas_core::verify::ArtifactSpec;
use heapless::Deque;

const SERVER: &str = "http://hb.example";
const BASE_WITH_ACTION: &[u8] = br#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{"deploymentBase":{"href":"http:\/\/hb.example\/DEFAULT\/controller\/v1\/dev-01\/deploymentBase\/42?c=7"}}}"#;
const BASE_IDLE: &[u8] = br#"{"config":{"polling":{"sleep":"00:00:10"}},"_links":{}}"#;

/// The client lives in static RAM (it is long-lived device state), as does its request buffer.
/// The client lives in static RAM (long-lived device state), built by the `const`
/// `Client::unconfigured` and configured in place: no Client-sized temporary on the stack.
static mut CLIENT: Client = Client::unconfigured();
static mut REQUEST_BUF: [u8; REQUEST_BUF_LEN] = [0; REQUEST_BUF_LEN];

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

/// The bootloader and the first moments of the new system: choose-and-decrement, then a fresh
/// client gets the record and the booted slot (it asks for the health check and the marks).
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
    // A fresh client after every power-on, as a new process would be.
    renew_client(client)?;
    cl_handle_boot(
        client,
        now,
        BootReport {
            record: dev.record_len.map(|n| &dev.record[..n]),
            booted: Some(slot_of(booted)),
            rejected: None,
            running: Some(("rootfs", "2026.10.0")),
        },
    );
    Some(())
}

/// RAUC's `Mark` on the U-Boot environment, by bootname.
#[inline(never)]
fn mark_slot(dev: &mut Device, bootname: &str, mark: SlotMark) -> bool {
    let Some(i) = read_state(&dev.env).and_then(|s| s.slot_index(bootname)) else {
        return false;
    };
    apply_op(&mut dev.env, "mark", &mut |s| match mark {
        SlotMark::Good => s.mark_good(i).ok(),
        SlotMark::Bad => s.mark_bad(i).ok(),
        _ => s.mark_active(i).ok(),
    })
    .is_some()
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
                let p = stream_artifact(dev, is_manifest, &spec, None);
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
            Action::CheckHealth => {
                let _ = pending.push_back(Pending::Health(true));
            }
            Action::MarkSlot { bootname, mark } => {
                say!("  action: mark ", bootname, "\n");
                let ok = mark_slot(dev, bootname, mark);
                let _ = pending.push_back(Pending::Marked(ok));
            }
            Action::RememberRejected(_) => {}
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
    let mut dev = Device::new(key);
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
                Pending::Health(passed) => Event::HealthChecked { passed },
                Pending::Marked(ok) => Event::SlotMarked { ok },
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
