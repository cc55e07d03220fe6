//! Monotonic time as used by the sans-IO state machines.
//!
//! The crate never reads a clock. The caller passes an [`Instant`] into every `handle_*` call;
//! instants must be monotonic (never go backwards) but may start at any epoch (boot time is
//! typical). Resolution is one millisecond; all arithmetic saturates instead of panicking.

use core::ops::{Add, Sub};

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant {
    millis: u64,
}

impl Instant {
    /// The epoch of the caller's clock.
    pub const ZERO: Self = Self { millis: 0 };

    /// An instant `millis` milliseconds after the epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// An instant `secs` seconds after the epoch (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Milliseconds since the epoch.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Time elapsed from `earlier` to `self`, zero if `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Self) -> Duration {
        Duration::from_millis(self.millis.saturating_sub(earlier.millis))
    }

    /// `self + d`, saturating at the end of time.
    pub const fn saturating_add(self, d: Duration) -> Self {
        Self {
            millis: self.millis.saturating_add(d.millis),
        }
    }
}

/// A span of time in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration {
    millis: u64,
}

impl Duration {
    /// Zero length.
    pub const ZERO: Self = Self { millis: 0 };
    /// The longest representable duration.
    pub const MAX: Self = Self { millis: u64::MAX };

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self { millis }
    }

    /// `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Self {
        Self {
            millis: secs.saturating_mul(1000),
        }
    }

    /// Length in milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.millis
    }

    /// Length in whole seconds (rounded down).
    pub const fn as_secs(self) -> u64 {
        self.millis / 1000
    }

    /// `self * n`, saturating.
    pub const fn saturating_mul(self, n: u64) -> Self {
        Self {
            millis: self.millis.saturating_mul(n),
        }
    }

    /// `self + other`, saturating.
    pub const fn saturating_add(self, other: Self) -> Self {
        Self {
            millis: self.millis.saturating_add(other.millis),
        }
    }

    /// `self - other`, zero if `other` is longer.
    pub const fn saturating_sub(self, other: Self) -> Self {
        Self {
            millis: self.millis.saturating_sub(other.millis),
        }
    }

    /// `self` clamped to `[min, max]` (`min` wins if `min > max`).
    pub fn clamp_to(self, min: Self, max: Self) -> Self {
        if self > max {
            if max < min { min } else { max }
        } else if self < min {
            min
        } else {
            self
        }
    }
}

impl Add<Duration> for Instant {
    type Output = Self;
    fn add(self, rhs: Duration) -> Self {
        self.saturating_add(rhs)
    }
}

impl Sub<Self> for Instant {
    type Output = Duration;
    fn sub(self, rhs: Self) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

impl Add for Duration {
    type Output = Self;
    fn add(self, rhs: Self) -> Self {
        self.saturating_add(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saturating_arithmetic() {
        let t = Instant::from_millis(u64::MAX - 1);
        assert_eq!((t + Duration::from_secs(5)).as_millis(), u64::MAX);
        assert_eq!(Instant::ZERO - Instant::from_secs(3), Duration::ZERO);
        assert_eq!(
            Instant::from_secs(3) - Instant::from_secs(1),
            Duration::from_secs(2)
        );
        assert_eq!(Duration::from_secs(u64::MAX).as_millis(), u64::MAX);
    }

    #[test]
    fn clamp() {
        let min = Duration::from_secs(10);
        let max = Duration::from_secs(100);
        assert_eq!(Duration::from_secs(5).clamp_to(min, max), min);
        assert_eq!(Duration::from_secs(500).clamp_to(min, max), max);
        assert_eq!(
            Duration::from_secs(50).clamp_to(min, max),
            Duration::from_secs(50)
        );
        assert_eq!(Duration::from_secs(50).clamp_to(max, min), max);
    }
}
