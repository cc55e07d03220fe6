//! `rauc_backend::run` and the `eyas-bootloader` binary without RAUC: every verb, the config
//! file, and the error paths (exit codes and messages).

mod support;

use eyas_bootloader_glue::rauc_backend::{
    self, BackendConfig, EXIT_ERROR, EXIT_OK, EXIT_USAGE, Storage,
};
use std::path::Path;
use std::process::Command;
use support::{TempDir, run};

struct Env {
    dir: TempDir,
    cfg: BackendConfig,
}

fn uboot_env(start_vector: &str) -> Env {
    let dir = TempDir::new("backend");
    let img = dir.join("uboot.env");
    support::copy_vector(start_vector, &img);
    let fw = dir.join("fw_env.config");
    std::fs::write(
        &fw,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    std::fs::write(
        dir.join("cmdline"),
        "console=ttyS0 root=/dev/mmcblk0p2 rauc.slot=B quiet\n",
    )
    .unwrap();
    let text = format!(
        "# test\nbootloader = uboot\nfw-env-config = {}\nbootnames = A B\ncmdline = {}\n",
        fw.display(),
        dir.join("cmdline").display()
    );
    std::fs::write(dir.join("bootloader.conf"), &text).unwrap();
    let cfg = BackendConfig::parse(&text, &dir.join("bootloader.conf")).unwrap();
    Env { dir, cfg }
}

fn call(cfg: &BackendConfig, args: &[&str]) -> (i32, String, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let rc = rauc_backend::run(args, cfg, &mut out, &mut err);
    (
        rc,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

fn fw_printenv(dir: &TempDir) -> String {
    run(Command::new("fw_printenv")
        .arg("-c")
        .arg(dir.join("fw_env.config")))
}

#[test]
fn every_verb_on_a_uboot_env() {
    let e = uboot_env("uboot/rauc18.vec0b_A_left1.env");
    assert_eq!(
        call(&e.cfg, &["get-primary"]),
        (EXIT_OK, "A\n".into(), String::new())
    );
    assert_eq!(call(&e.cfg, &["get-state", "A"]).1, "good\n");
    assert_eq!(call(&e.cfg, &["get-current"]).1, "B\n");
    assert_eq!(call(&e.cfg, &["set-state", "A", "good"]).0, EXIT_OK);
    assert_eq!(
        fw_printenv(&e.dir),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=A B\n"
    );
    assert_eq!(call(&e.cfg, &["set-state", "B", "bad"]).0, EXIT_OK);
    assert_eq!(
        fw_printenv(&e.dir),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A\n"
    );
    assert_eq!(call(&e.cfg, &["get-state", "B"]).1, "bad\n");
    // The last bootable slot cannot be marked bad.
    let (rc, out, err) = call(&e.cfg, &["set-state", "A", "bad"]);
    assert_eq!((rc, out.as_str()), (EXIT_ERROR, ""));
    assert!(err.contains("last bootable slot"), "{err}");
    assert_eq!(
        fw_printenv(&e.dir),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=0\nBOOT_ORDER=A\n"
    );
    assert_eq!(call(&e.cfg, &["set-primary", "B"]).0, EXIT_OK);
    assert_eq!(
        fw_printenv(&e.dir),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=B A\n"
    );
    assert_eq!(call(&e.cfg, &["get-primary"]).1, "B\n");
    assert_eq!(call(&e.cfg, &["get-state", "B"]).1, "good\n");
}

#[test]
fn usage_and_input_errors() {
    let e = uboot_env("uboot/rauc18.vec0b_A_left1.env");
    for bad in [
        &[][..],
        &["get-primary", "x"],
        &["set-state", "A"],
        &["set-state", "A", "meh"],
        &["frobnicate"],
    ] {
        let (rc, _, err) = call(&e.cfg, bad);
        assert_eq!(rc, EXIT_USAGE, "{bad:?}");
        assert!(err.contains("expected get-primary"), "{err}");
    }
    let (rc, _, err) = call(&e.cfg, &["get-state", "C"]);
    assert_eq!(rc, EXIT_ERROR);
    assert!(err.contains("unknown bootname `C`"), "{err}");
    // Corrupt env: both copies bad -> clear error, nothing written.
    let img = e.dir.join("uboot.env");
    std::fs::write(&img, vec![0u8; 0x8000]).unwrap();
    let (rc, _, err) = call(&e.cfg, &["set-primary", "A"]);
    assert_eq!(rc, EXIT_ERROR);
    assert!(err.contains("no U-Boot env copy has a valid CRC"), "{err}");
    assert!(std::fs::read(&img).unwrap().iter().all(|&b| b == 0));
    // get-current without a slot on the command line.
    std::fs::write(e.dir.join("cmdline"), "console=ttyS0 root=/dev/sda2\n").unwrap();
    let (rc, _, err) = call(&e.cfg, &["get-current"]);
    assert_eq!(rc, EXIT_ERROR);
    assert!(err.contains("cannot tell the booted slot"), "{err}");
}

#[test]
fn config_errors_name_file_and_line() {
    let p = Path::new("/etc/eyas/bootloader.conf");
    let cases = [
        (
            "bootloader = uboot\nbootnames = A B\nnonsense\n",
            ":3:",
            "expected `key = value`",
        ),
        (
            "bootloader = lilo\nbootnames = A B\n",
            ":1:",
            "unknown bootloader `lilo`",
        ),
        ("bootloader = uboot\nbootnames = A\n", ":2:", "bootnames"),
        (
            "bootloader = uboot\nbootnames = A B\nboot-attempts = 0\n",
            ":3:",
            "positive number",
        ),
        (
            "bootloader = uboot\nbootnames = A B\ncolour = blue\n",
            ":3:",
            "unknown key `colour`",
        ),
        (
            "bootloader = uboot\nbootnames = A B\nbootnames = A B\n",
            ":3:",
            "set twice",
        ),
        (
            "bootnames = A B\n",
            "bootloader.conf: ",
            "`bootloader` is required",
        ),
        (
            "bootloader = barebox\nbootnames = system0 system1\n",
            "bootloader.conf: ",
            "`barebox-dtb` is required",
        ),
        (
            "bootloader = uboot\nbootnames = A B\ncrc-endian = middle\n",
            ":3:",
            "little or big",
        ),
    ];
    for (text, loc, msg) in cases {
        let e = BackendConfig::parse(text, p).unwrap_err().to_string();
        assert!(
            e.starts_with("/etc/eyas/bootloader.conf") && e.contains(loc) && e.contains(msg),
            "{text:?}: {e}"
        );
    }
    let ok = BackendConfig::parse("bootloader = grub\nbootnames = A B\n", p).unwrap();
    assert_eq!(
        ok.storage,
        Storage::Grub {
            grubenv: "/boot/grub/grubenv".into()
        }
    );
    assert_eq!((ok.boot_attempts, ok.boot_attempts_primary), (3, 3));
    let e = BackendConfig::load(Path::new("/nonexistent/eyas.conf"))
        .unwrap_err()
        .to_string();
    assert!(e.contains("EYAS_BOOTLOADER_CONF"), "{e}");
}

#[test]
fn fw_env_config_errors_name_file_and_line() {
    let d = TempDir::new("fwcfg");
    let p = d.join("fw_env.config");
    std::fs::write(&p, "# env\n/dev/null 0x0 0x4000\n/dev/null bogus 0x4000\n").unwrap();
    let e = eyas_bootloader_glue::file::UbootFile::open(&p, Default::default())
        .unwrap_err()
        .to_string();
    assert!(e.starts_with(&format!("{}:3: ", p.display())), "{e}");
    assert!(e.contains("offset"), "{e}");
}

#[test]
fn binary_reads_config_from_env_var() {
    let e = uboot_env("uboot/rauc18.vec_3_markactive_other.env");
    let bin = env!("CARGO_BIN_EXE_eyas-bootloader");
    let out = Command::new(bin)
        .arg("get-primary")
        .env("EYAS_BOOTLOADER_CONF", e.dir.join("bootloader.conf"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "B\n");
    let out = Command::new(bin)
        .arg("get-primary")
        .env("EYAS_BOOTLOADER_CONF", e.dir.join("missing.conf"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(EXIT_ERROR));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.conf"));
}

#[test]
fn read_state_and_apply_transition_for_the_shell() {
    let e = uboot_env("uboot/rauc18.vec0b_A_left1.env");
    let st = rauc_backend::read_state(&e.cfg).unwrap();
    assert_eq!(st.attempts_left(0), Some(1));
    let t = st.mark_good(0).unwrap();
    rauc_backend::apply_transition(&e.cfg, &t).unwrap();
    assert_eq!(rauc_backend::read_state(&e.cfg).unwrap(), *t.state());
    assert_eq!(
        fw_printenv(&e.dir),
        "BOOT_A_LEFT=3\nBOOT_B_LEFT=3\nBOOT_ORDER=A B\n"
    );
}

/// `reset-when-exhausted` defaults to the bootloader's own behaviour (barebox: no, because
/// `global.bootchooser.reset_attempts` is empty unless the board sets `all-zero`; boot-state.md
/// §3.4) and decides whether `set-state <other> bad` is refused while the booted target has no
/// attempts left.
#[test]
fn barebox_reset_when_exhausted_defaults_to_no_and_is_configurable() {
    use eyas_bootloader_glue::file::BareboxFile;
    let d = TempDir::new("bb-reset");
    let img = d.join("state.img");
    std::fs::write(&img, vec![0u8; 0x8000]).unwrap();
    let dtb = support::vectors().join("barebox/state-partuuid.dtb");
    let base = format!(
        "bootloader = barebox\nbarebox-dtb = {}\nbarebox-storage = {}\nbootnames = system0 system1\n",
        dtb.display(),
        img.display()
    );
    let p = d.join("bootloader.conf");
    let cfg = BackendConfig::parse(&base, &p).unwrap();
    assert!(!cfg.reset_when_exhausted);
    assert!(!cfg.slots_config().reset_when_exhausted);
    // system0 used its last attempt; system1 is the only target barebox can still choose.
    BareboxFile::open(&dtb, None, &img)
        .unwrap()
        .apply(&[
            ("bootstate.system0.priority", Some("20")),
            ("bootstate.system0.remaining_attempts", Some("0")),
            ("bootstate.system1.priority", Some("10")),
            ("bootstate.system1.remaining_attempts", Some("3")),
        ])
        .unwrap();
    let (rc, _, err) = call(&cfg, &["set-state", "system1", "bad"]);
    assert_eq!(rc, EXIT_ERROR, "{err}");
    assert!(err.contains("last bootable slot"), "{err}");
    assert_eq!(call(&cfg, &["get-state", "system1"]).1, "good\n");
    // With all-zero in reset_attempts barebox would reset system0 and boot it.
    let on = BackendConfig::parse(&format!("{base}reset-when-exhausted = yes\n"), &p).unwrap();
    assert!(on.reset_when_exhausted && on.slots_config().reset_when_exhausted);
    let (rc, _, err) = call(&on, &["set-state", "system1", "bad"]);
    assert_eq!(rc, EXIT_OK, "{err}");
    assert_eq!(call(&on, &["get-state", "system1"]).1, "bad\n");
    // U-Boot and GRUB default to yes (their reference scripts reset); `no` turns it off.
    let grub = BackendConfig::parse("bootloader = grub\nbootnames = A B\n", &p).unwrap();
    assert!(grub.slots_config().reset_when_exhausted);
    let grub = BackendConfig::parse(
        "bootloader = grub\nbootnames = A B\nreset-when-exhausted = no\n",
        &p,
    )
    .unwrap();
    assert!(!grub.slots_config().reset_when_exhausted);
    let e = BackendConfig::parse(
        "bootloader = grub\nbootnames = A B\nreset-when-exhausted = maybe\n",
        &p,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains(":3:") && e.contains("yes or no"), "{e}");
}
