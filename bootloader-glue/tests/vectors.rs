//! Byte-exact round trips against every file in `tests/vectors/` (made by mkenvimage,
//! fw_setenv, barebox-state, grub-editenv and RAUC 1.8; see its MANIFEST.txt).

use eyas_bootloader_glue::barebox::{self, BucketStatus, StateDesc, StateError};
use eyas_bootloader_glue::grub;
use eyas_bootloader_glue::storage::SliceStorage;
use eyas_bootloader_glue::uboot::store::{
    Applied, ApplyOptions, CopyLocation, StoreError, UbootStore,
};
use eyas_bootloader_glue::uboot::{self, CrcEndian, EnvError, EnvFormat, Layout, Tail};
use std::path::PathBuf;

fn vectors() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors")
}

fn vec(rel: &str) -> Vec<u8> {
    let p = vectors().join(rel);
    std::fs::read(&p).unwrap_or_else(|e| panic!("test vector {} missing: {e}", p.display()))
}

const S: usize = 0x4000;
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];
type Step<'a> = (&'a str, EnvFormat, Changes<'a>, &'a str);
type GrubStep<'a> = (&'a str, Changes<'a>, &'a str);
type BbStep<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);
const ENV_TXT: [(&str, &str); 4] = [
    ("BOOT_ORDER", "A B"),
    ("BOOT_A_LEFT", "3"),
    ("BOOT_B_LEFT", "3"),
    ("bootcmd", "run distro_bootcmd"),
];

fn vars_of(img: &uboot::Image<'_>) -> Vec<(String, String)> {
    img.env
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                String::from_utf8(v.to_vec()).unwrap(),
            )
        })
        .collect()
}

fn decode_redund(b: &[u8]) -> uboot::Image<'_> {
    uboot::decode(&EnvFormat::redundant(S), &b[..S], &b[S..2 * S]).unwrap()
}

/// Applies one fw_setenv-equivalent write to an in-memory image and returns the new bytes.
fn apply(img: &[u8], fmt: EnvFormat, changes: &[(&str, Option<&str>)]) -> (Vec<u8>, Applied) {
    let mut bytes = img.to_vec();
    let out;
    {
        let (a, b) = bytes.split_at_mut(fmt.copy_size.min(img.len()));
        let copy1 = if fmt.layout == Layout::Redundant {
            Some(CopyLocation {
                storage: SliceStorage::new(b),
                offset: 0,
            })
        } else {
            None
        };
        let mut st = UbootStore {
            format: fmt,
            copy0: CopyLocation {
                storage: SliceStorage::new(a),
                offset: 0,
            },
            copy1,
        };
        let mut scratch = vec![0u8; 3 * fmt.copy_size];
        let opts = ApplyOptions {
            allow_single_copy_write: true,
            ..ApplyOptions::default()
        };
        out = st
            .apply(changes.iter().copied(), &opts, &mut scratch)
            .unwrap();
    }
    (bytes, out)
}

#[test]
fn uboot_mkenvimage_images_are_reproduced() {
    let mut out = vec![0u8; S];
    uboot::make_copy(
        &EnvFormat::single(S),
        ENV_TXT.iter().copied(),
        0xFF,
        0,
        &mut out,
    )
    .unwrap();
    assert_eq!(out, vec("uboot/single.orig.env"));
    let be = EnvFormat {
        endian: CrcEndian::Big,
        ..EnvFormat::single(S)
    };
    uboot::make_copy(&be, ENV_TXT.iter().copied(), 0xFF, 0, &mut out).unwrap();
    assert_eq!(out, vec("uboot/single.be.env"));
    let mut small = vec![0u8; 0x100];
    uboot::make_copy(
        &EnvFormat::single(0x100),
        ENV_TXT.iter().copied(),
        0x00,
        0,
        &mut small,
    )
    .unwrap();
    assert_eq!(small, vec("uboot/small.p00.env"));
    let r = EnvFormat {
        layout: Layout::Redundant,
        ..EnvFormat::single(0x100)
    };
    uboot::make_copy(&r, ENV_TXT.iter().copied(), 0xFF, 1, &mut small).unwrap();
    assert_eq!(small, vec("uboot/small.r.env"));
    uboot::make_copy(
        &EnvFormat::redundant(S),
        ENV_TXT.iter().copied(),
        0xFF,
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        [out.clone(), out.clone()].concat(),
        vec("uboot/redund.orig.env")
    );
    uboot::make_copy(
        &EnvFormat::redundant(S),
        ENV_TXT[..3].iter().copied(),
        0xFF,
        1,
        &mut out,
    )
    .unwrap();
    assert_eq!(
        [out.clone(), out].concat(),
        vec("uboot/rauc18.vec0_initial.env")
    );
}

