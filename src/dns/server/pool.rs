//! The one pool of stream connections (TCP, DoT, DoH) every listener shares: how many may
//! be open, how many from one source, how long an idle one may wait, and which one makes
//! room when the pool is full.
//!
//! A connection is admitted unless its source (an IPv4 address or IPv6 /64) already has
//! `connections-per-source` open. When the pool is full, the connection that has waited
//! longest without progress (accepted or last answered longest ago, and not working on a
//! query now) is closed to make room, so a new client is not refused while others merely
//! sit. The idle timeout shrinks as the pool fills past half. Trusted connections (from
//! transfer-allowed addresses or the primary, or that showed a valid TSIG key) are never
//! closed for others, are not held to the per-source cap, and may use [`TRUSTED_RESERVE`]
//! slots beyond the pool.
//!
//! Owns admission and eviction. It must not read or write sockets: each connection's task
//! watches [`Slot::evicted`] and closes itself.

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

/// Slots trusted connections may take beyond the pool's size.
pub(super) const TRUSTED_RESERVE: usize = 64;
/// The shortest idle timeout a full pool gives.
const MIN_IDLE: Duration = Duration::from_millis(250);

/// Why a connection was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// Its source has its share already.
    PerSource,
    /// Every connection is working on a query (or trusted).
    Full,
}

pub(super) struct Pool {
    capacity: usize,
    per_source: usize,
    idle: Duration,
    trusted: Vec<IpAddr>,
    epoch: Instant,
    /// `inner.entries.len()`, read without the lock on every idle wait.
    open: AtomicUsize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<u64, Arc<Entry>>,
    sources: HashMap<u128, usize>,
    next_id: u64,
}

/// A connection as the pool sees it.
struct Entry {
    source: u128,
    /// Milliseconds since the pool's epoch of its last progress (accepted, answered).
    progress: AtomicU64,
    /// Queries in hand.
    busy: AtomicUsize,
    trusted: AtomicBool,
    evicted: CancellationToken,
}

impl Pool {
    /// `capacity` connections, `per_source` from one source, idle ones closed after
    /// `idle` (less when the pool is over half full); `trusted` addresses exempt.
    pub(super) fn new(
        capacity: usize,
        per_source: usize,
        idle: Duration,
        trusted: Vec<IpAddr>,
    ) -> Arc<Self> {
        Arc::new(Self {
            capacity,
            per_source,
            idle,
            trusted: trusted.into_iter().map(|ip| ip.to_canonical()).collect(),
            epoch: Instant::now(),
            open: AtomicUsize::new(0),
            inner: Mutex::default(),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Admits a connection from `ip`, closing the longest-idle one if the pool is full.
    pub(super) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let trusted = self.trusted.contains(&ip.to_canonical());
        let source = source_key(ip);
        let mut inner = self.lock();
        if !trusted && inner.sources.get(&source).copied().unwrap_or(0) >= self.per_source {
            return Err(Refusal::PerSource);
        }
        let room = self.capacity + if trusted { TRUSTED_RESERVE } else { 0 };
        if inner.entries.len() >= room {
            let victim = oldest_idle(&inner.entries).ok_or(Refusal::Full)?;
            if let Some(entry) = self.remove(&mut inner, victim) {
                entry.evicted.cancel();
            }
        }
        let id = inner.next_id;
        inner.next_id += 1;
        let entry = Arc::new(Entry {
            source,
            progress: AtomicU64::new(self.now_ms()),
            busy: AtomicUsize::new(0),
            trusted: AtomicBool::new(trusted),
            evicted: CancellationToken::new(),
        });
        inner.entries.insert(id, entry.clone());
        *inner.sources.entry(source).or_default() += 1;
        self.open.store(inner.entries.len(), Ordering::Relaxed);
        Ok(Slot {
            pool: self.clone(),
            id,
            entry,
        })
    }

    /// How long an idle connection may wait now: the configured time up to half full, then
    /// less in proportion to the room left, never under [`MIN_IDLE`].
    pub(super) fn idle_timeout(&self) -> Duration {
        let open = self.open();
        let free = self.capacity.saturating_sub(open);
        if free * 2 >= self.capacity {
            return self.idle;
        }
        let scaled = self.idle.mul_f64(free as f64 * 2.0 / self.capacity as f64);
        scaled.max(MIN_IDLE)
    }

    /// Connections open now.
    pub(super) fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    fn remove(&self, inner: &mut Inner, id: u64) -> Option<Arc<Entry>> {
        let entry = inner.entries.remove(&id)?;
        if let Some(count) = inner.sources.get_mut(&entry.source) {
            *count -= 1;
            if *count == 0 {
                inner.sources.remove(&entry.source);
            }
        }
        self.open.store(inner.entries.len(), Ordering::Relaxed);
        Some(entry)
    }
}

/// The id of the connection to close for room: not trusted, no query in hand, least recent
/// progress.
fn oldest_idle(entries: &HashMap<u64, Arc<Entry>>) -> Option<u64> {
    entries
        .iter()
        .filter(|(_, e)| !e.trusted.load(Ordering::Relaxed) && e.busy.load(Ordering::Relaxed) == 0)
        .min_by_key(|(_, e)| e.progress.load(Ordering::Relaxed))
        .map(|(id, _)| *id)
}

/// An IPv4 address, or an IPv6 address's /64 (one host's usual share).
fn source_key(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => u128::from(v6) & (u128::MAX << 64) | 1,
    }
}

/// One admitted connection's place in the pool; leaving it frees the place.
pub(super) struct Slot {
    pool: Arc<Pool>,
    id: u64,
    entry: Arc<Entry>,
}

impl Slot {
    /// Resolves when the pool closed this connection to make room.
    pub(super) async fn evicted(&self) {
        self.entry.evicted.cancelled().await;
    }

