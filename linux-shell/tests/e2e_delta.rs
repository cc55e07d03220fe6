//! Delta updates end to end (issue 12): RAUC casync bundles through hawkBit. Real RAUC 1.8 (private
//! bus, file-backed slots, `[casync] storepath` pointing at nginx), bundles made with `rauc bundle` +
//! `rauc convert`, hawkbit-sim in process, mosquitto, and the `eyas` binary. Bytes a device fetched
//! are counted from nginx's access log.
//!
//! Plain bundles only: this kernel has no device-mapper (verity casync bundles cannot be mounted) and
//! Debian's RAUC 1.8 has no streaming; eyas downloads the small index bundle from hawkBit and casync,
//! run by RAUC, fetches the chunks from the store (shared/reference/delta.md §1).

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::broker::Broker;
use common::e2e::{assign_os, run_once, wait_until, write_config};
use common::nginx::Nginx;
use common::rauc_sandbox::{RaucSandbox, mkfs_reproducible};
use hil_tests::sim::{Sim, SimConfig, SimHandle};

const IMAGE_SIZE: u64 = 16 << 20;

/// Releases 1 and 2 of a 16 MiB rootfs: 28 "binaries" (≈ 8.6 MB of random bytes) and a version
/// file; release 2 replaces one 256 KiB file and bumps the version (a patch).
struct Releases {
    v1_image: PathBuf,
    v2_image: PathBuf,
    v1_plain: PathBuf,
    v2_plain: PathBuf,
    v2_index: PathBuf,
    /// Chunks release 2 added to the store (those a device seeded with release 1 needs).
    v2_new_chunks: Vec<PathBuf>,
}

/// The shared chunk store (readable by nginx's workers) and nginx serving it.
fn store_and_nginx(limit_rate: Option<&str>) -> (tempfile::TempDir, Nginx) {
    let www = tempfile::Builder::new()
        .prefix("eyas-store-")
        .tempdir()
        .expect("tmp");
    std::process::Command::new("chmod")
        .arg("755")
        .arg(www.path())
        .status()
        .expect("chmod");
    let nginx = Nginx::start(www.path(), limit_rate);
    (www, nginx)
}

fn tree(dir: &Path, version: &str, patched: bool) {
    std::fs::create_dir_all(dir.join("etc")).expect("mkdir");
    std::fs::create_dir_all(dir.join("usr/bin")).expect("mkdir");
    std::fs::write(dir.join("etc/sw-version"), format!("{version}\n")).expect("write");
    for i in 0..28u32 {
        let len = 160_000 + (i as usize * 37_000) % 300_000;
        std::fs::write(
            dir.join(format!("usr/bin/tool{i:02}")),
            common::test_bytes(len, 1000 + i),
        )
        .expect("write");
    }
    let seed = if patched { 2 } else { 1 };
    std::fs::write(
        dir.join("usr/bin/patchme"),
        common::test_bytes(256 << 10, seed),
    )
    .expect("write");
}

fn releases(sb: &RaucSandbox, store: &Path) -> Releases {
    let d = sb.path().join("releases");
    let image = |name: &str, version: &str, patched: bool| {
        let t = d.join(format!("tree-{name}"));
        tree(&t, version, patched);
        let img = d.join(format!("{name}.ext4"));
        mkfs_reproducible(&t, &img, "16M");
        img
    };
    std::fs::create_dir_all(&d).expect("mkdir");
    let v1_image = image("v1", "1.0.0", false);
    let v2_image = image("v2", "2.0.0", true);
    let v1_plain = sb.bundle_from_image("v1-plain", "1.0.0", &v1_image);
    let v2_plain = sb.bundle_from_image("v2-plain", "2.0.0", &v2_image);
    let castr = store.join("store.castr");
    sb.casync_convert(&v1_plain, &store.join("v1.raucb"), &castr);
    let before = chunks(&castr);
    let v2_index = store.join("v2.raucb");
    sb.casync_convert(&v2_plain, &v2_index, &castr);
    let v2_new_chunks = chunks(&castr).difference(&before).cloned().collect();
    Releases {
        v1_image,
        v2_image,
        v1_plain,
        v2_plain,
        v2_index,
        v2_new_chunks,
    }
}

fn chunks(store: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for d in std::fs::read_dir(store).expect("store").flatten() {
        for c in std::fs::read_dir(d.path()).into_iter().flatten().flatten() {
            if c.path().extension().is_some_and(|e| e == "cacnk") {
                out.insert(c.path());
            }
        }
    }
    out
}