#[test]
fn uboot_every_vector_decodes_as_the_manifest_says() {
    let single = vec("uboot/single.orig.env");
    let img = uboot::decode(&EnvFormat::single(S), &single, &[]).unwrap();
    assert_eq!(vars_of(&img)[0], ("BOOT_ORDER".into(), "A B".into()));
    // The BE image is invalid when read as LE, and valid as BE.
    let be = vec("uboot/single.be.env");
    assert_eq!(
        uboot::decode(&EnvFormat::single(S), &be, &[]).unwrap_err(),
        EnvError::NoValidCopy
    );
    let bef = EnvFormat {
        endian: CrcEndian::Big,
        ..EnvFormat::single(S)
    };
    assert_eq!(
        uboot::decode(&bef, &be, &[])
            .unwrap()
            .env
            .get_str("bootcmd"),
        Some("run distro_bootcmd")
    );
    // Stale bytes after the terminator are ignored.
    let del = vec("uboot/single.after_delete_bootcmd.env");
    let img = uboot::decode(&EnvFormat::single(S), &del, &[]).unwrap();
    assert_eq!(img.env.get("bootcmd"), None);
    assert_eq!(img.env.iter().count(), 3);
    let small = vec("uboot/small.r.env");
    let r = EnvFormat {
        layout: Layout::Redundant,
        ..EnvFormat::single(0x100)
    };
    let st = uboot::check_copy(&r, &small).unwrap();
    assert!(st.crc_ok);
    assert_eq!(st.flags, Some(1));

    let cases: &[(&str, usize, u8, &str)] = &[
        ("uboot/redund.orig.env", 0, 1, "3"),
        ("uboot/redund.after_write1.env", 1, 2, "2"),
        ("uboot/redund.after_write2.env", 0, 3, "1"),
        ("uboot/redund.after_write3.env", 1, 4, "0"),
        ("uboot/redund.torn_copy1.env", 0, 3, "1"),
        ("uboot/redund.after_write_over_torn.env", 1, 4, "5"),
        ("uboot/redund.wrap_255_0.env", 1, 0, "3"),
        ("uboot/redund.wrap_after_write.env", 0, 1, "7"),
        ("uboot/redund.after_script_primaryB.env", 1, 2, "3"),
        ("uboot/rauc18.vec0_initial.env", 0, 1, "3"),
        ("uboot/rauc18.vec0b_A_left1.env", 1, 2, "1"),
        ("uboot/rauc18.vec_1_markgood_booted.env", 0, 3, "3"),
        ("uboot/rauc18.vec_2_markbad_other.env", 0, 5, "3"),
        ("uboot/rauc18.vec_3_markactive_other.env", 0, 7, "3"),
        ("uboot/rauc18.vec_4_markgood_A.env", 0, 7, "3"),
    ];
    for (f, cur, flags, a_left) in cases {
        let b = vec(f);
        let img = decode_redund(&b);
        assert_eq!(img.current, *cur, "{f}");
        assert_eq!(img.status[*cur].flags, Some(*flags), "{f}");
        assert_eq!(img.env.get_str("BOOT_A_LEFT"), Some(*a_left), "{f}");
    }
    let torn = vec("uboot/redund.torn_copy1.env");
    assert!(!decode_redund(&torn).status[1].crc_ok);
    let v2 = vec("uboot/rauc18.vec_2_markbad_other.env");
    // The older copy keeps RAUC's half-way state (BOOT_ORDER=A, BOOT_B_LEFT=3).
    let old = uboot::Env::parse(&v2[S + 5..2 * S]).unwrap();
    assert_eq!(
        (old.get_str("BOOT_ORDER"), old.get_str("BOOT_B_LEFT")),
        (Some("A"), Some("3"))
    );
}

