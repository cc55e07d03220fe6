//! A deployment's course: download → verify → install → reboot or finish, with progress
//! feedback within the status budget.

use super::plan::{fill_plan, plan_error_text};
use super::{
    Act, ArtifactPlan, Awaiting, ChunkPlan, Client, FinalFb, InstallKind, Live, MAX_REASON_LEN,
    ProgressFb, Telemetry, TelemetryPhase, Timer, fnv1a64, push_clean, reason,
};
use crate::ddi::{DeploymentBase, Execution, HandlingType, MaintenanceWindow};
use crate::record::{Bootname, Phase, record_version};
use crate::text::{Num, cat};
use crate::time::Instant;
use heapless::String;

impl Client {
    #[inline(never)]
    pub(super) fn on_deployment(&mut self, d: &DeploymentBase<'_>) {
        let href = fnv1a64(self.link.as_bytes());
        // another action while one is being installed: finish ours first
        if let Some(j) = self.job()
            && j.id() != d.id
        {
            if j.before_install() {
                let old = j.id();
                self.drop_job(old, true);
            } else {
                return;
            }
        }
        let existing_valid = self.job().is_some_and(|j| j.plan_valid);
        if existing_valid {
            // re-read (c= changed): update handling and maybe open the window
            if let Some(j) = self.job_mut() {
                j.href = href;
                j.download = d.download.unwrap_or(HandlingType::Forced);
                j.update = d.update.unwrap_or(HandlingType::Forced);
                j.window = d.maintenance_window;
            }
            if self
                .job()
                .is_some_and(|j| j.rec.phase == Phase::AwaitingWindow)
            {
                self.after_downloads();
            } else if self.job().is_some_and(|j| {
                j.rec.phase == Phase::Downloading && j.awaiting == Awaiting::Nothing
            }) && self.timers.get(Timer::Resume).is_none()
            {
                self.advance();
            }
            return;
        }
        let fresh = self.job().is_none();
        if !self.job.active {
            self.start_job(d.id, Phase::Downloading);
        }
        let job = &mut self.job;
        job.href = href;
        job.download = d.download.unwrap_or(HandlingType::Forced);
        job.update = d.update.unwrap_or(HandlingType::Forced);
        job.window = d.maintenance_window;
        if let Err(e) = fill_plan(job, d) {
            job.plan_valid = true;
            let text = plan_error_text(e, d);
            self.finish(false, reason::UNSUPPORTED, Some(&text));
            return;
        }
        job.plan_valid = true;
        if fresh {
            // the GET that brought this document logged RETRIEVED
            job.rec.status_entries = job.rec.status_entries.saturating_add(1);
            job.rec.from_version = record_version(&self.running_version);
            let to = job
                .chunks
                .iter()
                .find(|c| c.kind == InstallKind::RaucReboot)
                .or(job.chunks.first())
                .map(|c| record_version(&c.version))
                .unwrap_or_default();
            job.rec.to_version = to;
            self.push(Act::Persist);
            let n = self.job().map_or(0, |j| j.artifacts.len());
            let mut text: String<96> = String::new();
            let _ = cat(
                &mut text,
                &["Downloading ", Num::dec(n as u64).as_str(), " artifact(s)"],
            );
            self.queue_progress(0, 100, text);
        }
        if !fresh && let Some(j) = self.job_mut() {
            if j.rec.phase == Phase::Downloading && j.rec.resume_offset > 0 {
                j.resume_from = Some(j.rec.resume_offset);
            }
            // restored from the record: first re-verify what the shell stored before the reboot
            let end = match j.rec.phase {
                Phase::Downloading => j.rec.next_artifact,
                _ => u8::try_from(j.artifacts.len()).unwrap_or(u8::MAX),
            };
            if end > 0 {
                j.verify_cursor = Some(0);
                j.verify_end = end;
                self.reverify_next();
                return;
            }
        }
        self.continue_phase();
    }

    /// Go on in the recorded phase (after a restore, once the stored artifacts re-verified).
    pub(super) fn continue_phase(&mut self) {
        if self
            .job()
            .is_some_and(|j| j.rec.phase == Phase::AwaitingWindow)
        {
            self.after_downloads();
        } else {
            // Downloading, or Installing after a power cut during the install
            self.advance();
        }
    }

    pub(super) fn reverify_next(&mut self) {
        let Some(j) = self.job_mut() else { return };
        match j.verify_cursor {
            Some(c) if c < j.verify_end => {
                j.awaiting = Awaiting::Verify;
                self.push(Act::Verify);
            }
            Some(_) => {
                j.verify_cursor = None;
                self.continue_phase();
            }
            None => {}
        }
    }
    pub(super) fn current_artifact(&self) -> Option<&ArtifactPlan> {
        let j = self.job()?;
        if !j.plan_valid {
            return None;
        }
        j.artifacts.get(usize::from(j.artifact_index()))
    }

