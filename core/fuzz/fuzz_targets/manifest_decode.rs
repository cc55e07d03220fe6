//! Manifest decoder and signature check on arbitrary bytes: never panics, and whatever decodes
//! re-encodes to exactly the same bytes (one canonical encoding).
#![no_main]

use eyas_core::verify::{MAX_MANIFEST_LEN, MAX_RECORD_LEN, Manifest, ManifestCollector};
use libfuzzer_sys::fuzz_target;

// The public key of the committed openssl vector (core/tests/vectors/manifest/pub.der).
const KEY: [u8; 32] = [
    0xf0, 0x0d, 0x41, 0xb6, 0x94, 0x56, 0x91, 0x44, 0x67, 0x98, 0x5a, 0x97, 0x90, 0x1c, 0x81, 0xbd,
    0x42, 0x80, 0xbf, 0xf7, 0x4c, 0x39, 0xe7, 0xbc, 0xa5, 0x07, 0x57, 0x8f, 0xea, 0xd7, 0xb4, 0xca,
];

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = Manifest::decode(data) {
        let mut out = [0u8; MAX_RECORD_LEN];
        let n = m.encode(&mut out).expect("a decoded manifest encodes");
        assert_eq!(&out[..n], data, "non-canonical encoding accepted");
        assert_eq!(n, m.encoded_len());
    }
    let _ = Manifest::verify_signed(data, &KEY);
    let mut buf = [0u8; MAX_MANIFEST_LEN];
    let mut c = ManifestCollector::new(&mut buf);
    for chunk in data.chunks(17) {
        if c.feed(chunk).is_err() {
            break;
        }
    }
    let _ = c.verify(&KEY);
});
