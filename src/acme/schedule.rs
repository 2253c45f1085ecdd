//! When to renew and how long to back off: pure functions of times, no I/O, no clock.
//!
//! Without ARI (RFC 9773) a certificate is renewed once `clock::renewal_start` has passed
//! (a third of its lifetime left, half for certificates under 10 days), at a random moment
//! in a window after that point. With ARI the CA's suggested window is used. Either way, with under 1/20 of the lifetime left
//! it is renewed at once. Failures back off tenfold from a base (1 min, 10 min, 100 min),
//! then stay at a cap.

use std::time::{Duration, SystemTime};

/// After this many tenfold steps the backoff stops growing.
const BACKOFF_STEPS: u32 = 3;
/// The cap, as a multiple of the base: 4 hours for a 1-minute base.
const BACKOFF_CAP_FACTOR: u32 = 240;

/// A certificate's validity, as renewal sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Validity {
    pub(super) not_before: SystemTime,
    pub(super) not_after: SystemTime,
}

impl Validity {
    pub(super) fn lifetime(&self) -> Duration {
        self.not_after
            .duration_since(self.not_before)
            .unwrap_or_default()
    }

    /// Less than 1/20 of the lifetime left: renew whatever the CA suggests.
    pub(super) fn is_urgent(&self, now: SystemTime) -> bool {
        self.not_after.duration_since(now).unwrap_or_default() < self.lifetime() / 20
    }
}

/// The window in which to renew when the CA offers no ARI.
pub(super) fn default_window(validity: Validity) -> (SystemTime, SystemTime) {
    let lifetime = validity.lifetime();
    let start = crate::clock::renewal_start(validity.not_before, validity.not_after);
    // The window spans a tenth of the lifetime, ending well before the urgent point.
    (start, start + lifetime / 10)
}

/// The moment to renew: `fraction` (0.0..1.0, random) of the way through `window`, or now
/// when the certificate is urgent or the window has passed.
pub(super) fn renewal_time(
    validity: Validity,
    window: (SystemTime, SystemTime),
    fraction: f64,
    now: SystemTime,
) -> SystemTime {
    if validity.is_urgent(now) {
        return now;
    }
    let (start, end) = window;
    let span = end.duration_since(start).unwrap_or_default();
    let at = start + span.mul_f64(fraction.clamp(0.0, 1.0));
    at.max(now)
}

/// The delay after the `failures`-th failure in a row (1-based).
pub(super) fn backoff(failures: u32, base: Duration) -> Duration {
    let steps = failures.saturating_sub(1).min(BACKOFF_STEPS);
    let delay = base * 10u32.pow(steps);
    delay.min(base * BACKOFF_CAP_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    fn validity(days: u32) -> Validity {
        let not_before = SystemTime::UNIX_EPOCH + DAY * 1000;
        Validity {
            not_before,
            not_after: not_before + DAY * days,
        }
    }

    #[test]
    fn ninety_day_certificate_renews_with_a_third_left() {
        let v = validity(90);
        let (start, end) = default_window(v);
        assert_eq!(v.not_after.duration_since(start).unwrap(), DAY * 30);
        assert_eq!(end.duration_since(start).unwrap(), DAY * 9);
        let at = renewal_time(v, (start, end), 0.5, v.not_before);
        assert!(at > start && at < end);
    }

    #[test]
    fn short_certificate_renews_at_half_life() {
        let v = validity(6);
        let (start, _) = default_window(v);
        assert_eq!(v.not_after.duration_since(start).unwrap(), DAY * 3);
    }

    #[test]
    fn urgent_certificate_renews_now_whatever_the_window() {
        let v = validity(90);
        let now = v.not_after - DAY * 4;
        assert!(v.is_urgent(now));
        let far = (v.not_after + DAY, v.not_after + DAY * 2);
        assert_eq!(renewal_time(v, far, 0.5, now), now);
        assert!(!v.is_urgent(v.not_after - DAY * 5));
    }

    #[test]
    fn passed_window_means_now() {
        let v = validity(90);
        let window = default_window(v);
        let now = window.1 + DAY;
        assert_eq!(renewal_time(v, window, 0.0, now), now);
    }

    #[test]
    fn backoff_grows_tenfold_then_caps() {
        let base = Duration::from_secs(60);
        let delays: Vec<u64> = (1..=6).map(|n| backoff(n, base).as_secs()).collect();
        assert_eq!(delays, [60, 600, 6000, 14_400, 14_400, 14_400]);
    }
}
