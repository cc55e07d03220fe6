//! `eyas-bootloader`: RAUC custom bootloader backend (`[handlers] bootloader-custom-backend=`).
//! Configuration: `$EYAS_BOOTLOADER_CONF` or `/etc/eyas/bootloader.conf`.
#![forbid(unsafe_code)]
fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    std::process::exit(eyas_bootloader_glue::rauc_backend::run_from_env(&args));
}
