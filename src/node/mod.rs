//! The composition root: builds a node's parts from its [`Config`], owns every task and the
//! shutdown token.
//!
//! [`prepare`] checks and loads everything `run` needs before a socket is opened (and is
//! all that `check-config` does); [`run`] consumes what it loaded: binds, installs the
//! certificate, serves, and handles signals (`signals`): SIGHUP re-reads zone files (and
//! PEM files, and the certificate zone's signing or trusted keys), SIGTERM/SIGINT shut
//! down gracefully. It must not parse the file (`config`) nor derive one (`cluster`).

mod banner;
mod certificates;
mod lock;
mod prepare;
mod signals;

use std::{sync::Arc, time::Duration};

use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use banner::print_banner;
use certificates::{Parts, start_certificates};
pub use lock::{Holder, LockError, holder, lock_path, pid_path};
pub use prepare::{PrepareError, Prepared, prepare};
use signals::{KeyFiles, Signals};

use crate::{
    announce::Announcer,
    config::{CertificateSource, Config, KeyAlgorithm, Role, WorkerConfig},
    dns::server::{
        Bound, Budget, Forwarder, Handler, NotifyPolicy, TransferPolicy, Trust, UpdatePolicy,
    },
    metrics::{MetricsListener, View},
    replication::{Reader, Replica},
    tls::CertSlot,
    tsig::TsigKey,
    zones::Zones,
};

/// How long shutdown waits for connections to finish their query in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// Runs the node until SIGTERM or SIGINT, from what [`prepare`] loaded. Errors here are
/// start-up failures.
pub async fn run(prepared: Prepared) -> anyhow::Result<()> {
    // First: a second node on the same state directory refuses before it binds or writes.
    let _lock = lock::StateLock::acquire(&prepared.config.state_dir)?;
    let signals = Signals::register()?;
    let Prepared {
        config,
        zones,
        forwarder,
        certificate,
        publisher,
        reader,
        transfer_keys,
        primary_keys,
        update,
    } = prepared;
    let bound = bind(&config, &transfer_keys, &primary_keys).await?;
    // From here on the serials served are the ones a restart must go on from.
    zones.save_serials()?;
    let zones = Arc::new(zones);
    let certs = Arc::new(CertSlot::default());
    let shutdown = CancellationToken::new();
    let tracker = TaskTracker::new();
    let transfer = start_transfer(&config, transfer_keys, &zones, &shutdown, &tracker);
    let force_renewal = Arc::new(Notify::new());
    let announcer = start_announcer(&config, &zones, &certs, &shutdown, &tracker);
    let parts = Parts {
        certs: &certs,
        zones: &zones,
        force_renewal: &force_renewal,
        announcer: announcer.as_ref(),
        shutdown: &shutdown,
        tracker: &tracker,
    };
    let source = (config.tls.as_ref().zip(certificate))
        .map(|(tls, certificate)| start_certificates(&config, tls, certificate, parts))
        .transpose()?;
    let keys = KeyFiles::start(publisher, reader, (&certs, &zones), &shutdown, &tracker);
    let mut handler = handler(&config, &zones, forwarder, transfer, update);
    if let Role::Worker(worker) = &config.role {
        let replica = (keys.reader.clone(), &zones, &certs);
        let keys = primary_keys.unwrap_or_default();
        let policy = start_replica(&config, worker, keys, replica, &shutdown, &tracker);
        handler = handler.with_notify(policy);
    }
    serve(
        &config,
        bound,
        handler,
        (&zones, &certs),
        (&shutdown, &tracker),
    );
    print_banner(&config, certs.summary().as_ref(), source.as_ref());
    notify_ready();
    signals
        .handle(&zones, &config, &certs, &force_renewal, &keys)
        .await;
    tracing::info!("shutting down");
    shut_down(shutdown, tracker).await;
    Ok(())
}

