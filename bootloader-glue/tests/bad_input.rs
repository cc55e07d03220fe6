//! Bad input for every parser: mutated test vectors and random bytes (seeded, so CI runs the same
//! cases every time). No input may panic; every rejection is a typed error. The long runs are the
//! cargo-fuzz targets in `bootloader-glue/fuzz/`.

mod support;

use eyas_bootloader_glue::barebox::{self, StateDesc};
use eyas_bootloader_glue::grub;
use eyas_bootloader_glue::storage::SliceStorage;
use eyas_bootloader_glue::uboot::{self, EnvError, EnvFormat, config};
use support::{Rng, vectors};

const ITER: usize = 3000;

fn mutate(rng: &mut Rng, base: &[u8]) -> Vec<u8> {
    let mut v = base.to_vec();
    for _ in 0..1 + rng.below(8) {
        if v.is_empty() {
            break;
        }
        let i = rng.below(v.len() as u64) as usize;
        match rng.below(4) {
            0 => v[i] ^= 1 << rng.below(8),
            1 => v[i] = rng.next() as u8,
            2 => v.truncate(i),
            _ => v[i] = [0, b'=', b'\n', b'#', 0xFF][rng.below(5) as usize],
        }
    }
    v
}

#[test]
fn uboot_images_never_panic_and_bad_crcs_are_rejected() {
    let mut rng = Rng(11);
    let base = std::fs::read(vectors().join("uboot/rauc18.vec_3_markactive_other.env")).unwrap();
    let fmt = EnvFormat::redundant(0x4000);
    let (mut rejected, mut accepted) = (0, 0);
    for _ in 0..ITER / 10 {
        // Damage only copy 0 (current): the reader must fall back to copy 1 or fail cleanly.
        let mut img = base.clone();
        let i = 5 + rng.below(0x4000 - 5) as usize;
        img[i] ^= 1 + rng.below(255) as u8;
        let d = uboot::decode(&fmt, &img[..0x4000], &img[0x4000..]).unwrap();
        assert_eq!(d.current, 1, "a bad CRC in copy 0 must select copy 1");
        assert_eq!(d.env.get_str("BOOT_ORDER"), Some("A"));
    }
    for _ in 0..ITER {
        let small = mutate(&mut rng, &base[..0x100]);
        let s = small.len() / 2;
        if s < uboot::MIN_COPY_SIZE {
            continue;
        }
        let f = EnvFormat::redundant(s);
        match uboot::decode(&f, &small[..s], &small[s..2 * s]) {
            Ok(d) => {
                accepted += 1;
                let _ = d.env.iter().count();
            }
            Err(EnvError::NoValidCopy | EnvError::Unterminated) => rejected += 1,
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    // Unterminated data with a valid CRC.
    let mut c = vec![b'a'; 64];
    c[4] = 1;
    let crc = eyas_bootloader_glue::crc::crc32(&c[5..]);
    c[..4].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(
        uboot::decode(&EnvFormat::redundant(64), &c, &c).unwrap_err(),
        EnvError::Unterminated
    );
    assert!(rejected > 0);
    let _ = accepted;
}

#[test]
fn fw_env_configs_never_panic() {
    let mut rng = Rng(12);
    let base = b"# comment\n/dev/mmcblk0 0x3e0000 0x20000 0x20000 1\n/dev/mmcblk0 -0x20000 20000\n";
    for _ in 0..ITER {
        let m = mutate(&mut rng, base);
        if let Ok(t) = std::str::from_utf8(&m) {
            match config::parse(t) {
                Ok(c) => assert!(c.first.env_size > 0),
                Err(e) => assert!(!e.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn barebox_dtbs_and_buckets_never_panic() {
    let mut rng = Rng(13);
    let dtb = std::fs::read(vectors().join("barebox/state-partuuid.dtb")).unwrap();
    let desc = StateDesc::from_dtb(&dtb, None).unwrap();
    let mut ok = 0;
    for _ in 0..ITER {
        let m = mutate(&mut rng, &dtb);
        if let Ok(d) = StateDesc::from_dtb(&m, None) {
            ok += 1;
            assert!(d.data_len <= barebox::MAX_DATA);
        }
    }
    assert!(
        ok > 0,
        "some mutations (e.g. in unused bytes) must still parse"
    );
    let img = std::fs::read(vectors().join("barebox/rauc.3_markbad_other.img")).unwrap();
    for _ in 0..ITER {
        let mut m = mutate(&mut rng, &img[..0xC0]);
        m.resize(0xC0, 0);
        let mut st = SliceStorage::new(&mut m);
        let mut buf = vec![0u8; 0x40];
        match barebox::load(&desc, &mut st, &mut buf) {
            Ok(l) => assert_eq!(l.values.data.len(), desc.data_len),
            Err(barebox::LoadError::State(barebox::StateError::NoValidBucket)) => {}
            Err(e) => panic!("{e:?}"),
        }
    }
}

#[test]
fn grub_blocks_never_panic() {
    let mut rng = Rng(14);
    let base = std::fs::read(vectors().join("grub/grubenv.rauc")).unwrap();
    for _ in 0..ITER {
        let m = mutate(&mut rng, &base);
        if let Ok(e) = grub::GrubEnv::parse(&m) {
            let _ = e.iter().count();
            let mut out = vec![0u8; m.len()];
            let _ = grub::apply(
                &m,
                [("ORDER", Some("B A")), ("A_OK", None)].into_iter(),
                &mut out,
            );
        }
    }
    // A name that would break the format is refused.
    let mut out = vec![0u8; base.len()];
    for bad in ["", "#x", "a=b", "a\nb", "a\\b"] {
        assert_eq!(
            grub::apply(&base, [(bad, Some("1"))].into_iter(), &mut out).unwrap_err(),
            grub::GrubError::InvalidName
        );
    }
}

/// Regression (found by the `grub_env` fuzz target): an unterminated last line ending in a
/// backslash swallowed the appended variable.
#[test]
fn grub_fuzz_regression_trailing_escape() {
    let data: &[u8] = b"\x78\x78\x23\x20\x57\x41\x52\x4e\x49\x4e\x47\x3a\x20\x44\x6f\x20\x6e\x6f\x74\x20\x65\x64\x69\x74\x20\x74\x68\x69\x73\x20\x66\x69\x6c\x65\x20\x62\x79\x20\x74\x6f\x6f\x6c\x73\x20\x6f\x74\x68\x65\x72\x20\x74\x68\x61\x6e\x23\x23\x23\x02\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x78\x23\x20\x57\x41\x52\x4e\x78\x78\x23\x20\xff\xff\xff\xff\xff\x0a\x41\x5f\x54\x52\x59\x3d\x30\x0a\x42\x5f\x54\x52\x59\x3d\x30\x7e\x72\x75\x62\x2d\x65\x64\x69\x74\x65\x6e\x76\x21\x21\x21\x0a\x4f\x52\x44\x45\x52\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x3d\x41\x23\x23\x23\x20\x4a\x67\x72\x75\x62\x2d\x65\x00\x64\x19\x00\x00\x00\x00\x5c\x00\x00\x0a\x5f\x5c\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23\x23";
    let block = [grub::SIGNATURE, &data[2..]].concat();
    let env = grub::GrubEnv::parse(&block).unwrap();
    assert!(env.get("A_OK").is_none());
    let mut out = vec![0u8; block.len()];
    grub::apply(&block, [("A_OK", Some("a\\b\nc"))].into_iter(), &mut out).unwrap();
    let e = grub::GrubEnv::parse(&out).unwrap();
    assert!(e.get("A_OK").is_some_and(|v| v.eq_str("a\\b\nc")));
    assert_eq!(e.get("A_TRY").unwrap().as_plain_str(), Some("0"));
}