/// `slot` holds `image` byte for byte (casync writes a file slot without truncating it).
fn assert_slot_holds(slot: &Path, image: &Path) {
    let want = std::fs::read(image).expect("image");
    let got = std::fs::read(slot).expect("slot");
    assert!(got.len() >= want.len(), "slot shorter than the image");
    assert!(
        got[..want.len()] == want[..],
        "slot {} differs from {}",
        slot.display(),
        image.display()
    );
}

fn size(p: &Path) -> u64 {
    std::fs::metadata(p).expect("stat").len()
}

fn set_slot_len(p: &Path) {
    std::fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|f| f.set_len(IMAGE_SIZE))
        .expect("slot size");
}

async fn run(conf: &Path, sb: &RaucSandbox) -> std::process::Output {
    run_once(conf, &sb.bus_address).await
}

/// `eyas -r` started in the background, returned once casync has fetched its first chunk.
async fn eyas_until_first_chunk(
    conf: &Path,
    bus: &str,
    nginx: &Nginx,
) -> tokio::task::JoinHandle<std::process::Output> {
    let eyas = tokio::spawn({
        let conf = conf.to_owned();
        let bus = bus.to_owned();
        async move { run_once(&conf, &bus).await }
    });
    wait_until(
        "casync to fetch its first chunk",
        Duration::from_secs(60),
        || !nginx.chunk_hits().is_empty(),
    )
    .await;
    eyas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patch_release_installs_by_casync_and_fetches_a_small_fraction() {
    let (www, nginx) = store_and_nginx(None);
    let mut sb = RaucSandbox::start_casync(&nginx.url("store.castr/"));
    set_slot_len(&sb.slot_b);
    let rel = releases(&sb, www.path());
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-delta", None).expect("target");
    let work = tempfile::tempdir().expect("tmp");
    let conf = write_config(
        work.path(),
        sim.addr().port(),
        "dev-delta",
        &token,
        broker.port,
        "",
        "",
    );

    // Release 1: the full plain bundle into slot B, then "reboot" into it.
    let a1 = assign_os(
        &sim,
        "dev-delta",
        "1.0.0",
        "rootfs-1.0.0.raucb",
        &rel.v1_plain,
        Default::default(),
    );
    assert_eq!(run(&conf, &sb).await.status.code(), Some(0), "release 1");
    assert_slot_holds(&sb.slot_b, &rel.v1_image);
    sb.reboot_into("B");
    assert_eq!(run(&conf, &sb).await.status.code(), Some(0), "after boot");
    wait_until("release 1 to finish", Duration::from_secs(10), || {
        sim.action_status(a1).as_deref() == Some("finished")
    })
    .await;
    assert!(
        nginx.chunk_hits().is_empty(),
        "a plain bundle fetches no chunks"
    );

    // Release 2: the casync index bundle is the artifact; casync seeds from the booted slot B.
    let a2 = assign_os(
        &sim,
        "dev-delta",
        "2.0.0",
        "rootfs-2.0.0.raucb",
        &rel.v2_index,
        Default::default(),
    );
    assert_eq!(run(&conf, &sb).await.status.code(), Some(0), "release 2");
    assert_slot_holds(&sb.slot_a, &rel.v2_image);
    assert_eq!(sb.slot_version(&sb.slot_a), "2.0.0");
    assert_eq!(sb.bootloader_primary(), "A", "slot A activated");
    let hits = nginx.chunk_hits();
    assert!(hits.iter().all(|h| h.status == 200), "{hits:?}");
    let chunk_bytes: u64 = hits.iter().map(|h| h.body_bytes).sum();
    let fetched = size(&rel.v2_index) + chunk_bytes;
    let full = size(&rel.v2_plain);
    let fraction = fetched as f64 / full as f64;
    eprintln!(
        "delta: index bundle {} B + {} chunks {chunk_bytes} B = {fetched} B of the {full} B full bundle ({:.2} %); store {} chunks, {} new for release 2",
        size(&rel.v2_index),
        hits.len(),
        100.0 * fraction,
        chunks(&www.path().join("store.castr")).len(),
        rel.v2_new_chunks.len(),
    );
    assert!(
        !hits.is_empty() && hits.len() <= rel.v2_new_chunks.len(),
        "only chunks release 1 lacks are fetched: {} of {} new",
        hits.len(),
        rel.v2_new_chunks.len()
    );
    assert!(
        fraction < 0.10,
        "a one-file patch fetched {fetched} of {full} B"
    );

    sb.reboot_into("A");
    assert_eq!(run(&conf, &sb).await.status.code(), Some(0), "after boot");
    wait_until("release 2 to finish", Duration::from_secs(10), || {
        sim.action_status(a2).as_deref() == Some("finished")
    })
    .await;
    sim.shutdown().await;
}

/// A device booted from slot A holding release 1 (copied in, as a factory image), release 2's index
/// bundle deployed to it, eyas run once; returns the failed action's hawkBit messages.
struct Fault {
    sb: RaucSandbox,
    sim: SimHandle,
    action: u64,
    conf: PathBuf,
    _work: tempfile::TempDir,
    _broker: Broker,
}

async fn fault_setup(nginx: &Nginx, www: &Path) -> (Fault, Releases) {
    let sb = RaucSandbox::start_casync(&nginx.url("store.castr/"));
    let rel = releases(&sb, www);
    std::fs::copy(&rel.v1_image, &sb.slot_a).expect("release 1 in slot A");
    set_slot_len(&sb.slot_b);
    let broker = Broker::start();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-fault", None).expect("target");
    let work = tempfile::tempdir().expect("tmp");
    let conf = write_config(
        work.path(),
        sim.addr().port(),
        "dev-fault",
        &token,
        broker.port,
        "",
        "",
    );
    let action = assign_os(
        &sim,
        "dev-fault",
        "2.0.0",
        "rootfs-2.0.0.raucb",
        &rel.v2_index,
        Default::default(),
    );
    (
        Fault {
            sb,
            sim,
            action,
            conf,
            _work: work,
            _broker: broker,
        },
        rel,
    )
}

impl Fault {
    /// The action failed, hawkBit got RAUC's reason, and nothing was activated: slot B is marked bad,
    /// the primary is still A.
    async fn assert_failed_cleanly(&self) -> String {
        wait_until("the action to fail", Duration::from_secs(10), || {
            self.sim.action_status(self.action).as_deref() == Some("error")
        })
        .await;
        let messages = self.sim.action_messages(self.action).join("\n");
        assert!(
            messages.contains("failed to run casync extract"),
            "RAUC's LastError reaches hawkBit: {messages}"
        );
        assert_eq!(self.sb.bootloader_primary(), "A", "nothing activated");
        assert_eq!(self.sb.bootloader_state("B"), "bad", "slot B not bootable");
        assert!(
            !self.sb.bootloader_calls().contains("set-primary"),
            "{}",
            self.sb.bootloader_calls()
        );
        messages
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chunk_store_down_mid_install_fails_the_action_and_a_retry_pays_again() {
    // 32 KB/s: each 64 KiB chunk takes about 2 s, so the store can go down between chunks.
    let (www, mut nginx) = store_and_nginx(Some("32k"));
    let (mut f, rel) = fault_setup(&nginx, www.path()).await;
    let eyas = eyas_until_first_chunk(&f.conf, &f.sb.bus_address, &nginx).await;
    let before = nginx.chunk_hits().len();
    nginx.stop();
    let out = eyas.await.expect("join");
    assert_eq!(
        out.status.code(),
        Some(1),
        "the failed install fails the run"
    );
    f.assert_failed_cleanly().await;
    assert!(
        f.sb.rauc_log().contains("Failed to acquire"),
        "casync's cause is in RAUC's log: {}",
        f.sb.rauc_log()
    );
    eprintln!("store went down after {before} chunk(s)");

    // The store is back and the release is deployed again, in the same boot (same RAUC service).
    nginx.restart();
    let fetched_before_retry = nginx.chunk_hits().len();
    let retry = assign_os(
        &f.sim,
        "dev-fault",
        "2.0.0-retry",
        "rootfs-2.0.0.raucb",
        &rel.v2_index,
        Default::default(),
    );
    // RAUC 1.8 has lost the configured storepath after its first casync install of this service
    // run (it logs "Using casync store path: '<garbage>'"): casync fails before fetching anything.
    let out = run(&f.conf, &f.sb).await;
    assert_eq!(out.status.code(), Some(1), "a retry in the same RAUC run");
    assert_eq!(
        nginx.chunk_hits().len(),
        fetched_before_retry,
        "nothing fetched"
    );
    wait_until("the retry to fail", Duration::from_secs(10), || {
        f.sim.action_status(retry).as_deref() == Some("error")
    })
    .await;
    // casync's own message depends on the garbage RAUC passes as the store ("Failed to run
    // synchronizer: No such file or directory", "Failed to set store: Invalid argument", …), or
    // RAUC crashes on it (eyas reports "RAUC stopped during the install"); what is certain is a
    // second failed install that fetched nothing (checked above)
    let log = f.sb.rauc_log();
    let failed_runs = log
        .lines()
        .filter(|l| l.contains("rauc-WARNING") && l.contains("failed to run casync extract"))
        .count();
    let eyas_log = String::from_utf8_lossy(&out.stderr);
    assert!(
        failed_runs == 2 || eyas_log.contains("RAUC stopped during the install"),
        "the cut install and the retry: {log}\n{eyas_log}"
    );
    // After a restart of RAUC (as after a reboot) it installs, and pays again for the chunks it had
    // fetched before the cut: RAUC passes --seed-output=no, casync keeps no cache between runs.
    f.sb.reboot_into("A");
    let fetched_before_third = nginx.chunk_hits().len();
    let third = assign_os(
        &f.sim,
        "dev-fault",
        "2.0.0-third",
        "rootfs-2.0.0.raucb",
        &rel.v2_index,
        Default::default(),
    );
    let out = run(&f.conf, &f.sb).await;
    assert_eq!(out.status.code(), Some(0), "installed after RAUC restarted");
    assert_slot_holds(&f.sb.slot_b, &rel.v2_image);
    let third_fetch = nginx.chunk_hits().len() - fetched_before_third;
    eprintln!(
        "after the cut ({before} chunk(s) fetched), the retry fetched {third_fetch} of the {} new chunks",
        rel.v2_new_chunks.len()
    );
    assert_eq!(
        third_fetch,
        rel.v2_new_chunks.len(),
        "a retry fetches every needed chunk again"
    );
    assert_ne!(f.sim.action_status(third).as_deref(), Some("error"));
    f.sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_chunk_fails_the_action() {
    let (www, nginx) = store_and_nginx(None);
    let (f, rel) = fault_setup(&nginx, www.path()).await;
    // A valid chunk file of the store with the wrong content for its name (digest).
    let [victim, donor, ..] = &rel.v2_new_chunks[..] else {
        panic!("release 2 added fewer than 2 chunks")
    };
    std::fs::copy(donor, victim).expect("corrupt a chunk");
    let out = run(&f.conf, &f.sb).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "the failed install fails the run"
    );
    f.assert_failed_cleanly().await;
    assert!(
        f.sb.rauc_log().contains("Bad message"),
        "casync rejected the chunk: {}",
        f.sb.rauc_log()
    );
    f.sim.shutdown().await;
}

/// RAUC 1.8 does not fail an install whose seed it cannot use: it logs `Cannot use … as seed device`
/// and casync fetches the whole image. The update succeeds at full cost; this pins that cost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_seed_slot_costs_a_full_fetch() {
    let (www, nginx) = store_and_nginx(None);
    let (f, rel) = fault_setup(&nginx, www.path()).await;
    std::fs::remove_file(&f.sb.slot_a).expect("the seed device is gone");
    let out = run(&f.conf, &f.sb).await;
    assert_eq!(out.status.code(), Some(0), "installed without a seed");
    assert_slot_holds(&f.sb.slot_b, &rel.v2_image);
    assert!(
        f.sb.rauc_log().contains("as seed device"),
        "RAUC says why: {}",
        f.sb.rauc_log()
    );
    let fetched: u64 = nginx.chunk_hits().iter().map(|h| h.body_bytes).sum();
    let full = size(&rel.v2_plain);
    eprintln!(
        "no seed: {fetched} B of chunks for a {full} B full bundle ({:.1} %)",
        100.0 * fetched as f64 / full as f64
    );
    assert!(
        fetched * 10 >= full * 9,
        "without a seed nearly all of the image is fetched: {fetched} of {full}"
    );
    f.sim.shutdown().await;
}

/// With `[eyas] casync_store`, RAUC's `[casync] storepath` names eyas' chunk relay: casync's chunk
/// requests go through eyas' own HTTP client, which retries a store that is away for a moment, and
/// the relay counts the chunk bytes. The update's bytes over the air (index bundle + chunks) reach
/// ThingsBoard once RAUC is done and hawkBit in the closed feedback after the reboot; both must
/// equal what nginx served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relayed_chunks_are_counted_and_a_short_store_outage_is_retried() {
    // 32 KB/s: each 64 KiB chunk takes about 2 s, so the store can go away mid-chunk.
    let (www, mut nginx) = store_and_nginx(Some("32k"));
    let relay_port = common::free_port();
    let mut sb = RaucSandbox::start_casync(&format!("http://127.0.0.1:{relay_port}/"));
    let rel = releases(&sb, www.path());
    std::fs::copy(&rel.v1_image, &sb.slot_a).expect("release 1 in slot A");
    set_slot_len(&sb.slot_b);
    let broker = Broker::start();
    let telemetry = broker.observer();
    let sim = Sim::start(SimConfig::default()).await.expect("hawkbit-sim");
    let token = sim.create_target("dev-relay", None).expect("target");
    let work = tempfile::tempdir().expect("tmp");
    let conf = write_config(
        work.path(),
        sim.addr().port(),
        "dev-relay",
        &token,
        broker.port,
        "",
        &format!(
            "casync_store={}\ncasync_relay=127.0.0.1:{relay_port}\n",
            nginx.url("store.castr/")
        ),
    );
    let action = assign_os(
        &sim,
        "dev-relay",
        "2.0.0",
        "rootfs-2.0.0.raucb",
        &rel.v2_index,
        Default::default(),
    );
    let eyas = eyas_until_first_chunk(&conf, &sb.bus_address, &nginx).await;
    // away for 1.5 s: within the relay's backoff (1 s, then 2 s), not casync's problem
    nginx.stop();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    nginx.restart();
    let out = eyas.await.expect("join");
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "installed despite the outage");
    assert!(
        log.contains("(attempt 1 of 4)"),
        "the relay retried the store: {log}"
    );
    assert_slot_holds(&sb.slot_b, &rel.v2_image);

    // What the relay passed on is what nginx served in full: the last response per chunk (a
    // response cut by the outage is logged with the bytes sent before it).
    let hits = nginx.chunk_hits();
    let mut last = std::collections::BTreeMap::new();
    for h in &hits {
        last.insert(h.uri.clone(), h.body_bytes);
    }
    let chunk_bytes: u64 = last.values().sum();
    let update_bytes = size(&rel.v2_index) + chunk_bytes;
    eprintln!(
        "relay: {} chunk requests at nginx for {} chunks, {chunk_bytes} B; update {update_bytes} B",
        hits.len(),
        last.len()
    );
    assert!(
        log.contains(&format!(
            "this update fetched {update_bytes} bytes so far: {} of artifacts, {chunk_bytes} of casync chunks",
            size(&rel.v2_index)
        )),
        "{log}"
    );

    // after the reboot the final telemetry sample and the closed feedback carry the same figure
    // (kept beside the record), once
    sb.reboot_into("B");
    assert_eq!(run(&conf, &sb).await.status.code(), Some(0), "after boot");
    wait_until("the action to finish", Duration::from_secs(10), || {
        sim.action_status(action).as_deref() == Some("finished")
    })
    .await;
    telemetry.wait_lines(1, Duration::from_secs(10));
    wait_until("the success sample", Duration::from_secs(10), || {
        telemetry
            .values()
            .iter()
            .any(|v| v.get("ota_status").is_some_and(|s| s == "success"))
    })
    .await;
    let values = telemetry.values();
    let samples: Vec<_> = values
        .iter()
        .filter(|v| v.get("update_bytes").is_some())
        .collect();
    assert_eq!(samples.len(), 1, "one update_bytes sample: {values:#?}");
    assert_eq!(samples[0]["ota_status"], "success", "{}", samples[0]);
    assert_eq!(samples[0]["update_bytes"], update_bytes, "{}", samples[0]);
    assert_eq!(samples[0]["chunk_bytes"], chunk_bytes, "{}", samples[0]);
    let messages = sim.action_messages(action);
    assert!(
        messages
            .iter()
            .any(|m| m == &format!("update_bytes={update_bytes}")),
        "{messages:#?}"
    );
    sim.shutdown().await;
}

