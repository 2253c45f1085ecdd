//! What a running node answers: SIGHUP re-reads zones, PEM files and the certificate
//! zone's keys; SIGUSR1 renews an ACME certificate now; SIGTERM and SIGINT stop it.
//!
//! Owns the reload of what can change on disk under a running node. It must not start
//! anything: `run` does, before the first signal is handled.

use std::sync::Arc;

use tokio::{
    signal::unix::{Signal, SignalKind, signal},
    sync::Notify,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::certificates::log_installed;
use crate::{
    config::{CertificateSource, Config, TlsConfig},
    publication::Publisher,
    replication::Reader,
    tls::{self, CertSlot},
    zones::Zones,
};

/// What re-reads its key files on SIGHUP: the master's signing keys, a worker's trusted
/// signing keys.
pub(super) struct KeyFiles {
    publisher: Option<Arc<Publisher>>,
    pub(super) reader: Option<Arc<Reader>>,
}

impl KeyFiles {
    /// Starts the publisher, if any (it publishes at once, then on every change).
    pub(super) fn start(
        publisher: Option<Publisher>,
        reader: Option<Reader>,
        (certs, zones): (&Arc<CertSlot>, &Arc<Zones>),
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Self {
        let publisher = publisher.map(Arc::new);
        if let Some(publisher) = &publisher {
            tracker.spawn(publisher.start(certs.clone(), zones.clone(), shutdown.clone()));
        }
        Self {
            publisher,
            reader: reader.map(Arc::new),
        }
    }

    fn reload(&self) {
        if let Some(publisher) = &self.publisher {
            publisher.reload_keys();
        }
        if let Some(reader) = &self.reader {
            reader.reload_keys();
        }
    }
}

/// The signals a running node answers. Registered before anything starts: a SIGTERM that
/// comes while the node starts (once its first log lines are out) stops it cleanly too,
/// instead of the default action killing it.
pub(super) struct Signals {
    hup: Signal,
    usr1: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    pub(super) fn register() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for SIGTERM/SIGINT; handles SIGHUP (reload) and SIGUSR1 (renew now) meanwhile.
    pub(super) async fn handle(
        mut self,
        zones: &Zones,
        config: &Config,
        certs: &CertSlot,
        force_renewal: &Notify,
        keys: &KeyFiles,
    ) {
        loop {
            tokio::select! {
                _ = self.term.recv() => return,
                _ = self.int.recv() => return,
                _ = self.hup.recv() => {
                    // Keys first: a certificate re-read below is published with them.
                    keys.reload();
                    reload(zones, config, certs);
                }
                _ = self.usr1.recv() => renew_now(config, force_renewal),
            }
        }
    }
}

/// SIGUSR1: only an ACME certificate is renewed on request; anything else says so.
fn renew_now(config: &Config, force_renewal: &Notify) {
    match config.tls.as_ref().map(|t| &t.source) {
        Some(CertificateSource::Acme(_)) => force_renewal.notify_one(),
        _ => tracing::warn!(
            "SIGUSR1: nothing to renew; only tls.source = \"acme\" renews on request"
        ),
    }
}

/// The certificate first: it is one small file, and a renewal must not wait behind the
/// re-read of a large zone. Zone files are read on this thread with the runtime told it
/// blocks, so a million-record file does not hold up the tasks queued behind it.
fn reload(zones: &Zones, config: &Config, certs: &CertSlot) {
    reload_certificate(config, certs);
    let (changed, errors) = tokio::task::block_in_place(|| zones.reload());
    for error in &errors {
        tracing::error!(error = %error, "zone reload failed; keeping its previous contents");
    }
    tracing::info!(
        changed = changed.len(),
        failed = errors.len(),
        "zones re-read"
    );
}

fn reload_certificate(config: &Config, certs: &CertSlot) {
    if let Some(TlsConfig {
        source: CertificateSource::Files { cert, key },
        ..
    }) = &config.tls
    {
        match tls::load_pem_files(cert, key).and_then(|s| certs.install(&s)) {
            Ok(summary) => log_installed(&summary),
            Err(e) => {
                tracing::error!(error = %e, "certificate reload failed; keeping the current one")
            }
        }
    }
}