#[test]
fn uboot_fw_setenv_writes_are_reproduced_byte_for_byte() {
    let single = EnvFormat::single(S);
    let red = EnvFormat::redundant(S);
    let steps: &[Step<'_>] = &[
        (
            "uboot/single.orig.env",
            single,
            &[("BOOT_A_LEFT", Some("2"))],
            "uboot/single.after_set_A2.env",
        ),
        (
            "uboot/single.after_set_A2.env",
            single,
            &[("bootcmd", None)],
            "uboot/single.after_delete_bootcmd.env",
        ),
        (
            "uboot/redund.orig.env",
            red,
            &[("BOOT_A_LEFT", Some("2"))],
            "uboot/redund.after_write1.env",
        ),
        (
            "uboot/redund.after_write1.env",
            red,
            &[("BOOT_A_LEFT", Some("1"))],
            "uboot/redund.after_write2.env",
        ),
        (
            "uboot/redund.after_write2.env",
            red,
            &[("BOOT_A_LEFT", Some("0"))],
            "uboot/redund.after_write3.env",
        ),
        (
            "uboot/redund.torn_copy1.env",
            red,
            &[("BOOT_A_LEFT", Some("5"))],
            "uboot/redund.after_write_over_torn.env",
        ),
        (
            "uboot/redund.wrap_255_0.env",
            red,
            &[("BOOT_A_LEFT", Some("7"))],
            "uboot/redund.wrap_after_write.env",
        ),
        (
            "uboot/rauc18.vec0_initial.env",
            red,
            &[("BOOT_A_LEFT", Some("1"))],
            "uboot/rauc18.vec0b_A_left1.env",
        ),
        // RAUC 1.8's own fw_setenv calls, one write each.
        (
            "uboot/rauc18.vec0b_A_left1.env",
            red,
            &[("BOOT_A_LEFT", Some("3"))],
            "uboot/rauc18.vec_1_markgood_booted.env",
        ),
    ];
    for (from, fmt, changes, to) in steps {
        let (got, applied) = apply(&vec(from), *fmt, changes);
        assert!(matches!(applied, Applied::Written { .. }), "{from}");
        assert!(got == vec(to), "{from} + {changes:?} != {to}");
    }
    // fw_setenv -s primaryB.script: two variables, ONE write. libubootenv's heap left one glibc
    // chunk header (8 bytes: the top-chunk size 0x1e6c1) inside its image buffer at copy offset
    // 0x1008; that is malloc state, not env content. Everything else matches byte for byte.
    let (got, _) = apply(
        &vec("uboot/redund.orig.env"),
        red,
        &[("BOOT_ORDER", Some("B A")), ("BOOT_B_LEFT", Some("3"))],
    );
    let want = vec("uboot/redund.after_script_primaryB.env");
    let diff: Vec<usize> = (0..got.len()).filter(|&i| got[i] != want[i]).collect();
    let heap = S + 0x1008..S + 0x1010;
    assert!(
        diff.iter()
            .all(|i| heap.contains(i) || (S..S + 4).contains(i)),
        "{diff:x?}"
    );
    assert_eq!(&want[heap.clone()], &[0xc1, 0xe6, 1, 0, 0, 0, 0, 0]);
    let mut patched = got.clone();
    patched[heap.clone()].copy_from_slice(&want[heap]);
    let crc = eyas_bootloader_glue::crc::crc32(&patched[S + 5..2 * S]);
    patched[S..S + 4].copy_from_slice(&crc.to_le_bytes());
    assert!(patched == want);
    assert_eq!(
        vars_of(&decode_redund(&got)),
        vars_of(&decode_redund(&want))
    );
    // RAUC's two-call sequences.
    let (mid, _) = apply(
        &vec("uboot/rauc18.vec_1_markgood_booted.env"),
        red,
        &[("BOOT_ORDER", Some("A"))],
    );
    let (v2, _) = apply(&mid, red, &[("BOOT_B_LEFT", Some("0"))]);
    assert!(v2 == vec("uboot/rauc18.vec_2_markbad_other.env"));
    let (mid, _) = apply(&v2, red, &[("BOOT_B_LEFT", Some("3"))]);
    let (v3, _) = apply(&mid, red, &[("BOOT_ORDER", Some("B A"))]);
    assert!(v3 == vec("uboot/rauc18.vec_3_markactive_other.env"));
    // Unchanged value: nothing written, byte-identical (vec_4 == vec_3).
    let (v4, applied) = apply(&v3, red, &[("BOOT_A_LEFT", Some("3"))]);
    assert_eq!(applied, Applied::Unchanged);
    assert!(v4 == vec("uboot/rauc18.vec_4_markgood_A.env"));
    // eyas's single write for mark-bad other reaches RAUC's final state in one step, and its
    // older copy is the *previous* state, not RAUC's half-way one.
    let v1 = vec("uboot/rauc18.vec_1_markgood_booted.env");
    let (one, applied) = apply(
        &v1,
        red,
        &[("BOOT_ORDER", Some("A")), ("BOOT_B_LEFT", Some("0"))],
    );
    assert_eq!(
        applied,
        Applied::Written {
            copy: 1,
            flags: Some(4)
        }
    );
    let rauc = vec("uboot/rauc18.vec_2_markbad_other.env");
    assert_eq!(
        vars_of(&decode_redund(&one)),
        vars_of(&decode_redund(&rauc))
    );
    assert_eq!(one[..S], v1[..S]);
}

