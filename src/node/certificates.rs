//! Where the node's certificate comes from (local CA, PEM files, ACME, the certificate
//! zone), installed into the one swappable slot; the local CA's renewal timer.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use hickory_proto::rr::Name;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::prepare::CertificateMaterial;
use crate::{
    acme::{ChallengeZone, Issuer},
    announce::Announcer,
    config::{Config, TlsConfig},
    localca::LocalCa,
    tls::{self, CertSlot, CertSummary},
    zones::Zones,
};

/// Retry delay when the local CA cannot renew (disk full, permissions).
const LOCAL_CA_RETRY: Duration = Duration::from_secs(60);

/// Where the certificate came from, for the banner.
pub(super) enum Source {
    LocalCa(PathBuf),
    Files,
    Acme,
    CertificateZone,
}

/// What certificate sources may use of the running node.
pub(super) struct Parts<'a> {
    pub(super) certs: &'a Arc<CertSlot>,
    pub(super) zones: &'a Arc<Zones>,
    pub(super) force_renewal: &'a Arc<Notify>,
    /// The published records' keeper, when `[publish]` is configured.
    pub(super) announcer: Option<&'a Arc<Announcer>>,
    pub(super) shutdown: &'a CancellationToken,
    pub(super) tracker: &'a TaskTracker,
}

/// Installs what `prepare` loaded, and starts what keeps it fresh.
pub(super) fn start_certificates(
    config: &Config,
    tls: &TlsConfig,
    certificate: CertificateMaterial,
    parts: Parts<'_>,
) -> anyhow::Result<Source> {
    let Parts {
        certs,
        zones,
        force_renewal,
        announcer,
        shutdown,
        tracker,
    } = parts;
    match certificate {
        CertificateMaterial::Files(served) => {
            let summary = certs.install(&served)?;
            log_installed(&summary);
            Ok(Source::Files)
        }
        CertificateMaterial::LocalCa(ca) => {
            let leaf = ca.leaf(SystemTime::now())?;
            log_installed(&certs.install(&leaf.served)?);
            let path = ca.ca_path();
            tracker.spawn(renew_local(
                ca,
                leaf.renew_at,
                (certs.clone(), announcer.cloned()),
                shutdown.clone(),
            ));
            Ok(Source::LocalCa(path))
        }
        CertificateMaterial::Acme(acme) => {
            let mut issuer = Issuer::new(
                *acme,
                tls.names.clone(),
                &config.state_dir,
                certs.clone(),
                zones.clone(),
            );
            if let Some(announcer) = announcer {
                issuer = issuer.with_announce(announcer.clone());
            }
            if !issuer.start()? {
                tracing::info!(
                    "no valid certificate stored: plain DNS is up, TLS follows the first issuance"
                );
            }
            tracker.spawn(issuer.run(force_renewal.clone(), shutdown.clone()));
            Ok(Source::Acme)
        }
        // Installed by the replica from its cache and from the primary.
        CertificateMaterial::CertificateZone => Ok(Source::CertificateZone),
    }
}

impl ChallengeZone for Zones {
    async fn publish(&self, owner: &Name, values: &[String]) {
        if !self.set_txt(owner, values).await {
            // The config check guarantees a zone for every challenge owner.
            tracing::error!(%owner, "no zone holds the challenge owner");
        }
    }
}

/// Replaces the local CA leaf once its renewal starts (`clock::renewal_start`).
async fn renew_local(
    ca: LocalCa,
    mut renew_at: SystemTime,
    (certs, announcer): (Arc<CertSlot>, Option<Arc<Announcer>>),
    shutdown: CancellationToken,
) {
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tracing::info!(at = %crate::clock::rfc3339(renew_at), "next local CA renewal");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        // With TLSA published, the leaf takes the next key once its record is out.
        let key = match &announcer {
            Some(announcer) => tokio::select! {
                () = shutdown.cancelled() => return,
                key = announcer.next_key() => Some(key),
            },
            None => None,
        };
        let installed = key
            .transpose()
            .map_err(|e| e.to_string())
            .and_then(|key| ca.renew(SystemTime::now(), key).map_err(|e| e.to_string()))
            .and_then(|leaf| {
                certs
                    .install(&leaf.served)
                    .map(|s| (s, leaf.renew_at))
                    .map_err(|e| e.to_string())
            });
        match installed {
            Ok((summary, next)) => {
                log_installed(&summary);
                renew_at = next;
            }
            Err(e) => {
                tracing::error!(error = %e, "local CA renewal failed; {}", tls::keeping(&certs));
                renew_at = SystemTime::now() + LOCAL_CA_RETRY;
            }
        }
    }
}

pub(super) fn log_installed(summary: &CertSummary) {
    tracing::info!(
        names = ?summary.subject_names,
        not_after = %crate::clock::rfc3339(summary.not_after),
        sha256 = %summary.fingerprint,
        "certificate installed"
    );
}
