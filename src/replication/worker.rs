//! The worker's side of replication: one loop per replicated zone that checks the primary's
//! SOA serial at start, on NOTIFY and on the SOA refresh timer (retry timer after a failure),
//! and transfers what changed.
//!
//! Ordinary zones are served as transferred, swapped whole. The certificate zone is read by
//! the bundle rules (`bundle::read`: pinned signing key, no rollback, chain, names, the key
//! unsealed for this worker); an accepted bundle is installed into the TLS listeners, cached
//! on disk (0600) and served; a refused one is logged and counted, and the current
//! certificate stays. Nothing here ever removes a certificate: the zone's SOA expire does not
//! apply to it. Not implemented: IXFR (transfers are whole), expiry of ordinary zones.

use std::{
    collections::HashMap,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use hickory_proto::rr::{Name, RData, Record, TSigner};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{cache, soa};
use crate::{
    bundle::{self, BundleError, ReaderPolicy, VerifiedBundle, VerifyingKey, WorkerSecretKey},
    config::CertificateReader,
    dns::Notifiable,
    state,
    tls::{CertSlot, Served},
    xfr,
    zones::Zones,
};

/// Retry delay until the zone's own SOA is known.
const DEFAULT_RETRY: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("failed to read {what} {path}: {reason}")]
    Key {
        what: &'static str,
        path: String,
        reason: String,
    },
}

/// What the worker needs to accept a certificate zone.
pub struct Reader {
    origin: Name,
    pinned: VerifyingKey,
    sealing: WorkerSecretKey,
    roots: Vec<Vec<u8>>,
    names: Vec<String>,
    cache: PathBuf,
    /// The version of the bundle in service.
    held: Mutex<Option<u64>>,
    refused: AtomicU64,
}

impl Reader {
    /// Reads the pinned public key, the sealing key and the roots; `check-config` runs it.
    pub fn new(
        config: &CertificateReader,
        names: &[String],
        state_dir: &Path,
    ) -> Result<Self, WorkerError> {
        let pem = read(&config.signing_public_key, "the signing public key")?;
        let pinned = bundle::verifying_key_from_pem(&pem)
            .map_err(|e| key_error("the signing public key", &config.signing_public_key, e))?;
        let pem = read(&config.sealing_key, "the sealing key")?;
        let sealing = WorkerSecretKey::from_pem(&pem)
            .map_err(|e| key_error("the sealing key", &config.sealing_key, e))?;
        let roots = config
            .roots
            .iter()
            .map(|p| read_roots(p))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            origin: config.origin.clone(),
            pinned,
            sealing,
            roots: roots.concat(),
            names: names.to_vec(),
            cache: state_dir
                .join("cache")
                .join(format!("{}zone", config.origin)),
            held: Mutex::new(None),
            refused: AtomicU64::new(0),
        })
    }

    /// Serves the cached bundle, if it is still good: TLS is up before the primary answers.
    pub fn load_cache(&self, certs: &CertSlot) {
        let Ok(Some(text)) = state::read_optional(&self.cache) else {
            return;
        };
        let text = String::from_utf8_lossy(&text);
        let records = match hickory_proto::serialize::txt::Parser::new(
            text,
            None,
            Some(self.origin.clone()),
        )
        .parse()
        {
            Ok((_, sets)) => sets
                .into_values()
                .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
                .collect::<Vec<_>>(),
            Err(e) => {
                tracing::warn!(path = %self.cache.display(), error = %e, "certificate cache unreadable; waiting for the primary");
                return;
            }
        };
        match self.read(&records, None) {
            Ok(verified) => self.install(verified, certs, "cache"),
            Err(e) => {
                tracing::warn!(path = %self.cache.display(), error = %e, "cached bundle not usable; waiting for the primary")
            }
        }
    }

    /// Checks fetched records; installs, caches and returns true for a new bundle.
    fn accept(&self, records: &[Record], certs: &CertSlot, how: &str) -> bool {
        let held = *self.held.lock().unwrap_or_else(|e| e.into_inner());
        match self.read(records, held) {
            Ok(verified) => {
                // Serve first: the cache (an fsync) is for the next start, not this one.
                self.install(verified, certs, how);
                if let Err(e) = write_cache(&self.cache, &bundle::zone_text(records)) {
                    tracing::warn!(error = %e, "failed to cache the bundle");
                }
                true
            }
            Err(BundleError::SameVersion { .. }) => false,
            Err(e) => {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                let keeping = crate::tls::keeping(certs);
                tracing::error!(error = %e, refused, "bundle refused; {keeping}");
                false
            }
        }
    }

    fn read(&self, records: &[Record], held: Option<u64>) -> Result<VerifiedBundle, BundleError> {
        let policy = ReaderPolicy {
            pinned: self.pinned,
            held_version: held,
            required_names: self.names.clone(),
            now: crate::unix_now(),
            worker: Some(self.sealing.clone()),
            roots: self.roots.clone(),
        };
        bundle::read(records, &self.origin, &policy)
    }

    fn install(&self, verified: VerifiedBundle, certs: &CertSlot, how: &str) {
        let Some(key) = verified.private_key else {
            return;
        };
        let served = Served {
            chain: verified
                .chain
                .into_iter()
                .map(CertificateDer::from)
                .collect(),
            key: Arc::new(PrivateKeyDer::Pkcs8(key)),
        };
        match certs.install(&served) {
            Ok(summary) => {
                *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(verified.version);
                tracing::info!(
                    version = verified.version,
                    from = %how,
                    sha256 = %summary.fingerprint,
                    not_after = %crate::localca::humantime(summary.not_after),
                    "certificate installed from the certificate zone"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "bundle certificate unusable; keeping the current one")
            }
        }
    }
}

