//! Reason codes kept in [`Phase::Reporting`](crate::record::Phase::Reporting), their texts for
//! hawkBit and the [`Failure`] each stands for; the cleaning of texts sent as feedback details.

use super::Failure;
use heapless::String;

// Reason codes (stored in the record: never renumber).

pub(super) const BOOTED: u8 = 0;
pub(super) const INSTALLED: u8 = 1;
pub(super) const DOWNLOADED: u8 = 2;
pub(super) const HEALTH: u8 = 3;
pub(super) const FELL_BACK: u8 = 4;
pub(super) const INSTALL_FAILED: u8 = 5;
pub(super) const DOWNLOAD_FAILED: u8 = 6;
pub(super) const VERIFY_FAILED: u8 = 7;
pub(super) const UNSUPPORTED: u8 = 8;
pub(super) const INTERRUPTED: u8 = 9;
pub(super) const MARK_GOOD: u8 = 10;
pub(super) const BOOTED_UNKNOWN: u8 = 11;
pub(super) const CONFIG_HOOK: u8 = 12;
pub(super) const ARTIFACT_NAME: u8 = 13;
pub(super) const NO_SPACE: u8 = 14;
pub(super) const ARTIFACT_SIZE: u8 = 15;

/// The text sent to hawkBit for a reason code.
pub(super) fn text(code: u8) -> &'static str {
    match code {
        BOOTED => "New slot booted and passed the health check",
        INSTALLED => "Installed",
        DOWNLOADED => "Downloaded and verified",
        HEALTH => "New slot booted but failed the health check",
        FELL_BACK => "Bootloader fell back to the previous slot",
        INSTALL_FAILED => "Installation failed",
        DOWNLOAD_FAILED => "Download failed",
        VERIFY_FAILED => "Verification failed",
        UNSUPPORTED => "Deployment not supported by this device",
        INTERRUPTED => "Installation interrupted too often",
        MARK_GOOD => "New slot healthy but could not be marked good",
        BOOTED_UNKNOWN => "The booted slot could not be told after the reboot",
        CONFIG_HOOK => "Configuration hook failed",
        ARTIFACT_NAME => "Artifact file name refused",
        NO_SPACE => "Not enough space for the download",
        ARTIFACT_SIZE => "Artifact size not as announced",
        _ => "Finished",
    }
}

/// The failure a reason code stands for (`None`: not a failure).
pub(super) fn failure(code: u8) -> Option<Failure> {
    Some(match code {
        HEALTH => Failure::HealthCheck,
        FELL_BACK => Failure::FellBack,
        INSTALL_FAILED => Failure::Install,
        DOWNLOAD_FAILED => Failure::Download,
        VERIFY_FAILED => Failure::Verify,
        UNSUPPORTED => Failure::Unsupported,
        INTERRUPTED => Failure::Interrupted,
        MARK_GOOD => Failure::MarkGood,
        BOOTED_UNKNOWN => Failure::BootedSlotUnknown,
        CONFIG_HOOK => Failure::ConfigHook,
        ARTIFACT_NAME => Failure::ArtifactName,
        NO_SPACE => Failure::NoSpace,
        ARTIFACT_SIZE => Failure::ArtifactSize,
        _ => return None,
    })
}

/// Append `s` to `out` for a feedback detail: `<`/`>` become `(`/`)`, control characters
/// become spaces, and a cut is marked with `...`.
#[inline(always)]
pub(super) fn push_clean<const N: usize>(out: &mut String<N>, s: &str) {
    push_clean_view(out.as_mut_view(), s);
}

/// [`push_clean`] for any capacity (one copy in flash).
#[inline(never)]
fn push_clean_view(out: &mut heapless::string::StringView, s: &str) {
    let cap = out.capacity();
    for c in s.chars() {
        let c = match c {
            '<' => '(',
            '>' => ')',
            c if c.is_control() => ' ',
            c => c,
        };
        if out.len() + c.len_utf8() > cap.saturating_sub(3) {
            let _ = out.push_str("...");
            return;
        }
        let _ = out.push(c);
    }
}
