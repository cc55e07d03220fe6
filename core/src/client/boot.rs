//! The boot path: what happens on every start, decided here once for every shell.
//!
//! The shell says what it observed ([`BootReport`]: the record, RAUC's bootname of the booted
//! slot, the slot it was told to remember as rejected) and then performs one step at a time:
//! [`Action::CheckHealth`] → [`Event::HealthChecked`], [`Action::MarkSlot`] →
//! [`Event::SlotMarked`], [`Action::RememberRejected`], and a reboot back after a failed health
//! check. Requests wait until the path is done, so nothing is reported before the verdict.
//!
//! Slots are compared by bootname only (`A`, `system0`, `rootfs.1`, three slots, …); nothing
//! assumes two slots or a naming scheme.
//!
//! After an OS update (record phase `Rebooting`, target `T`, installed from `F`):
//! - booted `T`: health check → `Mark good T` → success; a refused mark → failure (mark good);
//!   a failed check → `Mark bad T`, remember `T` as rejected, `Mark active F`, report the failure,
//!   then reboot back (once the report is acknowledged, or after [`RETURN_REBOOT_PATIENCE`]);
//! - booted another slot (the bootloader fell back): `Mark bad T`, health check of the running
//!   slot → `Mark good` + `Mark active` of it, report the fallback and what runs (installedBase);
//! - booted slot unknown: stop (the shell exits and is started again); after `boot_attempts`
//!   such starts the update is reported as failed, rather than guessed.
//!
//! Any other start (`mark_good_on_boot`): health check → `Mark good` of the booted slot, unless
//! it is the slot an update was rejected on.

use super::{Act, Client, Live, Timer, reason};
use crate::record::{Phase, RECORD_FORMAT_AB, Record, bootname};
use crate::text::cat;
use crate::time::{Duration, Instant};
use heapless::String;

use super::{
    BootReport, EventError, Execution, MAX_REASON_LEN, SlotMark, Stop, StopReason, Warning,
    push_clean,
};

/// How long a failure report may take before the reboot back to the previous slot happens
/// anyway (the record keeps the report for the next start).
pub const RETURN_REBOOT_PATIENCE: Duration = Duration::from_secs(60);

/// Which slot a mark is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Which {
    /// The update's target (`Record::target_slot`).
    Target,
    /// The slot the update was installed from (`Record::from_slot`).
    From,
    /// The slot that booted.
    Booted,
}

/// Where the boot path stands. `Idle` is first: [`Client::unconfigured`] is all-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stage {
    Idle,
    /// Health check of the update's target, which booted.
    TargetHealth,
    TargetMarkGood,
    /// The target failed its health check.
    RejectMarkBad,
    RejectActivateFrom,
    /// The bootloader fell back.
    FallbackMarkBad,
    FallbackHealth,
    FallbackMarkGood,
    FallbackActivate,
    /// A start with no update to judge.
    StartHealth,
    StartMarkGood,
}

impl Client {
    /// Restore after boot and start the boot path. Call once, right after [`Client::new`]. A
    /// record that fails its check is reported as [`Warning::RecordCorrupt`] and discarded
    /// (never trusted).
    pub fn handle_boot(&mut self, now: Instant, boot: BootReport<'_>) {
        self.last_now = now;
        if let Some((name, version)) = boot.running {
            self.running_version.clear();
            push_clean(&mut self.running_version, version);
            // the installedBase body for a fallback verdict, held until the verdict is known
            let (mut n, mut v) = (String::new(), String::new());
            push_clean(&mut n, name);
            push_clean(&mut v, version);
            if !n.is_empty() && !v.is_empty() {
                self.installed_base = Some((n, v));
                self.installed_base_held = true;
            }
        }
        self.poll_due = true;
        self.timers.set(Timer::Poll, now);
        self.booted = match boot.booted.map(bootname).transpose() {
            Ok(b) => b,
            Err(e) => {
                self.push(Act::Warning(Warning::BadBootname(e)));
                None
            }
        };
        let rec = match boot
            .record
            .map(|b| (Record::decode(b), b.first() == Some(&RECORD_FORMAT_AB)))
        {
            None => None,
            Some((Ok(rec), ab)) => Some((rec, ab)),
            Some((Err(e), _)) => {
                self.push(Act::Warning(Warning::RecordCorrupt(e)));
                self.push(Act::ClearRecord);
                None
            }
        };
        let Some((rec, ab)) = rec else {
            self.installed_base = None;
            self.start_marking(boot.rejected, false);
            return;
        };
        if rec.phase == Phase::Closed {
            // nothing pending; the id is remembered so that a stale offer is not run again
            self.closed = Some(rec.action_id);
            self.installed_base = None;
            self.start_marking(boot.rejected, false);
            return;
        }
        self.start_job(rec.action_id, rec.phase);
        let phase = rec.phase;
        self.job.rec = rec;
        if ab {
            self.resolve_ab_target();
        }
        if phase != Phase::Rebooting {
            self.installed_base = None;
        }
        match phase {
            Phase::Rebooting => self.judge_update(boot),
            Phase::Reporting { success, reason } => {
                let exec = if reason == reason::DOWNLOADED {
                    Execution::Downloaded
                } else {
                    Execution::Closed
                };
                self.last_failure = if success {
                    None
                } else {
                    reason::failure(reason).map(|f| (Live::Yes, f))
                };
                self.set_final(exec, success, reason, None);
                // The target of an update that failed while running on it stays unmarked.
                let failed_here =
                    !success && self.booted.is_some() && self.job.rec.target_slot == self.booted;
                self.start_marking(boot.rejected, failed_here);
                if failed_here && reason == reason::HEALTH {
                    // restarted before the reboot back: still go back once it is reported
                    self.plan_return_reboot();
                }
            }
            Phase::Installing => {
                let attempts = self.job().map_or(0, |j| j.rec.attempt);
                // (configure makes it ≥ 1; an unconfigured client counts as 1, as before)
                if attempts >= self.boot_attempts.max(1) {
                    self.finish(false, reason::INTERRUPTED, None);
                }
                // else: wait for the deployment to be re-fetched, then install again
                self.start_marking(boot.rejected, false);
            }
            // (Closed was handled above: no job)
            Phase::Downloading | Phase::AwaitingWindow | Phase::Closed => {
                self.start_marking(boot.rejected, false);
            }
        }
    }

