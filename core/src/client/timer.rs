//! When things happen: poll scheduling (server `sleep`, bounds, jitter) and backoff.

use super::{Awaiting, Client};
use crate::record::Phase;
use crate::time::{Duration, Instant};

impl Client {
    pub(super) fn next_rand(&mut self) -> u64 {
        // xorshift64*
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn jitter(&mut self, d: Duration, pct: u64) -> Duration {
        let span = d.as_millis() / 100 * pct + (d.as_millis() % 100) * pct / 100;
        if span == 0 {
            return d;
        }
        // pct ≤ 100, so span ≤ d: no underflow; saturate at the far end of time
        let off = self.next_rand() % span.saturating_mul(2).saturating_add(1);
        Duration::from_millis((d.as_millis() - span).saturating_add(off))
    }

    pub(super) fn schedule_poll(&mut self, now: Instant) {
        let mut d = self
            .poll_override
            .unwrap_or_else(|| self.server_sleep.clamp_to(self.poll_min, self.poll_max));
        let active = self.job().is_some_and(|j| {
            j.awaiting != Awaiting::Nothing || matches!(j.rec.phase, Phase::Installing)
        });
        if active && self.poll_override.is_none() {
            d = d.min(self.active_poll);
        }
        let d = self.jitter(d, u64::from(self.jitter_percent));
        self.poll_due = false;
        self.next_poll = Some(now + d);
    }

    /// An action became active: poll at most `active_poll_interval` from now (to see cancels).
    pub(super) fn tighten_poll(&mut self) {
        if self.poll_override.is_some() || self.poll_due {
            return;
        }
        let d = self.jitter(self.active_poll, u64::from(self.jitter_percent));
        let t = self.last_now + d;
        if self.next_poll.is_none_or(|n| n > t) {
            self.next_poll = Some(t);
        }
    }

    /// An answer that is not a failure: the backoff starts over.
    pub(super) fn ok(&mut self, _now: Instant) {
        self.failures = 0;
    }

    pub(super) fn back_off(&mut self, now: Instant) {
        let exp = self.failures.min(20);
        let d = self
            .backoff_initial
            .saturating_mul(1u64 << exp)
            .clamp_to(self.backoff_initial, self.backoff_max);
        // jitter: 50–100 % of the capped delay
        let half = Duration::from_millis(d.as_millis() / 2);
        let extra = if half.as_millis() == 0 {
            0
        } else {
            self.next_rand() % (half.as_millis() + 1)
        };
        self.failures = self.failures.saturating_add(1);
        self.not_before = now + half + Duration::from_millis(extra);
    }
}
