//! The worker's side of replication: one loop per replicated zone that checks the primary's
//! SOA serial at start, on NOTIFY and on the SOA refresh timer (retry timer after a failure),
//! and transfers what changed.
//!
//! Every check is a TSIG-signed SOA query whose answer must verify (`soa`), and a transfer
//! follows only when the signed serial is newer. A NOTIFY makes the check happen now; when
//! it carried a serial newer than ours (under its verified TSIG, as signed as the SOA answer
//! would be), the query is skipped and the transfer starts at once, as a NOTIFY without a
//! serial, or with one not newer, still leads to the query. Transfers of one zone start at
//! least [`MIN_TRANSFER_INTERVAL`] apart. Answers that cannot be authenticated are logged
//! and counted, and the zone is checked again on the retry timer; nothing falls back to
//! unsigned queries.
//!
//! Ordinary zones are served as transferred, swapped whole. The certificate zone goes to the
//! `reader` (bundle rules, install, cache, held state). The zone's SOA expire never removes
//! a certificate; the certificate's own expiry does (`reader::withdraw_expired`): a worker serves a
//! valid certificate whatever the primary's state, and never an expired one. An ordinary
//! zone is withdrawn when its SOA expire passes without the primary. Not implemented: IXFR
//! (transfers are whole).

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use hickory_proto::rr::{Name, RData, Record, TSigner};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{
    cache,
    reader::Reader,
    sink::{CertificateSink, ZoneSink},
    soa,
};
use crate::{
    dns::client::transfer::{self as xfr, XfrError},
    dns::server::Notifiable,
    tls::CertSlot,
    zones::{Zones, store::Builder},
};

/// Retry delay until the zone's own SOA is known.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);
/// The shortest time between the starts of two transfers of one zone, whatever NOTIFYs
/// and serials say.
pub(super) const MIN_TRANSFER_INTERVAL: Duration = Duration::from_secs(1);

/// The most bytes of transfer messages an ordinary zone may take (the certificate zone
/// keeps the fetch's own, smaller bound). A zone of a million records is about 25 MB; the
/// primary is TSIG-authenticated, so this only stops a runaway, as Knot's `zone-max-size`.
const MAX_ZONE_BYTES: usize = 1 << 30;