/// Takes the served certificate out of service when it expires and no newer bundle has
/// replaced it: a worker serves a valid certificate whatever the zone's SOA expire says,
/// and never an expired one.
pub async fn withdraw_expired(certs: Arc<CertSlot>, shutdown: CancellationToken) {
    let mut changes = certs.subscribe();
    loop {
        let current = changes.borrow_and_update().clone();
        let expiry = async {
            match &current {
                Some(summary) => {
                    let left = summary
                        .not_after
                        .duration_since(SystemTime::now())
                        .unwrap_or_default();
                    tokio::time::sleep(left).await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            changed = changes.changed() => if changed.is_err() { return },
            () = expiry => {
                if let Some(summary) = &current
                    && certs.withdraw(&summary.fingerprint)
                {
                    tracing::error!(sha256 = %summary.fingerprint, "the certificate expired and no newer bundle came; TLS is off until one does");
                }
            }
        }
    }
}

/// Replicates zones from one primary.
pub struct Replica {
    primary: SocketAddr,
    /// Our own address: transfers and SOA checks leave from it, as allow-lists expect.
    source: Option<std::net::IpAddr>,
    signer: Option<TSigner>,
    zones: Arc<Zones>,
    certs: Arc<CertSlot>,
    reader: Option<Arc<Reader>>,
    wakes: HashMap<Name, Arc<Notify>>,
    /// `<state-dir>/cache/`: the ordinary zones' copies (see [`super::cache`]); none kept
    /// without it.
    cache_dir: Option<PathBuf>,
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
        let wakes = names
            .into_iter()
            .map(|n| (n, Arc::new(Notify::new())))
            .collect();
        Self {
            primary,
            source,
            signer,
            zones,
            certs,
            reader,
            wakes,
            cache_dir: None,
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
        let mut held: Option<u32> = None;
        let mut timers: Option<soa::Timers> = None;
        // When the primary last confirmed our copy (or when the cached copy was written).
        let mut confirmed = Instant::now();
        if let Some((cached, age)) = self.load_cached(&zone) {
            held = Some(cached.serial);
            timers = Some(cached);
            confirmed = Instant::now().checked_sub(age).unwrap_or(confirmed);
        }
        let mut wait = Duration::ZERO;
        loop {
            let notified = tokio::select! {
                () = shutdown.cancelled() => return,
                () = wake.notified() => true,
                () = tokio::time::sleep(wait) => false,
            };
            wait = match self.refresh(&zone, &mut held, notified).await {
                Ok(now) => {
                    timers = Some(now);
                    confirmed = Instant::now();
                    now.refresh
                }
                Err(e) => {
                    let retry = timers.map_or(DEFAULT_RETRY, |t| t.retry);
                    tracing::warn!(%zone, primary = %self.primary, error = %e, retry_in = ?retry, "refresh failed");
                    if let Some(t) = timers
                        && held.is_some()
                        && confirmed.elapsed() >= t.expire
                        && self.expire(&zone, t.expire)
                    {
                        // Transfer whole when the primary is back, whatever its serial.
                        held = None;
                    }
                    retry
                }
            };
        }
    }

    /// Compares serials and transfers when the primary's is newer. After a NOTIFY, which
    /// only an authenticated primary can send and only on a change, the SOA round trip is
    /// skipped and the zone transferred at once.
    async fn refresh(
        &self,
        zone: &Name,
        held: &mut Option<u32>,
        notified: bool,
    ) -> Result<soa::Timers, String> {
        let current = if notified {
            None
        } else {
            Some(soa::query(self.primary, self.source, zone).await?)
        };
        if let (Some(current), Some(held)) = (current, *held)
            && !soa::newer(current.serial, held)
        {
            return Ok(current);
        }
        let options = xfr::Options {
            source: self.source,
            ..xfr::Options::default()
        };
        let fetched = match &self.reader {
            Some(reader) if reader.origin == *zone => {
                let fetched = xfr::fetch(self.primary, zone, self.signer.as_ref(), &options)
                    .await
                    .map_err(|e| e.to_string())?;
                reader.accept(&fetched.records, &self.certs, fetched.method.as_str());
                fetched
            }
            _ => xfr::transfer(self.primary, zone, self.signer.as_ref(), &options)
                .await
                .map_err(|e| e.to_string())?,
        };
        let timers = match soa_timers(&fetched.records).or(current) {
            Some(timers) => timers,
            // Read by queries after a NOTIFY: no SOA came with the records yet.
            None => soa::query(self.primary, self.source, zone).await?,
        };
        if fetched.method == xfr::Method::Axfr {
            // Encoded before the records move into the zone; written (an fsync) only once
            // they are served: the copy is for the next start.
            let copy = match self.cache_path(zone) {
                Some(path) if !self.is_certificate_zone(zone) => {
                    Some((path, cache::encode(&fetched.records)))
                }
                _ => None,
            };
            self.zones
                .replace_generated(zone, fetched.records)
                .map_err(|e| e.to_string())?;
            tracing::info!(%zone, serial = timers.serial, "zone transferred");
            if let Some((path, encoded)) = copy
                && let Err(e) = encoded.and_then(|bytes| cache::write(&path, &bytes))
            {
                tracing::warn!(%zone, error = %e, "failed to keep a copy of the zone on disk");
            }
        }
        *held = Some(timers.serial);
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
        let Some(timers) = soa_timers(&records) else {
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
            tracing::error!(%zone, primary = %self.primary, expire = ?expire, "zone expired: the primary did not answer within the SOA expire; no longer served");
        }
        removed
    }
}

impl Notifiable for Replica {
    fn replicates(&self, zone: &Name) -> bool {
        self.wakes.contains_key(zone)
    }

    fn notified(&self, zone: &Name) {
        if let Some(wake) = self.wakes.get(zone) {
            wake.notify_one();
        }
    }
}

fn soa_timers(records: &[Record]) -> Option<soa::Timers> {
    records.iter().find_map(|r| match &r.data {
        RData::SOA(soa) => Some(soa::Timers::from(soa)),
        _ => None,
    })
}

fn write_cache(path: &Path, text: &str) -> Result<(), state::StateError> {
    state::ensure_dir(path.parent().unwrap_or(Path::new(".")))?;
    state::write_atomic(path, text.as_bytes(), state::SECRET)
}

fn read(path: &Path, what: &'static str) -> Result<String, WorkerError> {
    std::fs::read_to_string(path).map_err(|e| key_error(what, path, e))
}

fn read_roots(path: &Path) -> Result<Vec<Vec<u8>>, WorkerError> {
    use rustls_pki_types::pem::PemObject;
    CertificateDer::pem_file_iter(path)
        .and_then(|i| {
            i.map(|c| c.map(|c| c.to_vec()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(|e| key_error("the roots", path, e))
}

fn key_error(what: &'static str, path: &Path, reason: impl ToString) -> WorkerError {
    WorkerError::Key {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}
