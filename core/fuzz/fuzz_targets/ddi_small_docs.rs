//! cancelAction and confirmationBase (auto-confirm) parsers on arbitrary bytes: never panic.
#![no_main]

use eyas_core::ddi::{parse_cancel_action, parse_confirmation_base};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cancel_action(data);
    if let Ok(c) = parse_confirmation_base(data) {
        for s in [
            c.auto_confirm.initiator,
            c.auto_confirm.remark,
            c.activate_auto_confirm,
        ]
        .into_iter()
        .flatten()
        {
            let _ = s.chars().count();
            assert_eq!(
                s.chars().map(char::len_utf8).sum::<usize>(),
                s.decoded_len()
            );
        }
    }
});
