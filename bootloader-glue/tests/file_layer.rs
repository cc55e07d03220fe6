//! The file layer's safety rules on real files: where a write lands, what it may never touch,
//! and what the binary does with input RAUC (or a user) could pass.

mod support;

use eyas_bootloader_glue::file::{GrubFile, UbootFile};
use std::process::Command;
use support::{TempDir, vectors};

/// A grubenv reached through a symlink (e.g. `/boot/grub2/grubenv -> ../efi/EFI/<os>/grubenv`):
/// the write must land in the file GRUB reads, not replace the link by a private copy that
/// GRUB never sees (RAUC would then report a primary the bootloader does not boot).
#[test]
fn grub_write_through_a_symlink_updates_the_target() {
    let d = TempDir::new("grub-link");
    std::fs::create_dir_all(d.join("esp")).unwrap();
    let target = d.join("esp/grubenv");
    support::copy_vector("grub/grubenv.rauc", &target);
    let link = d.join("grubenv");
    std::os::unix::fs::symlink("esp/grubenv", &link).unwrap();
    assert!(
        GrubFile::new(&link)
            .apply(&[("ORDER", Some("B A"))])
            .unwrap()
    );
    assert!(
        std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the symlink was replaced by a regular file"
    );
    assert_eq!(
        std::fs::read(&target).unwrap(),
        std::fs::read(vectors().join("grub/grubenv.rauc.2_markactive_other")).unwrap()
    );
    // No temporary file left next to the link or the target.
    let mut names: Vec<String> = std::fs::read_dir(d.path())
        .unwrap()
        .chain(std::fs::read_dir(d.join("esp")).unwrap())
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["esp", "grubenv", "grubenv"]);
}

/// The replaced grubenv keeps its permission bits (a temp file would get 0666 & ~umask).
#[test]
fn grub_write_keeps_the_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = TempDir::new("grub-mode");
    let f = d.join("grubenv");
    support::copy_vector("grub/grubenv.rauc", &f);
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(GrubFile::new(&f).apply(&[("ORDER", Some("B A"))]).unwrap());
    let mode = std::fs::metadata(&f).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o600);
}