/// Why one refresh failed.
#[derive(Debug, thiserror::Error)]
enum RefreshError {
    #[error(transparent)]
    Soa(#[from] soa::SoaError),
    #[error(transparent)]
    Xfr(#[from] XfrError),
    #[error("failed to serve the transferred zone: {0}")]
    Zone(String),
    #[error("the node is stopping")]
    Stopping,
}

impl RefreshError {
    /// An answer came from the primary's address that could not be authenticated.
    fn unauthenticated(&self) -> bool {
        match self {
            Self::Soa(e) => e.unauthenticated(),
            Self::Xfr(e) => e.unauthenticated(),
            Self::Zone(_) | Self::Stopping => false,
        }
    }
}

/// Replicates zones from one primary.
pub struct Replica {
    primary: SocketAddr,
    /// Our own address: transfers and SOA checks leave from it, as allow-lists expect.
    source: Option<std::net::IpAddr>,
    /// Signs every SOA check, transfer and query; answers must be signed with it.
    signer: Option<TSigner>,
    zones: Arc<Zones>,
    certs: Arc<CertSlot>,
    reader: Option<Arc<Reader>>,
    wakes: HashMap<Name, Arc<Wake>>,
    /// `<state-dir>/cache/`: the ordinary zones' copies (see [`super::cache`]); none kept
    /// without it.
    cache_dir: Option<PathBuf>,
    /// Answers from the primary's address refused because they could not be authenticated.
    unauthenticated: AtomicU64,
}

/// What wakes one zone's loop: a NOTIFY, and the serial it carried (the newest wins).
#[derive(Default)]
struct Wake {
    now: Notify,
    serial: std::sync::Mutex<Option<u32>>,
}

impl Wake {
    fn take_serial(&self) -> Option<u32> {
        self.serial.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

/// Where one zone stands.
struct ZoneState {
    /// The serial served, if any.
    held: Option<u32>,
    timers: Option<soa::Timers>,
    /// When the primary last confirmed our copy (or when the cached copy was written).
    confirmed: Instant,
    last_transfer: Option<Instant>,
}

impl Replica {
    pub fn new(
        primary: SocketAddr,
        source: Option<std::net::IpAddr>,
        signer: Option<TSigner>,
        secondaries: &[Name],
        reader: Option<Arc<Reader>>,
        zones: Arc<Zones>,
        certs: Arc<CertSlot>,
    ) -> Self {
        let mut names: Vec<Name> = secondaries.to_vec();
        names.extend(reader.as_ref().map(|r| r.origin.clone()));
        let wakes = names.into_iter().map(|n| (n, Arc::default())).collect();
        Self {
            primary,
            source,
            signer,
            zones,
            certs,
            reader,
            wakes,
            cache_dir: None,
            unauthenticated: AtomicU64::new(0),
        }
    }

    /// Keeps each ordinary zone's copy in `<state_dir>/cache/`.
    pub fn with_cache(self, state_dir: &Path) -> Self {
        Self {
            cache_dir: Some(state_dir.join("cache")),
            ..self
        }
    }

    /// Every zone this worker replicates.
    pub fn zones(&self) -> Vec<Name> {
        self.wakes.keys().cloned().collect()
    }

    /// Keeps `zone` in step with the primary until `shutdown`.
    pub async fn run(self: Arc<Self>, zone: Name, shutdown: CancellationToken) {
        let wake = self.wakes[&zone].clone();
        let mut state = ZoneState {
            held: None,
            timers: None,
            confirmed: Instant::now(),
            last_transfer: None,
        };
        if let Some((cached, age)) = self.load_cached(&zone) {
            state.held = Some(cached.serial);
            state.timers = Some(cached);
            state.confirmed = Instant::now().checked_sub(age).unwrap_or(state.confirmed);
        }
        let mut wait = Duration::ZERO;
        loop {
            let notified = tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.now.notified() => true,
                () = tokio::time::sleep(wait) => false,
            };
            let announced = wake.take_serial();
            let result = self.refresh(&zone, &mut state, announced, &shutdown).await;
            if shutdown.is_cancelled() {
                return;
            }
            crate::metrics::stats::refresh(&zone.to_string(), result.is_ok());
            wait = match result {
                Ok(now) => {
                    state.timers = Some(now);
                    state.confirmed = Instant::now();
                    tracing::debug!(%zone, serial = now.serial, notified, next_check_in = ?now.refresh, "zone checked");
                    now.refresh
                }
                Err(e) => self.failed(&zone, &mut state, &e),
            };
        }
    }

    /// Logs and counts a failed refresh, withdraws an ordinary zone past its expire, and
    /// says when to try again.
    fn failed(&self, zone: &Name, state: &mut ZoneState, e: &RefreshError) -> Duration {
        let retry = state.timers.map_or(DEFAULT_RETRY, |t| t.retry);
        if e.unauthenticated() {
            let count = self.unauthenticated.fetch_add(1, Ordering::Relaxed) + 1;
            tracing::error!(%zone, primary = %self.primary, error = %e, unauthenticated = count, retry_in = ?retry, "answer from the primary refused: it is not authenticated");
        } else {
            tracing::warn!(%zone, primary = %self.primary, error = %e, retry_in = ?retry, "refresh failed");
        }
        if let Some(t) = state.timers
            && state.held.is_some()
            && state.confirmed.elapsed() >= t.expire
            && self.expire(zone, t.expire)
        {
            // Transfer whole when the primary is back, whatever its serial.
            state.held = None;
        }
        retry
    }

    /// Checks the primary's signed serial and transfers when it is newer than ours. A serial
    /// `announced` by an authenticated NOTIFY and newer than ours stands for the check.
    async fn refresh(
        &self,
        zone: &Name,
        state: &mut ZoneState,
        announced: Option<u32>,
        shutdown: &CancellationToken,
    ) -> Result<soa::Timers, RefreshError> {
        let known_newer =
            matches!((announced, state.held), (Some(a), Some(held)) if soa::newer(a, held));
        let current = if known_newer {
            None
        } else {
            Some(soa::query(self.primary, self.source, zone, self.signer.as_ref()).await?)
        };
        if let (Some(current), Some(held)) = (current, state.held)
            && !soa::newer(current.serial, held)
        {
            return Ok(current);
        }
        let pause = state.last_transfer.map_or(Duration::ZERO, |last| {
            MIN_TRANSFER_INTERVAL.saturating_sub(last.elapsed())
        });
        // Not even a zero sleep when no pause is due: tokio's timer fires on its next
        // millisecond tick, which delayed every transfer by about 1 ms.
        if !pause.is_zero() {
            tokio::select! {
                () = shutdown.cancelled() => return Err(RefreshError::Stopping),
                () = tokio::time::sleep(pause) => {}
            }
        }
        state.last_transfer = Some(Instant::now());
        let started = Instant::now();
        let timers = match &self.reader {
            Some(reader) if reader.origin == *zone => {
                self.fetch_certificate_zone(reader, zone, state.held)
                    .await?
            }
            _ => self.transfer(zone, state.held).await?,
        };
        let timers = match timers.or(current) {
            Some(timers) => timers,
            // Only a fetch by queries can lack the SOA; ask for it then.
            None => soa::query(self.primary, self.source, zone, self.signer.as_ref()).await?,
        };
        // Transfer bytes are counted on the master's side only (`direction="out"`).
        crate::metrics::stats::transfer("in", 0, started.elapsed());
        // A refused certificate zone is not fetched again until its serial moves; a stale
        // transfer lowers nothing.
        if state
            .held
            .is_none_or(|held| soa::newer(timers.serial, held))
        {
            state.held = Some(timers.serial);
        }
        Ok(timers)
    }

    fn options(&self) -> xfr::Options {
        xfr::Options {
            source: self.source,
            max_bytes: MAX_ZONE_BYTES,
            ..xfr::Options::default()
        }
    }

    /// The certificate zone by AXFR (or signed queries after a signed refusal), handed to
    /// the reader, and served when the reader accepts it; its SOA's timers.
    async fn fetch_certificate_zone(
        &self,
        reader: &Reader,
        zone: &Name,
        held: Option<u32>,
    ) -> Result<Option<soa::Timers>, RefreshError> {
        let options = xfr::Options {
            source: self.source,
            ..xfr::Options::default()
        };
        let mut sink = CertificateSink::new(zone);
        let signer = self.signer.as_ref();
        let method = match xfr::transfer_into(self.primary, zone, signer, &options, &mut sink).await
        {
            Ok(_) => xfr::Method::Axfr,
            Err(XfrError::Refused { .. }) => xfr::Method::Queries,
            Err(e) => return Err(e.into()),
        };
        let CertificateSink {
            records,
            served,
            cache,
        } = sink;
        let records = match method {
            xfr::Method::Axfr => records,
            xfr::Method::Queries => {
                xfr::query_bundle(self.primary, zone, signer, &options)
                    .await?
                    .records
            }
        };
        let timers = soa_timers(&records, zone);
        if stale(zone, timers.map(|t| t.serial), held) {
            return Ok(timers);
        }
        // Queries bring records only: their cache is encoded from them.
        let cached = || match method {
            xfr::Method::Axfr => cache.finish(),
            xfr::Method::Queries => cache::encode(&records),
        };
        let accepted = reader.accept(&records, cached, &self.certs, method.as_str());
        if accepted && method == xfr::Method::Axfr {
            let serial = timers.map_or(0, |t| t.serial);
            let built = served
                .and_then(|b| b.finish().map_err(|e| e.message))
                .map_err(RefreshError::Zone)?;
            self.zones
                .replace_built(zone, built)
                .map_err(|e| RefreshError::Zone(e.to_string()))?;
            tracing::info!(%zone, serial, "zone transferred");
        }
        Ok(timers)
    }

    /// An ordinary zone by AXFR, read straight into the zone store (no record list of the
    /// whole zone in between), served, then kept on disk for the next start.
    async fn transfer(
        &self,
        zone: &Name,
        held: Option<u32>,
    ) -> Result<Option<soa::Timers>, RefreshError> {
        let mut sink = ZoneSink {
            builder: Builder::new(zone),
            soa: None,
        };
        let serial = xfr::transfer_into(
            self.primary,
            zone,
            self.signer.as_ref(),
            &self.options(),
            &mut sink,
        )
        .await?;
        let timers = sink.soa.as_ref().map(|soa| soa::Timers::clamped(soa, zone));
        if stale(zone, Some(serial), held) {
            return Ok(timers);
        }
        let built = sink
            .builder
            .finish()
            .map_err(|e| RefreshError::Zone(e.message))?;
        let served = self
            .zones
            .replace_built(zone, built)
            .map_err(|e| RefreshError::Zone(e.to_string()))?;
        tracing::info!(%zone, serial, "zone transferred");
        if let Some(path) = self.cache_path(zone) {
            // A large zone's copy takes a while to write (and sync): off the threads that
            // serve queries and take renewals. Awaited, so copies of one zone never overlap.
            let written = tokio::task::spawn_blocking(move || {
                cache::write_zone(&path, &served).map_err(|e| e.to_string())
            });
            if let Err(e) = written.await.map_err(|e| e.to_string()).and_then(|w| w) {
                tracing::warn!(%zone, error = %e, "failed to keep a copy of the zone on disk");
            }
        }
        Ok(timers)
    }
}

impl Replica {
    fn is_certificate_zone(&self, zone: &Name) -> bool {
        self.reader.as_ref().is_some_and(|r| r.origin == *zone)
    }

    fn cache_path(&self, zone: &Name) -> Option<PathBuf> {
        Some(self.cache_dir.as_ref()?.join(format!("{zone}zone")))
    }

    /// Serves the copy of an ordinary zone kept on disk, unless its SOA expire has passed
    /// since it was written; returns its timers and age.
    fn load_cached(&self, zone: &Name) -> Option<(soa::Timers, Duration)> {
        if self.is_certificate_zone(zone) {
            return None; // the certificate zone has the reader's own cache
        }
        let path = self.cache_path(zone)?;
        let (records, written) = match cache::load(&path) {
            Ok(Some(found)) => found,
            Ok(None) => return None,
            Err(e) => {
                tracing::warn!(%zone, error = %e, "zone copy unreadable; waiting for the primary");
                return None;
            }
        };
        let Some(timers) = soa_timers(&records, zone) else {
            tracing::warn!(%zone, path = %path.display(), "zone copy has no SOA; waiting for the primary");
            return None;
        };
        let age = SystemTime::now()
            .duration_since(written)
            .unwrap_or(Duration::ZERO);
        if age >= timers.expire {
            tracing::warn!(%zone, age = ?age, expire = ?timers.expire, "zone copy is older than its SOA expire; not served until the primary answers");
            return None;
        }
        match self.zones.replace_generated(zone, records) {
            Ok(()) => {
                tracing::info!(%zone, serial = timers.serial, age = ?age, "zone served from the copy on disk");
                Some((timers, age))
            }
            Err(e) => {
                tracing::warn!(%zone, error = %e, "zone copy not usable; waiting for the primary");
                None
            }
        }
    }

    /// The primary has not confirmed the zone for longer than its SOA expire: stop
    /// answering for it (RFC 1035 4.3.5) rather than serve data that may be stale.
    fn expire(&self, zone: &Name, expire: Duration) -> bool {
        if self.is_certificate_zone(zone) {
            return false; // signed data, checked on use: a valid certificate is never withdrawn
        }
        let removed = self.zones.remove_generated(zone);
        if removed {
            let name = zone.to_string();
            crate::metrics::STATS.record(|e| e.zones.entry(name).or_default().expired = true);
            tracing::error!(%zone, primary = %self.primary, expire = ?expire, "zone expired: the primary did not answer within the SOA expire; no longer served");
        }
        removed
    }
}

impl Notifiable for Replica {
    fn replicates(&self, zone: &Name) -> bool {
        self.wakes.contains_key(zone)
    }

    fn notified(&self, zone: &Name, serial: Option<u32>) {
        if let Some(wake) = self.wakes.get(zone) {
            if let Some(serial) = serial {
                let mut kept = wake.serial.lock().unwrap_or_else(|e| e.into_inner());
                if kept.is_none_or(|k| soa::newer(serial, k)) {
                    *kept = Some(serial);
                }
            }
            wake.now.notify_one();
        }
    }
}

/// A transfer that brought a serial not newer than the one served (the NOTIFY announced a
/// newer one, but the primary went back since) is not served: as an SOA check would have
/// said, nothing changed.
fn stale(zone: &Name, transferred: Option<u32>, held: Option<u32>) -> bool {
    let (Some(serial), Some(held)) = (transferred, held) else {
        return false;
    };
    let stale = !soa::newer(serial, held);
    if stale {
        tracing::warn!(%zone, serial, held, "transfer brought a serial not newer than the one served; not served");
    }
    stale
}

fn soa_timers(records: &[Record], zone: &Name) -> Option<soa::Timers> {
    records.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa::Timers::clamped(soa, zone)),
        _ => None,
    })
}
