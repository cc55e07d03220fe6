//! Base-poll parser on arbitrary bytes: never panics; every link it returns decodes within
//! `MAX_URL_LEN` and the sleep is a valid duration.
#![no_main]

use eyas_core::ddi::{MAX_URL_LEN, parse_controller_base, parse_sleep};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(s) = core::str::from_utf8(data) {
        let _ = parse_sleep(s);
    }
    if let Ok(b) = parse_controller_base(data) {
        for l in [
            b.deployment_base,
            b.cancel_action,
            b.confirmation_base,
            b.installed_base,
            b.config_data,
        ]
        .into_iter()
        .flatten()
        {
            assert!(l.decoded_len() <= MAX_URL_LEN);
            let mut buf = [0u8; MAX_URL_LEN];
            let s = l.unescape_into(&mut buf).expect("fits");
            assert_eq!(s.len(), l.decoded_len());
        }
    }
});