/// Binds every listener, DNS and metrics, before anything is served.
async fn bind(
    config: &Config,
    transfer_keys: &Option<Vec<TsigKey>>,
    primary_keys: &Option<Vec<TsigKey>>,
) -> anyhow::Result<(Bound, Option<MetricsListener>)> {
    let budget = budget(config, transfer_keys.as_deref(), primary_keys.as_deref());
    let bound = Bound::bind(&config.listen, budget)?;
    let metrics = match config.metrics {
        Some(address) => Some(MetricsListener::bind(address).await?),
        None => None,
    };
    Ok((bound, metrics))
}

/// The answer logic with what this node serves; a master's UPDATE waits for the
/// `[transfer] notify` secondaries.
fn handler(
    config: &Config,
    zones: &Arc<Zones>,
    forwarder: Option<Forwarder>,
    transfer: Option<TransferPolicy>,
    update: Option<UpdatePolicy>,
) -> Handler {
    let handler = Handler::new(zones.clone(), forwarder, transfer)
        .with_prepared_answers(config.listen.prepared_answers)
        .with_udp_max_payload(config.limits.udp_max_payload);
    match update {
        Some(mut policy) => {
            policy.workers = (config.transfer.iter())
                .flat_map(|t| t.notify.clone())
                .collect();
            handler.with_update(policy)
        }
        None => handler,
    }
}

/// Every listener is bound and served: systemd's Type=notify may go on. Without
/// NOTIFY_SOCKET (not under systemd) this does nothing.
fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not tell systemd the node is ready");
    }
}

/// Starts the DNS listeners and the metrics listener, if any.
fn serve(
    config: &Config,
    (bound, metrics): (Bound, Option<MetricsListener>),
    handler: Handler,
    (zones, certs): (&Arc<Zones>, &Arc<CertSlot>),
    (shutdown, tracker): (&CancellationToken, &TaskTracker),
) {
    bound.serve(Arc::new(handler), certs.clone(), shutdown, tracker);
    if let Some(metrics) = metrics {
        metrics.serve(view(config, zones, certs), shutdown, tracker);
    }
}

/// What `/metrics` and `/readyz` read.
fn view(config: &Config, zones: &Arc<Zones>, certs: &Arc<CertSlot>) -> View {
    View {
        role: config.role.kind().as_str(),
        zones: zones.clone(),
        certs: certs.clone(),
        tls: !(config.listen.tls.is_empty() && config.listen.https.is_empty()),
        replicated: config
            .worker()
            .into_iter()
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
    let publish = config.master()?.publish.as_ref()?;
    let tls = config.tls.as_ref()?;
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

/// The listeners' limits; transfer partners (allowed addresses, the primary, their TSIG
/// keys) are never starved by others.
fn budget(
    config: &Config,
    transfer_keys: Option<&[TsigKey]>,
    primary_keys: Option<&[TsigKey]>,
) -> Budget {
    let mut trust = Trust::default();
    if let Some(transfer) = &config.transfer {
        trust.addresses.extend(&transfer.allow);
    }
    trust
        .keys
        .extend(transfer_keys.into_iter().flatten().cloned());
    if let Some(worker) = config.worker() {
        trust.addresses.push(worker.primary.ip());
        trust
            .keys
            .extend(primary_keys.into_iter().flatten().cloned());
    }
    Budget {
        limits: config.limits.clone(),
        rrl: config.rrl.clone(),
        trust,
    }
}

/// Who may transfer the zones, and the NOTIFY sender that tells them of changes.
fn start_transfer(
    config: &Config,
    keys: Option<Vec<TsigKey>>,
    zones: &Arc<Zones>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> Option<TransferPolicy> {
    let transfer = config.transfer.as_ref()?;
    let policy = TransferPolicy {
        keys: keys?,
        allow: transfer.allow.clone(),
    };
    start_notifier(config, &policy, zones, shutdown, tracker);
    Some(policy)
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
    keys: Vec<TsigKey>,
    (reader, zones, certs): (Option<Arc<Reader>>, &Arc<Zones>, &Arc<CertSlot>),
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> NotifyPolicy {
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
    NotifyPolicy::new(vec![worker.primary.ip()], keys, replica)
}
