//! Everything a node loads before a socket opens, checked and kept: zones, upstreams, the
//! certificate source's material, the certificate zone's keys, every TSIG key file.
//!
//! `check-config` and `run` both go through [`prepare`]; `run` consumes what it returns,
//! so the two cannot drift apart and nothing is read twice. It must not bind, spawn or
//! write: that is `run`, after the state directory is locked.

use crate::{
    acme::{self, AcmeError},
    config::{AcmeConfig, CertificateSource, Config, TlsConfig, UpdateConfig, UpdateKey},
    dns::server::{ForwardError, Forwarder, UpdatePolicy},
    localca::{LocalCa, LocalCaError},
    publication::{PublishError, Publisher},
    replication::{Reader, WorkerError},
    tls::{self, Served, TlsError},
    tsig::{self, TsigError, TsigKey},
    zones::{ZoneError, Zones},
};

/// One problem found while loading; each names its file, line or key.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(transparent)]
    Zone(#[from] ZoneError),
    #[error(transparent)]
    Forward(#[from] ForwardError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error(transparent)]
    LocalCa(#[from] LocalCaError),
    #[error(transparent)]
    Acme(#[from] AcmeError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error(transparent)]
    Tsig(#[from] TsigError),
    #[error(transparent)]
    Reader(#[from] WorkerError),
    /// Which grants would apply would be a guess.
    #[error("update key {name} in {file} is named twice in [update]")]
    UpdateKeyTwice { name: String, file: String },
}

/// Everything checked and loaded, no socket open yet.
pub struct Prepared {
    pub(super) config: Config,
    pub(super) zones: Zones,
    pub(super) forwarder: Option<Forwarder>,
    /// The certificate source's material, when `[tls]` is given.
    pub(super) certificate: Option<CertificateMaterial>,
    pub(super) publisher: Option<Publisher>,
    pub(super) reader: Option<Reader>,
    /// `[transfer]`'s keys.
    pub(super) transfer_keys: Option<Vec<TsigKey>>,
    /// A worker's keys for its primary.
    pub(super) primary_keys: Option<Vec<TsigKey>>,
    /// `[update]`'s keys with their grants; the workers to wait for are added at start.
    pub(super) update: Option<UpdatePolicy>,
}

/// A certificate source with what was loaded for it.
pub(super) enum CertificateMaterial {
    LocalCa(LocalCa),
    /// The PEM files' certificate, installed at start (SIGHUP reads them again).
    Files(Served),
    /// Its roots are checked; the issuer reads its state at start.
    Acme(Box<AcmeConfig>),
    /// Installed by the replica from its cache and from the primary.
    CertificateZone,
}

/// Checks and loads what `config` names: zone files, TLS material, upstream CA files, key
/// files. Returns every problem found, in the order of the sections.
pub fn prepare(config: Config) -> Result<Prepared, Vec<PrepareError>> {
    let mut problems = Vec::new();
    let zones = Zones::load(&config.zones, &config.state_dir)
        .map_err(|errors| problems.extend(errors.into_iter().map(PrepareError::from)))
        .ok();
    let forwarder = keep(
        &mut problems,
        config.forward.as_ref().map(Forwarder::new).transpose(),
    )
    .flatten();
    let certificate = config
        .tls
        .as_ref()
        .and_then(|tls| keep(&mut problems, load_certificate(&config, tls)));
    let (master, worker) = (config.master(), config.worker());
    let publisher = match (
        master.and_then(|m| m.certificate_zone.as_ref()),
        &config.tls,
    ) {
        (Some(zone), Some(tls)) => keep(
            &mut problems,
            Publisher::new(zone, &tls.names, &config.state_dir),
        ),
        _ => None,
    };
    let transfer_keys =
        (config.transfer.as_ref()).and_then(|t| keep(&mut problems, tsig::load(&t.tsig_key_file)));
    let primary_keys = worker.and_then(|w| keep(&mut problems, tsig::load(&w.tsig_key_file)));
    let update = master
        .and_then(|m| m.update.as_ref())
        .and_then(|u| keep(&mut problems, update_policy(u)));
    let reader = match (worker.and_then(|w| w.certificate.as_ref()), &config.tls) {
        (Some(reader), Some(tls)) => keep(
            &mut problems,
            Reader::new(reader, &tls.texts(), &config.state_dir),
        ),
        _ => None,
    };
    match zones {
        Some(zones) if problems.is_empty() => Ok(Prepared {
            config,
            zones,
            forwarder,
            certificate,
            publisher,
            reader,
            transfer_keys,
            primary_keys,
            update,
        }),
        _ => Err(problems),
    }
}

/// The value of `result`, or `None` with its problem kept.
fn keep<T, E: Into<PrepareError>>(
    problems: &mut Vec<PrepareError>,
    result: Result<T, E>,
) -> Option<T> {
    result.map_err(|e| problems.push(e.into())).ok()
}

/// The certificate source's material, loaded or checked without network.
fn load_certificate(config: &Config, tls: &TlsConfig) -> Result<CertificateMaterial, PrepareError> {
    Ok(match &tls.source {
        CertificateSource::Files { cert, key } => {
            CertificateMaterial::Files(tls::load_pem_files(cert, key)?)
        }
        CertificateSource::LocalCa { leaf_days } => {
            let ca = LocalCa::new(&config.state_dir, &tls.texts(), *leaf_days);
            ca.check()?;
            CertificateMaterial::LocalCa(ca)
        }
        CertificateSource::Acme(acme) => {
            acme::check(acme)?;
            CertificateMaterial::Acme(acme.clone())
        }
        // Checked with the worker's keys in `prepare`.
        CertificateSource::CertificateZone => CertificateMaterial::CertificateZone,
    })
}

/// `[update]`'s keys read from their files, each with its grants; a key name given twice
/// is refused (which grants would apply would be a guess).
fn update_policy(update: &UpdateConfig) -> Result<UpdatePolicy, PrepareError> {
    let mut keys: Vec<(TsigKey, UpdateKey)> = Vec::new();
    for entry in &update.keys {
        for key in tsig::load(&entry.file)? {
            if keys.iter().any(|(k, _)| k.name == key.name) {
                return Err(PrepareError::UpdateKeyTwice {
                    name: key.name.to_string(),
                    file: entry.file.display().to_string(),
                });
            }
            keys.push((key, entry.clone()));
        }
    }
    Ok(UpdatePolicy {
        keys,
        workers: Vec::new(),
        wait: update.wait_for_workers,
    })
}
