//! The `eyas` binary end to end: flags, configuration errors, `eyas status` against real RAUC.

mod common;

use std::process::Command;

use common::rauc_sandbox::RaucSandbox;

fn eyas() -> Command {
    Command::new(env!("CARGO_BIN_EXE_eyas"))
}

fn write_config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let path = dir.join("eyas.conf");
    std::fs::write(
        &path,
        format!(
            "[client]\nhawkbit_server=127.0.0.1:1\ntarget_name=dev\nauth_token=SECRET_TOKEN_123\nbundle_download_location={}/b.raucb\n\
             [device]\nproduct=test\n[eyas]\nrecord_path={}/record.bin\n{extra}",
            dir.display(),
            dir.display()
        ),
    )
    .expect("write config");
    path
}

#[test]
fn invalid_config_exits_2_with_file_line_key() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf2 = dir.path().join("bad.conf");
    std::fs::write(&conf2, "[client]\nhawkbit_server=h\ntarget_name=t\nauth_token=x\nbundle_download_location=/b\nssl=maybe\n[device]\na=b\n").expect("write");
    let out = eyas()
        .arg("-c")
        .arg(&conf2)
        .arg("check-config")
        .output()
        .expect("run eyas");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "{}:6: ssl: \"maybe\" is not a boolean",
            conf2.display()
        )),
        "{err}"
    );
}

#[test]
fn check_config_never_prints_the_token() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_config(dir.path(), "mqtt_host=h\nmqtt_access_token=MQTT_SECRET\n");
    let out = eyas()
        .arg("-c")
        .arg(&conf)
        .arg("-d")
        .arg("check-config")
        .output()
        .expect("run eyas");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(all.contains("target_name: \"dev\""), "{all}");
    assert!(
        !all.contains("SECRET_TOKEN_123") && !all.contains("MQTT_SECRET"),
        "{all}"
    );
}

#[test]
fn unknown_flag_and_version() {
    let out = eyas().arg("--bogus").output().expect("run eyas");
    assert_eq!(out.status.code(), Some(2));
    let out = eyas().arg("-v").output().expect("run eyas");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("eyas "));
}

#[test]
fn status_shows_record_and_rauc_slots() {
    let sb = RaucSandbox::start();
    let conf = write_config(sb.path(), "");
    let out = eyas()
        .arg("-c")
        .arg(&conf)
        .arg("status")
        .env("DBUS_SYSTEM_BUS_ADDRESS", &sb.bus_address)
        .output()
        .expect("run eyas");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("pending action: none"), "{text}");
    assert!(
        text.contains("booted slot: A   primary: rootfs.0"),
        "{text}"
    );
    assert!(text.contains("rootfs.1"), "{text}");

    // Without RAUC the status still shows the record but exits 1.
    let out = eyas()
        .arg("-c")
        .arg(&conf)
        .arg("status")
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}/none.sock", sb.path().display()),
        )
        .output()
        .expect("run eyas");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("RAUC is not reachable"));
}
