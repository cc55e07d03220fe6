//! What the server answered: base poll links, fetched documents, feedback acknowledgements.

use super::plan::copy_into;
use super::{
    Act, Client, ConfirmationPolicy, Failure, Fetch, Live, MAX_REASON_LEN, RequestKind, Response,
    RunOnceFailure, Telemetry, TelemetryPhase, Timer, Warning, href_hash, reason,
};
use crate::ddi::{self, ActionId, CancelReply, Confirmation};
use crate::record::Phase;
use crate::text::{Num, cat};
use crate::time::Instant;
use heapless::String;

impl Client {
    pub(super) fn refused(&mut self, request: RequestKind, status: u16) {
        self.push(Act::Warning(Warning::Refused { request, status }));
    }

    pub(super) fn on_poll(&mut self, now: Instant, r: Response<'_>) {
        self.poll_answered(now);
        match r.status {
            304 => {
                self.ok(now);
                self.polled = true;
            }
            200..=299 => match ddi::parse_controller_base(r.body) {
                Ok(b) => {
                    self.ok(now);
                    self.polled = true;
                    self.server_sleep = b.sleep;
                    self.etag.clear();
                    if let Some(e) = r.etag {
                        let _ = self.etag.push_str(e);
                        if self.etag.len() != e.len() {
                            self.etag.clear();
                        }
                    }
                    self.apply_links(&b);
                }
                Err(error) => {
                    if !self.polled {
                        self.fail_run(RunOnceFailure::Unparsable);
                    }
                    self.push(Act::Warning(Warning::MalformedResponse {
                        request: RequestKind::Poll,
                        error,
                    }));
                    self.etag.clear();
                    self.back_off(now);
                }
            },
            s => {
                if !self.polled {
                    self.fail_run(RunOnceFailure::ServerError(s));
                }
                self.refused(RequestKind::Poll, s);
                self.etag.clear();
                self.back_off(now);
            }
        }
        self.schedule_poll(now);
    }

    pub(super) fn set_link(&mut self, f: Fetch, href: ddi::JsonStr<'_>) {
        self.link.clear();
        if !copy_into(self.link.as_mut_view(), href) {
            self.link.clear();
            return;
        }
        self.fetch = Some(f);
    }

    pub(super) fn apply_links(&mut self, b: &ddi::ControllerBase<'_>) {
        if b.config_data.is_some() {
            if self.attrs.is_empty() {
                if !self.attrs_requested {
                    self.attrs_requested = true;
                    self.push(Act::AttributesRequested);
                }
            } else {
                self.config_due = true;
            }
        }
        if self.final_fb.is_some() {
            return; // the job is finished locally; its result goes out first
        }
        if let Some(h) = b.cancel_action {
            self.set_link(Fetch::Cancel, h);
        } else if let Some(h) = b.confirmation_base {
            let hash = href_hash(h);
            if hash != self.confirm_href || self.asked.is_none() {
                self.confirm_href = hash;
                self.set_link(Fetch::Confirmation, h);
            }
        } else if let Some(h) = b.deployment_base {
            if self.closed.is_some() && href_action_id(h.chars(), "deploymentBase/") == self.closed
            {
                // closed here (and reported, or gone on the server): a stale offer, not work
                if !self.closed_offer_warned {
                    self.closed_offer_warned = true;
                    if let Some(id) = self.closed {
                        self.push(Act::Warning(Warning::ClosedActionOffered { action: id }));
                    }
                }
                return;
            }
            let refetch = match self.job() {
                None => true,
                Some(j) => !j.plan_valid || href_hash(h) != j.href,
            };
            if refetch {
                self.set_link(Fetch::Deployment, h);
            }
        } else if let Some(j) = self.job() {
            // no action link: the server no longer offers the action
            let gone =
                j.before_install() || (matches!(j.rec.phase, Phase::Installing) && !j.plan_valid);
            if gone {
                let id = j.id();
                self.drop_job(id, true);
            }
        }
    }

