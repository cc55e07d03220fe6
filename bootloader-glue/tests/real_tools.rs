//! Differential tests with the real tools, both directions: random variable sets written by eyas
//! are read back by `fw_printenv` / `grub-editenv list` / `barebox-state`, and what those tools
//! write is read back by eyas. These tests FAIL (not skip) when a tool is missing: CI installs
//! them with `.ci/install-deps`.

mod support;

use eyas_bootloader_glue::file::{BareboxFile, GrubFile, UbootFile, UbootOptions};
use std::collections::BTreeMap;
use std::process::Command;
use support::{Rng, TempDir, run, vectors};

const ROUNDS: usize = 25;

fn random_changes(
    rng: &mut Rng,
    model: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>)> {
    let n = 1 + rng.below(6) as usize;
    let keys: Vec<&String> = model.keys().collect();
    (0..n)
        .map(|_| {
            let name = if !keys.is_empty() && rng.chance(60) {
                keys[rng.below(keys.len() as u64) as usize].clone()
            } else {
                rng.name()
            };
            let value = if rng.chance(25) {
                None
            } else {
                Some(uboot_safe(rng.value()))
            };
            (name, value)
        })
        .collect()
}

/// mkenvimage treats a trailing backslash as a line continuation.
fn uboot_safe(mut v: String) -> String {
    if v.ends_with('\\') {
        v.pop();
        v.push('z');
    }
    v
}

fn apply_model(model: &mut BTreeMap<String, String>, ch: &[(String, Option<String>)]) {
    for (n, v) in ch {
        match v {
            Some(v) if !v.is_empty() => {
                model.insert(n.clone(), v.clone());
            }
            _ => {
                model.remove(n);
            }
        }
    }
}

fn parse_listing(out: &str) -> BTreeMap<String, String> {
    out.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            let (n, v) = l.split_once('=').unwrap_or((l, ""));
            (n.to_string(), v.to_string())
        })
        .collect()
}

fn borrowed(ch: &[(String, Option<String>)]) -> Vec<(&str, Option<&str>)> {
    ch.iter().map(|(n, v)| (n.as_str(), v.as_deref())).collect()
}

