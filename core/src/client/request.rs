//! The next request: which one goes out (the order of `next_request`), its URL and its body (the
//! feedback, configData and installedBase bodies), and [`Client::poll_request`].

use super::{
    Client, ConfirmationPolicy, Live, MAX_REASON_LEN, Method, Request, RequestError, RequestKind,
    Stop, Timer, boot,
};
use crate::ddi::{
    self, ActionFeedback, ActionId, CancelFeedback, CancelReply, Confirmation,
    ConfirmationFeedback, Execution, Finished, InstalledBase, Progress,
};
use crate::text::{Num, cat};
use crate::time::Instant;
use heapless::String;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum Fetch {
    Deployment = 1,
    Cancel,
    Confirmation,
}

#[derive(Debug)]
pub(super) struct FinalFb {
    pub(super) _live: Live,
    pub(super) action: ActionId,
    pub(super) execution: Execution,
    pub(super) success: bool,
    pub(super) text: String<MAX_REASON_LEN>,
}

#[derive(Debug)]
pub(super) struct ProgressFb {
    pub(super) action: ActionId,
    pub(super) cnt: u32,
    pub(super) of: u32,
    pub(super) text: String<96>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum InFlight {
    Poll = 1,
    Fetch(Fetch),
    Final,
    Progress,
    CancelReply,
    ConfirmReply,
    ConfigData,
    InstalledBase,
}

impl Client {
    /// The next HTTP request, with its body written into `buf` (give it
    /// [`REQUEST_BUF_LEN`] bytes). `None` while a request is in flight, while backing off,
    /// or when there is nothing to send.
    pub fn poll_request<'a>(
        &'a mut self,
        now: Instant,
        buf: &'a mut [u8],
    ) -> Result<Option<Request<'a>>, RequestError> {
        if self.stop != Stop::Running
            || self.in_flight.is_some()
            || self.timers.get(Timer::Backoff).is_some_and(|t| now < t)
            || self.boot_stage != boot::Stage::Idle
        {
            return Ok(None);
        }
        let Some(what) = self.next_request().filter(|&w| {
            w != InFlight::Poll || self.timers.get(Timer::PollFloor).is_none_or(|t| now >= t)
        }) else {
            return Ok(None);
        };
        self.url.clear();
        let Some((kind, method, len)) = self.build(what, buf)? else {
            return Ok(None);
        };
        self.in_flight = Some(what);
        if let (InFlight::Progress | InFlight::Fetch(Fetch::Deployment), Some(j)) =
            (what, self.job_mut())
        {
            j.rec.status_entries = j.rec.status_entries.saturating_add(1);
        }
        let this: &'a Self = self;
        let body: &'a [u8] = buf.get(..len).unwrap_or(&[]);
        Ok(Some(Request {
            kind,
            method,
            url: if matches!(what, InFlight::Fetch(_)) {
                &this.link
            } else {
                &this.url
            },
            authorization: this.auth.as_deref(),
            if_none_match: if what == InFlight::Poll && !this.etag.is_empty() {
                Some(&this.etag)
            } else {
                None
            },
            content_type: if len > 0 || method != Method::Get {
                Some("application/json")
            } else {
                None
            },
            body,
        }))
    }

    pub(super) fn has_pending_request(&self) -> bool {
        self.next_request().is_some()
    }

    pub(super) fn next_request(&self) -> Option<InFlight> {
        if self.final_fb.is_some() {
            Some(InFlight::Final)
        } else if self.cancel_reply.is_some() {
            Some(InFlight::CancelReply)
        } else if self.confirm_reply.is_some() {
            Some(InFlight::ConfirmReply)
        } else if self.installed_base.is_some() && !self.installed_base_held {
            Some(InFlight::InstalledBase)
        } else if let Some(f) = self.fetch {
            Some(InFlight::Fetch(f))
        } else if self.progress_fb.is_some() && self.progress_allowed() {
            Some(InFlight::Progress)
        } else if self.config_due && !self.attrs.is_empty() {
            Some(InFlight::ConfigData)
        } else if self.poll_due {
            Some(InFlight::Poll)
        } else {
            None
        }
    }

    pub(super) fn is_feedback(&self, k: InFlight) -> bool {
        matches!(
            k,
            InFlight::Final
                | InFlight::Progress
                | InFlight::CancelReply
                | InFlight::ConfirmReply
                | InFlight::ConfigData
                | InFlight::InstalledBase
        )
    }

    /// The URL of `what` into `self.url` and its body into `buf`: kind, method and body length
    /// (`None`: nothing of that kind waits after all).
    pub(super) fn build(
        &mut self,
        what: InFlight,
        buf: &mut [u8],
    ) -> Result<Option<(RequestKind, Method, usize)>, RequestError> {
        let cap = buf.len();
        let too_small = |_| RequestError::BufferTooSmall { capacity: cap };
        let fb_err = |e: ddi::FeedbackError| match e {
            ddi::FeedbackError::Write(_) => RequestError::BufferTooSmall { capacity: cap },
            // (not expected: the client's own texts are cleaned and short)
            e => RequestError::InvalidFeedback(e),
        };
        let base = self.controller_url.as_str();
        let url = &mut self.url;
        let u = |r: Result<(), ()>| r.map_err(|()| RequestError::UrlTooLong);
        Ok(Some(match what {
            InFlight::Poll => {
                u(cat(url, &[base]))?;
                (RequestKind::Poll, Method::Get, 0)
            }
            InFlight::Fetch(f) => {
                let kind = match f {
                    Fetch::Deployment => RequestKind::DeploymentBase,
                    Fetch::Cancel => RequestKind::CancelAction,
                    Fetch::Confirmation => RequestKind::ConfirmationBase,
                };
                (kind, Method::Get, 0)
            }
            InFlight::Final => {
                let Some(f) = self.final_fb.as_ref() else {
                    return Ok(None);
                };
                let id = Num::dec(f.action.0);
                u(cat(
                    url,
                    &[base, "/deploymentBase/", id.as_str(), "/feedback"],
                ))?;
                let details: [&str; 1] = [&f.text];
                let n = ActionFeedback {
                    timestamp: None,
                    execution: f.execution,
                    finished: if f.success {
                        Finished::Success
                    } else {
                        Finished::Failure
                    },
                    progress: None,
                    code: None,
                    details: if f.text.is_empty() { &[] } else { &details },
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::Feedback, Method::Post, n)
            }
            InFlight::Progress => {
                let Some(p) = self.progress_fb.as_ref() else {
                    return Ok(None);
                };
                let id = Num::dec(p.action.0);
                u(cat(
                    url,
                    &[base, "/deploymentBase/", id.as_str(), "/feedback"],
                ))?;
                let details: [&str; 1] = [&p.text];
                let n = ActionFeedback {
                    timestamp: None,
                    execution: Execution::Proceeding,
                    finished: Finished::None,
                    progress: Some(Progress {
                        cnt: p.cnt,
                        of: Some(p.of),
                    }),
                    code: None,
                    details: &details,
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::Feedback, Method::Post, n)
            }
            InFlight::CancelReply => {
                let Some((_, id, reply)) = self.cancel_reply else {
                    return Ok(None);
                };
                let id = Num::dec(id.0);
                u(cat(
                    url,
                    &[base, "/cancelAction/", id.as_str(), "/feedback"],
                ))?;
                let text = match reply {
                    CancelReply::Accepted => "Cancel accepted, download aborted",
                    CancelReply::Rejected => "Cancel rejected: installation already started",
                    CancelReply::Failed => "Cancel failed",
                };
                let n = CancelFeedback {
                    timestamp: None,
                    reply,
                    code: None,
                    details: &[text],
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::CancelFeedback, Method::Post, n)
            }
            InFlight::ConfirmReply => {
                let Some((_, id, c)) = self.confirm_reply else {
                    return Ok(None);
                };
                let id = Num::dec(id.0);
                u(cat(
                    url,
                    &[base, "/confirmationBase/", id.as_str(), "/feedback"],
                ))?;
                let text = match (c, self.confirmation) {
                    (Confirmation::Confirmed, ConfirmationPolicy::Auto) => "Confirmed by policy",
                    (Confirmation::Confirmed, _) => "Confirmed by user",
                    (Confirmation::Denied, _) => "Denied by user",
                };
                let n = ConfirmationFeedback {
                    confirmation: c,
                    code: None,
                    details: &[text],
                }
                .write(buf)
                .map_err(fb_err)?;
                (RequestKind::ConfirmationFeedback, Method::Post, n)
            }
            InFlight::ConfigData => {
                u(cat(url, &[base, "/configData"]))?;
                let n = self.attrs.len();
                buf.get_mut(..n)
                    .ok_or(RequestError::BufferTooSmall { capacity: cap })?
                    .copy_from_slice(&self.attrs);
                (RequestKind::ConfigData, Method::Put, n)
            }
            InFlight::InstalledBase => {
                let Some((name, version)) = self.installed_base.as_ref() else {
                    return Ok(None);
                };
                u(cat(url, &[base, "/installedBase"]))?;
                let n = InstalledBase { name, version }
                    .write(buf)
                    .map_err(too_small)?;
                (RequestKind::InstalledBase, Method::Put, n)
            }
        }))
    }
}
