//! Bucket storage contents: load never panics, and a valid bucket round-trips.
#![no_main]
use eyas_bootloader_glue::barebox::{self, StateDesc};
use eyas_bootloader_glue::storage::SliceStorage;
use libfuzzer_sys::fuzz_target;

const DTB: &[u8] = include_bytes!("../../tests/vectors/barebox/state-partuuid.dtb");

fuzz_target!(|data: &[u8]| {
    let desc = StateDesc::from_dtb(DTB, None).unwrap();
    let mut img = vec![0u8; desc.stride as usize * barebox::BUCKETS];
    let n = data.len().min(img.len());
    img[..n].copy_from_slice(&data[..n]);
    let mut st = SliceStorage::new(&mut img);
    let mut buf = vec![0u8; desc.stride as usize];
    if let Ok(l) = barebox::load(&desc, &mut st, &mut buf) {
        barebox::save(&desc, &l.values, &mut st, &mut buf).unwrap();
        let again = barebox::load(&desc, &mut st, &mut buf).unwrap();
        assert_eq!(again.values, l.values);
        assert_eq!(again.bucket, 0);
    }
});
