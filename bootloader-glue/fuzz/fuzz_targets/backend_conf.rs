//! The eyas bootloader config file parser never panics.
#![no_main]
use eyas_bootloader_glue::rauc_backend::BackendConfig;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    if let Err(e) = BackendConfig::parse(text, std::path::Path::new("fuzz.conf")) {
        let _ = e.to_string();
    }
});
