//! State descriptions from arbitrary dtbs: never panic; accepted ones are usable.
#![no_main]
use eyas_bootloader_glue::barebox::{self, StateDesc};
use eyas_bootloader_glue::storage::SliceStorage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for name in [None, Some("state")] {
        if let Ok(desc) = StateDesc::from_dtb(data, name) {
            let v = desc.defaults();
            assert_eq!(v.data.len(), desc.data_len);
            let mut buf = vec![0u8; desc.stride as usize];
            let mut img = vec![0u8; desc.stride as usize * barebox::BUCKETS];
            let mut st = SliceStorage::new(&mut img);
            barebox::save(&desc, &v, &mut st, &mut buf).unwrap();
            let l = barebox::load(&desc, &mut st, &mut buf).unwrap();
            assert_eq!(l.values, v);
        }
    }
});
