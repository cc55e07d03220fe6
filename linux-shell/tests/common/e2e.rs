//! Pieces shared by the end-to-end tests (`e2e.rs`, `e2e_flows.rs`, `e2e_faults.rs`): the eyas
//! configuration they all run with, a bounded async wait and the persisted record.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use eyas_core::record::Record;
use hil_tests::sim::{AssignOptions, SimHandle};

use super::broker::TOKEN;

/// Writes `<dir>/eyas.conf`: hawkbit-sim on 127.0.0.1:`port` (plain HTTP) as `target`/`token`,
/// downloads under `<dir>/dl`, the record in `<dir>/record.bin`, mosquitto on 127.0.0.1:`mqtt_port`.
/// `client_extra` and `eyas_extra` are appended (whole lines) to `[client]` and `[eyas]`.
pub fn write_config(
    dir: &Path,
    port: u16,
    target: &str,
    token: &str,
    mqtt_port: u16,
    client_extra: &str,
    eyas_extra: &str,
) -> PathBuf {
    let path = dir.join("eyas.conf");
    std::fs::create_dir_all(dir.join("dl")).expect("mkdir");
    std::fs::write(
        &path,
        format!(
            "[client]\nhawkbit_server=127.0.0.1:{port}\nssl=false\ntarget_name={target}\nauth_token={token}\n\
             bundle_download_location={d}/dl/bundle.raucb\nretry_wait=5\n{client_extra}\
             [device]\nproduct=eyas-e2e\nhw_revision=1\n\
             [eyas]\nrecord_path={d}/record.bin\nmqtt_host=127.0.0.1\nmqtt_port={mqtt_port}\nmqtt_access_token={TOKEN}\n{eyas_extra}",
            d = dir.display()
        ),
    )
    .expect("write config");
    path
}

/// One OS software module (`rootfs` `version`) with `bundle` as its artifact `artifact`, in a
/// distribution set (`image` `version`) assigned to `target` with `opts`; returns the action.
pub fn assign_os(
    sim: &SimHandle,
    target: &str,
    version: &str,
    artifact: &str,
    bundle: &Path,
    opts: AssignOptions,
) -> u64 {
    let sm = sim
        .create_software_module("rootfs", version, "os")
        .expect("module");
    sim.add_artifact_file(sm, artifact, bundle)
        .expect("artifact");
    let ds = sim
        .create_distribution_set("image", version, "os", &[sm])
        .expect("ds");
    sim.assign(target, ds, opts).expect("assign")
}

/// Starts the `eyas` binary (`-r` when `run_once`, `-d -c conf`) on the D-Bus `bus`, stdin and
/// stdout closed, stderr into `log`.
pub fn spawn_eyas(conf: &Path, bus: &str, run_once: bool, log: &Path) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_eyas"));
    if run_once {
        cmd.arg("-r");
    }
    cmd.arg("-d")
        .arg("-c")
        .arg(conf)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("stderr file"))
        .spawn()
        .expect("run eyas")
}

/// Runs `eyas -r -d -c conf` on the D-Bus `bus` to its end (at most 120 s, then it is killed and
/// the test fails); stderr goes to `<conf>.stderr` and into the returned output.
pub async fn run_once(conf: &Path, bus: &str) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_eyas"))
        .arg("-r")
        .arg("-d")
        .arg("-c")
        .arg(conf)
        .env("DBUS_SYSTEM_BUS_ADDRESS", bus)
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(conf.with_extension("stderr")).expect("stderr file"))
        .spawn()
        .expect("run eyas");
    let pid = child.id();
    let waited = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || child.wait_with_output()),
    )
    .await;
    let mut out = match waited {
        Ok(joined) => joined.expect("join").expect("wait for eyas"),
        Err(_) => {
            // Never leave an agent behind: kill it by its own pid, then fail.
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
            let log = std::fs::read_to_string(conf.with_extension("stderr")).unwrap_or_default();
            panic!("eyas -r did not finish within 120 s:\n{log}");
        }
    };
    out.stderr = std::fs::read(conf.with_extension("stderr")).unwrap_or_default();
    eprintln!(
        "--- eyas stderr ---\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Polls `f` every 50 ms without blocking the runtime the simulator runs on.
pub async fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// The record of a pending action in `<work>/record.bin`, if there is one and it decodes
/// (`None` too for the record of a closed action, which only remembers its id).
pub fn read_record(work: &Path) -> Option<Record> {
    std::fs::read(work.join("record.bin"))
        .ok()
        .and_then(|b| Record::decode(&b).ok())
        .filter(|r| r.phase != eyas_core::record::Phase::Closed)
}
