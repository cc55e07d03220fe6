//! deploymentBase / installedBase / confirmationBase/{id} parsers on arbitrary bytes: never
//! panic, and the lazy iterators yield exactly the validated counts.
#![no_main]

use eyas_core::ddi::{
    MAX_ARTIFACTS_PER_CHUNK, MAX_CHUNKS, parse_confirmation_action, parse_deployment_base,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for parsed in [parse_deployment_base(data), parse_confirmation_action(data)] {
        let Ok(d) = parsed else { continue };
        assert!(d.chunk_count() <= MAX_CHUNKS);
        assert_eq!(d.chunks().count(), d.chunk_count());
        for c in d.chunks() {
            assert!(c.artifact_count() <= MAX_ARTIFACTS_PER_CHUNK);
            assert_eq!(c.artifacts().count(), c.artifact_count());
            assert_eq!(c.metadata().count(), c.metadata_count());
            let _ = c.part.chars().count() + c.name.decoded_len() + c.version.decoded_len();
            for a in c.artifacts() {
                let mut buf = [0u8; 512];
                if let Some(u) = a.download_url {
                    assert!(u.unescape_into(&mut buf).is_ok());
                }
                let _ = a.filename.to_heapless::<128>();
            }
        }
    }
});