    /// A format-1 record names its target `A` or `B`, which the shell of its time also used for
    /// the bootnames `a`/`b`: take the booted slot's spelling when it is one of those.
    fn resolve_ab_target(&mut self) {
        let Some(b) = self.booted.as_deref() else {
            return;
        };
        let lower = matches!(b, "a" | "b");
        if let Some(t) = self.job.rec.target_slot.as_mut()
            && lower
        {
            t.make_ascii_lowercase();
        }
    }

    /// The bootname a [`Which`] stands for now.
    pub(super) fn slot_name(&self, which: Which) -> Option<&str> {
        match which {
            Which::Target => self.job.rec.target_slot.as_deref(),
            Which::From => self.job.rec.from_slot.as_deref(),
            Which::Booted => self.booted.as_deref(),
        }
    }

    fn step(&mut self, stage: Stage, act: Act) {
        self.boot_stage = stage;
        self.push(act);
    }

    /// A start with no update to judge: keep the running slot bootable (health check, mark
    /// good), except a slot an update was rejected on.
    fn start_marking(&mut self, rejected: Option<&str>, failed_here: bool) {
        if !self.mark_good_on_boot {
            return;
        }
        let Some(booted) = self.booted.as_deref() else {
            return;
        };
        let on_rejected = rejected == Some(booted);
        if rejected.is_some() && !on_rejected {
            // rebooted away from the rejected slot: nothing to remember any more
            self.push(Act::Remember(false));
        }
        if failed_here || on_rejected {
            self.push(Act::Warning(Warning::RejectedSlotRunning));
            return;
        }
        self.step(Stage::StartHealth, Act::CheckHealth);
    }

    /// The record says an OS update rebooted: judge it by the booted slot.
    fn judge_update(&mut self, boot: BootReport<'_>) {
        let target = self.job.rec.target_slot.clone();
        let Some(booted) = self.booted.clone() else {
            self.booted_unknown();
            return;
        };
        match target {
            // (only a record written before targets were always known): judge by health
            None => self.step(Stage::TargetHealth, Act::CheckHealth),
            Some(t) if t == booted => {
                if boot.rejected == Some(booted.as_str()) {
                    // rejected on an earlier start whose report did not get out
                    self.push(Act::Warning(Warning::RejectedSlotRunning));
                    self.finish(false, reason::HEALTH, None);
                    self.plan_return_reboot();
                } else {
                    self.step(Stage::TargetHealth, Act::CheckHealth);
                }
            }
            Some(_) => self.step(
                Stage::FallbackMarkBad,
                Act::Mark(SlotMark::Bad, Which::Target),
            ),
        }
    }

    /// The booted slot is not known: never guess a verdict. Count the start; stop so that the
    /// shell exits and is started again; after `boot_attempts` such starts, report the failure.
    fn booted_unknown(&mut self) {
        let limit = self.boot_attempts.max(1);
        let Some(j) = self.job_mut() else { return };
        j.rec.attempt = j.rec.attempt.saturating_add(1);
        if j.rec.attempt >= limit {
            self.finish(false, reason::BOOTED_UNKNOWN, None);
            return;
        }
        self.push(Act::Persist);
        self.push(Act::Warning(Warning::BootedSlotUnknown));
        self.stop = Stop::BootedSlotUnknown;
        self.push(Act::Stopped(StopReason::BootedSlotUnknown));
    }