#[test]
fn uboot_deterministic_fill_tail() {
    let b = vec("uboot/single.after_set_A2.env");
    let fmt = EnvFormat::single(S);
    let img = uboot::decode(&fmt, &b, &[]).unwrap();
    let mut out = vec![0u8; S];
    uboot::build_copy(
        &fmt,
        Some(&img),
        &b,
        [("bootcmd", None)].into_iter(),
        Tail::Fill(0xFF),
        &mut out,
    )
    .unwrap();
    let expect_vars = b"BOOT_A_LEFT=2\0BOOT_B_LEFT=3\0BOOT_ORDER=A B\0\0";
    assert_eq!(&out[4..4 + expect_vars.len()], expect_vars);
    assert!(out[4 + expect_vars.len()..].iter().all(|&x| x == 0xFF));
    assert!(uboot::check_copy(&fmt, &out).unwrap().crc_ok);
}

#[test]
fn uboot_bad_input_errors() {
    let red = EnvFormat::redundant(S);
    // Both copies corrupt: a clear error, and defaults only when explicitly given.
    let mut both = vec("uboot/redund.orig.env");
    both[10] ^= 1;
    both[S + 10] ^= 1;
    assert_eq!(
        uboot::decode(&red, &both[..S], &both[S..]).unwrap_err(),
        EnvError::NoValidCopy
    );
    let mut bytes = both.clone();
    let (a, b) = bytes.split_at_mut(S);
    let mut st = UbootStore {
        format: red,
        copy0: CopyLocation {
            storage: SliceStorage::new(a),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: SliceStorage::new(b),
            offset: 0,
        }),
    };
    let mut scratch = vec![0u8; 3 * S];
    let err = st
        .apply(
            [("X", Some("1"))].into_iter(),
            &ApplyOptions::default(),
            &mut scratch,
        )
        .unwrap_err();
    assert!(matches!(err, StoreError::Env(EnvError::NoValidCopy)));
    assert!(
        err.to_string().contains("explicitly ask for the default"),
        "{err}"
    );
    let defaults = uboot::Env::parse(b"BOOT_ORDER=A B\0\0").unwrap();
    let opts = ApplyOptions {
        defaults: Some(defaults),
        tail: Tail::Fill(0),
        ..ApplyOptions::default()
    };
    assert!(matches!(
        st.apply([("X", Some("1"))].into_iter(), &opts, &mut scratch)
            .unwrap(),
        Applied::Written { copy: 1, .. }
    ));
    let _ = st;
    let img = uboot::decode(&red, &bytes[..S], &bytes[S..]).unwrap();
    assert_eq!(
        (img.env.get_str("BOOT_ORDER"), img.env.get_str("X")),
        (Some("A B"), Some("1"))
    );
    // A full env is an error before anything is written.
    let mut small = vec![0u8; 0x100];
    let r = EnvFormat {
        layout: Layout::Redundant,
        ..EnvFormat::single(0x100)
    };
    uboot::make_copy(&r, ENV_TXT.iter().copied(), 0xFF, 1, &mut small).unwrap();
    let before = [small.clone(), small.clone()].concat();
    let mut bytes = before.clone();
    let (a, b) = bytes.split_at_mut(0x100);
    let mut st = UbootStore {
        format: r,
        copy0: CopyLocation {
            storage: SliceStorage::new(a),
            offset: 0,
        },
        copy1: Some(CopyLocation {
            storage: SliceStorage::new(b),
            offset: 0,
        }),
    };
    let big = "x".repeat(200);
    let mut scratch = vec![0u8; 3 * 0x100];
    let err = st
        .apply(
            [("BIG", Some(big.as_str()))].into_iter(),
            &ApplyOptions::default(),
            &mut scratch,
        )
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Env(EnvError::EnvFull { .. })),
        "{err:?}"
    );
    let _ = st;
    assert_eq!(bytes, before);
    // Single copy: refused unless allowed.
    let mut single = vec("uboot/single.orig.env");
    let mut st = UbootStore {
        format: EnvFormat::single(S),
        copy0: CopyLocation {
            storage: SliceStorage::new(&mut single),
            offset: 0,
        },
        copy1: None,
    };
    let mut scratch = vec![0u8; 2 * S];
    assert!(matches!(
        st.apply(
            [("X", Some("1"))].into_iter(),
            &ApplyOptions::default(),
            &mut scratch
        ),
        Err(StoreError::UnsafeSingleCopy)
    ));
}

