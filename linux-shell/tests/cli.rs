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
fn help_lists_every_key_of_the_table_with_its_default() {
    let out = eyas().arg("--help").output().expect("run eyas");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let help = String::from_utf8_lossy(&out.stdout);
    for k in eyas_linux::config::KEYS {
        // `  key=default`, then its help on the same line or (a long one) the next.
        let listed = format!("  {}={}", k.name, k.default.shown());
        assert!(
            help.lines().any(|line| line
                .strip_prefix(&listed)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(' '))),
            "eyas --help lacks {listed:?}:\n{help}"
        );
    }
    assert!(
        help.contains("\n  bootloader_config=/etc/eyas/bootloader.conf\n"),
        "{help}"
    );
    assert!(help.contains("\n  installed_version=VERSION "), "{help}");
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

#[test]
fn daemon_notifies_systemd_pings_the_watchdog_and_stops_on_sigterm() {
    use std::os::unix::net::UnixDatagram;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_config(dir.path(), "");
    // A hawkBit that accepts and never answers: SIGTERM must work with a request in flight.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let held = std::thread::spawn(move || silent.accept().map(|(s, _)| s));
    let text = std::fs::read_to_string(&conf)
        .expect("read")
        .replace("127.0.0.1:1", &format!("127.0.0.1:{port}"));
    std::fs::write(&conf, text.replace("[client]\n", "[client]\nssl=false\n")).expect("write");
    let sock_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&sock_path).expect("bind notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let child = eyas()
        .arg("-c")
        .arg(&conf)
        .arg("-s")
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}/none.sock", dir.path().display()),
        )
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start eyas");
    let guard = common::Guard(child);
    let mut seen = String::new();
    let start = Instant::now();
    let mut buf = [0u8; 512];
    while start.elapsed() < Duration::from_secs(10)
        && !(seen.contains("READY=1") && seen.matches("WATCHDOG=1").count() >= 2)
    {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            seen.push('\n');
        }
    }
    assert!(seen.contains("READY=1"), "{seen}");
    let _connection = held
        .join()
        .expect("thread")
        .expect("eyas connected to the silent server");
    assert!(seen.matches("WATCHDOG=1").count() >= 2, "{seen}");
    let pid = guard.0.id().to_string();
    let mut guard = guard;
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success()
    );
    let t = Instant::now();
    let status = loop {
        if let Some(s) = guard.0.try_wait().expect("wait") {
            break s;
        }
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "eyas did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    while let Ok(n) = sock.recv(&mut buf) {
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(seen.contains("STOPPING=1"), "{seen}");
    let mut stderr = String::new();
    if let Some(mut e) = guard.0.stderr.take() {
        let _ = std::io::Read::read_to_string(&mut e, &mut stderr);
    }
    assert!(stderr.contains("SIGTERM: stopping"), "{stderr}");
    assert!(!stderr.contains("SECRET_TOKEN_123"), "{stderr}");
}

#[test]
fn bootloader_subcommand_delegates_to_bootloader_glue() {
    common::require_tool("grub-editenv");
    let dir = tempfile::tempdir().expect("tmp");
    let env = dir.path().join("grubenv");
    common::run(Command::new("grub-editenv").arg(&env).arg("create"));
    common::run(Command::new("grub-editenv").arg(&env).args([
        "set",
        "ORDER=A B",
        "A_OK=1",
        "A_TRY=0",
        "B_OK=1",
        "B_TRY=0",
    ]));
    let bl_conf = dir.path().join("bootloader.conf");
    std::fs::write(
        &bl_conf,
        format!(
            "bootloader = grub\ngrubenv = {}\nbootnames = A B\n",
            env.display()
        ),
    )
    .expect("write");
    // The main configuration names the backend configuration ([eyas] bootloader_config) …
    let conf = write_config(
        dir.path(),
        &format!("bootloader_config={}\n", bl_conf.display()),
    );
    let bl = |args: &[&str]| {
        eyas()
            .arg("-c")
            .arg(&conf)
            .arg("bootloader")
            .args(args)
            .env_remove("EYAS_BOOTLOADER_CONF")
            .output()
            .expect("run eyas")
    };
    let out = bl(&["get-primary"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "A");
    assert!(bl(&["set-primary", "B"]).status.success());
    assert_eq!(
        String::from_utf8_lossy(&bl(&["get-primary"]).stdout).trim(),
        "B"
    );
    let listed = common::run(Command::new("grub-editenv").arg(&env).arg("list"));
    assert!(listed.contains("ORDER=B A"), "{listed}");
    assert_eq!(bl(&["frobnicate"]).status.code(), Some(2), "usage error");
    // … and RAUC, which passes no -c, finds it through EYAS_BOOTLOADER_CONF.
    let out = eyas()
        .args(["-c", "/nonexistent.conf", "bootloader", "get-state", "B"])
        .env("EYAS_BOOTLOADER_CONF", &bl_conf)
        .output()
        .expect("run eyas");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "good");
}

/// `eyas -r -c conf` with a system bus address where no RAUC answers.
fn run_once_without_rauc(conf: &std::path::Path, dir: &std::path::Path) -> std::process::Output {
    eyas()
        .arg("-r")
        .arg("-c")
        .arg(conf)
        .env(
            "DBUS_SYSTEM_BUS_ADDRESS",
            format!("unix:path={}/none.sock", dir.display()),
        )
        .output()
        .expect("run eyas")
}

/// Every start with `ssl_verify=false` says clearly that nothing is checked.
#[test]
fn ssl_verify_false_warns_on_every_start() {
    let dir = tempfile::tempdir().expect("tmp");
    let conf = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&conf).expect("read");
    std::fs::write(
        &conf,
        text.replace("[client]\n", "[client]\nssl=true\nssl_verify=false\n"),
    )
    .expect("write");
    for _ in 0..2 {
        let out = run_once_without_rauc(&conf, dir.path());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "the server is unreachable: {stderr}"
        );
        assert!(
            stderr.contains("ssl_verify=false: TLS certificates and host names are NOT checked"),
            "{stderr}"
        );
    }
}

/// A poll answer that is not a base poll document: the run-once failed (exit 1), it did not
/// find "nothing to do".
#[test]
fn run_once_exits_non_zero_when_the_poll_answer_does_not_parse() {
    use common::http_server::{Behaviour, Server};
    let dir = tempfile::tempdir().expect("tmp");
    let mut b = Behaviour::default();
    b.routes.insert(
        "/DEFAULT/controller/v1/dev".into(),
        (200, b"{\"config\": <html>".to_vec(), None),
    );
    let server = Server::start(b);
    let conf = write_config(dir.path(), "");
    let text = std::fs::read_to_string(&conf).expect("read");
    std::fs::write(
        &conf,
        text.replace("127.0.0.1:1", &format!("127.0.0.1:{}", server.port))
            .replace("[client]\n", "[client]\nssl=false\n"),
    )
    .expect("write");
    let out = run_once_without_rauc(&conf, dir.path());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("does not parse"), "{stderr}");
}