    /// The action is over here: remember it (in the record too) so that it is never run again,
    /// whatever the server offers later.
    pub(super) fn remember_closed(&mut self, id: ActionId) {
        if self.closed != Some(id) {
            self.closed_offer_warned = false;
        }
        self.closed = Some(id);
        self.push(Act::PersistClosed(id));
    }

    pub(super) fn drop_job(&mut self, id: ActionId, warn: bool) {
        if self.job().is_some_and(|j| j.id() == id) {
            self.job.active = false;
            self.progress_fb = None;
            self.push(Act::Abort(id));
            self.remember_closed(id);
            if warn {
                self.push(Act::Warning(Warning::ActionGone { action: id }));
            }
            self.push(Act::Telemetry(Telemetry {
                action: Some(id),
                phase: TelemetryPhase::Idle,
                percent: None,
                failure: None,
            }));
        }
    }

    pub(super) fn on_fetch(&mut self, now: Instant, f: Fetch, r: Response<'_>) {
        self.fetch = None;
        self.ok(now);
        if !(200..300).contains(&r.status) {
            // 404: action no longer in that state; re-read the base poll next time
            self.etag.clear();
            let request = match f {
                Fetch::Deployment => RequestKind::DeploymentBase,
                Fetch::Cancel => RequestKind::CancelAction,
                Fetch::Confirmation => RequestKind::ConfirmationBase,
            };
            if r.status != 404 && r.status != 410 {
                self.refused(request, r.status);
            }
            return;
        }
        match f {
            Fetch::Deployment => match ddi::parse_deployment_base(r.body) {
                Ok(d) => self.on_deployment(&d),
                Err(error) => {
                    self.malformed(now, RequestKind::DeploymentBase, error);
                    self.reject_deployment(r.body, error);
                }
            },
            Fetch::Cancel => match ddi::parse_cancel_action(r.body) {
                Ok(c) => self.on_cancel(c),
                Err(error) => self.malformed(now, RequestKind::CancelAction, error),
            },
            Fetch::Confirmation => match ddi::parse_confirmation_action(r.body) {
                Ok(c) => self.on_confirmation(c.id),
                Err(error) => self.malformed(now, RequestKind::ConfirmationBase, error),
            },
        }
    }

    pub(super) fn malformed(&mut self, now: Instant, request: RequestKind, error: ddi::ParseError) {
        self.push(Act::Warning(Warning::MalformedResponse { request, error }));
        self.etag.clear();
        self.back_off(now);
    }

    /// A deployment this device cannot read or represent (not JSON, nested too deep, a capacity,
    /// type or value error): close it as failed, naming the field or the byte offset, instead
    /// of re-reading it forever. (A cut transfer is a transport error, never a parse error: the
    /// shell reads a whole body.) The action id comes from the body, else from the link.
    pub(super) fn reject_deployment(&mut self, body: &[u8], error: ddi::ParseError) {
        let Some(id) = ddi::peek_action_id(body)
            .or_else(|| href_action_id(self.link.chars(), "deploymentBase/"))
        else {
            return;
        };
        if self.closed == Some(id) {
            return;
        }
        match self.job() {
            Some(j) if j.id() != id => return,
            Some(j) if !j.before_install() => return,
            _ => {}
        }
        if !self.job.active {
            self.start_job(id, Phase::Downloading);
        }
        self.job.plan_valid = true;
        let mut text: String<MAX_REASON_LEN> = String::new();
        let mut num = Num::dec(0);
        let [a, b, c, d] = error.describe(&mut num);
        let _ = cat(
            &mut text,
            &[
                reason::text(reason::UNSUPPORTED),
                ": deployment rejected: ",
                a,
                b,
                c,
                d,
            ],
        );
        self.finish(false, reason::UNSUPPORTED, Some(&text));
    }

