//! The master's certificate zone: whenever the served certificate changes, build the signed
//! bundle (`bundle`, docs/PROTOCOL.md) and serve it as the whole zone, with a new SOA serial.
//!
//! Owns the bundle version, kept in `<state-dir>/bundle/version` so it never goes backwards,
//! across restarts too (`version`): a new version is the larger of the stored one plus one
//! and the current Unix time (so even a lost state directory cannot make workers see a
//! rollback).
//! The SOA serial is the version's low 32 bits. The published zone is kept too
//! (`<state-dir>/bundle/published`, 0600: the leaf key in it is sealed) with a digest of
//! what it was made from, so a restart with the same certificate, names, signing keys,
//! cluster, format and workers serves the same bundle, version and serial, and announces
//! nothing. It listens to [`CertSlot`] changes and writes through
//! [`Zones::replace_generated`]; it never touches listeners.
//!
//! The signing key file may hold several keys (a rotation signs with the old and the new
//! one); SIGHUP re-reads it ([`Publisher::reload_keys`]) and a changed set is published at
//! once, under a new version.

mod version;

use std::{
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use arc_swap::ArcSwap;
use tokio::{
    sync::Notify,
    time::{Instant, sleep_until},
};
use zeroize::Zeroizing;

use hickory_proto::{
    rr::{
        Name, RData, Record,
        rdata::{NS, SOA},
    },
    serialize::binary::{BinDecodable as _, BinEncodable as _},
};
use rustls_pki_types::PrivateKeyDer;
use sha2::{Digest as _, Sha256};
use tokio_util::sync::CancellationToken;

use crate::{
    bundle::{self, BundleError, BundleInput, SealPads, SigningKey, WorkerPublicKey},
    config::{CertificateZoneConfig, TlsName},
    state::{self, StateError},
    tls::{CertSlot, Served},
    zones::{ZoneError, Zones},
};

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("failed to read {what} {path}: {reason}")]
    Key {
        what: &'static str,
        path: String,
        reason: String,
    },
    #[error(
        "the certificate's private key is not PKCS#8; the certificate zone carries PKCS#8 only"
    )]
    NotPkcs8,
    #[error("failed to build the bundle: {0}")]
    Bundle(#[from] BundleError),
    #[error(
        "refusing to publish bundle version {version}: more than {limit} s ahead of this clock ({now}), so workers would refuse it; set the clock right, then write a lower version into {path} (a plain number is read)",
        limit = bundle::limits::MAX_AHEAD_SECS
    )]
    VersionAhead {
        version: u64,
        now: u64,
        path: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Zone(#[from] ZoneError),
}

/// How long after a bundle the pads for the next are made: once the workers have fetched
/// it, so the pads' scalar multiplications do not compete with that.
const PADS_AFTER: Duration = Duration::from_secs(1);

/// Publishes one master's certificate zone.
pub struct Publisher {
    config: CertificateZoneConfig,
    names: Vec<String>,
    /// The keys every bundle is signed with, re-read on SIGHUP.
    signing: ArcSwap<Vec<SigningKey>>,
    /// SHA-256 of the key file's bytes `signing` was read from: a SIGHUP that finds the
    /// same bytes parses nothing (deriving each public key is a scalar multiplication,
    /// on the way of a renewal the same SIGHUP triggers).
    signing_file: Mutex<[u8; 32]>,
    /// Rung when `signing` changed: publish again.
    keys_changed: Notify,
    /// The keys the zone's bundle was last signed with, so a key change that a
    /// certificate change already published is not published twice.
    signed_with: Mutex<Option<Arc<Vec<SigningKey>>>>,
    workers: Vec<WorkerPublicKey>,
    /// `<state-dir>/bundle/version`.
    version: version::VersionFile,
    /// `<state-dir>/bundle/published`: the last zone served and what it was made from.
    kept: state::LatestFile,
    /// Seal pads for the next bundle, made while nothing else happens.
    pads: Mutex<SealPads>,
    /// The SOA's MNAME: the master's first TLS name.
    primary: Name,
}

impl Publisher {
    /// Reads the signing key and the workers' public keys; `check-config` runs this too.
    pub fn new(
        config: &CertificateZoneConfig,
        names: &[TlsName],
        state_dir: &Path,
    ) -> Result<Self, PublishError> {
        let (signing, signing_file) = read_signing_keys(config)?;
        let workers = config
            .workers
            .iter()
            .map(|w| {
                let what = "a worker public key";
                let pem = read(&w.public_key, what)?;
                WorkerPublicKey::from_pem(&pem).map_err(|e| key_error(what, &w.public_key, e))
            })
            .collect::<Result<_, _>>()?;
        // A wildcard's SOA names its base; the config check gives a master a DNS name.
        let primary = names
            .first()
            .and_then(TlsName::base)
            .unwrap_or_else(Name::root);
        Ok(Self {
            config: config.clone(),
            names: names.iter().map(|n| n.as_str().to_string()).collect(),
            signing: ArcSwap::from_pointee(signing),
            signing_file: Mutex::new(signing_file),
            keys_changed: Notify::new(),
            signed_with: Mutex::default(),
            workers,
            version: version::VersionFile::new(state_dir.join("bundle").join("version")),
            kept: state::LatestFile::new(state_dir.join("bundle").join("published"), state::SECRET),
            pads: Mutex::default(),
            primary,
        })
    }

    /// Publishes what is served now (before the node says it is ready, so secondaries that
    /// ask at once find the zone), then on every certificate change and every change of
    /// the signing keys until `shutdown`.
    pub fn start(
        self: &Arc<Self>,
        certs: Arc<CertSlot>,
        zones: Arc<Zones>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + 'static {
        // Subscribed before the first publication: an install in between is not missed.
        let changes = certs.subscribe();
        if self.restore(&certs, &zones) {
            let current = self.signing.load_full();
            *self.signed_with.lock().unwrap_or_else(|e| e.into_inner()) = Some(current);
        } else {
            self.publish_current(&certs, &zones);
        }
        self.clone().run(changes, certs, zones, shutdown)
    }

    async fn run(
        self: Arc<Self>,
        mut changes: tokio::sync::watch::Receiver<Option<crate::tls::CertSummary>>,
        certs: Arc<CertSlot>,
        zones: Arc<Zones>,
        shutdown: CancellationToken,
    ) {
        let mut refill = Some(Instant::now() + PADS_AFTER);
        loop {
            let keys_only = tokio::select! {
                () = shutdown.cancelled() => return,
                () = sleep_until(refill.unwrap_or_else(Instant::now)), if refill.is_some() => {
                    refill = None;
                    self.refill_pads().await;
                    continue;
                }
                changed = changes.changed() => if changed.is_err() { return } else { false },
                () = self.keys_changed.notified() => true,
            };
            changes.mark_unchanged();
            if keys_only && self.signed_with_current_keys() {
                continue;
            }
            self.publish_current(&certs, &zones);
            refill = Some(Instant::now() + PADS_AFTER);
        }
    }

    /// Makes a seal pad for every worker, off the async threads.
    async fn refill_pads(self: &Arc<Self>) {
        let workers = self.workers.clone();
        let made =
            tokio::task::spawn_blocking(move || SealPads::prepare(&workers, &mut rand_core::OsRng));
        match made.await {
            Ok(pads) => *self.pads.lock().unwrap_or_else(|e| e.into_inner()) = pads,
            // Only a panic gets here; the next bundle makes its pads itself.
            Err(e) => tracing::warn!(error = %e, "seal pads not made"),
        }
    }

    fn signed_with_current_keys(&self) -> bool {
        let current = self.signing.load_full();
        let last = self.signed_with.lock().unwrap_or_else(|e| e.into_inner());
        last.as_ref()
            .is_some_and(|last| Arc::ptr_eq(last, &current))
    }

    /// Re-reads the signing key file (SIGHUP); a changed set of keys is published at once.
    /// A file that does not read keeps the keys in use; one with the same bytes as the last
    /// read is not parsed again.
    pub fn reload_keys(&self) {
        let read = read_signing_key_file(&self.config).and_then(|(pem, digest)| {
            if *self.signing_file.lock().unwrap_or_else(|e| e.into_inner()) == digest {
                return Ok(None);
            }
            parse_signing_keys(&self.config, &pem).map(|keys| Some((keys, digest)))
        });
        let (keys, digest) = match read {
            Ok(Some(read)) => read,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "signing keys not re-read; signing with the ones in use");
                return;
            }
        };
        *self.signing_file.lock().unwrap_or_else(|e| e.into_inner()) = digest;
        if *self.signing.load_full() == keys {
            return;
        }
        let ids: Vec<String> = keys
            .iter()
            .map(|k| bundle::signing_key_id(k.verifying_key()).to_string())
            .collect();
        tracing::info!(signers = %ids.join(","), "signing keys changed; publishing a new bundle");
        self.signing.store(Arc::new(keys));
        self.keys_changed.notify_one();
    }

    fn publish_current(&self, certs: &CertSlot, zones: &Zones) {
        let Some(served) = certs.served() else { return };
        match self.publish(&served, zones) {
            Ok(version) => tracing::info!(
                zone = %self.config.origin,
                version,
                workers = self.workers.len(),
                "certificate zone published"
            ),
            Err(e) => {
                tracing::error!(error = %e, "certificate zone not published; it keeps its previous bundle")
            }
        }
    }

    /// Serves the zone published before a restart, unannounced, when it was made from what
    /// is served now; true if it was.
    fn restore(&self, certs: &CertSlot, zones: &Zones) -> bool {
        let Some(served) = certs.served() else {
            return false;
        };
        let digest = self.input_digest(&served);
        let Some((version, records)) = self.published(&digest) else {
            return false;
        };
        match zones.restore_generated(&self.config.origin, records) {
            Ok(()) => {
                tracing::info!(
                    zone = %self.config.origin,
                    version,
                    "certificate zone served as before the restart (same certificate and workers)"
                );
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "the kept certificate zone does not load; publishing anew");
                false
            }
        }
    }

    /// The kept zone and its version, if it was made from `digest` and is the newest
    /// version (anything else is published anew).
    fn published(&self, digest: &[u8; 32]) -> Option<(u64, Vec<Record>)> {
        let bytes = state::read_optional(self.kept.path()).ok()??;
        let (kept, version, records) = decode_published(&bytes)?;
        let current = self.version.stored_version().ok()?;
        (kept == *digest && version == current).then_some((version, records))
    }

    /// What a bundle is made from, but its randomness and time: the same digest means the
    /// same certificate (the chain pins the key), names, workers, signing keys, cluster,
    /// format and zone settings.
    fn input_digest(&self, served: &Served) -> [u8; 32] {
        let mut hash = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hash.update((bytes.len() as u64).to_be_bytes());
            hash.update(bytes);
        };
        field(b"certzone bundle input 2");
        field(self.config.origin.to_ascii().as_bytes());
        field(self.primary.to_ascii().as_bytes());
        for number in [self.config.ttl, self.config.refresh, self.config.retry] {
            field(&number.to_be_bytes());
        }
        for name in &self.names {
            field(name.as_bytes());
        }
        for cert in &served.chain {
            field(cert);
        }
        for key in self.signing.load().iter() {
            field(&key.verifying_key().to_sec1_bytes());
        }
        field(self.config.cluster_id.as_bytes());
        field(&self.config.format.to_be_bytes());
        for worker in &self.workers {
            field(worker.to_pem().unwrap_or_default().as_bytes());
        }
        hash.finalize().into()
    }

    /// Builds and serves a new bundle for `served`; returns its version.
    pub fn publish(&self, served: &Served, zones: &Zones) -> Result<u64, PublishError> {
        let PrivateKeyDer::Pkcs8(key) = served.key.as_ref() else {
            return Err(PublishError::NotPkcs8);
        };
        let now = crate::clock::unix_now();
        let digest = self.input_digest(served);
        let next = self.version.next(now)?;
        let version = next.version;
        let input = BundleInput {
            zone: self.config.origin.clone(),
            ttl: self.config.ttl,
            format: self.config.format,
            minimum_format: self.config.format,
            version,
            published: now,
            cluster_id: self.config.cluster_id.clone(),
            names: self.names.clone(),
            chain: served.chain.iter().map(|c| c.to_vec()).collect(),
            private_key: key.clone_key(),
            workers: self.workers.clone(),
        };
        let signing = self.signing.load_full();
        let mut pads = std::mem::take(&mut *self.pads.lock().unwrap_or_else(|e| e.into_inner()));
        let result = bundle::publish_padded(&input, &signing, &mut pads, &mut rand_core::OsRng);
        *self.signed_with.lock().unwrap_or_else(|e| e.into_inner()) = Some(signing);
        // The input's copy of the private key is wiped, not just freed.
        drop(Zeroizing::new(input.private_key));
        let mut records = result?;
        // Written before anyone can see it: a crash never reuses it (see `version`).
        self.version.record(next)?;
        records.extend(self.apex(version));
        let kept = encode_published(&digest, version, &records);
        zones.replace_generated(&self.config.origin, records)?;
        // After the zone is served (the NOTIFY is on its way). Served all the same if it
        // fails; the next start then publishes a new version instead.
        self.kept.write(
            kept,
            |e| tracing::warn!(error = %e, "certificate zone not kept for restarts"),
        );
        Ok(version)
    }

    /// SOA and NS at the zone's apex.
    fn apex(&self, version: u64) -> [Record; 2] {
        let origin = &self.config.origin;
        let rname = Name::from_ascii("hostmaster")
            .and_then(|h| h.append_domain(origin))
            .unwrap_or_else(|_| origin.clone());
        let soa = SOA::new(
            self.primary.clone(),
            rname,
            version as u32,
            self.config.refresh as i32,
            self.config.retry as i32,
            1_209_600,
            self.config.ttl,
        );
        [
            Record::from_rdata(origin.clone(), self.config.ttl, RData::SOA(soa)),
            Record::from_rdata(
                origin.clone(),
                self.config.ttl,
                RData::NS(NS(self.primary.clone())),
            ),
        ]
    }
}

