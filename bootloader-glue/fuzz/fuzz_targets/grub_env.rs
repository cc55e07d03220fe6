//! GRUB env blocks: parse, iterate, apply changes; the result parses and holds the changes.
#![no_main]
use eyas_bootloader_glue::grub::{self, GrubEnv};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (ctl, rest) = data.split_at(2);
    let block = [grub::SIGNATURE, rest].concat();
    let Ok(env) = GrubEnv::parse(&block) else { return };
    for (_, v) in env.iter() {
        let _ = v.bytes().count();
    }
    let val = if ctl[0] & 1 == 0 { "a\\b\nc" } else { "1" };
    let name = if ctl[1] & 1 == 0 { "A_OK" } else { "ORDER" };
    let mut out = vec![0u8; block.len()];
    if grub::apply(&block, [(name, Some(val))].into_iter(), &mut out).is_ok() {
        let e = GrubEnv::parse(&out).expect("our output parses");
        // Only checkable when the input had no malformed earlier line with the same name.
        if env.get(name).is_none() {
            assert!(e.get(name).is_some_and(|v| v.eq_str(val)));
        }
        let mut out2 = vec![0u8; block.len()];
        if grub::apply(&out, [(name, None)].into_iter(), &mut out2).is_ok() && env.get(name).is_none() {
            assert!(GrubEnv::parse(&out2).unwrap().get(name).is_none());
        }
    }
});