    /// Marks a query in hand until the guard drops, which counts as progress.
    pub(super) fn busy(&self) -> Busy<'_> {
        self.entry.busy.fetch_add(1, Ordering::Relaxed);
        Busy { slot: self }
    }

    /// An answer went out: the connection is not idle since.
    pub(super) fn progressed(&self) {
        (self.entry.progress).store(self.pool.now_ms(), Ordering::Relaxed);
    }

    /// The connection showed it belongs to a transfer partner: never closed for others.
    pub(super) fn trust(&self) {
        self.entry.trusted.store(true, Ordering::Relaxed);
    }

    pub(super) fn is_trusted(&self) -> bool {
        self.entry.trusted.load(Ordering::Relaxed)
    }

    pub(super) fn idle_timeout(&self) -> Duration {
        self.pool.idle_timeout()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut inner = self.pool.lock();
        // Still ours unless it was evicted (then already removed).
        if inner
            .entries
            .get(&self.id)
            .is_some_and(|e| Arc::ptr_eq(e, &self.entry))
        {
            self.pool.remove(&mut inner, self.id);
        }
    }
}

/// A query in hand on a connection.
pub(super) struct Busy<'s> {
    slot: &'s Slot,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let entry = &self.slot.entry;
        entry
            .progress
            .store(self.slot.pool.now_ms(), Ordering::Relaxed);
        entry.busy.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn per_source_cap_counts_addresses_and_v6_slash_64() {
        let pool = Pool::new(100, 2, Duration::from_secs(10), vec![ip("10.0.0.9")]);
        let _a = pool.admit(ip("10.0.0.1")).unwrap();
        let b = pool.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(pool.admit(ip("10.0.0.1")).err(), Some(Refusal::PerSource));
        drop(b);
        let _c = pool.admit(ip("10.0.0.1")).unwrap();
        let _v6 = pool.admit(ip("2001:db8::1")).unwrap();
        let _v6b = pool.admit(ip("2001:db8::2")).unwrap();
        assert_eq!(
            pool.admit(ip("2001:db8::3")).err(),
            Some(Refusal::PerSource)
        );
        let trusted: Vec<_> = (0..5)
            .map(|_| pool.admit(ip("10.0.0.9")).unwrap())
            .collect();
        assert_eq!(
            trusted.len(),
            5,
            "trusted addresses are not held to the cap"
        );
    }

    #[test]
    fn a_full_pool_closes_the_longest_idle_connection_not_busy_or_trusted_ones() {
        let pool = Pool::new(3, 10, Duration::from_secs(10), vec![]);
        let oldest = pool.admit(ip("10.0.0.1")).unwrap();
        let busy_one = pool.admit(ip("10.0.0.2")).unwrap();
        let trusted = pool.admit(ip("10.0.0.3")).unwrap();
        trusted.trust();
        let _busy = busy_one.busy();
        // Older progress than `busy_one`, which is working: `oldest` goes.
        let newcomer = pool.admit(ip("10.0.0.4")).unwrap();
        assert!(oldest.entry.evicted.is_cancelled());
        assert!(!busy_one.entry.evicted.is_cancelled());
        assert_eq!(pool.open(), 3);
        drop(oldest);
        assert_eq!(pool.open(), 3, "an evicted slot was already removed");
        // Now only the newcomer is idle and untrusted.
        let _next = pool.admit(ip("10.0.0.5")).unwrap();
        assert!(newcomer.entry.evicted.is_cancelled());
    }

    #[test]
    fn an_answered_connection_is_not_the_longest_idle() {
        let pool = Pool::new(2, 10, Duration::from_secs(10), vec![]);
        let first = pool.admit(ip("10.0.0.1")).unwrap();
        let second = pool.admit(ip("10.0.0.2")).unwrap();
        std::thread::sleep(Duration::from_millis(5));
        first.progressed();
        let _third = pool.admit(ip("10.0.0.3")).unwrap();
        assert!(second.entry.evicted.is_cancelled());
        assert!(!first.entry.evicted.is_cancelled());
    }

    #[test]
    fn refuses_when_everything_is_busy_but_trusted_use_the_reserve() {
        let pool = Pool::new(1, 10, Duration::from_secs(10), vec![ip("10.0.0.9")]);
        let only = pool.admit(ip("10.0.0.1")).unwrap();
        let _busy = only.busy();
        assert_eq!(pool.admit(ip("10.0.0.2")).err(), Some(Refusal::Full));
        assert!(pool.admit(ip("10.0.0.9")).is_ok());
    }

    #[test]
    fn idle_timeout_shrinks_past_half_full() {
        let pool = Pool::new(10, 100, Duration::from_secs(10), vec![]);
        let mut slots: Vec<_> = (0..5)
            .map(|_| pool.admit(ip("10.0.0.1")).unwrap())
            .collect();
        assert_eq!(pool.idle_timeout(), Duration::from_secs(10));
        slots.extend((0..3).map(|_| pool.admit(ip("10.0.0.1")).unwrap()));
        assert_eq!(pool.idle_timeout(), Duration::from_secs(4));
        slots.extend((0..2).map(|_| pool.admit(ip("10.0.0.1")).unwrap()));
        assert_eq!(pool.idle_timeout(), MIN_IDLE);
    }
}