    /// [`Event::HealthChecked`](super::Event::HealthChecked).
    pub(super) fn on_health(&mut self, passed: bool) -> Result<(), EventError> {
        match (self.boot_stage, passed) {
            (Stage::TargetHealth, true) => {
                let which = if self.job.rec.target_slot.is_some() {
                    Which::Target
                } else {
                    Which::Booted
                };
                self.step(Stage::TargetMarkGood, Act::Mark(SlotMark::Good, which));
            }
            (Stage::TargetHealth, false) => {
                if self.job.rec.target_slot.is_some() {
                    self.step(
                        Stage::RejectMarkBad,
                        Act::Mark(SlotMark::Bad, Which::Target),
                    );
                } else {
                    self.boot_stage = Stage::Idle;
                    self.finish(false, reason::HEALTH, None);
                }
            }
            (Stage::FallbackHealth, true) => {
                self.step(
                    Stage::FallbackMarkGood,
                    Act::Mark(SlotMark::Good, Which::Booted),
                );
            }
            (Stage::FallbackHealth, false) => {
                self.push(Act::Warning(Warning::RunningSlotUnhealthy));
                self.report_fallback();
            }
            (Stage::StartHealth, true) => {
                self.step(
                    Stage::StartMarkGood,
                    Act::Mark(SlotMark::Good, Which::Booted),
                );
            }
            (Stage::StartHealth, false) => {
                self.boot_stage = Stage::Idle;
                self.push(Act::Warning(Warning::RunningSlotUnhealthy));
            }
            _ => return Err(EventError::NoHealthCheck),
        }
        Ok(())
    }

    /// [`Event::SlotMarked`](super::Event::SlotMarked).
    pub(super) fn on_marked(&mut self, ok: bool) -> Result<(), EventError> {
        let stage = self.boot_stage;
        if !ok {
            let mark = match stage {
                Stage::TargetMarkGood | Stage::FallbackMarkGood | Stage::StartMarkGood => {
                    SlotMark::Good
                }
                Stage::RejectMarkBad | Stage::FallbackMarkBad => SlotMark::Bad,
                Stage::RejectActivateFrom | Stage::FallbackActivate => SlotMark::Active,
                _ => return Err(EventError::NoMark),
            };
            self.push(Act::Warning(Warning::MarkRefused(mark)));
        }
        match stage {
            Stage::TargetMarkGood => {
                self.boot_stage = Stage::Idle;
                if ok {
                    self.push(Act::Remember(false));
                    let mut text: String<MAX_REASON_LEN> = String::new();
                    let _ = cat(&mut text, &[reason::text(reason::BOOTED)]);
                    if let Some(t) = self.job.rec.target_slot.as_deref() {
                        let _ = cat(&mut text, &[" (slot ", t, ")"]);
                    }
                    self.finish(true, reason::BOOTED, Some(&text));
                } else {
                    self.finish(false, reason::MARK_GOOD, None);
                }
            }
            Stage::RejectMarkBad => {
                if ok {
                    self.push(Act::Remember(true));
                }
                let from = self.job.rec.from_slot.as_deref();
                if from.is_some() && from != self.job.rec.target_slot.as_deref() {
                    self.step(
                        Stage::RejectActivateFrom,
                        Act::Mark(SlotMark::Active, Which::From),
                    );
                } else {
                    self.reject();
                }
            }
            Stage::RejectActivateFrom => self.reject(),
            Stage::FallbackMarkBad => self.step(Stage::FallbackHealth, Act::CheckHealth),
            Stage::FallbackMarkGood if ok => {
                self.step(
                    Stage::FallbackActivate,
                    Act::Mark(SlotMark::Active, Which::Booted),
                );
            }
            Stage::FallbackMarkGood | Stage::FallbackActivate => self.report_fallback(),
            Stage::StartMarkGood => self.boot_stage = Stage::Idle,
            _ => return Err(EventError::NoMark),
        }
        Ok(())
    }

    /// The target failed its health check and is marked bad: report, then reboot back.
    fn reject(&mut self) {
        self.boot_stage = Stage::Idle;
        self.finish(false, reason::HEALTH, None);
        self.plan_return_reboot();
    }

    /// Reboot back to the update's source slot once the failure is acknowledged, or after
    /// [`RETURN_REBOOT_PATIENCE`] (the record keeps the report for the next start).
    fn plan_return_reboot(&mut self) {
        // (no source slot in a format-1 record: the bad mark alone steers the bootloader)
        self.timers
            .set(Timer::ReturnReboot, self.last_now + RETURN_REBOOT_PATIENCE);
    }

    pub(super) fn push_return_reboot(&mut self) {
        let id = self.job.rec.action_id;
        self.push(Act::ReturnReboot(id));
    }

    /// The bootloader fell back: report it with the slots involved and what runs now.
    fn report_fallback(&mut self) {
        self.boot_stage = Stage::Idle;
        let mut text: String<MAX_REASON_LEN> = String::new();
        let _ = cat(
            &mut text,
            &[
                reason::text(reason::FELL_BACK),
                ": running slot ",
                self.booted.as_deref().unwrap_or("?"),
                ", target was slot ",
                self.job.rec.target_slot.as_deref().unwrap_or("?"),
            ],
        );
        self.finish(false, reason::FELL_BACK, Some(&text));
        self.report_running();
    }

    /// `PUT installedBase` with what runs now (held since `handle_boot`), when the shell knows it.
    fn report_running(&mut self) {
        self.installed_base_held = false;
    }
}