    pub(super) fn current_chunk(&self) -> Option<&ChunkPlan> {
        let j = self.job()?;
        if !j.plan_valid {
            return None;
        }
        let ci = *j.order.get(usize::from(j.rec.next_chunk))?;
        j.chunks.get(usize::from(ci))
    }

    /// Whether one more intermediate feedback fits the budget (keeping one entry spare for a
    /// re-read of the deployment).
    pub(super) fn progress_allowed(&self) -> bool {
        self.job().is_some_and(|j| {
            !j.quota_exhausted && j.rec.status_entries.saturating_add(2) <= self.budget
        })
    }

    pub(super) fn queue_progress(&mut self, cnt: u32, of: u32, text: String<96>) {
        if !self.progress_allowed() {
            return;
        }
        let Some(j) = self.job() else { return };
        self.progress_fb = Some(ProgressFb {
            action: j.id(),
            cnt,
            of,
            text,
        });
    }

    /// Report progress when `pct` crossed into a new `progress_step_percent` bucket; returns
    /// whether it did.
    pub(super) fn step_progress(&mut self, pct: u8, what: &str) -> bool {
        let step = self.step_percent.max(1); // ≥ 1 once configured
        let Some(j) = self.job_mut() else {
            return false;
        };
        let bucket = pct / step;
        if bucket <= j.last_step {
            return false;
        }
        j.last_step = bucket;
        let mut text: String<96> = String::new();
        let _ = cat(&mut text, &[what, ": ", Num::dec(pct.into()).as_str(), "%"]);
        self.queue_progress(u32::from(pct), 100, text);
        let phase = if what == "Installing" {
            TelemetryPhase::Installing
        } else {
            TelemetryPhase::Downloading
        };
        self.telemetry(phase, Some(pct));
        true
    }

    pub(super) fn start_download(&mut self) {
        let Some(j) = self.job_mut() else { return };
        if !j.plan_valid || j.rec.phase != Phase::Downloading {
            return;
        }
        if j.resume_from.is_none() {
            // a full GET logs a DOWNLOAD status entry server-side
            j.rec.status_entries = j.rec.status_entries.saturating_add(1);
        }
        j.awaiting = Awaiting::Download;
        self.push(Act::Download);
        self.tighten_poll();
    }

    pub(super) fn download_retry(
        &mut self,
        now: Instant,
        received: Option<u64>,
        status: Option<u16>,
        why: &str,
    ) {
        let retries = self.download_retries;
        let (initial, max) = (self.backoff_initial, self.backoff_max);
        let Some(j) = self.job_mut() else { return };
        if j.dl_retries >= retries {
            let tries = Num::dec(u64::from(j.dl_retries) + 1);
            let mut detail: String<MAX_REASON_LEN> = String::new();
            push_clean(&mut detail, why);
            let _ = cat(
                &mut detail,
                &[" (gave up after ", tries.as_str(), " attempt(s))"],
            );
            let (what, code) = match status {
                Some(s) => ("HTTP", Some(s)),
                None => ("", None),
            };
            self.fail_artifact(reason::DOWNLOAD_FAILED, what, code, &detail);
            return;
        }
        if let Some(r) = received.filter(|&r| r > 0) {
            j.resume_from = Some(r);
            j.rec.resume_offset = r;
        }
        if status == Some(416) {
            // range not satisfiable: our offset is wrong, start the artifact over
            j.resume_from = None;
            j.rec.resume_offset = 0;
        }
        let d = initial
            .saturating_mul(1u64 << j.dl_retries.min(20))
            .clamp_to(initial, max);
        j.dl_retries += 1;
        j.awaiting = Awaiting::Nothing;
        let d = self.jitter(d, 20);
        if self.job().is_some() {
            self.timers.set(Timer::Resume, now + d);
        }
    }

    pub(super) fn fail_artifact(
        &mut self,
        code: u8,
        what: &str,
        status: Option<u16>,
        detail: &str,
    ) {
        let mut text: String<MAX_REASON_LEN> = String::new();
        let _ = cat(&mut text, &[reason::text(code)]);
        if let (Some(a), Some(j)) = (self.current_artifact(), self.job()) {
            let _ = cat(&mut text, &[" for ", j.text(a.filename)]);
        }
        if !what.is_empty() {
            let _ = cat(&mut text, &[": ", what]);
        }
        if let Some(s) = status {
            let _ = cat(&mut text, &[" ", Num::dec(s.into()).as_str()]);
        }
        if !detail.is_empty() {
            let _ = text.push_str(": ");
            push_clean(&mut text, detail);
        }
        self.finish(false, code, Some(&text));
    }