#[test]
fn uboot_differential_with_fw_printenv_and_fw_setenv() {
    let d = TempDir::new("uboot-diff");
    let mut rng = Rng(0x5eed_0001);
    let img = d.join("env.img");
    let cfg = d.join("fw_env.config");
    std::fs::write(
        &cfg,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    for round in 0..ROUNDS {
        // Start from a mkenvimage image with random variables.
        let mut model = BTreeMap::new();
        let mut txt = String::new();
        for _ in 0..1 + rng.below(8) {
            let (n, v) = (rng.name(), uboot_safe(rng.value()));
            txt += &format!("{n}={v}\n");
            model.insert(n, v);
        }
        std::fs::write(d.join("env.txt"), &txt).unwrap();
        run(Command::new("mkenvimage")
            .args(["-r", "-s", "0x4000", "-o"])
            .arg(d.join("c.env"))
            .arg(d.join("env.txt")));
        let c = std::fs::read(d.join("c.env")).unwrap();
        std::fs::write(&img, [c.clone(), c].concat()).unwrap();

        // eyas writes (one write for the whole change set), fw_printenv reads.
        for _ in 0..3 {
            let ch = random_changes(&mut rng, &model);
            let mut env = UbootFile::open(&cfg, UbootOptions::default()).unwrap();
            env.apply(&borrowed(&ch)).unwrap();
            apply_model(&mut model, &ch);
            let out = run(Command::new("fw_printenv").arg("-c").arg(&cfg));
            assert_eq!(
                parse_listing(&out),
                model,
                "round {round}: fw_printenv disagrees after eyas applied {ch:?}"
            );
        }
        // fw_setenv writes (a script: several variables), eyas reads.
        for _ in 0..3 {
            let ch = random_changes(&mut rng, &model);
            let script: String = ch
                .iter()
                .map(|(n, v)| format!("{n}={}\n", v.as_deref().unwrap_or("")))
                .collect();
            std::fs::write(d.join("script"), script).unwrap();
            run(Command::new("fw_setenv")
                .arg("-c")
                .arg(&cfg)
                .arg("-s")
                .arg(d.join("script")));
            apply_model(&mut model, &ch);
            let mut env = UbootFile::open(&cfg, UbootOptions::default()).unwrap();
            let got: BTreeMap<String, String> = env.read().unwrap().0.into_iter().collect();
            assert_eq!(
                got, model,
                "round {round}: eyas disagrees after fw_setenv applied {ch:?}"
            );
        }
    }
}

#[test]
fn uboot_both_copies_bad_fw_printenv_and_eyas_both_refuse() {
    let d = TempDir::new("uboot-bad");
    let img = d.join("env.img");
    let cfg = d.join("fw_env.config");
    std::fs::write(
        &cfg,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    std::fs::write(&img, vec![0x55u8; 0x8000]).unwrap();
    let out = Command::new("fw_printenv")
        .arg("-c")
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = UbootFile::open(&cfg, UbootOptions::default())
        .unwrap()
        .read()
        .unwrap_err()
        .to_string();
    assert!(err.contains("no U-Boot env copy has a valid CRC"), "{err}");
    assert!(err.contains("fw_env.config"), "{err}");
    // With explicit defaults eyas writes a valid env that fw_printenv accepts.
    let mut env = UbootFile::open(&cfg, UbootOptions::default()).unwrap();
    env.apply_with_defaults(
        &[("BOOT_A_LEFT", Some("3"))],
        Some(&[("BOOT_ORDER", "A B"), ("BOOT_A_LEFT", "1")]),
    )
    .unwrap();
    let out = run(Command::new("fw_printenv").arg("-c").arg(&cfg));
    assert_eq!(out, "BOOT_A_LEFT=3\nBOOT_ORDER=A B\n");
}

#[test]
fn grub_differential_with_grub_editenv() {
    let d = TempDir::new("grub-diff");
    let mut rng = Rng(0x5eed_0002);
    let f = d.join("grubenv");
    for round in 0..ROUNDS {
        let _ = std::fs::remove_file(&f);
        run(Command::new("grub-editenv").arg(&f).arg("create"));
        let mut model = BTreeMap::new();
        for _ in 0..4 {
            let ch: Vec<(String, Option<String>)> = random_changes(&mut rng, &model);
            // grub-editenv set with a value: same change set through eyas.
            let g = GrubFile::new(&f);
            match g.apply(&borrowed(&ch)) {
                Ok(_) => apply_model(&mut model, &ch),
                Err(e) => {
                    assert!(e.to_string().contains("too small"), "{e}");
                    continue;
                }
            }
            let out = run(Command::new("grub-editenv").arg(&f).arg("list"));
            assert_eq!(
                parse_listing(&out),
                model,
                "round {round}: grub-editenv disagrees after eyas applied {ch:?}"
            );
        }
        for _ in 0..4 {
            let ch = random_changes(&mut rng, &model);
            let sets: Vec<String> = ch
                .iter()
                .filter_map(|(n, v)| v.as_ref().map(|v| format!("{n}={v}")))
                .collect();
            let unsets: Vec<&String> = ch
                .iter()
                .filter(|(_, v)| v.is_none())
                .map(|(n, _)| n)
                .collect();
            let before = std::fs::read(&f).unwrap();
            if !sets.is_empty() {
                let out = Command::new("grub-editenv")
                    .arg(&f)
                    .arg("set")
                    .args(&sets)
                    .output()
                    .unwrap();
                if !out.status.success() {
                    // Block full: grub-editenv refuses; restore and skip this change set.
                    std::fs::write(&f, &before).unwrap();
                    continue;
                }
            }
            if !unsets.is_empty() {
                run(Command::new("grub-editenv")
                    .arg(&f)
                    .arg("unset")
                    .args(&unsets));
            }
            for (n, v) in &ch {
                if let Some(v) = v {
                    model.insert(n.clone(), v.clone());
                }
            }
            for n in unsets {
                model.remove(n);
            }
            let got: BTreeMap<String, String> =
                GrubFile::new(&f).read().unwrap().0.into_iter().collect();
            assert_eq!(
                got, model,
                "round {round}: eyas disagrees after grub-editenv applied {ch:?}"
            );
        }
    }
}

/// Runs `barebox-state -i dtb ARGS` with `img` behind the partuuid path, in a private mount
/// namespace (boot-state.md §3.3) so the host's /dev is untouched.
fn barebox_state(dir: &TempDir, img: &std::path::Path, args: &str) -> String {
    barebox_state_with(
        dir,
        &vectors().join("barebox/state-partuuid.dtb"),
        img,
        args,
    )
}

fn barebox_state_with(
    dir: &TempDir,
    dtb: &std::path::Path,
    img: &std::path::Path,
    args: &str,
) -> String {
    let script = format!(
        "set -e\nmkdir -p {d}/olddev\nmount --bind /dev {d}/olddev\nmount -t tmpfs tmpfs /dev\n\
         for n in null zero random urandom; do touch /dev/$n; mount --bind {d}/olddev/$n /dev/$n; done\n\
         mkdir -p /dev/disk/by-partuuid\nln -sf {img} /dev/disk/by-partuuid/3a1b2c3d-0000-4000-8000-0123456789ab\n\
         barebox-state -i {dtb} {args}\n",
        d = dir.path().display(),
        img = img.display(),
        dtb = dtb.display()
    );
    std::fs::write(dir.join("bb.sh"), script).unwrap();
    run(Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh"])
        .arg(dir.join("bb.sh")))
}

const BB_VARS: [&str; 5] = [
    "bootstate.system0.remaining_attempts",
    "bootstate.system0.priority",
    "bootstate.system1.remaining_attempts",
    "bootstate.system1.priority",
    "bootstate.last_chosen",
];

#[test]
fn barebox_differential_with_barebox_state() {
    let d = TempDir::new("bb-diff");
    let mut rng = Rng(0x5eed_0003);
    let img = d.join("state.img");
    let dtb = vectors().join("barebox/state-partuuid.dtb");
    std::fs::write(&img, vec![0u8; 0x8000]).unwrap();
    for round in 0..12 {
        // eyas writes, barebox-state reads.
        let vals: Vec<u32> = (0..5)
            .map(|_| {
                if rng.chance(50) {
                    rng.below(100) as u32
                } else {
                    rng.next() as u32
                }
            })
            .collect();
        let strs: Vec<String> = vals.iter().map(u32::to_string).collect();
        let ch: Vec<(&str, Option<&str>)> = BB_VARS
            .iter()
            .zip(&strs)
            .filter(|_| rng.chance(70))
            .map(|(n, v)| (*n, Some(v.as_str())))
            .collect();
        let bb = BareboxFile::open(&dtb, None, &img).unwrap();
        let expect = bb.apply(&ch).unwrap();
        let out = barebox_state(&d, &img, "--dump-shell");
        for (i, n) in BB_VARS.iter().enumerate() {
            let key = format!("state_{}=", n.replace('.', "_"));
            let line = out
                .lines()
                .find(|l| l.starts_with(&key))
                .unwrap_or_else(|| panic!("{key} missing in {out}"));
            let want = bb.desc().get(&expect, BB_VARS[i]).unwrap();
            assert_eq!(
                line[key.len()..].trim_matches('"'),
                want.to_string(),
                "round {round} {n}"
            );
        }
        // barebox-state writes, eyas reads.
        let vals: Vec<u32> = (0..5).map(|_| rng.next() as u32).collect();
        let args: String = BB_VARS
            .iter()
            .zip(&vals)
            .map(|(n, v)| format!("-s {n}={v} "))
            .collect();
        barebox_state(&d, &img, &args);
        let got = bb.read().unwrap();
        for (n, v) in BB_VARS.iter().zip(&vals) {
            assert_eq!(bb.desc().get(&got, n), Some(*v), "round {round} {n}");
        }
    }
}

/// The U-Boot boot-script model (RAUC contrib/uboot.sh: choose, decrement, saveenv, fallback)
/// against a real env file, with eyas's RAUC backend for the Linux side and `fw_printenv` as the
/// judge of every step: install B, B never gets marked good, U-Boot falls back to A.
#[test]
fn uboot_attempt_loop_on_a_file_judged_by_fw_printenv() {
    use eyas_bootloader_glue::rauc_backend::{self, BackendConfig};
    let d = TempDir::new("uboot-loop");
    let img = d.join("env.img");
    support::copy_vector("uboot/rauc18.vec0_initial.env", &img);
    let cfg = d.join("fw_env.config");
    std::fs::write(
        &cfg,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = img.display()),
    )
    .unwrap();
    let conf_text = format!(
        "bootloader = uboot\nfw-env-config = {}\nbootnames = A B\n",
        cfg.display()
    );
    let conf = BackendConfig::parse(&conf_text, &d.join("bootloader.conf")).unwrap();
    let backend = |args: &[&str]| {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let rc = rauc_backend::run(args, &conf, &mut o, &mut e);
        assert_eq!(rc, 0, "{args:?}: {}", String::from_utf8_lossy(&e));
        String::from_utf8(o).unwrap()
    };
    let printenv = || parse_listing(&run(Command::new("fw_printenv").arg("-c").arg(&cfg)));
    let boot = || {
        let vars = printenv();
        let (chosen, ch) = support::uboot_script(&vars);
        // saveenv: one write of the script's changes.
        UbootFile::open(&cfg, UbootOptions::default())
            .unwrap()
            .apply(&borrowed(&ch))
            .unwrap();
        chosen
    };
    assert_eq!(boot(), Some("A"));
    backend(&["set-state", "A", "good"]);
    // Install into B: mark it bad first, then active.
    backend(&["set-state", "B", "bad"]);
    assert_eq!(printenv()["BOOT_ORDER"], "A");
    backend(&["set-primary", "B"]);
    assert_eq!(backend(&["get-primary"]), "B\n");
    let mut chosen = Vec::new();
    for _ in 0..4 {
        chosen.push(boot());
    }
    // Three trial boots of B without mark-good, then the fallback to A.
    assert_eq!(chosen, [Some("B"), Some("B"), Some("B"), Some("A")]);
    let v = printenv();
    assert_eq!(
        (
            v["BOOT_ORDER"].as_str(),
            v["BOOT_B_LEFT"].as_str(),
            v["BOOT_A_LEFT"].as_str()
        ),
        ("B A", "0", "2")
    );
    assert_eq!(backend(&["get-primary"]), "A\n");
    assert_eq!(backend(&["get-state", "B"]), "bad\n");
    backend(&["set-state", "A", "good"]);
    assert_eq!(printenv()["BOOT_A_LEFT"], "3");
    // Both exhausted: the script resets both counters and resets the board.
    let mut env = UbootFile::open(&cfg, UbootOptions::default()).unwrap();
    env.apply(&[("BOOT_A_LEFT", Some("0")), ("BOOT_B_LEFT", Some("0"))])
        .unwrap();
    assert_eq!(boot(), None);
    assert_eq!(boot(), Some("B"));
}

/// GRUB: a temporary file left behind by a crash mid-write changes nothing, and the next write
/// replaces it; the block itself is only ever replaced by rename.
#[test]
fn grub_leftover_temp_file_is_harmless() {
    let d = TempDir::new("grub-tmp");
    let f = d.join("grubenv");
    support::copy_vector("grub/grubenv.rauc", &f);
    let tmp = d.join(".grubenv.eyas-tmp");
    std::fs::write(&tmp, b"# GRUB Environment Block\nORDER=B").unwrap();
    let g = GrubFile::new(&f);
    assert_eq!(g.read().unwrap().get("ORDER"), Some("A B"));
    assert!(g.apply(&[("ORDER", Some("B A"))]).unwrap());
    assert!(!tmp.exists());
    assert_eq!(
        std::fs::read(&f).unwrap(),
        std::fs::read(vectors().join("grub/grubenv.rauc.2_markactive_other")).unwrap()[..]
    );
    let list = run(Command::new("grub-editenv").arg(&f).arg("list"));
    assert!(list.starts_with("ORDER=B A\n"), "{list}");
}

/// The optional bootchooser variable `attempts_locked` (newer barebox): a state description with
/// it, compiled by dtc, is read by eyas, and a value eyas writes is what barebox-state reads.
#[test]
fn barebox_attempts_locked_variable() {
    let d = TempDir::new("bb-locked");
    let dts = std::fs::read_to_string(vectors().join("barebox/state-partuuid.dts")).unwrap();
    let dts = dts.replace(
        "last_chosen@10 { reg = <0x10 0x4>; type = \"uint32\"; };",
        "last_chosen@10 { reg = <0x10 0x4>; type = \"uint32\"; };\n\t\t\tattempts_locked@14 { reg = <0x14 0x4>; type = \"uint32\"; default = <0>; };",
    );
    assert!(dts.contains("attempts_locked"));
    std::fs::write(d.join("locked.dts"), dts).unwrap();
    let dtb = d.join("locked.dtb");
    run(Command::new("dtc")
        .args(["-I", "dts", "-O", "dtb", "-o"])
        .arg(&dtb)
        .arg(d.join("locked.dts")));
    let img = d.join("state.img");
    std::fs::write(&img, vec![0u8; 0x8000]).unwrap();
    let bb = BareboxFile::open(&dtb, None, &img).unwrap();
    assert_eq!(bb.desc().data_len, 24);
    bb.apply(&[
        ("bootstate.attempts_locked", Some("1")),
        ("bootstate.system1.priority", Some("10")),
    ])
    .unwrap();
    let out = barebox_state_with(
        &d,
        &dtb,
        &img,
        "-g bootstate.attempts_locked -g bootstate.system1.priority",
    );
    assert_eq!(out.split_whitespace().collect::<Vec<_>>(), ["1", "10"]);
    barebox_state_with(&d, &dtb, &img, "-s bootstate.attempts_locked=0");
    assert_eq!(
        bb.desc()
            .get(&bb.read().unwrap(), "bootstate.attempts_locked"),
        Some(0)
    );
}

/// eyas (tail = `LikeFwSetenv`) and `fw_setenv NAME VALUE …` produce the same image byte for byte
/// from the same start, for random variable sets and changes (several variables per write).
#[test]
fn uboot_writes_are_byte_identical_to_fw_setenv() {
    let d = TempDir::new("uboot-bytes");
    let mut rng = Rng(0x5eed_0004);
    let (ours, theirs) = (d.join("ours.img"), d.join("theirs.img"));
    let (cfg_o, cfg_t) = (d.join("ours.config"), d.join("theirs.config"));
    std::fs::write(
        &cfg_o,
        format!("{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n", p = ours.display()),
    )
    .unwrap();
    std::fs::write(
        &cfg_t,
        format!(
            "{p} 0x0000 0x4000\n{p} 0x4000 0x4000\n",
            p = theirs.display()
        ),
    )
    .unwrap();
    let mut compared = 0;
    for round in 0..ROUNDS {
        let mut model = BTreeMap::new();
        let mut txt = String::new();
        for _ in 0..1 + rng.below(8) {
            let (n, v) = (rng.name(), uboot_safe(rng.value()));
            txt += &format!("{n}={v}\n");
            model.insert(n, v);
        }
        std::fs::write(d.join("env.txt"), &txt).unwrap();
        run(Command::new("mkenvimage")
            .args(["-r", "-s", "0x4000", "-o"])
            .arg(d.join("c.env"))
            .arg(d.join("env.txt")));
        let c = std::fs::read(d.join("c.env")).unwrap();
        std::fs::write(&ours, [c.clone(), c.clone()].concat()).unwrap();
        std::fs::write(&theirs, [c.clone(), c].concat()).unwrap();
        for step in 0..4 {
            // fw_setenv takes NAME VALUE pairs; a name without value deletes (only as the last).
            let mut ch = random_changes(&mut rng, &model);
            ch.retain(|(_, v)| v.is_some());
            // fw_setenv's getopt would take a value like "-D" for an option.
            for (_, v) in &mut ch {
                if let Some(x) = v.as_mut().filter(|x| x.starts_with('-')) {
                    x.replace_range(0..1, "m");
                }
            }
            if ch.is_empty() {
                continue;
            }
            let mut args: Vec<String> = Vec::new();
            for (n, v) in &ch {
                args.push(n.clone());
                args.push(v.clone().unwrap_or_default());
            }
            run(Command::new("fw_setenv").arg("-c").arg(&cfg_t).args(&args));
            UbootFile::open(&cfg_o, UbootOptions::default())
                .unwrap()
                .apply(&borrowed(&ch))
                .unwrap();
            apply_model(&mut model, &ch);
            let (a, b) = (
                std::fs::read(&ours).unwrap(),
                std::fs::read(&theirs).unwrap(),
            );
            let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
            assert!(
                diff.is_empty(),
                "round {round} step {step}: {} bytes differ from fw_setenv, first at {:#x}; changes {ch:?}",
                diff.len(),
                diff[0]
            );
            compared += 1;
        }
    }
    assert!(compared > 50, "{compared}");
}

/// eyas and `barebox-state -s …` produce the same state image byte for byte.
#[test]
fn barebox_writes_are_byte_identical_to_barebox_state() {
    let d = TempDir::new("bb-bytes");
    let mut rng = Rng(0x5eed_0005);
    let dtb = vectors().join("barebox/state-partuuid.dtb");
    let (ours, theirs) = (d.join("ours.img"), d.join("theirs.img"));
    let start = if rng.chance(50) {
        vec![0u8; 0x8000]
    } else {
        vec![0xFFu8; 0x8000]
    };
    std::fs::write(&ours, &start).unwrap();
    std::fs::write(&theirs, &start).unwrap();
    let bb = BareboxFile::open(&dtb, None, &ours).unwrap();
    for round in 0..10 {
        let vals: Vec<String> = (0..5)
            .map(|_| (rng.next() as u32 % 1000).to_string())
            .collect();
        let ch: Vec<(&str, Option<&str>)> = BB_VARS
            .iter()
            .zip(&vals)
            .filter(|_| rng.chance(60))
            .map(|(n, v)| (*n, Some(v.as_str())))
            .collect();
        if ch.is_empty() {
            continue;
        }
        bb.apply(&ch).unwrap();
        let args: String = ch
            .iter()
            .map(|(n, v)| format!("-s {n}={} ", v.unwrap()))
            .collect();
        barebox_state(&d, &theirs, &args);
        assert!(
            std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
            "round {round}: images differ after {ch:?}"
        );
    }
}

/// eyas and `grub-editenv FILE set …` / `unset …` produce the same block byte for byte.
#[test]
fn grub_writes_are_byte_identical_to_grub_editenv() {
    let d = TempDir::new("grub-bytes");
    let mut rng = Rng(0x5eed_0006);
    let (ours, theirs) = (d.join("ours"), d.join("theirs"));
    let mut compared = 0;
    let mut refused = 0;
    for round in 0..ROUNDS {
        for f in [&ours, &theirs] {
            let _ = std::fs::remove_file(f);
            run(Command::new("grub-editenv").arg(f).arg("create"));
        }
        let mut model = BTreeMap::new();
        for step in 0..4 {
            let ch = random_changes(&mut rng, &model);
            let (sets, unsets): (Vec<_>, Vec<_>) = ch.iter().partition(|(_, v)| v.is_some());
            let before = std::fs::read(&theirs).unwrap();
            let set_args: Vec<String> = sets
                .iter()
                .map(|(n, v)| format!("{n}={}", v.as_deref().unwrap_or("")))
                .collect();
            if !set_args.is_empty()
                && !Command::new("grub-editenv")
                    .arg(&theirs)
                    .arg("set")
                    .args(&set_args)
                    .output()
                    .unwrap()
                    .status
                    .success()
            {
                // Block full: grub-editenv refuses, and so must eyas, writing nothing.
                std::fs::write(&theirs, before).unwrap();
                let ordered: Vec<(&str, Option<&str>)> = ch
                    .iter()
                    .filter(|(_, v)| v.is_some())
                    .chain(ch.iter().filter(|(_, v)| v.is_none()))
                    .map(|(n, v)| (n.as_str(), v.as_deref()))
                    .collect();
                let mine = std::fs::read(&ours).unwrap();
                let e = GrubFile::new(&ours).apply(&ordered).unwrap_err();
                assert!(e.to_string().contains("too small"), "{e}");
                assert!(std::fs::read(&ours).unwrap() == mine);
                refused += 1;
                continue;
            }
            let unset_args: Vec<&String> = unsets.iter().map(|(n, _)| n).collect();
            if !unset_args.is_empty() {
                run(Command::new("grub-editenv")
                    .arg(&theirs)
                    .arg("unset")
                    .args(&unset_args));
            }
            // Same order as the two grub-editenv calls: all sets, then all unsets.
            let ordered: Vec<(&str, Option<&str>)> = sets
                .iter()
                .chain(unsets.iter())
                .map(|(n, v)| (n.as_str(), v.as_deref()))
                .collect();
            GrubFile::new(&ours).apply(&ordered).unwrap();
            apply_model(&mut model, &ch);
            assert!(
                std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
                "round {round} step {step}: blocks differ after {ch:?}"
            );
            compared += 1;
        }
    }
    // The random sets rarely fill the block; walk its exact limit (header 94 bytes + `F=v\n`
    // = 1024 with no `#` padding left) so both the accept and the refuse side are compared.
    for f in [&ours, &theirs] {
        let _ = std::fs::remove_file(f);
        run(Command::new("grub-editenv").arg(f).arg("create"));
    }
    let fill = |n: usize| "x".repeat(n);
    for (name, value) in [
        ("F", fill(927)), // exactly full
        ("G", "1".to_string()),
        ("F", fill(926)), // one `#` of padding
        ("F", fill(928)),
        ("F", fill(927)),
        ("F", "a\\b".to_string() + &fill(923)), // escapes count twice
        ("F", "a\\b".to_string() + &fill(924)),
    ] {
        let before = std::fs::read(&theirs).unwrap();
        let ok = Command::new("grub-editenv")
            .arg(&theirs)
            .arg("set")
            .arg(format!("{name}={value}"))
            .output()
            .unwrap()
            .status
            .success();
        let r = GrubFile::new(&ours).apply(&[(name, Some(value.as_str()))]);
        if ok {
            r.unwrap();
        } else {
            std::fs::write(&theirs, &before).unwrap();
            assert!(r.unwrap_err().to_string().contains("too small"));
            refused += 1;
        }
        assert!(
            std::fs::read(&ours).unwrap() == std::fs::read(&theirs).unwrap(),
            "{name}={} ({} bytes): blocks differ",
            &value[..8],
            value.len()
        );
        assert_eq!(std::fs::read(&ours).unwrap().len(), 1024);
    }
    assert!(compared > 50, "{compared}");
    assert!(refused >= 3, "{refused}");
}

/// An independent model of RAUC's contrib/grub.conf: walk ORDER, set `<slot>_TRY=1` on every
/// slot visited, boot the first one that had OK=1 and TRY=0; if none, clear TRY of every OK slot
/// (rescue boot); then `save_env` (one write of the block).
fn grub_script(vars: &BTreeMap<String, String>) -> (Option<String>, Vec<(String, Option<String>)>) {
    let get = |k: String| vars.get(&k).cloned().unwrap_or_default();
    let mut ch = Vec::new();
    let mut chosen = None;
    for slot in get("ORDER".into()).split_whitespace() {
        let (ok, tried) = (get(format!("{slot}_OK")), get(format!("{slot}_TRY")));
        ch.push((format!("{slot}_TRY"), Some("1".to_string())));
        if ok == "1" && tried == "0" {
            chosen = Some(slot.to_string());
            break;
        }
    }
    if chosen.is_none() {
        ch.clear();
        for slot in ["A", "B"] {
            if get(format!("{slot}_OK")) == "1" {
                ch.push((format!("{slot}_TRY"), Some("0".to_string())));
            }
        }
    }
    (chosen, ch)
}

/// The GRUB attempt loop on a real grubenv, judged by `grub-editenv list`: RAUC-style install
/// of B through eyas's backend, one failed try of B, fallback to A, mark-good A. The script's
/// choices are cross-checked with `eyas_core::slots`.
#[test]
fn grub_attempt_loop_on_a_file_judged_by_grub_editenv() {
    use eyas_bootloader_glue::rauc_backend::{self, BackendConfig};
    use eyas_core::slots::{Backend, BootState};
    let d = TempDir::new("grub-loop");
    let f = d.join("grubenv");
    support::copy_vector("grub/grubenv.rauc", &f);
    let conf = BackendConfig::parse(
        &format!(
            "bootloader = grub\ngrubenv = {}\nbootnames = A B\n",
            f.display()
        ),
        &d.join("c"),
    )
    .unwrap();
    let backend = |args: &[&str]| {
        let (mut o, mut e) = (Vec::new(), Vec::new());
        assert_eq!(
            rauc_backend::run(args, &conf, &mut o, &mut e),
            0,
            "{args:?}: {}",
            String::from_utf8_lossy(&e)
        );
        String::from_utf8(o).unwrap()
    };
    let list = || parse_listing(&run(Command::new("grub-editenv").arg(&f).arg("list")));
    let boot = || {
        let vars = list();
        let (chosen, ch) = grub_script(&vars);
        let st = BootState::from_vars(Backend::Grub, &["A", "B"], |n| {
            vars.get(n).map(String::as_str)
        })
        .unwrap();
        assert_eq!(
            st.boot().chosen.map(|i| ["A", "B"][i].to_string()),
            chosen,
            "slots::boot disagrees with grub.conf on {vars:?}"
        );
        GrubFile::new(&f).apply(&borrowed(&ch)).unwrap();
        chosen
    };
    assert_eq!(boot().as_deref(), Some("A"));
    backend(&["set-state", "A", "good"]);
    backend(&["set-state", "B", "bad"]);
    backend(&["set-primary", "B"]);
    assert_eq!(list()["ORDER"], "B A");
    assert_eq!(boot().as_deref(), Some("B"));
    // B never marked good: GRUB's one try is used up, it falls back to A.
    assert_eq!(boot().as_deref(), Some("A"));
    assert_eq!(backend(&["get-state", "B"]), "bad\n");
    // Running A on its try (A_TRY=1): RAUC's GRUB rules see no good slot until mark-good.
    assert_eq!(backend(&["get-state", "A"]), "bad\n");
    backend(&["set-state", "A", "good"]);
    assert_eq!(backend(&["get-primary"]), "A\n");
    let v = list();
    assert_eq!(
        (v["A_OK"].as_str(), v["A_TRY"].as_str(), v["B_TRY"].as_str()),
        ("1", "0", "1")
    );
    // Both tried: rescue boot, TRY cleared for every OK slot, next boot tries B again.
    GrubFile::new(&f).apply(&[("A_TRY", Some("1"))]).unwrap();
    assert_eq!(boot(), None);
    assert_eq!(boot().as_deref(), Some("B"));
}

/// Bucket selection, judged by barebox-state itself: a bucket written with a longer description
/// (one more variable) is used by dt-utils and by eyas alike, and a short first bucket makes
/// both fail instead of falling back to the older buckets behind it.
#[test]
fn barebox_bucket_selection_agrees_with_barebox_state() {
    use eyas_bootloader_glue::crc::crc32;
    let bucket = |words: &[u32]| {
        let data: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut b = Vec::new();
        b.extend_from_slice(&0x2354_fdf3u32.to_le_bytes());
        b.extend_from_slice(&(16 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(&0x4d43_3230u32.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(&(data.len() as u16).to_le_bytes());
        b.extend_from_slice(&crc32(&data).to_le_bytes());
        let h = crc32(&b[8..20]);
        b.extend_from_slice(&h.to_le_bytes());
        b.extend_from_slice(&data);
        b
    };
    let image = |bs: [&[u8]; 3]| {
        let mut img = vec![0u8; 0x8000];
        for (i, b) in bs.iter().enumerate() {
            img[i * 0x40..i * 0x40 + b.len()].copy_from_slice(b);
        }
        img
    };
    let d = TempDir::new("bb-select");
    let img = d.join("state.img");
    let dtb = vectors().join("barebox/state-partuuid.dtb");
    let get = BB_VARS.map(|v| format!("-g {v}")).join(" ");
    let longer = bucket(&[3, 10, 0, 0, 0, 1]);
    std::fs::write(&img, image([&longer, &longer, &longer])).unwrap();
    let theirs = barebox_state(&d, &img, &get);
    std::fs::write(&img, image([&longer, &longer, &longer])).unwrap();
    let ours = BareboxFile::open(&dtb, None, &img).unwrap().read().unwrap();
    let desc = BareboxFile::open(&dtb, None, &img).unwrap();
    let ours: Vec<String> = BB_VARS
        .iter()
        .map(|v| desc.desc().get(&ours, v).unwrap().to_string())
        .collect();
    assert_eq!(theirs.lines().collect::<Vec<_>>(), ours);
    assert_eq!(ours, ["3", "10", "0", "0", "0"]);

    // A short first bucket (written with a shorter description): both use it, variables behind
    // its data keep their defaults; neither falls back to the older buckets behind it.
    let short = bucket(&[2, 20, 3, 10]);
    let old = bucket(&[3, 20, 3, 10, 7]);
    std::fs::write(&img, image([&short, &old, &old])).unwrap();
    let theirs = barebox_state(&d, &img, &get);
    std::fs::write(&img, image([&short, &old, &old])).unwrap();
    let vals = BareboxFile::open(&dtb, None, &img).unwrap().read().unwrap();
    let ours: Vec<String> = BB_VARS
        .iter()
        .map(|v| desc.desc().get(&vals, v).unwrap().to_string())
        .collect();
    assert_eq!(theirs.lines().collect::<Vec<_>>(), ours);
    assert_eq!(ours, ["2", "20", "3", "10", "0"]);
}
