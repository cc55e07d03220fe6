//! Booted-slot detection on arbitrary kernel command lines: never panics, and a `Slot` answer
//! names a slot whose bootname really is on the command line.
#![no_main]

use eyas_core::slots::{Backend, BootState, Booted};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(cmdline) = core::str::from_utf8(data) else {
        return;
    };
    let st = BootState::initial(Backend::Barebox, &["system0", "system1", "A"])
        .expect("valid")
        .into_state();
    if let Ok(Booted::Slot(i)) = st.booted_slot(cmdline) {
        let name = st.bootname(i).expect("in range");
        assert!(cmdline.contains(name));
    }
});
