//! The composition root: builds a node's parts from its [`Config`], owns every task and the
//! shutdown token.
//!
//! [`prepare`] checks everything `run` needs before a socket is opened (and is all that
//! `check-config` does); [`run`] binds, installs the certificate, serves, and handles
//! signals: SIGHUP re-reads zone files (and PEM files, and the certificate zone's signing
//! or trusted keys), SIGTERM/SIGINT shut down gracefully.

mod banner;
mod certificates;
mod lock;

use std::{sync::Arc, time::Duration};

use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use tokio::sync::Notify;

use banner::print_banner;
use certificates::{Parts, log_installed, start_certificates};
pub use lock::{Holder, LockError, holder, lock_path, pid_path};

use crate::{
    acme,
    announce::Announcer,
    config::KeyAlgorithm,
    config::WorkerConfig,
    config::{CertificateSource, Config, TlsConfig},
    dns::{Bound, Budget, Forwarder, Handler, NotifyPolicy, TransferPolicy, Trust, UpdatePolicy},
    localca::LocalCa,
    metrics::{MetricsListener, View},
    publication::Publisher,
    replication::{Reader, Replica},
    tls::{self, CertSlot},
    zones::Zones,
};

/// How long shutdown waits for connections to finish their query in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Everything checked and loaded, no socket open yet.
pub struct Prepared {
    config: Config,
    zones: Zones,
    forwarder: Option<Forwarder>,
    publisher: Option<Publisher>,
    reader: Option<Reader>,
}

/// Checks and loads what `config` names: zone files, TLS material, upstream CA files.
/// Returns every problem found, each naming its file, line or key.
pub fn prepare(config: Config) -> Result<Prepared, Vec<String>> {
    let mut problems = Vec::new();
    let zones = Zones::load(&config.zones, &config.state_dir)
        .map_err(|errors| problems.extend(errors.iter().map(ToString::to_string)))
        .ok();
    let forwarder = match config.forward.as_ref().map(Forwarder::new).transpose() {
        Ok(f) => f,
        Err(e) => {
            problems.push(e.to_string());
            None
        }
    };
    if let Some(tls) = &config.tls
        && let Err(e) = check_certificate_source(&config, tls)
    {
        problems.push(e);
    }
    let publisher = match (&config.certificate_zone, &config.tls) {
        (Some(zone), Some(tls)) => Publisher::new(zone, &tls.names, &config.state_dir)
            .map_err(|e| problems.push(e.to_string()))
            .ok(),
        _ => None,
    };
    if let Some(transfer) = &config.transfer
        && let Err(e) = crate::tsig::load(&transfer.tsig_key_file)
    {
        problems.push(e.to_string());
    }
    if let Some(worker) = &config.worker
        && let Err(e) = crate::tsig::load(&worker.tsig_key_file)
    {
        problems.push(e.to_string());
    }
    if let Some(update) = &config.update
        && let Err(e) = update_policy(update)
    {
        problems.push(e);
    }
    let reader = match (
        config.worker.as_ref().and_then(|w| w.certificate.as_ref()),
        &config.tls,
    ) {
        (Some(reader), Some(tls)) => Reader::new(reader, &tls.names, &config.state_dir)
            .map_err(|e| problems.push(e.to_string()))
            .ok(),
        _ => None,
    };
    match zones {
        Some(zones) if problems.is_empty() => Ok(Prepared {
            config,
            zones,
            forwarder,
            publisher,
            reader,
        }),
        _ => Err(problems),
    }
}

fn check_certificate_source(config: &Config, tls: &TlsConfig) -> Result<(), String> {
    match &tls.source {
        CertificateSource::Files { cert, key } => tls::load_pem_files(cert, key)
            .map(drop)
            .map_err(|e| e.to_string()),
        CertificateSource::LocalCa { leaf_days } => {
            LocalCa::new(&config.state_dir, &tls.names, *leaf_days)
                .check()
                .map_err(|e| e.to_string())
        }
        CertificateSource::Acme(acme) => acme::check(acme).map_err(|e| e.to_string()),
        // Checked with the worker's keys in `prepare`.
        CertificateSource::CertificateZone => Ok(()),
    }
}

