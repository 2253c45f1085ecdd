//! What a node counts while it runs: one process-wide [`STATS`], written by the layers that
//! see the events (listeners, replication, NOTIFY, ACME) and read only at scrape time.
//!
//! A node is one process (`certzone run`), so process-wide counters need no plumbing through
//! every layer. The per-query counters are plain atomics in fixed arrays, indexed by
//! transport, path and rcode: no lock, no allocation, no label strings on the hot path. The
//! UDP threads add a whole batch at once ([`LocalCounts`]), so an answer costs an increment
//! of a thread-local array. Rare events (a refresh, a refused bundle, a NOTIFY) take a
//! short lock on a small map; nothing holds one across an `.await`.

use std::{
    collections::BTreeMap,
    sync::{
        Mutex,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
};

/// Transports in index order (as `dns::server::Transport` has them).
pub const TRANSPORTS: [&str; 4] = ["udp", "tcp", "tls", "https"];
/// Answer paths: a prepared answer copied, or the full path through the zones.
pub const PATHS: [&str; 2] = ["prepared", "full"];
/// Why a query got no answer.
pub const DROP_REASONS: [&str; 3] = ["response", "udp_slow_queries", "rrl"];

const RCODES: usize = 16;
const ANSWER_SLOTS: usize = TRANSPORTS.len() * PATHS.len() * RCODES;

/// The index of a drop reason in [`DROP_REASONS`].
#[derive(Debug, Clone, Copy)]
pub enum DropReason {
    /// A response (QR=1): never answered.
    Response = 0,
    /// Every `udp-slow-queries` permit taken.
    SlowQueries = 1,
    /// Response rate limiting.
    Rrl = 2,
}

/// Every counter of the node.
pub struct Stats {
    queries: [AtomicU64; TRANSPORTS.len()],
    answers: [AtomicU64; ANSWER_SLOTS],
    dropped: [AtomicU64; DROP_REASONS.len()],
    connections: [AtomicI64; TRANSPORTS.len()],
    handshakes: [AtomicU64; TRANSPORTS.len()],
    handshake_failures: [AtomicU64; TRANSPORTS.len()],
    events: Mutex<Events>,
}

/// The rarer events, by label.
#[derive(Default, Clone)]
pub struct Events {
    /// Replicated zones (workers), by origin.
    pub zones: BTreeMap<String, ZoneRefresh>,
    /// Bundles refused, by the rule that refused them.
    pub refused: BTreeMap<&'static str, u64>,
    /// The bundle version in service (workers).
    pub bundle_version: Option<u64>,
    /// NOTIFY per secondary address.
    pub notify: BTreeMap<String, NotifyCounts>,
    pub acme: AcmeCounts,
    /// Transfers by direction ("in", "out").
    pub transfers: BTreeMap<&'static str, TransferCounts>,
}

/// One replicated zone's refreshes.
#[derive(Default, Clone, Copy)]
pub struct ZoneRefresh {
    /// Unix seconds of the last check the primary answered.
    pub last_success: Option<u64>,
    pub last_failure: Option<u64>,
    pub failures: u64,
    /// Withdrawn: the SOA expire passed without the primary.
    pub expired: bool,
}

#[derive(Default, Clone, Copy)]
pub struct NotifyCounts {
    pub sent: u64,
    pub acknowledged: u64,
    pub failed: u64,
}

#[derive(Default, Clone, Copy)]
pub struct AcmeCounts {
    pub orders: u64,
    pub failures: u64,
    /// Unix seconds of the next renewal planned.
    pub next_renewal: Option<u64>,
}

#[derive(Default, Clone, Copy)]
pub struct TransferCounts {
    pub count: u64,
    pub bytes: u64,
    pub seconds: f64,
}

/// The node's counters.
pub static STATS: Stats = Stats::new();

impl Stats {
    const fn new() -> Self {
        Self {
            queries: [const { AtomicU64::new(0) }; TRANSPORTS.len()],
            answers: [const { AtomicU64::new(0) }; ANSWER_SLOTS],
            dropped: [const { AtomicU64::new(0) }; DROP_REASONS.len()],
            connections: [const { AtomicI64::new(0) }; TRANSPORTS.len()],
            handshakes: [const { AtomicU64::new(0) }; TRANSPORTS.len()],
            handshake_failures: [const { AtomicU64::new(0) }; TRANSPORTS.len()],
            events: Mutex::new(Events {
                zones: BTreeMap::new(),
                refused: BTreeMap::new(),
                bundle_version: None,
                notify: BTreeMap::new(),
                acme: AcmeCounts {
                    orders: 0,
                    failures: 0,
                    next_renewal: None,
                },
                transfers: BTreeMap::new(),
            }),
        }
    }

    /// One query taken on `transport` (an index into [`TRANSPORTS`]).
    pub fn query(&self, transport: usize) {
        self.queries[transport].fetch_add(1, Ordering::Relaxed);
    }

    /// One answer sent; `answer` is its bytes (the rcode is read from its header).
    pub fn answer(&self, transport: usize, prepared: bool, answer: &[u8]) {
        self.answers[answer_slot(transport, prepared, answer)].fetch_add(1, Ordering::Relaxed);
    }

    pub fn drop(&self, reason: DropReason) {
        self.dropped[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// A stream connection opened (`+1`) or closed (`-1`).
    pub fn connection(&self, transport: usize, delta: i64) {
        self.connections[transport].fetch_add(delta, Ordering::Relaxed);
    }

    pub fn handshake(&self, transport: usize, ok: bool) {
        self.handshakes[transport].fetch_add(1, Ordering::Relaxed);
        if !ok {
            self.handshake_failures[transport].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Changes the rarer events under their lock.
    pub fn record(&self, change: impl FnOnce(&mut Events)) {
        change(&mut self.events.lock().unwrap_or_else(|e| e.into_inner()));
    }

    /// A copy of the rarer events, for a scrape.
    pub fn events(&self) -> Events {
        self.events
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Queries taken per transport.
    pub fn queries(&self) -> [u64; TRANSPORTS.len()] {
        std::array::from_fn(|t| self.queries[t].load(Ordering::Relaxed))
    }

    /// Every non-zero answer count: (transport, path, rcode, count).
    pub fn answers(&self) -> Vec<(usize, usize, usize, u64)> {
        let mut out = Vec::new();
        for (slot, count) in self.answers.iter().enumerate() {
            let count = count.load(Ordering::Relaxed);
            if count > 0 {
                let (rest, rcode) = (slot / RCODES, slot % RCODES);
                out.push((rest / PATHS.len(), rest % PATHS.len(), rcode, count));
            }
        }
        out
    }

    pub fn dropped(&self) -> [u64; DROP_REASONS.len()] {
        std::array::from_fn(|r| self.dropped[r].load(Ordering::Relaxed))
    }

    pub fn connections(&self) -> [i64; TRANSPORTS.len()] {
        std::array::from_fn(|t| self.connections[t].load(Ordering::Relaxed))
    }

    /// Handshakes and failed handshakes per transport.
    pub fn handshakes(&self) -> [(u64, u64); TRANSPORTS.len()] {
        std::array::from_fn(|t| {
            (
                self.handshakes[t].load(Ordering::Relaxed),
                self.handshake_failures[t].load(Ordering::Relaxed),
            )
        })
    }
}

fn answer_slot(transport: usize, prepared: bool, answer: &[u8]) -> usize {
    let rcode = answer.get(3).map_or(0, |b| usize::from(b & 0x0f));
    let path = usize::from(!prepared);
    (transport * PATHS.len() + path) * RCODES + rcode
}

/// A UDP thread's counts for one batch, added to [`STATS`] once per batch.
pub struct LocalCounts {
    queries: u64,
    answers: [u64; ANSWER_SLOTS],
}

impl Default for LocalCounts {
    fn default() -> Self {
        Self {
            queries: 0,
            answers: [0; ANSWER_SLOTS],
        }
    }
}

impl LocalCounts {
    pub fn query(&mut self) {
        self.queries += 1;
    }

    /// A prepared UDP answer.
    pub fn prepared_answer(&mut self, answer: &[u8]) {
        self.answers[answer_slot(0, true, answer)] += 1;
    }

    /// Adds the batch to [`STATS`] and starts again from zero.
    pub fn flush(&mut self) {
        if self.queries > 0 {
            STATS.queries[0].fetch_add(self.queries, Ordering::Relaxed);
            self.queries = 0;
        }
        // Only the UDP prepared slots are ever written here.
        let base = answer_slot(0, true, &[0; 4]);
        for (offset, count) in self.answers[base..base + RCODES].iter_mut().enumerate() {
            if *count > 0 {
                STATS.answers[base + offset].fetch_add(*count, Ordering::Relaxed);
                *count = 0;
            }
        }
    }
}

/// A zone transfer completed: `direction` "in" or "out", `bytes` of its messages (0 when
/// not known).
pub fn transfer(direction: &'static str, bytes: usize, took: std::time::Duration) {
    STATS.record(|e| {
        let t = e.transfers.entry(direction).or_default();
        t.count += 1;
        t.bytes += bytes as u64;
        t.seconds += took.as_secs_f64();
    });
}

/// Counters that start at zero before the first event, so that Prometheus's `increase()`
/// sees the first one too: a worker's refusals by every rule, and its replicated `zones`.
pub fn start_worker(zones: &[String]) {
    STATS.record(|e| {
        for rule in crate::bundle::BundleError::RULES {
            e.refused.entry(rule).or_default();
        }
        for zone in zones {
            e.zones.entry(zone.clone()).or_default();
        }
    });
}

/// NOTIFY counters of every secondary, at zero before the first NOTIFY.
pub fn start_notify(targets: &[std::net::SocketAddr]) {
    STATS.record(|e| {
        for target in targets {
            e.notify.entry(target.to_string()).or_default();
        }
    });
}

/// A replicated zone's refresh: the primary answered (`ok`) or not.
pub fn refresh(zone: &str, ok: bool) {
    let now = now();
    STATS.record(|e| {
        let z = e.zones.entry(zone.to_string()).or_default();
        if ok {
            z.last_success = Some(now);
            z.expired = false;
        } else {
            z.last_failure = Some(now);
            z.failures += 1;
        }
    });
}

/// The name of an rcode, as dig prints it.
pub fn rcode_name(rcode: usize) -> String {
    const NAMES: [&str; 11] = [
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN", "YXRRSET",
        "NXRRSET", "NOTAUTH", "NOTZONE",
    ];
    NAMES
        .get(rcode)
        .map_or_else(|| format!("RCODE{rcode}"), |n| (*n).to_string())
}

/// Seconds since the Unix epoch now.
pub fn now() -> u64 {
    crate::clock::unix_now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_read_back_as_written() {
        let slot = answer_slot(3, false, &[0, 0, 0x81, 0x83]);
        let (rest, rcode) = (slot / RCODES, slot % RCODES);
        assert_eq!((rest / PATHS.len(), rest % PATHS.len(), rcode), (3, 1, 3));
        assert_eq!(rcode_name(3), "NXDOMAIN");
        assert_eq!(rcode_name(12), "RCODE12");
    }
}
