//! `eyas-bootloader`: RAUC custom bootloader backend (`[handlers] bootloader-custom-backend=`).
//! Configuration: `$EYAS_BOOTLOADER_CONF` or `/etc/eyas/bootloader.conf`.
#![forbid(unsafe_code)]
fn main() {
    // `std::env::args` panics on an argument that is not UTF-8; report it as a usage error.
    let mut args = Vec::new();
    for a in std::env::args_os().skip(1) {
        match a.into_string() {
            Ok(s) => args.push(s),
            Err(a) => {
                eprintln!(
                    "eyas bootloader: argument {a:?} is not valid UTF-8; expected get-primary | set-primary <bootname> | get-state <bootname> | set-state <bootname> good|bad | get-current"
                );
                std::process::exit(eyas_bootloader_glue::rauc_backend::EXIT_USAGE);
            }
        }
    }
    std::process::exit(eyas_bootloader_glue::rauc_backend::run_from_env(&args));
}