/// Runs the node until SIGTERM or SIGINT. Errors here are start-up failures.
pub async fn run(prepared: Prepared) -> anyhow::Result<()> {
    // First: a second node on the same state directory refuses before it binds or writes.
    let _lock = lock::StateLock::acquire(&prepared.config.state_dir)?;
    let signals = Signals::register()?;
    let Prepared {
        config,
        zones,
        forwarder,
        publisher,
        reader,
    } = prepared;
    let bound = Bound::bind(&config.listen, budget(&config)?)?;
    let metrics = match config.metrics {
        Some(address) => Some(MetricsListener::bind(address).await?),
        None => None,
    };
    // From here on the serials served are the ones a restart must go on from.
    zones.save_serials()?;
    let zones = Arc::new(zones);
    let certs = Arc::new(CertSlot::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let transfer = match &config.transfer {
        Some(t) => Some(TransferPolicy {
            keys: crate::tsig::load(&t.tsig_key_file)?,
            allow: t.allow.clone(),
        }),
        None => None,
    };
    if let Some(policy) = &transfer {
        start_notifier(&config, policy, &zones, &shutdown, &tracker);
    }
    let force_renewal = Arc::new(Notify::new());
    let announcer = start_announcer(&config, &zones, &certs, &shutdown, &tracker);
    let source = match &config.tls {
        Some(tls) => {
            let parts = Parts {
                certs: &certs,
                zones: &zones,
                force_renewal: &force_renewal,
                announcer: announcer.as_ref(),
                shutdown: &shutdown,
                tracker: &tracker,
            };
            Some(start_certificates(&config, tls, parts)?)
        }
        None => None,
    };
    let keys = KeyFiles::start(publisher, reader, (&certs, &zones), &shutdown, &tracker);
    let mut handler = Handler::new(zones.clone(), forwarder, transfer)
        .with_prepared_answers(config.listen.prepared_answers)
        .with_udp_max_payload(config.limits.udp_max_payload);
    if let Some(update) = &config.update {
        let mut policy = update_policy(update).map_err(anyhow::Error::msg)?;
        policy.workers = config
            .transfer
            .iter()
            .flat_map(|t| t.notify.clone())
            .collect();
        handler = handler.with_update(policy);
    }
    if let Some(worker) = &config.worker {
        let reader = keys.reader.clone();
        let policy = start_replica(&config, worker, reader, &zones, &certs, &shutdown, &tracker)?;
        handler = handler.with_notify(policy);
    }
    let handler = Arc::new(handler);
    bound.serve(handler, certs.clone(), &shutdown, &tracker);
    if let Some(metrics) = metrics {
        metrics.serve(view(&config, &zones, &certs), &shutdown, &tracker);
    }
    print_banner(&config, certs.summary().as_ref(), source.as_ref());
    // Every listener is bound and served: systemd's Type=notify may go on. Without
    // NOTIFY_SOCKET (not under systemd) this does nothing.
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd the node is ready");
    }
    signals
        .handle(&zones, &config, &certs, &force_renewal, &keys)
        .await;
    tracing::info!("shutting down");
    shut_down(shutdown, tracker).await;
    Ok(())
}

/// What `/metrics` and `/readyz` read.
fn view(config: &Config, zones: &Arc<Zones>, certs: &Arc<CertSlot>) -> View {
    View {
        role: match config.role {
            crate::config::Role::Master => "master",
            crate::config::Role::Worker => "worker",
        },
        zones: zones.clone(),
        certs: certs.clone(),
        tls: !(config.listen.tls.is_empty() && config.listen.https.is_empty()),
        replicated: config
            .worker
            .iter()
            .flat_map(|w| w.secondaries.iter().map(ToString::to_string))
            .collect(),
    }
}