#[test]
fn grub_vectors() {
    let mut out = vec![0u8; grub::BLOCK_SIZE];
    grub::create(&mut out).unwrap();
    assert_eq!(out, vec("grub/grubenv.empty"));
    let empty = vec("grub/grubenv.empty");
    let set = [
        ("ORDER", Some("A B")),
        ("A_OK", Some("1")),
        ("B_OK", Some("1")),
        ("A_TRY", Some("0")),
        ("B_TRY", Some("0")),
    ];
    assert!(grub::apply(&empty, set.iter().copied(), &mut out).unwrap());
    assert_eq!(out, vec("grub/grubenv.rauc"));
    let steps: &[GrubStep<'_>] = &[
        (
            "grub/grubenv.rauc",
            &[("A_TRY", Some("1"))],
            "grub/grubenv.rauc.A_TRY1",
        ),
        (
            "grub/grubenv.rauc.A_TRY1",
            &[("A_OK", Some("1")), ("A_TRY", Some("0"))],
            "grub/grubenv.rauc.1_markgood",
        ),
        (
            "grub/grubenv.rauc.1_markgood",
            &[
                ("B_OK", Some("1")),
                ("B_TRY", Some("0")),
                ("ORDER", Some("B A")),
            ],
            "grub/grubenv.rauc.2_markactive_other",
        ),
        (
            "grub/grubenv.rauc.2_markactive_other",
            &[("B_OK", Some("0")), ("B_TRY", Some("0"))],
            "grub/grubenv.rauc.3_markbad_other",
        ),
        (
            "grub/grubenv.rauc.3_markbad_other",
            &[
                ("A_OK", Some("1")),
                ("A_TRY", Some("0")),
                ("ORDER", Some("A B")),
            ],
            "grub/grubenv.rauc.4_markactive_A",
        ),
    ];
    for (from, ch, to) in steps {
        grub::apply(&vec(from), ch.iter().copied(), &mut out).unwrap();
        assert_eq!(out, vec(to), "{from} + {ch:?}");
    }
    let e = vec("grub/grubenv.rauc.4_markactive_A");
    let env = grub::GrubEnv::parse(&e).unwrap();
    let got: Vec<(String, String)> = env
        .iter()
        .map(|(n, v)| {
            (
                String::from_utf8(n.to_vec()).unwrap(),
                v.as_plain_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("ORDER", "A B"),
            ("A_OK", "1"),
            ("B_OK", "0"),
            ("A_TRY", "0"),
            ("B_TRY", "0")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let mut bad = e.clone();
    bad[2] = b'X';
    assert_eq!(
        grub::apply(&bad, [("A", Some("1"))].into_iter(), &mut out).unwrap_err(),
        grub::GrubError::InvalidSignature
    );
}

fn bb_desc() -> StateDesc {
    StateDesc::from_dtb(&vec("barebox/state-partuuid.dtb"), None).unwrap()
}

fn bb_values(img: &[u8]) -> Option<[u32; 5]> {
    let d = bb_desc();
    let mut img = img.to_vec();
    let mut st = SliceStorage::new(&mut img);
    let mut buf = vec![0u8; d.stride as usize];
    let l = barebox::load(&d, &mut st, &mut buf).ok()?;
    let g = |n: &str| d.get(&l.values, n).unwrap();
    Some([
        g("bootstate.system0.remaining_attempts"),
        g("bootstate.system0.priority"),
        g("bootstate.system1.remaining_attempts"),
        g("bootstate.system1.priority"),
        g("bootstate.last_chosen"),
    ])
}

/// Applies changes like one `barebox-state -s … -s …` run (load or defaults, save all buckets).
fn bb_apply(img: &[u8], changes: &[(&str, &str)]) -> Vec<u8> {
    let d = bb_desc();
    let mut img = img.to_vec();
    let mut st = SliceStorage::new(&mut img);
    let mut buf = vec![0u8; d.stride as usize];
    let mut v = match barebox::load(&d, &mut st, &mut buf) {
        Ok(l) => l.values,
        Err(barebox::LoadError::State(StateError::NoValidBucket)) => d.defaults(),
        Err(e) => panic!("{e:?}"),
    };
    for (n, val) in changes {
        d.set(&mut v, n, Some(val)).unwrap();
    }
    barebox::save(&d, &v, &mut st, &mut buf).unwrap();
    img
}

#[test]
fn barebox_description_from_dtb() {
    let d = bb_desc();
    assert_eq!(
        (d.magic, d.stride, d.data_len, d.vars.len()),
        (0x4d43_3230, 0x40, 20, 5)
    );
    let v = d.var("bootstate.system1.priority").unwrap();
    assert_eq!((v.offset, v.size, v.default), (0xc, 4, 20));
    assert_eq!(d.var("bootstate.last_chosen").unwrap().default, 0);
    assert_eq!(
        StateDesc::from_dtb(&vec("barebox/state-dtb.dtb"), None).unwrap_err(),
        StateError::Unsupported("backend-type \"dtb\"")
    );
    assert_eq!(
        StateDesc::from_dtb(&vec("barebox/state-partuuid.dtb"), Some("nosuch")).unwrap_err(),
        StateError::StateNodeNotFound
    );
    assert!(matches!(
        StateDesc::from_dtb(b"not a dtb at all, just some bytes here..", None),
        Err(StateError::Fdt(_))
    ));
}

#[test]
fn barebox_vectors() {
    let zero = vec("barebox/state.empty.img");
    assert_eq!(bb_values(&zero), None);
    let cases: &[(&str, [u32; 5])] = &[
        (
            "barebox/state.direct.s0p20a3_s1p10a3.img",
            [3, 20, 3, 10, 0],
        ),
        (
            "barebox/state.direct.fromdefaults_last_chosen1.img",
            [3, 20, 3, 20, 1],
        ),
        (
            "barebox/state.direct.manual_s0_disabled.img",
            [0, 0, 3, 20, 0],
        ),
        (
            "barebox/state.direct.CORRUPTED_bucket0.img",
            [3, 20, 3, 10, 0],
        ),
        (
            "barebox/state.direct.CRAFTED_bucket0_new_others_old.img",
            [2, 20, 3, 10, 0],
        ),
        (
            "barebox/state.direct.manual_priorities_s0p10_s1p20.img",
            [2, 10, 3, 20, 0],
        ),
        ("barebox/rauc.1_markgood.img", [3, 20, 3, 20, 0]),
        ("barebox/rauc.2_markactive_other.img", [3, 10, 3, 20, 0]),
        ("barebox/rauc.3_markbad_other.img", [3, 10, 0, 0, 0]),
        ("barebox/rauc.4_markactive_system0.img", [3, 20, 0, 0, 0]),
    ];
    for (f, v) in cases {
        assert_eq!(bb_values(&vec(f)), Some(*v), "{f}");
    }
    // Corrupted bucket 0 is reported as such.
    let d = bb_desc();
    let c = vec("barebox/state.direct.CORRUPTED_bucket0.img");
    assert_eq!(
        barebox::check_bucket(&d, &c[..0x40]),
        BucketStatus::BadDataCrc
    );

    // Writes, byte for byte.
    let steps: &[BbStep<'_>] = &[
        (
            "barebox/state.empty.img",
            &[("bootstate.system1.priority", "10")],
            "barebox/state.direct.s0p20a3_s1p10a3.img",
        ),
        (
            "barebox/state.empty.img",
            &[
                ("bootstate.system0.priority", "0"),
                ("bootstate.system0.remaining_attempts", "0"),
            ],
            "barebox/state.direct.manual_s0_disabled.img",
        ),
        (
            "barebox/state.direct.CRAFTED_bucket0_new_others_old.img",
            &[
                ("bootstate.system0.priority", "10"),
                ("bootstate.system1.priority", "20"),
                ("bootstate.system1.remaining_attempts", "3"),
            ],
            "barebox/state.direct.manual_priorities_s0p10_s1p20.img",
        ),
        // RAUC 1.8 barebox backend: each operation is one barebox-state run.
        (
            "barebox/state.empty.img",
            &[("bootstate.system0.remaining_attempts", "3")],
            "barebox/rauc.1_markgood.img",
        ),
        (
            "barebox/rauc.1_markgood.img",
            &[
                ("bootstate.system1.priority", "20"),
                ("bootstate.system0.priority", "10"),
                ("bootstate.system1.remaining_attempts", "3"),
            ],
            "barebox/rauc.2_markactive_other.img",
        ),
        (
            "barebox/rauc.2_markactive_other.img",
            &[
                ("bootstate.system1.priority", "0"),
                ("bootstate.system1.remaining_attempts", "0"),
            ],
            "barebox/rauc.3_markbad_other.img",
        ),
        (
            "barebox/rauc.3_markbad_other.img",
            &[
                ("bootstate.system0.priority", "20"),
                ("bootstate.system0.remaining_attempts", "3"),
            ],
            "barebox/rauc.4_markactive_system0.img",
        ),
    ];
    for (from, ch, to) in steps {
        assert!(
            bb_apply(&vec(from), ch) == vec(to),
            "{from} + {ch:?} != {to}"
        );
    }
    // 0xFF storage: padding stays 0xFF.
    let ff = vec![0xFFu8; 0x8000];
    assert!(
        bb_apply(&ff, &[("bootstate.last_chosen", "1")])
            == vec("barebox/state.direct.fromdefaults_last_chosen1.img")
    );
}

/// One direct bucket as dt-utils writes it (`barebox-state` with some description): meta, raw
/// header, `data`; `written` = the meta's written length.
fn bb_bucket(magic: u32, data: &[u8], written: u32) -> Vec<u8> {
    use eyas_bootloader_glue::crc::crc32;
    let mut b = Vec::new();
    b.extend_from_slice(&barebox::DIRECT_MAGIC.to_le_bytes());
    b.extend_from_slice(&written.to_le_bytes());
    b.extend_from_slice(&magic.to_le_bytes());
    b.extend_from_slice(&0u16.to_le_bytes());
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    b.extend_from_slice(&crc32(data).to_le_bytes());
    let hcrc = crc32(&b[8..20]);
    b.extend_from_slice(&hcrc.to_le_bytes());
    b.extend_from_slice(data);
    b
}

fn bb_image(buckets: [&[u8]; 3]) -> Vec<u8> {
    let mut img = vec![0u8; 0x8000];
    for (i, b) in buckets.iter().enumerate() {
        img[i * 0x40..i * 0x40 + b.len()].copy_from_slice(b);
    }
    img
}

fn le_words(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|x| x.to_le_bytes()).collect()
}

/// Bucket selection as dt-utils (backend_storage.c, backend_bucket_direct.c,
/// backend_format_raw.c) does it: a bucket verifies when its written length fits the stride,
/// the header CRC and magic match, `16 + data_len <= written length` and the data CRC over
/// `data_len` bytes matches. The description's own data length does not take part.
#[test]
fn barebox_bucket_selection_follows_dt_utils() {
    let d = bb_desc();
    let magic = d.magic;
    // Written by barebox with a description that has one more variable (e.g. attempts_locked
    // at 0x14): dt-utils verifies it and reads our 20 bytes from it. system1 is disabled.
    let longer = le_words(&[3, 10, 0, 0, 0, 1]);
    let b = bb_bucket(magic, &longer, 16 + 24);
    let img = bb_image([&b, &b, &b]);
    assert_eq!(bb_values(&img), Some([3, 10, 0, 0, 0]));
    // A larger written length (dt-utils only checks it against the stride) is fine too.
    let b = bb_bucket(magic, &le_words(&[3, 10, 0, 0, 0]), 16 + 20 + 8);
    assert_eq!(bb_values(&bb_image([&b, &b, &b])), Some([3, 10, 0, 0, 0]));
    // A mark-good through the file layer must keep system1 disabled, not start over from the
    // defaults (priority 20 for both) as if no bucket were valid.
    let dir = std::env::temp_dir().join(format!("eyas-glue-bbsel-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (dtb, storage) = (dir.join("state.dtb"), dir.join("state.img"));
    std::fs::write(&dtb, vec("barebox/state-partuuid.dtb")).unwrap();
    let b = bb_bucket(magic, &longer, 16 + 24);
    std::fs::write(&storage, bb_image([&b, &b, &b])).unwrap();
    let f = eyas_bootloader_glue::file::BareboxFile::open(&dtb, None, &storage).unwrap();
    let v = f
        .apply(&[("bootstate.system0.remaining_attempts", Some("3"))])
        .unwrap();
    assert_eq!(d.get(&v, "bootstate.system1.priority"), Some(0));
    assert_eq!(d.get(&v, "bootstate.system0.priority"), Some(10));
    let _ = std::fs::remove_dir_all(&dir);

    // The first verifying bucket is too short for the description: dt-utils (2021.03, verified)
    // uses it, takes every variable that fits and leaves the rest (last_chosen) at its default.
    // It must not fall back to the older buckets behind it.
    let short = bb_bucket(magic, &le_words(&[2, 20, 3, 10]), 16 + 16);
    let old = bb_bucket(magic, &le_words(&[3, 20, 3, 10, 7]), 16 + 20);
    assert_eq!(
        bb_values(&bb_image([&short, &old, &old])),
        Some([2, 20, 3, 10, 0])
    );
    // Buckets dt-utils rejects are still rejected: written length beyond the stride, data
    // length beyond the written length.
    let good = bb_bucket(magic, &le_words(&[3, 20, 3, 10, 0]), 16 + 20);
    let too_long = bb_bucket(magic, &le_words(&[2, 20, 3, 10, 0]), 0x41);
    assert_eq!(
        barebox::check_bucket(&d, &too_long),
        BucketStatus::BadLength
    );
    let mut beyond = bb_bucket(magic, &le_words(&[2, 20, 3, 10, 0]), 16 + 12);
    beyond.resize(0x40, 0);
    assert_eq!(barebox::check_bucket(&d, &beyond), BucketStatus::BadLength);
    assert_eq!(
        bb_values(&bb_image([&beyond[..36], &good, &good])),
        Some([3, 20, 3, 10, 0])
    );
}