    pub(super) fn on_cancel(&mut self, c: ddi::CancelAction) {
        let reply = match self.job() {
            Some(j) if j.id() == c.stop_id => {
                if j.before_install() && self.final_fb.is_none() {
                    self.drop_job(c.stop_id, false);
                    self.last_failure = Some((Live::Yes, Failure::Canceled));
                    self.push(Act::Telemetry(Telemetry {
                        action: Some(c.stop_id),
                        phase: TelemetryPhase::Canceled,
                        percent: None,
                        failure: Some(Failure::Canceled),
                    }));
                    CancelReply::Accepted
                } else {
                    CancelReply::Rejected
                }
            }
            _ => CancelReply::Accepted,
        };
        self.cancel_reply = Some((Live::Yes, c.id, reply));
    }

    pub(super) fn on_confirmation(&mut self, id: ActionId) {
        match self.confirmation {
            ConfirmationPolicy::Auto => {
                self.confirm_reply = Some((Live::Yes, id, Confirmation::Confirmed));
            }
            ConfirmationPolicy::AskShell => {
                if self.asked != Some(id) {
                    self.asked = Some(id);
                    self.push(Act::Ask(id));
                    self.answer_pending = true;
                    self.push(Act::Telemetry(Telemetry {
                        action: Some(id),
                        phase: TelemetryPhase::WaitingConfirmation,
                        percent: None,
                        failure: None,
                    }));
                }
            }
        }
    }

    pub(super) fn on_final(&mut self, now: Instant, status: u16) {
        let Some(id) = self.final_fb.as_ref().map(|f| f.action) else {
            return;
        };
        if status == 429 {
            // a final `closed` is exempt from the status quota: this is the DoS filter
            self.back_off(now);
            return;
        }
        if !(200..300).contains(&status) && status != 404 && status != 410 {
            // Refused (400, 403, …) but the action is still open on the server: the result is
            // not delivered. Keep it and send it again after the backoff (retry_wait, doubling);
            // nothing else of the action is redone meanwhile.
            self.refused(RequestKind::Feedback, status);
            self.back_off(now);
            return;
        }
        self.ok(now);
        if status == 410 {
            self.push(Act::Warning(Warning::ActionGone { action: id }));
        }
        self.final_fb = None;
        if self.job().is_some_and(|j| j.id() == id) {
            self.job.active = false;
        }
        self.remember_closed(id);
        if self.timers.get(Timer::ReturnReboot).is_some() {
            self.timers.stop(Timer::ReturnReboot);
            self.push_return_reboot();
        }
        self.etag.clear();
        self.poll_due = true;
    }

    pub(super) fn on_progress(&mut self, now: Instant, status: u16) {
        let id = self.progress_fb.as_ref().map(|p| p.action);
        self.progress_fb = None;
        match status {
            200..=299 => self.ok(now),
            429 | 403 => {
                // quota: stop intermediate feedback for this action, no retry
                if let (Some(j), Some(id)) = (self.job_mut(), id)
                    && j.id() == id
                {
                    j.quota_exhausted = true;
                }
                if let Some(id) = id {
                    self.push(Act::Warning(Warning::QuotaExceeded { action: id }));
                }
            }
            410 => {
                if let Some(id) = id {
                    self.drop_job(id, true);
                }
            }
            s => self.refused(RequestKind::Feedback, s),
        }
    }
}

/// The action id in a DDI link such as `…/deploymentBase/17?c=-2129030598` (after `segment`).
pub(super) fn href_action_id(href: impl Iterator<Item = char>, segment: &str) -> Option<ActionId> {
    let pat = segment.as_bytes();
    let mut matched = 0usize;
    let mut id: Option<u64> = None;
    for c in href {
        if matched < pat.len() {
            let b = u8::try_from(u32::from(c)).ok();
            matched = if b == pat.get(matched).copied() {
                matched + 1
            } else if b == pat.first().copied() {
                1
            } else {
                0
            };
            continue;
        }
        match c.to_digit(10) {
            Some(d) => id = Some(id.unwrap_or(0).checked_mul(10)?.checked_add(u64::from(d))?),
            None => break,
        }
    }
    id.map(ActionId)
}