/// Starts publishing `[publish]`'s records (master only; the config check ensures it).
fn start_announcer(
    config: &Config,
    zones: &Arc<Zones>,
    certs: &Arc<CertSlot>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Option<Arc<Announcer>> {
    let (publish, tls) = (config.publish.as_ref()?, config.tls.as_ref()?);
    let algorithm = match &tls.source {
        CertificateSource::Acme(acme) => acme.key_algorithm,
        _ => KeyAlgorithm::EcdsaP256,
    };
    let announcer = Arc::new(Announcer::new(
        publish.clone(),
        &tls.names,
        algorithm,
        &config.state_dir,
        zones.clone(),
    ));
    tracker.spawn(
        announcer
            .clone()
            .run(certs.clone(), shutdown.clone(), tracker.clone()),
    );
    Some(announcer)
}

/// `[update]`'s keys read from their files, each with its grants; a key name given twice
/// is refused (which grants would apply would be a guess).
fn update_policy(update: &crate::config::UpdateConfig) -> Result<UpdatePolicy, String> {
    let mut keys: Vec<(crate::tsig::TsigKey, crate::config::UpdateKey)> = Vec::new();
    for entry in &update.keys {
        for key in crate::tsig::load(&entry.file).map_err(|e| e.to_string())? {
            if keys.iter().any(|(k, _)| k.name == key.name) {
                return Err(format!(
                    "update key {} in {} is named twice in [update]",
                    key.name,
                    entry.file.display()
                ));
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

/// The listeners' limits; transfer partners (allowed addresses, the primary, their TSIG
/// keys) are never starved by others.
fn budget(config: &Config) -> anyhow::Result<Budget> {
    let mut trust = Trust::default();
    if let Some(transfer) = &config.transfer {
        trust.addresses.extend(&transfer.allow);
        trust
            .keys
            .extend(crate::tsig::load(&transfer.tsig_key_file)?);
    }
    if let Some(worker) = &config.worker {
        trust.addresses.push(worker.primary.ip());
        trust.keys.extend(crate::tsig::load(&worker.tsig_key_file)?);
    }
    Ok(Budget {
        limits: config.limits.clone(),
        rrl: config.rrl.clone(),
        trust,
    })
}

/// Sends NOTIFY to `[transfer] notify` on every zone change. It subscribes before anything
/// can change, so the first publication is announced too.
fn start_notifier(
    config: &Config,
    policy: &TransferPolicy,
    zones: &Arc<Zones>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) {
    let Some(targets) = config
        .transfer
        .as_ref()
        .map(|t| t.notify.clone())
        .filter(|t| !t.is_empty())
    else {
        return;
    };
    crate::metrics::stats::start_notify(&targets);
    let notifier = crate::replication::notifier(
        zones.subscribe(),
        zones.clone(),
        notify_source(config),
        targets,
        policy.keys.first().cloned(),
        shutdown.clone(),
        tracker.clone(),
    );
    tracker.spawn(notifier);
}

/// Stops every task, letting connections finish the query in hand, within a bound.
async fn shut_down(shutdown: CancellationToken, tracker: TaskTracker) {
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
    }
}

/// NOTIFY, SOA checks and transfers leave from the node's own address (its first
/// listener): secondaries accept NOTIFY only from the primary's address, and primaries'
/// allow-lists name their secondaries' addresses.
fn notify_source(config: &Config) -> std::net::IpAddr {
    let listen = &config.listen;
    listen
        .udp
        .iter()
        .chain(&listen.tcp)
        .next()
        .map_or(std::net::Ipv4Addr::UNSPECIFIED.into(), |a| a.ip())
}

/// Starts one replication loop per replicated zone; returns who may NOTIFY them.
fn start_replica(
    config: &Config,
    worker: &WorkerConfig,
    reader: Option<Arc<Reader>>,
    zones: &Arc<Zones>,
    certs: &Arc<CertSlot>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<NotifyPolicy> {
    let keys = crate::tsig::load(&worker.tsig_key_file)?;
    if let Some(reader) = &reader {
        reader.load_cache(certs);
        tracker.spawn(crate::replication::withdraw_expired(
            certs.clone(),
            shutdown.clone(),
        ));
    }
    let signer = keys.first().map(|k| k.signer());
    let replica = Arc::new(
        Replica::new(
            worker.primary,
            Some(notify_source(config)),
            signer,
            &worker.secondaries,
            reader,
            zones.clone(),
            certs.clone(),
        )
        .with_cache(&config.state_dir),
    );
    let names: Vec<String> = replica.zones().iter().map(ToString::to_string).collect();
    crate::metrics::stats::start_worker(&names);
    for zone in replica.zones() {
        tracker.spawn(replica.clone().run(zone, shutdown.clone()));
    }
    Ok(NotifyPolicy::new(vec![worker.primary.ip()], keys, replica))
}

/// What re-reads its key files on SIGHUP: the master's signing keys, a worker's trusted
/// signing keys.
struct KeyFiles {
    publisher: Option<Arc<Publisher>>,
    reader: Option<Arc<Reader>>,
}

impl KeyFiles {
    /// Starts the publisher, if any (it publishes at once, then on every change).
    fn start(
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
struct Signals {
    hup: Signal,
    usr1: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn register() -> std::io::Result<Self> {
        Ok(Self {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    /// Waits for SIGTERM/SIGINT; handles SIGHUP (reload) and SIGUSR1 (renew now) meanwhile.
    async fn handle(
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

fn reload(zones: &Zones, config: &Config, certs: &CertSlot) {
    let (changed, errors) = zones.reload();
    for error in &errors {
        tracing::error!(error = %error, "zone reload failed; keeping its previous contents");
    }
    tracing::info!(
        changed = changed.len(),
        failed = errors.len(),
        "zones re-read"
    );
    if let Some(TlsConfig {
        source: CertificateSource::Files { cert, key },
        ..
    }) = &config.tls
    {
        match tls::load_pem_files(cert, key)
            .map_err(|e| e.to_string())
            .and_then(|s| certs.install(&s).map_err(|e| e.to_string()))
        {
            Ok(summary) => log_installed(&summary),
            Err(e) => {
                tracing::error!(error = %e, "certificate reload failed; keeping the current one")
            }
        }
    }
}
