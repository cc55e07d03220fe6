//! When things happen: the one timer table (quinn-proto style) behind `handle_timeout` and
//! `poll_timeout`, and what arms it: poll scheduling (server `sleep`, bounds, jitter), download
//! resume delays, the reboot back after a failed health check, and request backoff.

use super::{Awaiting, Client};
use crate::record::Phase;
use crate::time::{Duration, Instant};

/// What a deadline in the [`TimerTable`] is for. `handle_timeout` serves expired timers in this
/// order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timer {
    /// The next base poll is due.
    Poll,
    /// Reboot back to the previous slot even though the failure report is not acknowledged
    /// (the record keeps it for the next start).
    ReturnReboot,
    /// Resume the current artifact's download after a cut (only while a job runs).
    Resume,
    /// No request goes out before this (backoff after a failed or refused request).
    Backoff,
    /// No base poll goes out before this: `poll_min` after the last answered poll (while an
    /// action runs, `active_poll_interval` if that is shorter), whatever else asks for a poll.
    PollFloor,
}

impl Timer {
    const COUNT: usize = 5;
    /// Every timer, in the order `handle_timeout` serves them.
    pub(super) const ALL: [Self; Self::COUNT] = [
        Self::Poll,
        Self::ReturnReboot,
        Self::Resume,
        Self::Backoff,
        Self::PollFloor,
    ];
}

/// One deadline per [`Timer`]. A bit mask marks the armed ones instead of an
/// `[Option<Instant>; N]`, which would take 16 bytes a slot; all-zero bytes is "none armed", so
/// [`Client::unconfigured`] stays all-zero (see [`super::Live`]).
#[derive(Debug, Clone, Copy)]
pub(super) struct TimerTable {
    at: [Instant; Timer::COUNT],
    armed: u8,
}

impl TimerTable {
    /// No timer armed.
    pub(super) const fn new() -> Self {
        Self {
            at: [Instant::ZERO; Timer::COUNT],
            armed: 0,
        }
    }

    /// The deadline of `t`, if armed.
    pub(super) fn get(&self, t: Timer) -> Option<Instant> {
        (self.armed & (1 << t as u8) != 0).then_some(self.at[t as usize])
    }

    /// Arm `t` for `at` (replacing its deadline).
    pub(super) fn set(&mut self, t: Timer, at: Instant) {
        self.at[t as usize] = at;
        self.armed |= 1 << t as u8;
    }

    /// Disarm `t`.
    pub(super) fn stop(&mut self, t: Timer) {
        self.armed &= !(1 << t as u8);
    }

    /// Disarm every timer.
    pub(super) fn clear(&mut self) {
        *self = Self::new();
    }

    /// Whether `t` is armed and its deadline has come at `now`; if so it is disarmed.
    pub(super) fn expire(&mut self, t: Timer, now: Instant) -> bool {
        let due = self.get(t).is_some_and(|at| now >= at);
        if due {
            self.stop(t);
        }
        due
    }
}

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
        self.timers.set(Timer::Poll, now + d);
    }

    /// An action became active: poll at most `active_poll_interval` from now (to see cancels).
    pub(super) fn tighten_poll(&mut self) {
        // the floor after the poll that brought the action shrinks to the active interval
        let cap = self.last_now + self.active_poll.min(self.poll_min);
        if self.timers.get(Timer::PollFloor).is_some_and(|f| f > cap) {
            self.timers.set(Timer::PollFloor, cap);
        }
        if self.poll_override.is_some() || self.poll_due {
            return;
        }
        let d = self.jitter(self.active_poll, u64::from(self.jitter_percent));
        let t = self.last_now + d;
        if self.timers.get(Timer::Poll).is_none_or(|n| n > t) {
            self.timers.set(Timer::Poll, t);
        }
    }

    /// A base poll was answered at `now`: the next one waits at least the poll minimum, however
    /// often anything asks for one (a server that keeps offering work, a refused report).
    pub(super) fn poll_answered(&mut self, now: Instant) {
        let mut floor = self.poll_min;
        if self.job().is_some() {
            floor = floor.min(self.active_poll);
        }
        self.timers.set(Timer::PollFloor, now + floor);
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
        self.timers
            .set(Timer::Backoff, now + half + Duration::from_millis(extra));
    }
}

#[cfg(test)]
mod tests {
    use super::{Timer, TimerTable};
    use crate::time::Instant;

    #[test]
    fn table_arms_expires_and_stops_each_timer_alone() {
        let mut t = TimerTable::new();
        assert!(Timer::ALL.iter().all(|&x| t.get(x).is_none()));
        t.set(Timer::Resume, Instant::from_secs(5));
        t.set(Timer::Backoff, Instant::ZERO);
        assert_eq!(t.get(Timer::Resume), Some(Instant::from_secs(5)));
        assert_eq!(t.get(Timer::Backoff), Some(Instant::ZERO));
        assert_eq!(t.get(Timer::Poll), None);
        assert!(!t.expire(Timer::Resume, Instant::from_millis(4999)));
        assert!(t.expire(Timer::Resume, Instant::from_secs(5)));
        assert!(
            !t.expire(Timer::Resume, Instant::from_secs(6)),
            "fires once"
        );
        assert_eq!(t.get(Timer::Backoff), Some(Instant::ZERO));
        t.stop(Timer::Backoff);
        assert_eq!(t.get(Timer::Backoff), None);
        t.set(Timer::Poll, Instant::from_secs(1));
        t.clear();
        assert!(Timer::ALL.iter().all(|&x| t.get(x).is_none()));
    }
}
