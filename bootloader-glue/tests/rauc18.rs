//! Real RAUC 1.8 with `bootloader=custom` and `eyas-bootloader` as its backend, on a private
//! system bus with file-backed slots (real-peers.md §2, boot-state.md §1.8). Everything runs in a
//! temp dir and is stopped by pid afterwards. Fails (does not skip) when rauc or dbus-daemon is
//! missing: CI installs them.

mod support;

use eyas_bootloader_glue::file::{BareboxFile, GrubFile, UbootFile, UbootOptions};
use eyas_bootloader_glue::uboot::{self, EnvFormat};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{TempDir, run, vectors};

/// A private bus + `rauc service`, stopped on drop.
struct Sandbox {
    dir: TempDir,
    bus_pid: Option<u32>,
    service: Option<Child>,
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(mut c) = self.service.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(pid) = self.bus_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

impl Sandbox {
    fn bus(&self) -> String {
        format!("unix:path={}", self.dir.join("bus.sock").display())
    }

    /// Sets up slots, system.conf, the backend wrapper and starts bus + service.
    fn start(tag: &str, bootloader_conf: &str, boot_slot: &str, bootnames: [&str; 2]) -> Self {
        Self::start_with(tag, bootloader_conf, boot_slot, bootnames, None)
    }

    fn start_with(
        tag: &str,
        bootloader_conf: &str,
        boot_slot: &str,
        bootnames: [&str; 2],
        keyring: Option<&Path>,
    ) -> Self {
        let dir = TempDir::new(tag);
        let d = dir.path().display().to_string();
        std::fs::write(
            dir.join("bus.conf"),
            format!(
                r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={d}/bus.sock</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_type="method_call"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#
            ),
        )
        .unwrap();
        for f in ["rootfs0.img", "rootfs1.img"] {
            std::fs::write(dir.join(f), vec![0u8; 1 << 20]).unwrap();
        }
        std::fs::create_dir_all(dir.join("mnt")).unwrap();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("bootloader.conf"), bootloader_conf).unwrap();
        let bin = env!("CARGO_BIN_EXE_eyas-bootloader");
        let wrapper = dir.join("backend.sh");
        std::fs::write(&wrapper, format!("#!/bin/sh\necho \"$@\" >> {d}/calls.log\nEYAS_BOOTLOADER_CONF={d}/bootloader.conf exec {bin} \"$@\"\n")).unwrap();
        run(Command::new("chmod").arg("+x").arg(&wrapper));
        std::fs::write(
            dir.join("system.conf"),
            format!(
                "[system]\ncompatible=eyas-test\nbootloader=custom\nmountprefix={d}/mnt\nstatusfile={d}/data/status.raucs\n\n\
                 {keyring}[handlers]\nbootloader-custom-backend={d}/backend.sh\n\n\
                 [slot.rootfs.0]\ndevice={d}/rootfs0.img\ntype=raw\nbootname={}\n\n\
                 [slot.rootfs.1]\ndevice={d}/rootfs1.img\ntype=raw\nbootname={}\n",
                bootnames[0],
                bootnames[1],
                keyring = keyring.map(|k| format!("[keyring]\npath={}\n\n", k.display())).unwrap_or_default()
            ),
        )
        .unwrap();
        let info = run(Command::new("dbus-daemon")
            .arg(format!("--config-file={d}/bus.conf"))
            .args(["--fork", "--print-address=1", "--print-pid=1"]));
        let bus_pid = info.lines().nth(1).and_then(|l| l.trim().parse().ok());
        let mut sb = Self {
            dir,
            bus_pid,
            service: None,
        };
        assert!(sb.bus_pid.is_some(), "dbus-daemon printed no pid: {info}");
        let log = std::fs::File::create(sb.dir.join("service.log")).unwrap();
        let child = Command::new("rauc")
            .arg("service")
            .arg(format!("--conf={d}/system.conf"))
            .arg(format!("--override-boot-slot={boot_slot}"))
            .env("DBUS_SYSTEM_BUS_ADDRESS", sb.bus())
            .env_remove("DBUS_STARTER_BUS_TYPE")
            .env_remove("DBUS_SESSION_BUS_ADDRESS")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("cannot start `rauc service` (CI installs rauc via .ci/install-deps)");
        sb.service = Some(child);
        let start = Instant::now();
        loop {
            let out = sb.rauc_cmd(&["status"]).output().unwrap();
            if out.status.success() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "rauc service did not come up: {}\n{}",
                String::from_utf8_lossy(&out.stderr),
                std::fs::read_to_string(sb.dir.join("service.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        sb
    }

    fn rauc_cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("rauc");
        c.args(args)
            .env("DBUS_SYSTEM_BUS_ADDRESS", self.bus())
            .env_remove("DBUS_STARTER_BUS_TYPE")
            .env_remove("DBUS_SESSION_BUS_ADDRESS");
        c
    }

    fn rauc(&self, args: &[&str]) -> String {
        let out = self.rauc_cmd(args).output().unwrap();
        assert!(
            out.status.success(),
            "rauc {args:?} failed: {}\n{}\nservice log:\n{}\nbackend calls:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.join("service.log")).unwrap_or_default(),
            std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn calls(&self) -> String {
        std::fs::read_to_string(self.dir.join("calls.log")).unwrap_or_default()
    }
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c == '\u{1b}' {
            for c in it.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn fw_printenv(cfg: &Path) -> String {
    run(Command::new("fw_printenv").arg("-c").arg(cfg))
}

fn current_flags(img: &Path) -> u8 {
    let b = std::fs::read(img).unwrap();
    let i = uboot::decode(&EnvFormat::redundant(0x4000), &b[..0x4000], &b[0x4000..]).unwrap();
    i.status[i.current].flags.unwrap()
}

#[test]
fn rauc18_custom_backend_uboot() {
    let tmp = TempDir::new("rauc-uboot-env");
    let img = tmp.join("uboot.env");
    support::copy_vector("uboot/rauc18.vec0b_A_left1.env", &img);
    let fwcfg = tmp.join("fw_env.config");
    std::fs::write(
        &fwcfg,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    let conf = format!(
        "bootloader = uboot\nfw-env-config = {}\nbootnames = A B\nboot-attempts = 3\nboot-attempts-primary = 3\n",
        fwcfg.display()
    );
    let sb = Sandbox::start("rauc-uboot", &conf, "A", ["A", "B"]);
    assert_eq!(current_flags(&img), 2);

    let out = sb.rauc(&["status", "mark-good", "booted"]);
    assert!(out.contains("marked slot rootfs.0 as good"), "{out}");
    assert_eq!(
        fw_printenv(&fwcfg),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=A B\n"
    );
    // Same bytes as RAUC 1.8's own U-Boot backend produced.
    assert!(
        std::fs::read(&img).unwrap()
            == std::fs::read(vectors().join("uboot/rauc18.vec_1_markgood_booted.env")).unwrap()
    );
    assert_eq!(current_flags(&img), 3, "one env write");

    let out = sb.rauc(&["status", "mark-bad", "other"]);
    assert!(out.contains("marked slot rootfs.1 as bad"), "{out}");
    assert_eq!(
        fw_printenv(&fwcfg),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A\n"
    );
    assert_eq!(
        current_flags(&img),
        4,
        "mark-bad is ONE env write (RAUC's own backend needs two)"
    );

    let out = sb.rauc(&["status", "mark-active", "other"]);
    assert!(out.contains("activated slot rootfs.1"), "{out}");
    assert_eq!(
        fw_printenv(&fwcfg),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
    assert_eq!(
        current_flags(&img),
        5,
        "mark-active is ONE env write (RAUC's own backend needs two)"
    );

    // RAUC's view through our get-primary/get-state.
    let status = strip_ansi(&sb.rauc(&["status", "--detailed"]));
    assert!(
        status.contains("rootfs.1") && status.contains("boot status: good"),
        "{status}"
    );
    let calls = sb.calls();
    for c in [
        "get-primary",
        "get-state A",
        "get-state B",
        "set-state A good",
        "set-state B bad",
        "set-primary B",
    ] {
        assert!(
            calls.lines().any(|l| l == c),
            "RAUC never called `{c}`: {calls}"
        );
    }
    // Reads never write: the flags only moved with the three set calls.
    let mut env = UbootFile::open(&fwcfg, UbootOptions::default()).unwrap();
    assert_eq!(env.read().unwrap().get("BOOT_ORDER"), Some("B A"));
}

#[test]
fn rauc18_custom_backend_grub_matches_rauc_grub_backend_bytes() {
    let tmp = TempDir::new("rauc-grub-env");
    let env = tmp.join("grubenv");
    support::copy_vector("grub/grubenv.rauc.A_TRY1", &env);
    let conf = format!(
        "bootloader = grub\ngrubenv = {}\nbootnames = A B\n",
        env.display()
    );
    let sb = Sandbox::start("rauc-grub", &conf, "A", ["A", "B"]);
    let steps: [(&[&str], &str); 4] = [
        (
            &["status", "mark-good", "booted"],
            "grub/grubenv.rauc.1_markgood",
        ),
        (
            &["status", "mark-active", "other"],
            "grub/grubenv.rauc.2_markactive_other",
        ),
        (
            &["status", "mark-bad", "other"],
            "grub/grubenv.rauc.3_markbad_other",
        ),
        (
            &["status", "mark-active", "rootfs.0"],
            "grub/grubenv.rauc.4_markactive_A",
        ),
    ];
    for (args, want) in steps {
        sb.rauc(args);
        assert!(
            std::fs::read(&env).unwrap() == std::fs::read(vectors().join(want)).unwrap(),
            "after rauc {args:?}: grubenv differs from {want}"
        );
        let list = run(Command::new("grub-editenv").arg(&env).arg("list"));
        let ours: String = GrubFile::new(&env)
            .read()
            .unwrap()
            .0
            .iter()
            .map(|(n, v)| format!("{n}={v}\n"))
            .collect();
        assert_eq!(list, ours);
    }
}

#[test]
fn rauc18_custom_backend_barebox_matches_rauc_barebox_backend_bytes() {
    let tmp = TempDir::new("rauc-bb-state");
    let img = tmp.join("state.img");
    std::fs::write(&img, vec![0u8; 0x8000]).unwrap();
    let dtb = vectors().join("barebox/state-partuuid.dtb");
    let conf = format!(
        "bootloader = barebox\nbarebox-dtb = {}\nbarebox-storage = {}\nbootnames = system0 system1\n",
        dtb.display(),
        img.display()
    );
    let sb = Sandbox::start("rauc-bb", &conf, "system0", ["system0", "system1"]);
    let steps: [(&[&str], &str); 4] = [
        (
            &["status", "mark-good", "booted"],
            "barebox/rauc.1_markgood.img",
        ),
        (
            &["status", "mark-active", "other"],
            "barebox/rauc.2_markactive_other.img",
        ),
        (
            &["status", "mark-bad", "other"],
            "barebox/rauc.3_markbad_other.img",
        ),
        (
            &["status", "mark-active", "rootfs.0"],
            "barebox/rauc.4_markactive_system0.img",
        ),
    ];
    for (args, want) in steps {
        sb.rauc(args);
        assert!(
            std::fs::read(&img).unwrap() == std::fs::read(vectors().join(want)).unwrap(),
            "after rauc {args:?}: state differs from {want}"
        );
    }
    let bb = BareboxFile::open(&dtb, None, &img).unwrap();
    let v = bb.read().unwrap();
    assert_eq!(bb.desc().get(&v, "bootstate.system1.priority"), Some(0));
}

/// A signed plain bundle with one 64 KiB raw image (self-signed test certificate).
fn make_bundle(dir: &TempDir) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let cnf = dir.join("openssl.cnf");
    std::fs::write(
        &cnf,
        "[ req ]\ndistinguished_name = dn\n[ dn ]\n[ v3_ca ]\nbasicConstraints = critical,CA:true\nkeyUsage = critical,keyCertSign,cRLSign,digitalSignature\nsubjectKeyIdentifier = hash\n",
    )
    .unwrap();
    let (key, cert) = (dir.join("key.pem"), dir.join("cert.pem"));
    run(Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "3650",
            "-subj",
            "/O=eyas test/CN=eyas test signer",
            "-extensions",
            "v3_ca",
            "-keyout",
        ])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .arg("-config")
        .arg(&cnf));
    let content = dir.join("bundle");
    std::fs::create_dir_all(&content).unwrap();
    let image: Vec<u8> = (0..65536u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    std::fs::write(content.join("rootfs.img"), &image).unwrap();
    std::fs::write(
        content.join("manifest.raucm"),
        "[update]\ncompatible=eyas-test\nversion=1.1.0\n\n[bundle]\nformat=plain\n\n[image.rootfs]\nfilename=rootfs.img\n",
    )
    .unwrap();
    let bundle = dir.join("update.raucb");
    run(Command::new("rauc")
        .arg("bundle")
        .arg(format!("--cert={}", cert.display()))
        .arg(format!("--key={}", key.display()))
        .arg(&content)
        .arg(&bundle));
    (bundle, cert, image)
}

/// A real `rauc install` into slot B through eyas-bootloader: RAUC marks B bad before writing
/// and active afterwards, each one U-Boot env write; the env then boots B with fresh attempts.
#[test]
fn rauc18_install_with_custom_backend_uboot() {
    let tmp = TempDir::new("rauc-install-env");
    let img = tmp.join("uboot.env");
    support::copy_vector("uboot/rauc18.vec_1_markgood_booted.env", &img);
    let fwcfg = tmp.join("fw_env.config");
    std::fs::write(
        &fwcfg,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    let (bundle, cert, image) = make_bundle(&tmp);
    let conf = format!(
        "bootloader = uboot\nfw-env-config = {}\nbootnames = A B\n",
        fwcfg.display()
    );
    let sb = Sandbox::start_with("rauc-install", &conf, "A", ["A", "B"], Some(&cert));
    assert_eq!(current_flags(&img), 3);
    let out = sb.rauc(&["install", &bundle.display().to_string()]);
    assert!(out.contains("succeeded"), "{out}");
    assert_eq!(
        fw_printenv(&fwcfg),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
    assert_eq!(
        current_flags(&img),
        5,
        "mark-bad B before writing + mark-active B after: two env writes"
    );
    let slot = std::fs::read(sb.dir.join("rootfs1.img")).unwrap();
    assert!(
        slot[..image.len()] == image[..],
        "the image landed in slot B"
    );
    let calls = sb.calls();
    let sets: Vec<&str> = calls.lines().filter(|l| l.starts_with("set-")).collect();
    assert_eq!(sets, ["set-state B bad", "set-primary B"], "{calls}");
}
