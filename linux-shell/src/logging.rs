//! Logging: plain lines on stderr (journald adds its own timestamps under systemd).
//!
//! Tokens never reach the log: configuration types redact them in `Debug`, and no module logs
//! a header value.

use tracing::Level;

/// Installs the global subscriber. `systemd` drops timestamps (journald has them) and colours.
pub fn init(level: Level, systemd: bool) {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false);
    // A second init (tests) fails harmlessly.
    let _ = if systemd {
        builder.without_time().try_init()
    } else {
        builder.try_init()
    };
}
