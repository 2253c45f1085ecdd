//! The worker's certificate-zone reader: judges fetched bundles by the bundle rules
//! (`bundle::read`) against the trusted signing keys, the cluster id and the floors,
//! installs an accepted one into the TLS listeners, caches it on disk (0600) and raises
//! the held state (`held`) first; a refused one is logged with the failed check and
//! counted, and the current certificate stays. It also takes an expired certificate out
//! of service when no newer bundle replaced it (`withdraw_expired`).
//!
//! Owns the trusted keys (one PEM file of one or more keys, re-read on SIGHUP so a key
//! rotation needs no restart), the version in service and the floors. It must not fetch:
//! `worker` hands it records.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::SystemTime,
};

use arc_swap::ArcSwap;
use hickory_proto::rr::{Name, Record};
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;
use zeroize::Zeroizing;

use super::{
    cache,
    held::{self, Held},
};
use crate::{
    bundle::{
        self, BundleError, KeyId, ReaderPolicy, VerifiedBundle, VerifyingKey, WorkerSecretKey,
    },
    config::{CertificateReader, Floors},
    state,
    tls::{CertSlot, Served},
};

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("failed to read {what} {path}: {reason}")]
    Key {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error("{0}")]
    Held(String),
}

/// What the worker needs to accept a certificate zone.
pub struct Reader {
    pub(super) origin: Name,
    keys_path: PathBuf,
    /// The signing keys trusted now.
    pinned: ArcSwap<Vec<VerifyingKey>>,
    sealing: WorkerSecretKey,
    roots: Vec<Vec<u8>>,
    names: Vec<String>,
    cluster_id: String,
    floors: Floors,
    /// `<state-dir>/cache/<zone>zone`: the last bundle accepted, for the next start.
    cache: state::LatestFile,
    held_path: PathBuf,
    state: Mutex<State>,
    refused: AtomicU64,
}

/// The version in service and the held state on disk.
#[derive(Clone, Copy)]
struct State {
    in_service: Option<u64>,
    held: Held,
}

impl Reader {
    /// Reads the trusted keys, the sealing key, the roots and the held state;
    /// `check-config` runs it.
    pub fn new(
        config: &CertificateReader,
        names: &[String],
        state_dir: &Path,
    ) -> Result<Self, WorkerError> {
        let pinned = read_pinned(&config.signing_public_key)?;
        let pem = read(&config.sealing_key, "the sealing key")?;
        let sealing = WorkerSecretKey::from_pem(&pem)
            .map_err(|e| key_error("the sealing key", &config.sealing_key, e))?;
        let roots = config
            .roots
            .iter()
            .map(|p| read_roots(p))
            .collect::<Result<Vec<_>, _>>()?;
        let held_path = state_dir
            .join("held")
            .join(format!("{}held", config.origin));
        let held = held::load(&held_path).map_err(|e| WorkerError::Held(e.to_string()))?;
        Ok(Self {
            origin: config.origin.clone(),
            keys_path: config.signing_public_key.clone(),
            pinned: ArcSwap::from_pointee(pinned),
            sealing,
            roots: roots.concat(),
            names: names.to_vec(),
            cluster_id: config.cluster_id.clone(),
            floors: config.floors,
            cache: state::LatestFile::new(
                state_dir
                    .join("cache")
                    .join(format!("{}zone", config.origin)),
                state::SECRET,
            ),
            held_path,
            state: Mutex::new(State {
                in_service: None,
                held,
            }),
            refused: AtomicU64::new(0),
        })
    }

    /// Re-reads the trusted signing keys (SIGHUP). A file that does not read keeps the
    /// keys in use; the certificate in service stays either way.
    pub fn reload_keys(&self) {
        match read_pinned(&self.keys_path) {
            Ok(keys) => {
                let ids: Vec<String> = keys
                    .iter()
                    .map(|k| bundle::signing_key_id(k).to_string())
                    .collect();
                tracing::info!(zone = %self.origin, trusted = %ids.join(","), "trusted signing keys re-read");
                self.pinned.store(Arc::new(keys));
            }
            Err(e) => {
                tracing::error!(error = %e, "trusted signing keys not re-read; keeping the ones in use")
            }
        }
    }

    /// Serves the cached bundle, if it is still good: TLS is up before the primary answers.
    /// It must not be older than the held state (a replaced cache is refused).
    pub fn load_cache(&self, certs: &CertSlot) {
        let Ok(Some(bytes)) = state::read_optional(self.cache.path()) else {
            return;
        };
        let records = if cache::is_cache(&bytes) {
            cache::decode(self.cache.path(), &bytes).map_err(|e| e.to_string())
        } else {
            self.cache_text(&bytes)
        };
        let records = match records {
            Ok(records) => records,
            Err(e) => {
                tracing::warn!(path = %self.cache.path().display(), error = %e, "certificate cache unreadable; waiting for the primary");
                return;
            }
        };
        match self.read(&records) {
            Ok(verified) => self.install(verified, certs, "cache"),
            Err(e) => {
                tracing::warn!(path = %self.cache.path().display(), error = %e, "cached bundle not usable; waiting for the primary")
            }
        }
    }