/// `published`: the input digest, the version, then each record (wire form, uncompressed)
/// after its 16-bit length.
fn encode_published(digest: &[u8; 32], version: u64, records: &[Record]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(digest);
    out.extend_from_slice(&version.to_be_bytes());
    for record in records {
        // A record that does not encode would not have been served either.
        let Ok(wire) = record.to_bytes() else {
            continue;
        };
        let Ok(len) = u16::try_from(wire.len()) else {
            continue;
        };
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&wire);
    }
    out
}

fn decode_published(bytes: &[u8]) -> Option<([u8; 32], u64, Vec<Record>)> {
    let digest: [u8; 32] = bytes.get(..32)?.try_into().ok()?;
    let version = u64::from_be_bytes(bytes.get(32..40)?.try_into().ok()?);
    let mut rest = bytes.get(40..)?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let len = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
        let wire = rest.get(2..2 + len)?;
        records.push(Record::from_bytes(wire).ok()?);
        rest = &rest[2 + len..];
    }
    Some((digest, version, records))
}

/// Every signing key in the configured file, and the SHA-256 of its bytes.
fn read_signing_keys(
    config: &CertificateZoneConfig,
) -> Result<(Vec<SigningKey>, [u8; 32]), PublishError> {
    let (pem, digest) = read_signing_key_file(config)?;
    Ok((parse_signing_keys(config, &pem)?, digest))
}

