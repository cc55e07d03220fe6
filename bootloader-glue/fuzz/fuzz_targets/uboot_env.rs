//! U-Boot env images: decode both layouts, then re-encode with changes taken from the input and
//! check the result decodes to exactly the expected variables.
#![no_main]
use eyas_bootloader_glue::uboot::{self, CrcEndian, EnvFormat, Layout, Tail};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let (ctl, img) = data.split_at(4);
    let endian = if ctl[0] & 1 == 0 { CrcEndian::Little } else { CrcEndian::Big };
    // Pretend the CRC is right most of the time so the parser is reached.
    for layout in [Layout::Single, Layout::Redundant] {
        let size = img.len() / if layout == Layout::Single { 1 } else { 2 };
        if size < uboot::MIN_COPY_SIZE {
            continue;
        }
        let fmt = EnvFormat { layout, copy_size: size, endian, ..EnvFormat::single(size) };
        let mut copies = img[..size * fmt.copies()].to_vec();
        if ctl[1] & 1 == 0 {
            for c in copies.chunks_mut(size) {
                let crc = eyas_bootloader_glue::crc::crc32(&c[fmt.data_offset()..]);
                let b = if endian == CrcEndian::Little { crc.to_le_bytes() } else { crc.to_be_bytes() };
                c[..4].copy_from_slice(&b);
            }
        }
        let (c0, c1) = if layout == Layout::Single { (&copies[..size], &copies[..size]) } else { (&copies[..size], &copies[size..2 * size]) };
        let Ok(img) = uboot::decode(&fmt, c0, c1) else { continue };
        let _ = img.env.iter().count();
        // A change derived from the input.
        let name = core::str::from_utf8(&ctl[2..3]).unwrap_or("x");
        let val = core::str::from_utf8(&ctl[3..4]).unwrap_or("y");
        let changes = [(name, Some(val)), ("eyas_fuzz", if ctl[2] & 1 == 0 { None } else { Some("1") })];
        let tail = if ctl[1] & 2 == 0 { Tail::LikeFwSetenv } else { Tail::Fill(ctl[0]) };
        let mut out = vec![0u8; size];
        match uboot::build_copy(&fmt, Some(&img), c0, changes.iter().copied(), tail, &mut out) {
            Ok(target) => {
                assert!(target < fmt.copies());
                assert!(uboot::check_copy(&fmt, &out).unwrap().crc_ok);
                let new = uboot::Env::parse(&out[fmt.data_offset()..]).expect("our own output parses");
                for (n, v) in changes {
                    let want = v.filter(|v| !v.is_empty()).map(str::as_bytes);
                    if uboot::Env::parse(&[n.as_bytes(), b"=\0\0"].concat()).is_ok() && !n.is_empty() && !n.contains(['=', '\0']) {
                        assert_eq!(new.get(n), want);
                    }
                }
            }
            Err(_) => {}
        }
    }
});