/// Two copies in one file whose ranges overlap (a typo in fw_env.config): writing the non-current
/// copy would overwrite part of the current one, so a cut or a later read finds no valid env.
/// eyas must refuse before writing anything.
#[test]
fn uboot_overlapping_copies_are_refused() {
    let d = TempDir::new("uboot-overlap");
    let img = d.join("uboot.env");
    support::copy_vector("uboot/redund.orig.env", &img);
    let before = std::fs::read(&img).unwrap();
    let cfg = d.join("fw_env.config");
    for (second, what) in [
        ("0x2000", "copy 1 starts inside copy 0"),
        ("0x0", "both copies at the same offset"),
        ("-0x6000", "negative offset resolving inside copy 0"),
    ] {
        std::fs::write(
            &cfg,
            format!("{p} 0x0 0x4000\n{p} {second} 0x4000\n", p = img.display()),
        )
        .unwrap();
        let r = UbootFile::open(&cfg, Default::default())
            .and_then(|mut u| u.apply(&[("BOOT_ORDER", Some("B A"))]));
        let e = r.expect_err(what).to_string();
        assert!(e.contains("overlap"), "{what}: {e}");
        assert!(e.contains(&cfg.display().to_string()), "{what}: {e}");
        assert!(
            std::fs::read(&img).unwrap() == before,
            "{what}: image was written"
        );
    }
    // The same file reached through a symlink is the same device.
    let link = d.join("link.env");
    std::os::unix::fs::symlink(&img, &link).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{} 0x0 0x4000\n{} 0x2000 0x4000\n",
            img.display(),
            link.display()
        ),
    )
    .unwrap();
    let e = UbootFile::open(&cfg, Default::default())
        .expect_err("overlap through a symlink")
        .to_string();
    assert!(e.contains("overlap"), "{e}");
    // Adjacent copies are fine.
    std::fs::write(
        &cfg,
        format!("{p} 0x0 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    UbootFile::open(&cfg, Default::default())
        .unwrap()
        .apply(&[("BOOT_ORDER", Some("B A"))])
        .unwrap();
}

/// RAUC passes bootnames as given; an argument that is not UTF-8 is a usage error (exit 2 with a
/// message), never a panic (exit 101), which RAUC would report as an opaque failure.
#[test]
fn binary_rejects_non_utf8_arguments_without_panicking() {
    use std::os::unix::ffi::OsStrExt;
    let d = TempDir::new("bin-utf8");
    let conf = d.join("bootloader.conf");
    std::fs::write(&conf, "bootloader = grub\nbootnames = A B\n").unwrap();
    let bin = env!("CARGO_BIN_EXE_eyas-bootloader");
    let out = Command::new(bin)
        .arg("get-state")
        .arg(std::ffi::OsStr::from_bytes(b"A\xff"))
        .env("EYAS_BOOTLOADER_CONF", &conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(err.contains("not valid UTF-8"), "{err}");
    assert!(out.stdout.is_empty());
}

/// A path that names something huge (a disk, a partition) instead of the small file it should
/// name is refused with a message saying so, without reading it all into memory.
#[test]
fn huge_paths_are_refused_without_reading_them() {
    let d = TempDir::new("huge");
    let big = d.join("disk.img");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(8 << 30).unwrap(); // sparse 8 GiB
    drop(f);
    let e = GrubFile::new(&big).read().unwrap_err().to_string();
    assert!(
        e.contains("larger than 1 MiB") && e.contains("grubenv"),
        "{e}"
    );
    let e = GrubFile::new(&big)
        .apply(&[("ORDER", Some("A B"))])
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 1 MiB"), "{e}");
    let e = eyas_bootloader_glue::file::BareboxFile::open(&big, None, &big)
        .unwrap_err()
        .to_string();
    assert!(e.contains("larger than 1 MiB") && e.contains("dtb"), "{e}");
    let e = UbootFile::open(&big, Default::default())
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("larger than 1 MiB") && e.contains("fw_env.config"),
        "{e}"
    );
}

/// A block with a duplicated variable (hand edits, other tools): GRUB's `load_env` sets the
/// variables in order, so the LAST line wins at boot, while `grub-editenv set`/`unset` touch only
/// the first. A mark-bad that rewrote only the first `B_OK` would leave GRUB booting B; eyas
/// leaves exactly one line per variable it writes, so what it wrote is what GRUB reads.
#[test]
fn grub_duplicate_variables_are_collapsed_on_write() {
    let d = TempDir::new("grub-dup");
    let f = d.join("grubenv");
    let mut blk =
        b"# GRUB Environment Block\nORDER=A B\nB_OK=1\nA_OK=1\nB_TRY=0\nB_OK=1\nX=1\nX=2\n"
            .to_vec();
    blk.resize(1024, b'#');
    std::fs::write(&f, &blk).unwrap();
    let g = GrubFile::new(&f);
    assert!(g.apply(&[("B_OK", Some("0")), ("X", None)]).unwrap());
    let list = support::run(Command::new("grub-editenv").arg(&f).arg("list"));
    assert_eq!(list, "ORDER=A B\nB_OK=0\nA_OK=1\nB_TRY=0\n");
    let vars = g.read().unwrap();
    assert_eq!(vars.get("B_OK"), Some("0"));
    assert_eq!(std::fs::read(&f).unwrap().len(), 1024);
    // Setting a duplicated variable to the value its first line already has still removes the
    // later (different) line GRUB would use.
    let mut blk = b"# GRUB Environment Block\nA_OK=1\nB_OK=0\nB_OK=1\n".to_vec();
    blk.resize(1024, b'#');
    std::fs::write(&f, &blk).unwrap();
    assert!(g.apply(&[("B_OK", Some("0"))]).unwrap());
    let list = support::run(Command::new("grub-editenv").arg(&f).arg("list"));
    assert_eq!(list, "A_OK=1\nB_OK=0\n");
}

/// An env device shorter than offset + size: the error says where it ends and what to check.
#[test]
fn uboot_short_device_error_says_where_and_what_to_check() {
    let d = TempDir::new("uboot-short");
    let img = d.join("uboot.env");
    std::fs::write(&img, vec![0u8; 0x6000]).unwrap();
    let cfg = d.join("fw_env.config");
    std::fs::write(
        &cfg,
        format!("{p} 0x0 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    let e = UbootFile::open(&cfg, Default::default())
        .unwrap()
        .read()
        .unwrap_err()
        .to_string();
    assert!(e.contains("copy 1") && e.contains("0x8000"), "{e}");
    assert!(e.contains(&format!("{} ends before", img.display())), "{e}");
    assert!(e.contains("check the offset and size"), "{e}");
}
