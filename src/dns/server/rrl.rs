//! Response rate limiting for UDP, in the style of Knot's `mod-rrl` and BIND's
//! `rate-limit`: each client prefix (/24 and /56 by default) gets `responses-per-second`
//! full answers, with a burst of one second's worth; past that, every `slip`th answer goes
//! out truncated (TC=1, header and question only: a real client retries over TCP, where no
//! spoofed address can follow) and the rest are dropped. One log line per limited prefix
//! per interval says how many were dropped and slipped.
//!
//! Owns a fixed table of buckets (prefixes hash into it; a stale bucket is taken over, so
//! memory never grows with the number of clients). It must not know about sockets: the
//! UDP listener asks [`Rrl::check`] before each send.

use std::{
    hash::{BuildHasher, RandomState},
    net::IpAddr,
    sync::Mutex,
    time::Instant,
};

use crate::config::RrlConfig;

/// What to do with one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    Send,
    /// Send a truncated copy instead.
    Slip,
    Drop,
}

pub(super) struct Rrl {
    config: RrlConfig,
    hasher: RandomState,
    epoch: Instant,
    buckets: Box<[Mutex<Bucket>]>,
}

#[derive(Default)]
struct Bucket {
    prefix: u128,
    /// Thousandths of an answer, refilled at `responses_per_second` per second.
    tokens: u64,
    /// Milliseconds since the epoch of the last refill.
    stamp: u64,
    /// Limited answers since the bucket began limiting (for the slip count).
    limited: u64,
    dropped: u64,
    slipped: u64,
    /// Milliseconds since the epoch of this prefix's last log line (0: none yet).
    logged: u64,
    used: bool,
}

impl Rrl {
    pub(super) fn new(config: RrlConfig) -> Self {
        let buckets = (0..config.table_size.max(1))
            .map(|_| Mutex::new(Bucket::default()))
            .collect();
        Self {
            config,
            hasher: RandomState::new(),
            epoch: Instant::now(),
            buckets,
        }
    }

    /// Whether an answer to `client` may go out now, and how.
    pub(super) fn check(&self, client: IpAddr) -> Verdict {
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.check_at(client, now)
    }

    fn check_at(&self, client: IpAddr, now: u64) -> Verdict {
        let (prefix, length) = self.prefix(client);
        let index = (self.hasher.hash_one(prefix) % self.buckets.len() as u64) as usize;
        let (verdict, report) = {
            let mut bucket = self.buckets[index]
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            bucket.take(prefix, now, &self.config)
        };
        if let Some((dropped, slipped)) = report {
            tracing::warn!(
                prefix = %format_prefix(prefix, length, client),
                dropped,
                slipped,
                rate = self.config.responses_per_second,
                "rate limiting UDP answers to this prefix"
            );
        }
        verdict
    }

    /// The client's prefix as a number (IPv4 ones in their IPv4-mapped form, which no
    /// IPv6 prefix's number can equal: its low bits are zero), and its length.
    fn prefix(&self, client: IpAddr) -> (u128, u8) {
        match client.to_canonical() {
            IpAddr::V4(v4) => {
                let length = self.config.ipv4_prefix_length;
                let mask = u32::MAX.checked_shl(32 - u32::from(length)).unwrap_or(0);
                ((0xffff << 32) | u128::from(u32::from(v4) & mask), length)
            }
            IpAddr::V6(v6) => {
                let length = self.config.ipv6_prefix_length;
                let mask = u128::MAX.checked_shl(128 - u32::from(length)).unwrap_or(0);
                (u128::from(v6) & mask, length)
            }
        }
    }
}