/// RAUC that dies mid-install never sends `Completed`. eyas notices within seconds (RAUC's bus name
/// loses its owner) and fails the action with that reason, instead of waiting out its one-hour
/// install limit; nothing was activated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rauc_dying_mid_install_fails_the_action_within_seconds() {
    let (www, nginx) = store_and_nginx(Some("32k"));
    let (mut f, _rel) = fault_setup(&nginx, www.path()).await;
    let eyas = eyas_until_first_chunk(&f.conf, &f.sb.bus_address, &nginx).await;
    let killed = std::time::Instant::now();
    f.sb.stop_rauc();
    let out = eyas.await.expect("join");
    let waited = killed.elapsed();
    let log = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "the install failed: {log}");
    assert!(
        waited < Duration::from_secs(30),
        "eyas noticed after {waited:?}"
    );
    wait_until("the action to fail", Duration::from_secs(10), || {
        f.sim.action_status(f.action).as_deref() == Some("error")
    })
    .await;
    let messages = f.sim.action_messages(f.action).join("\n");
    assert!(
        messages.contains("RAUC stopped during the install"),
        "the reason reaches hawkBit: {messages}"
    );
    assert_eq!(f.sb.bootloader_primary(), "A", "nothing activated");
    eprintln!("eyas noticed RAUC's end after {waited:?}");
}
