//! systemd integration: `sd_notify` READY/STATUS/STOPPING/WATCHDOG and signal handling.
//!
//! All notifications are no-ops when `NOTIFY_SOCKET` is unset (eyas run by hand or in tests).

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells systemd that start-up is finished.
pub fn ready(status: &str) {
    notify(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Updates the one-line status shown by `systemctl status eyas`.
pub fn status(text: &str) {
    notify(&[NotifyState::Status(text)]);
}

/// Tells systemd that eyas is shutting down.
pub fn stopping() {
    notify(&[NotifyState::Stopping]);
}

fn notify(states: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify failed: {e}");
    }
}

/// systemd's watchdog, fed by the main loop itself (never by a task of its own): when the loop
/// stops making progress — a call that never returns — the pings stop and systemd restarts eyas.
pub struct Watchdog {
    /// Half of `WatchdogSec=`, when systemd asked for pings.
    interval: Option<Duration>,
    next: std::time::Instant,
}

impl Watchdog {
    /// From `WATCHDOG_USEC` (and `WATCHDOG_PID`), as systemd sets them.
    pub fn from_env() -> Self {
        Self {
            interval: sd_notify::watchdog_enabled().map(|d| (d / 2).max(Duration::from_millis(50))),
            next: std::time::Instant::now(),
        }
    }

    /// Pings when a ping is due.
    pub fn feed(&mut self) {
        let Some(interval) = self.interval else {
            return;
        };
        let now = std::time::Instant::now();
        if now >= self.next {
            notify(&[NotifyState::Watchdog]);
            self.next = now + interval;
        }
    }

    /// How long the loop may sleep before the next ping is due (`None`: no watchdog).
    pub fn until_due(&self) -> Option<Duration> {
        self.interval.map(|_| {
            self.next
                .saturating_duration_since(std::time::Instant::now())
        })
    }
}

/// Completes on SIGTERM or SIGINT; returns the signal's name.
pub async fn shutdown_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot install signal handlers; SIGTERM will kill eyas abruptly");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifications_without_systemd_are_harmless() {
        // NOTIFY_SOCKET is unset under cargo test.
        ready("test");
        status("test");
        stopping();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn sigterm_is_caught() {
        let waiter = tokio::spawn(shutdown_signal());
        tokio::time::sleep(Duration::from_millis(100)).await;
        let pid = std::process::id().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill");
        assert!(status.success());
        let name = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("in time")
            .expect("task");
        assert_eq!(name, "SIGTERM");
    }
}