    /// The records of a cache an earlier release wrote, as zone text.
    fn cache_text(&self, bytes: &[u8]) -> Result<Vec<Record>, String> {
        let text = String::from_utf8_lossy(bytes);
        let parser =
            hickory_proto::serialize::txt::Parser::new(text, None, Some(self.origin.clone()));
        let (_, sets) = parser.parse().map_err(|e| e.to_string())?;
        Ok(sets
            .into_values()
            .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>())
            .collect())
    }

    /// Checks fetched records; installs a new bundle and caches it (the file's bytes from
    /// `cached`, see [`cache::Encoder`]). False for a refused one: its zone is not served
    /// either.
    pub(super) fn accept(
        &self,
        records: &[Record],
        cached: impl FnOnce() -> Vec<u8>,
        certs: &CertSlot,
        how: &str,
    ) -> bool {
        match self.read(records) {
            Ok(verified) => {
                self.install(verified, certs, how);
                // The cache is for the next start, not this one: written after the install,
                // so the handshakes present the new certificate first.
                self.cache.write(
                    cached(),
                    |e| tracing::warn!(error = %e, "failed to cache the bundle"),
                );
                true
            }
            Err(BundleError::SameVersion { .. }) => true,
            Err(e) => {
                let refused = self.refused.fetch_add(1, Ordering::Relaxed) + 1;
                let rule = e.rule();
                crate::metrics::STATS.record(|m| *m.refused.entry(rule).or_default() += 1);
                let keeping = crate::tls::keeping(certs);
                tracing::error!(zone = %self.origin, rule = %e.rule(), error = %e, refused, "bundle refused; {keeping}");
                false
            }
        }
    }

    fn state(&self) -> State {
        *self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The policy of this moment: the trusted keys, this cluster, the version in service
    /// (the next must be newer), and the floors (configured or held, inclusive).
    fn read(&self, records: &[Record]) -> Result<VerifiedBundle, BundleError> {
        let state = self.state();
        let policy = ReaderPolicy {
            cluster_id: self.cluster_id.clone(),
            held_version: state.in_service,
            minimum_version: self.floors.version.max(state.held.version),
            minimum_published: self.floors.published,
            minimum_format: self.floors.format.max(state.held.minimum_format),
            required_names: self.names.clone(),
            worker: Some(self.sealing.clone()),
            roots: self.roots.clone(),
            ..ReaderPolicy::new(self.pinned.load_full().to_vec(), crate::clock::unix_now())
        };
        bundle::read(records, &self.origin, &policy)
    }

    /// Raises the held state, then serves the bundle's certificate.
    fn install(&self, verified: VerifiedBundle, certs: &CertSlot, how: &str) {
        let Some(key) = verified.private_key else {
            return;
        };
        let reached = Held {
            version: verified.version,
            minimum_format: verified.minimum_format,
        };
        self.raise_held(reached);
        let served = Served {
            chain: verified
                .chain
                .into_iter()
                .map(CertificateDer::from)
                .collect(),
            // a copy for the listeners (wiped by `Served` when replaced); this one is wiped here
            key: Arc::new(PrivateKeyDer::Pkcs8(key.clone_key())),
        };
        match certs.install(&served) {
            Ok(summary) => {
                self.state
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .in_service = Some(verified.version);
                let version = verified.version;
                crate::metrics::STATS.record(|m| m.bundle_version = Some(version));
                tracing::info!(
                    version = verified.version,
                    format = verified.format,
                    signers = %ids(&verified.signers),
                    from = %how,
                    sha256 = %summary.fingerprint,
                    not_after = %crate::clock::rfc3339(summary.not_after),
                    "certificate installed from the certificate zone"
                );
            }
            Err(e) => {
                tracing::error!(error = %e, "bundle certificate unusable; keeping the current one")
            }
        }
    }

    /// On disk before the certificate is served, so a restart without the cache cannot go
    /// below it; a failure to write is logged and the in-memory floor still rises.
    fn raise_held(&self, reached: Held) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.held = match held::raise(&self.held_path, reached) {
            Ok(merged) => merged,
            Err(e) => {
                tracing::error!(error = %e, "failed to keep the held state on disk");
                state.held.max(reached)
            }
        };
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

fn ids(ids: &[KeyId]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn read_pinned(path: &Path) -> Result<Vec<VerifyingKey>, WorkerError> {
    let what = "the signing public key";
    let pem = read(path, what)?;
    bundle::verifying_keys_from_pem(&pem).map_err(|e| key_error(what, path, e))
}

fn read(path: &Path, what: &'static str) -> Result<Zeroizing<String>, WorkerError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| key_error(what, path, e))
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
