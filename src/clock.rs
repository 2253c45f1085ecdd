//! The wall clock as the node reads and writes it: Unix seconds for TSIG and bundle
//! freshness, RFC 3339 text for logs, banners and reports, and the one rule for when a
//! certificate's renewal starts. Pure apart from reading the clock; no I/O.

use std::time::{Duration, SystemTime};

/// Certificates shorter than this renew with half their life left, not a third: a short
/// certificate leaves too little room after the two-thirds point for retries.
const SHORT_LIFETIME: Duration = Duration::from_secs(10 * 86_400);

/// Seconds since the Unix epoch: TSIG times and certificate validity checks.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// RFC 3339 in UTC, for logs and banners.
pub fn rfc3339(t: SystemTime) -> String {
    let t = time::OffsetDateTime::from(t);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Unix seconds as RFC 3339 UTC; the raw number when out of range.
pub fn rfc3339_secs(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

/// When renewal of a certificate valid from `not_before` to `not_after` starts: with a
/// third of its lifetime left, or half for certificates under 10 days. Every issuer (the
/// local CA, ACME without ARI) uses this one rule.
pub fn renewal_start(not_before: SystemTime, not_after: SystemTime) -> SystemTime {
    let lifetime = not_after.duration_since(not_before).unwrap_or_default();
    let left = if lifetime < SHORT_LIFETIME {
        lifetime / 2
    } else {
        lifetime / 3
    };
    not_after - left
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn ninety_days_start_with_thirty_left_and_two_days_with_one() {
        let start = SystemTime::UNIX_EPOCH + 1000 * DAY;
        assert_eq!(renewal_start(start, start + 90 * DAY), start + 60 * DAY);
        assert_eq!(renewal_start(start, start + 2 * DAY), start + DAY);
    }

    #[test]
    fn rfc3339_of_the_epoch_and_of_a_huge_number() {
        assert_eq!(rfc3339_secs(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_secs(u64::MAX), u64::MAX.to_string());
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