impl Bucket {
    /// Takes one answer's token for `prefix`; also what to log, if a line is due.
    fn take(
        &mut self,
        prefix: u128,
        now: u64,
        config: &RrlConfig,
    ) -> (Verdict, Option<(u64, u64)>) {
        let full = u64::from(config.responses_per_second) * 1000;
        // Another prefix's bucket, idle for a second: it is ours now.
        if !self.used || (self.prefix != prefix && now.saturating_sub(self.stamp) >= 1000) {
            *self = Self {
                prefix,
                tokens: full,
                stamp: now,
                used: true,
                ..Self::default()
            };
        }
        let elapsed = now.saturating_sub(self.stamp);
        self.tokens = (self.tokens + elapsed * u64::from(config.responses_per_second)).min(full);
        self.stamp = now;
        if self.tokens >= 1000 {
            self.tokens -= 1000;
            self.limited = 0;
            return (Verdict::Send, None);
        }
        self.limited += 1;
        let verdict = if config.slip > 0 && self.limited.is_multiple_of(u64::from(config.slip)) {
            self.slipped += 1;
            Verdict::Slip
        } else {
            self.dropped += 1;
            Verdict::Drop
        };
        let interval = u64::try_from(config.log_interval.as_millis()).unwrap_or(u64::MAX);
        let due = self.logged == 0 || now.saturating_sub(self.logged) >= interval;
        if !due {
            return (verdict, None);
        }
        self.logged = now.max(1);
        let report = (
            std::mem::take(&mut self.dropped),
            std::mem::take(&mut self.slipped),
        );
        (verdict, Some(report))
    }
}

/// `192.0.2.0/24` or `2001:db8::/56` for the prefix `client` falls in.
fn format_prefix(prefix: u128, length: u8, client: IpAddr) -> String {
    match client.to_canonical() {
        IpAddr::V4(_) => {
            let v4 = std::net::Ipv4Addr::from((prefix & u128::from(u32::MAX)) as u32);
            format!("{v4}/{length}")
        }
        IpAddr::V6(_) => format!("{}/{length}", std::net::Ipv6Addr::from(prefix)),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn rrl(rate: u32, slip: u32) -> Rrl {
        Rrl::new(RrlConfig {
            responses_per_second: rate,
            slip,
            ipv4_prefix_length: 24,
            ipv6_prefix_length: 56,
            table_size: 64,
            log_interval: Duration::from_secs(10),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_prefix_gets_its_rate_then_every_slipth_answer_truncated() {
        let rrl = rrl(10, 2);
        let verdicts: Vec<_> = (0..30).map(|_| rrl.check_at(ip("192.0.2.7"), 5)).collect();
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Send).count(), 10);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Slip).count(), 10);
        assert_eq!(verdicts.iter().filter(|v| **v == Verdict::Drop).count(), 10);
        // Same /24: limited too; another /24 is not.
        assert_ne!(rrl.check_at(ip("192.0.2.200"), 5), Verdict::Send);
        assert_eq!(rrl.check_at(ip("192.0.3.1"), 5), Verdict::Send);
        // Half a second later: five more.
        let later: Vec<_> = (0..10)
            .map(|_| rrl.check_at(ip("192.0.2.7"), 505))
            .collect();
        assert_eq!(later.iter().filter(|v| **v == Verdict::Send).count(), 5);
    }

    #[test]
    fn slip_zero_drops_everything_over_the_rate_and_ipv6_uses_slash_56() {
        let rrl = rrl(1, 0);
        assert_eq!(rrl.check_at(ip("2001:db8:0:1::1"), 1), Verdict::Send);
        assert_eq!(rrl.check_at(ip("2001:db8:0:ff::2"), 1), Verdict::Drop);
        assert_eq!(rrl.check_at(ip("2001:db8:0:100::1"), 1), Verdict::Send);
    }

    #[test]
    fn prefixes_print_as_blocks() {
        let rrl = rrl(1, 0);
        let (p, l) = rrl.prefix(ip("192.0.2.77"));
        assert_eq!(format_prefix(p, l, ip("192.0.2.77")), "192.0.2.0/24");
        let (p, l) = rrl.prefix(ip("2001:db8:0:1::1"));
        assert_eq!(format_prefix(p, l, ip("2001:db8::1")), "2001:db8::/56");
    }
}
