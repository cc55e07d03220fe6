//! RAUC over D-Bus against a real RAUC 1.8 service in a sandbox the test builds itself.

mod common;

use std::time::Duration;

use common::rauc_sandbox::RaucSandbox;
use eyas_linux::rauc::{MarkState, Progress, Rauc, RaucError};

const LIMIT: Duration = Duration::from_secs(120);

async fn connect(sb: &RaucSandbox) -> Rauc {
    Rauc::connect_to(Some(&sb.bus_address))
        .await
        .expect("connect to RAUC")
}

#[tokio::test(flavor = "current_thread")]
async fn installs_a_good_bundle_into_the_inactive_slot() {
    let sb = RaucSandbox::start();
    let bundle = sb.bundle("good", "1.1.0", "ota-agent-test");
    let rauc = connect(&sb).await;
    assert_eq!(rauc.boot_slot().await.expect("BootSlot"), "A");
    assert_eq!(rauc.operation().await.expect("Operation"), "idle");
    let mut seen: Vec<Progress> = Vec::new();
    rauc.install(&bundle, LIMIT, &mut |p| seen.push(p.clone()))
        .await
        .unwrap_or_else(|e| panic!("install failed: {e}\n{}", sb.rauc_log()));
    assert_eq!(
        sb.slot_version(&sb.slot_b),
        "1.1.0",
        "slot B holds the new image"
    );
    assert_eq!(
        sb.slot_version(&sb.slot_a),
        "1.0.0",
        "the booted slot is untouched"
    );
    assert!(
        seen.iter()
            .any(|p| p.message.contains("Copying image to rootfs.1")),
        "{seen:?}"
    );
    assert_eq!(seen.last().map(|p| p.percent), Some(100), "{seen:?}");
    assert_eq!(rauc.last_error().await.expect("LastError"), "");
    assert_eq!(rauc.primary().await.expect("GetPrimary"), "rootfs.1");
    let slots = rauc.slot_status().await.expect("GetSlotStatus");
    let b = slots
        .iter()
        .find(|s| s.name == "rootfs.1")
        .expect("rootfs.1");
    assert_eq!(b.get("bundle.version"), Some("1.1.0"));
    assert_eq!(b.get("bootname"), Some("B"));
    assert_eq!(b.get("state"), Some("inactive"));
    let a = slots
        .iter()
        .find(|s| s.name == "rootfs.0")
        .expect("rootfs.0");
    assert_eq!(a.get("state"), Some("booted"));
    assert!(
        sb.bootloader_calls().contains("set-primary B"),
        "{}",
        sb.bootloader_calls()
    );
    let (compatible, version) = rauc.bundle_info(&bundle).await.expect("Info");
    assert_eq!(
        (compatible.as_str(), version.as_str()),
        ("ota-agent-test", "1.1.0")
    );
}

#[tokio::test(flavor = "current_thread")]
async fn corrupt_bundle_surfaces_rauc_last_error() {
    let sb = RaucSandbox::start();
    let good = sb.bundle("good", "1.1.0", "ota-agent-test");
    let mut bytes = std::fs::read(&good).expect("read bundle");
    // Inside the squashfs payload, well before the signature at the end.
    let at = bytes.len() / 4;
    bytes[at..at + 4].copy_from_slice(b"XXXX");
    let corrupt = sb.path().join("corrupt.raucb");
    std::fs::write(&corrupt, bytes).expect("write");
    let rauc = connect(&sb).await;
    let err = rauc
        .install(&corrupt, LIMIT, &mut |_| {})
        .await
        .expect_err("corrupt bundle must fail");
    match &err {
        RaucError::InstallFailed(text) => {
            assert!(text.contains("signature verification failed"), "{text}")
        }
        other => panic!("expected InstallFailed, got {other:?}"),
    }
    assert!(
        err.to_string().starts_with("RAUC install failed: "),
        "{err}"
    );
    assert!(
        !sb.bootloader_calls().contains("set-primary"),
        "nothing may be activated"
    );
    assert_eq!(rauc.primary().await.expect("GetPrimary"), "rootfs.0");
}

#[tokio::test(flavor = "current_thread")]
async fn incompatible_and_missing_bundles_fail_with_rauc_text() {
    let sb = RaucSandbox::start();
    let other = sb.bundle("other", "9.9.9", "other-device");
    let rauc = connect(&sb).await;
    let err = rauc
        .install(&other, LIMIT, &mut |_| {})
        .await
        .expect_err("incompatible");
    assert!(
        matches!(&err, RaucError::InstallFailed(t) if t.contains("Compatible mismatch")),
        "{err:?}"
    );
    let err = rauc
        .install(&sb.path().join("nope.raucb"), LIMIT, &mut |_| {})
        .await
        .expect_err("missing");
    assert!(
        matches!(&err, RaucError::InstallFailed(t) if t.contains("No such file")),
        "{err:?}"
    );
    // After failures a good bundle still installs (state is clean).
    let good = sb.bundle("good", "1.1.0", "ota-agent-test");
    rauc.install(&good, LIMIT, &mut |_| {})
        .await
        .expect("good install after failures");
    assert_eq!(rauc.last_error().await.expect("LastError"), "");
}

#[tokio::test(flavor = "current_thread")]
async fn mark_good_bad_and_active() {
    let sb = RaucSandbox::start();
    let rauc = connect(&sb).await;
    let (slot, msg) = rauc
        .mark(MarkState::Good, "booted")
        .await
        .expect("Mark good booted");
    assert_eq!(slot, "rootfs.0");
    assert!(msg.contains("marked slot rootfs.0 as good"), "{msg}");
    assert!(
        sb.bootloader_calls().contains("set-state A good"),
        "{}",
        sb.bootloader_calls()
    );
    let (slot, _) = rauc
        .mark(MarkState::Bad, "other")
        .await
        .expect("Mark bad other");
    assert_eq!(slot, "rootfs.1");
    assert_eq!(
        std::fs::read_to_string(sb.bootloader_dir.join("state.B"))
            .expect("state")
            .trim(),
        "bad"
    );
    let (slot, msg) = rauc
        .mark(MarkState::Active, "other")
        .await
        .expect("Mark active other");
    assert_eq!(slot, "rootfs.1");
    assert!(msg.contains("activated"), "{msg}");
    assert_eq!(rauc.primary().await.expect("GetPrimary"), "rootfs.1");
    let err = rauc
        .mark(MarkState::Good, "rootfs.9")
        .await
        .expect_err("unknown slot");
    assert!(matches!(err, RaucError::Call(_)), "{err:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn missing_bus_is_reported_as_unavailable() {
    let dir = tempfile::tempdir().expect("tmp");
    let addr = format!("unix:path={}/none.sock", dir.path().display());
    let err = Rauc::connect_to(Some(&addr)).await.expect_err("no bus");
    assert!(matches!(err, RaucError::Unavailable(_)), "{err:?}");
    assert!(err.to_string().contains("rauc.service"), "{err}");
}

#[tokio::test(flavor = "current_thread")]
async fn bus_without_rauc_is_reported_as_unavailable() {
    let mut sb = RaucSandbox::start();
    sb.stop_rauc();
    let err = Rauc::connect_to(Some(&sb.bus_address))
        .await
        .expect_err("RAUC is gone");
    assert!(matches!(err, RaucError::Unavailable(_)), "{err:?}");
}
