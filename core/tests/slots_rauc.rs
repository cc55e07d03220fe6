//! Differential tests: replay the RAUC 1.8 oracle runs (`tests/vectors/rauc18/`, made by the real
//! tools) through `eyas_core::slots` and compare the end state after every step.

use std::collections::BTreeMap;
use std::path::PathBuf;

use eyas_core::slots::{Backend, BootState, Transition};

type Vars = BTreeMap<String, String>;

fn vector(name: &str) -> Vec<u8> {
    let p: PathBuf = [
        env!("CARGO_MANIFEST_DIR"),
        "tests",
        "vectors",
        "rauc18",
        name,
    ]
    .iter()
    .collect();
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Decodes a redundant U-Boot env (2 × 0x4000), picking the valid copy with the higher flags
/// (255/0 wrap aside, which the RAUC runs never reach).
fn uboot_vars(file: &str) -> Vars {
    let img = vector(file);
    let size = 0x4000;
    let mut best: Option<(u8, &[u8])> = None;
    for copy in img.chunks(size) {
        let crc = u32::from_le_bytes([copy[0], copy[1], copy[2], copy[3]]);
        if crc32(&copy[5..]) != crc {
            continue;
        }
        if best.is_none_or(|(f, _)| copy[4] > f) {
            best = Some((copy[4], &copy[5..]));
        }
    }
    let (_, data) = best.expect("no valid copy");
    let mut vars = Vars::new();
    for kv in data.split(|&b| b == 0).take_while(|s| !s.is_empty()) {
        let kv = std::str::from_utf8(kv).unwrap();
        let (k, v) = kv.split_once('=').unwrap();
        vars.insert(k.into(), v.into());
    }
    vars
}

/// Decodes bucket 0 of a barebox raw/direct state image with the vectors' DTS layout.
fn barebox_vars(file: &str) -> Vars {
    let img = vector(file);
    assert_eq!(
        &img[0..4],
        &0x2354_fdf3u32.to_le_bytes(),
        "direct meta magic"
    );
    let data = &img[0x18..0x18 + 20];
    assert_eq!(
        crc32(data),
        u32::from_le_bytes(img[0x10..0x14].try_into().unwrap())
    );
    let u = |i: usize| u32::from_le_bytes(data[4 * i..4 * i + 4].try_into().unwrap()).to_string();
    [
        ("bootstate.system0.remaining_attempts", u(0)),
        ("bootstate.system0.priority", u(1)),
        ("bootstate.system1.remaining_attempts", u(2)),
        ("bootstate.system1.priority", u(3)),
        ("bootstate.last_chosen", u(4)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Decodes a GRUB environment block.
fn grub_vars(file: &str) -> Vars {
    let img = vector(file);
    let text = std::str::from_utf8(&img).unwrap();
    assert!(text.starts_with("# GRUB Environment Block\n"));
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn read(backend: Backend, names: &[&str], vars: &Vars) -> BootState {
    BootState::from_vars(backend, names, |n: &str| vars.get(n).map(String::as_str)).unwrap()
}

fn apply(vars: &mut Vars, t: &Transition) {
    for (k, v) in t.changes() {
        match v {
            Some(v) => vars.insert(k.to_string(), v.to_string()),
            None => vars.remove(k),
        };
    }
}

#[derive(Clone, Copy)]
enum Op {
    Good(usize),
    Bad(usize),
    Active(usize),
}

/// Replays `steps`, checking after each that our variables equal the oracle's exactly and that
/// reading the oracle's variables gives the state the transition predicted.
fn replay(
    backend: Backend,
    names: &[&str],
    mut vars: Vars,
    steps: &[(Op, &str)],
    decode: fn(&str) -> Vars,
) {
    for &(op, file) in steps {
        let st = read(backend, names, &vars);
        let t = match op {
            Op::Good(s) => st.mark_good(s).unwrap(),
            Op::Bad(s) => st.mark_bad(s).unwrap(),
            Op::Active(s) => st.mark_active(s).unwrap(),
        };
        apply(&mut vars, &t);
        let oracle = decode(file);
        assert_eq!(vars, oracle, "after {file}");
        assert_eq!(
            &read(backend, names, &oracle),
            t.state(),
            "state after {file}"
        );
    }
}

#[test]
fn uboot_matches_rauc18() {
    let start = uboot_vars("rauc18.vec0b_A_left1.env");
    assert_eq!(start["BOOT_A_LEFT"], "1");
    let st = read(Backend::UBoot, &["A", "B"], &start);
    // Exactly the variables RAUC wrote: mark-good booted -> fw_setenv BOOT_A_LEFT 3.
    let t = st.mark_good(0).unwrap();
    assert_eq!(
        t.changes().collect::<Vec<_>>(),
        [("BOOT_A_LEFT", Some("3"))]
    );
    replay(
        Backend::UBoot,
        &["A", "B"],
        start,
        &[
            (Op::Good(0), "rauc18.vec_1_markgood_booted.env"),
            (Op::Bad(1), "rauc18.vec_2_markbad_other.env"),
            (Op::Active(1), "rauc18.vec_3_markactive_other.env"),
            (Op::Good(0), "rauc18.vec_4_markgood_A.env"),
        ],
        uboot_vars,
    );
    // vec_4: the value was unchanged, fw_setenv wrote nothing; neither do we.
    let st = read(
        Backend::UBoot,
        &["A", "B"],
        &uboot_vars("rauc18.vec_3_markactive_other.env"),
    );
    assert!(st.mark_good(0).unwrap().is_empty());
}

#[test]
fn barebox_matches_rauc18() {
    // All-zero storage: barebox-state uses the DTS defaults.
    let start: Vars = [
        ("bootstate.system0.remaining_attempts", "3"),
        ("bootstate.system0.priority", "20"),
        ("bootstate.system1.remaining_attempts", "3"),
        ("bootstate.system1.priority", "20"),
        ("bootstate.last_chosen", "0"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    replay(
        Backend::Barebox,
        &["system0", "system1"],
        start,
        &[
            (Op::Good(0), "rauc.1_markgood.img"),
            (Op::Active(1), "rauc.2_markactive_other.img"),
            (Op::Bad(1), "rauc.3_markbad_other.img"),
            (Op::Active(0), "rauc.4_markactive_system0.img"),
        ],
        barebox_vars,
    );
}

#[test]
fn grub_matches_rauc18() {
    let start = grub_vars("grubenv.rauc.A_TRY1");
    assert_eq!(start["A_TRY"], "1");
    replay(
        Backend::Grub,
        &["A", "B"],
        start,
        &[
            (Op::Good(0), "grubenv.rauc.1_markgood"),
            (Op::Active(1), "grubenv.rauc.2_markactive_other"),
            (Op::Bad(1), "grubenv.rauc.3_markbad_other"),
            (Op::Active(0), "grubenv.rauc.4_markactive_A"),
        ],
        grub_vars,
    );
}
