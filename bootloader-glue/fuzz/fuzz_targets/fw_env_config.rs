//! fw_env.config parsing never panics, and what it accepts is consistent.
#![no_main]
use eyas_bootloader_glue::uboot::config;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else { return };
    if let Ok(cfg) = config::parse(text) {
        assert!(cfg.first.env_size > 0);
        assert!(!cfg.first.path.is_empty());
        if let Some(s) = cfg.second {
            assert_eq!(s.env_size, cfg.first.env_size);
            assert!(s.line > cfg.first.line);
        }
    }
});