/// The signing key file's text and the SHA-256 of its bytes.
fn read_signing_key_file(
    config: &CertificateZoneConfig,
) -> Result<(Zeroizing<String>, [u8; 32]), PublishError> {
    let pem = read(&config.signing_key, "the signing key")?;
    let digest = Sha256::digest(pem.as_bytes()).into();
    Ok((pem, digest))
}

/// The keys in the signing key file's text; format 1 takes exactly one.
fn parse_signing_keys(
    config: &CertificateZoneConfig,
    pem: &str,
) -> Result<Vec<SigningKey>, PublishError> {
    let what = "the signing key";
    let keys =
        bundle::signing_keys_from_pem(pem).map_err(|e| key_error(what, &config.signing_key, e))?;
    let most = if config.format == 1 {
        1
    } else {
        bundle::limits::MAX_SIGNERS
    };
    if keys.len() > most {
        let reason = format!(
            "{} keys; format {} is signed by at most {most}",
            keys.len(),
            config.format
        );
        return Err(key_error(what, &config.signing_key, reason));
    }
    Ok(keys)
}

fn read(path: &Path, what: &'static str) -> Result<Zeroizing<String>, PublishError> {
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .map_err(|e| key_error(what, path, e))
}

fn key_error(what: &'static str, path: &Path, reason: impl ToString) -> PublishError {
    PublishError::Key {
        what,
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}
