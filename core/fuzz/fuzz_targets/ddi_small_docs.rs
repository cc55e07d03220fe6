//! cancelAction, confirmationBase (auto-confirm), artifact-list and .MD5SUM parsers and
//! `peek_action_id` on arbitrary bytes: never panic.
#![no_main]

use eyas_core::ddi::{
    parse_artifacts, parse_cancel_action, parse_confirmation_base, parse_md5sum, peek_action_id,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_cancel_action(data);
    let _ = peek_action_id(data);
    if let Ok(l) = parse_artifacts(data) {
        assert_eq!(l.iter().count(), l.len());
    }
    if let Ok(s) = core::str::from_utf8(data)
        && let Some((_, name)) = parse_md5sum(s)
    {
        assert!(!name.is_empty());
    }
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