    /// Decide the next step of the job.
    pub(super) fn advance(&mut self) {
        let Some(j) = self.job() else { return };
        if !j.plan_valid || self.final_fb.is_some() || j.verify_cursor.is_some() {
            return;
        }
        match j.rec.phase {
            Phase::Downloading => {
                if j.download == HandlingType::Skip {
                    return; // wait until the server changes its mind
                }
                if usize::from(j.rec.next_artifact) < j.artifacts.len() {
                    if j.awaiting == Awaiting::Nothing && self.timers.get(Timer::Resume).is_none() {
                        self.telemetry(TelemetryPhase::Downloading, Some(0));
                        self.start_download();
                    }
                } else {
                    self.after_downloads();
                }
            }
            Phase::Installing => {
                if usize::from(j.rec.next_chunk) < j.order.len() {
                    if j.awaiting == Awaiting::Nothing {
                        if let Some(j) = self.job_mut() {
                            j.rec.attempt = j.rec.attempt.saturating_add(1);
                            j.awaiting = Awaiting::Install;
                            j.last_step = 0;
                        }
                        self.push(Act::Persist);
                        self.telemetry(TelemetryPhase::Installing, Some(0));
                        self.push(Act::Install);
                        self.tighten_poll();
                    }
                } else {
                    self.finish(true, reason::INSTALLED, None);
                }
            }
            Phase::AwaitingWindow | Phase::Rebooting | Phase::Reporting { .. } | Phase::Closed => {}
        }
    }

    pub(super) fn after_downloads(&mut self) {
        let Some(j) = self.job_mut() else { return };
        let window_closed =
            j.update == HandlingType::Skip || j.window == Some(MaintenanceWindow::Unavailable);
        if window_closed {
            if j.window.is_some() {
                if j.rec.phase != Phase::AwaitingWindow {
                    j.rec.phase = Phase::AwaitingWindow;
                    self.push(Act::Persist);
                    self.telemetry(TelemetryPhase::AwaitingWindow, None);
                    let mut text: String<96> = String::new();
                    let _ = text.push_str("Downloaded, waiting for the maintenance window");
                    self.queue_progress(100, 100, text);
                }
            } else {
                // download-only
                self.finish(true, reason::DOWNLOADED, None);
            }
            return;
        }
        j.rec.phase = Phase::Installing;
        j.rec.next_chunk = 0;
        j.rec.attempt = 0;
        j.awaiting = Awaiting::Nothing;
        self.advance();
    }

    pub(super) fn installed(&mut self, slot: Option<Bootname>) {
        let kind = self.current_chunk().map(|c| c.kind);
        let from = self.booted.clone();
        let Some(j) = self.job_mut() else { return };
        j.awaiting = Awaiting::Nothing;
        if kind == Some(InstallKind::RaucReboot) {
            j.rec.target_slot = slot;
            j.rec.from_slot = from;
            // from here `attempt` counts starts that could not tell the booted slot
            j.rec.attempt = 0;
            j.rec.phase = Phase::Rebooting;
            self.push(Act::Persist);
            self.telemetry(TelemetryPhase::Rebooting, None);
            self.push(Act::Reboot);
            return;
        }
        j.rec.next_chunk = j.rec.next_chunk.saturating_add(1);
        j.rec.attempt = 0;
        self.push(Act::Persist);
        self.advance();
    }

    pub(super) fn finish(&mut self, success: bool, code: u8, text: Option<&str>) {
        let exec = if code == reason::DOWNLOADED {
            Execution::Downloaded
        } else {
            Execution::Closed
        };
        if let Some(j) = self.job_mut() {
            j.rec.phase = Phase::Reporting {
                success,
                reason: code,
            };
            j.awaiting = Awaiting::Nothing;
            self.timers.stop(Timer::Resume);
        }
        self.progress_fb = None;
        self.push(Act::Persist);
        let failure = if success { None } else { reason::failure(code) };
        self.last_failure = failure.map(|f| (Live::Yes, f));
        let action = self.current_action();
        self.push(Act::Telemetry(Telemetry {
            action,
            phase: if exec == Execution::Downloaded {
                TelemetryPhase::Downloaded
            } else if success {
                TelemetryPhase::Succeeded
            } else {
                TelemetryPhase::Failed
            },
            percent: None,
            failure,
        }));
        self.set_final(exec, success, code, text);
    }

    pub(super) fn set_final(
        &mut self,
        execution: Execution,
        success: bool,
        code: u8,
        text: Option<&str>,
    ) {
        let Some(id) = self.current_action() else {
            return;
        };
        let mut t: String<MAX_REASON_LEN> = String::new();
        push_clean(&mut t, text.unwrap_or(reason::text(code)));
        self.final_fb = Some(FinalFb {
            _live: Live::Yes,
            action: id,
            execution,
            success,
            text: t,
        });
    }
}

pub(super) fn percent(received: u64, size: u64) -> u8 {
    if size == 0 {
        return 100;
    }
    let p = (u128::from(received.min(size)) * 100 / u128::from(size)) as u8;
    p.min(100)
}
