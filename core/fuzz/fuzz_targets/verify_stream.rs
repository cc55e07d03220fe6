//! The streaming verifier with arbitrary chunking, sizes and digests: never panics, never
//! accepts more or fewer bytes than announced, and the verdict does not depend on the chunking.
#![no_main]

use eyas_core::verify::{ArtifactSpec, Policy, UpdateError, Verifier};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (hdr, body) = data.split_at(3);
    let size = u64::from(hdr[0]) * 7;
    let step = usize::from(hdr[1]).max(1);
    let spec = ArtifactSpec {
        size,
        sha256: (hdr[2] & 1 == 0).then_some([hdr[2]; 32]),
        sha1: Some([hdr[2]; 20]),
    };
    let Ok(mut chunked) = Verifier::new(&spec, Policy::IfPresent) else {
        return;
    };
    let mut whole = chunked.clone();
    let mut too_long = false;
    for c in body.chunks(step) {
        match chunked.update(c) {
            Ok(()) => {}
            Err(UpdateError::TooLong { accepted, .. }) => {
                assert!(accepted < c.len());
                too_long = true;
                break;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(chunked.received() <= size);
    assert_eq!(too_long, body.len() as u64 > size);
    let whole_ok = whole.update(body).is_ok();
    assert_eq!(whole_ok, !too_long);
    assert_eq!(chunked.received(), whole.received());
    assert_eq!(chunked.finish("c", None), whole.finish("c", None));
});
