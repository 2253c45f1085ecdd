//! The composition root: builds a node's parts from its [`Config`], owns every task and the
//! shutdown token.
//!
//! [`prepare`] checks everything `run` needs before a socket is opened (and is all that
//! `check-config` does); [`run`] binds, installs the certificate, serves, and handles
//! signals: SIGHUP re-reads zone files (and PEM files), SIGTERM/SIGINT shut down gracefully.

use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, SystemTime},
};

use tokio::signal::unix::{SignalKind, signal};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use hickory_proto::rr::Name;
use tokio::sync::Notify;

use crate::{
    acme::{self, ChallengeZone, Issuer},
    config::WorkerConfig,
    config::{CertificateSource, Config, TlsConfig},
    dns::{Bound, Forwarder, Handler, NotifyPolicy, TransferPolicy},
    localca::{self, LocalCa},
    publication::Publisher,
    replication::{Reader, Replica},
    tls::{self, CertSlot, CertSummary},
    zones::Zones,
};

/// How long shutdown waits for connections to finish their query in hand.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Retry delay when the local CA cannot renew (disk full, permissions).
const LOCAL_CA_RETRY: Duration = Duration::from_secs(60);

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
    let zones = Zones::load(&config.zones)
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
    let Prepared {
        config,
        zones,
        forwarder,
        publisher,
        reader,
    } = prepared;
    let bound = Bound::bind(&config.listen)?;
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
    if let (Some(t), Some(policy)) = (&config.transfer, &transfer)
        && !t.notify.is_empty()
    {
        let key = policy.keys.first().cloned();
        let changes = zones.subscribe();
        let notifier = crate::replication::notifier(
            changes,
            zones.clone(),
            notify_source(&config),
            t.notify.clone(),
            key,
            shutdown.clone(),
            tracker.clone(),
        );
        tracker.spawn(notifier);
    }
    let force_renewal = Arc::new(Notify::new());
    let source = match &config.tls {
        Some(tls) => {
            let parts = Parts {
                certs: &certs,
                zones: &zones,
                force_renewal: &force_renewal,
                shutdown: &shutdown,
                tracker: &tracker,
            };
            Some(start_certificates(&config, tls, parts)?)
        }
        None => None,
    };
    if let Some(publisher) = publisher {
        tracker.spawn(publisher.start(certs.clone(), zones.clone(), shutdown.clone()));
    }
    let _pid = PidFile::write(&config.state_dir)?;
    let mut handler = Handler::new(zones.clone(), forwarder, transfer);
    if let Some(worker) = &config.worker {
        let policy = start_replica(worker, reader, &zones, &certs, &shutdown, &tracker)?;
        handler = handler.with_notify(policy);
    }
    let handler = Arc::new(handler);
    bound.serve(handler, certs.clone(), &shutdown, &tracker);
    print_banner(&config, certs.summary().as_ref(), source.as_ref());
    signals(&zones, &config, &certs, &force_renewal).await?;
    tracing::info!("shutting down");
    shutdown.cancel();
    tracker.close();
    if tokio::time::timeout(SHUTDOWN_GRACE, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
    }
    Ok(())
}

/// NOTIFY leaves from the node's own address (its first listener), because secondaries
/// accept it only from the primary's address.
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
    worker: &WorkerConfig,
    reader: Option<Reader>,
    zones: &Arc<Zones>,
    certs: &Arc<CertSlot>,
    shutdown: &CancellationToken,
    tracker: &TaskTracker,
) -> anyhow::Result<NotifyPolicy> {
    let keys = crate::tsig::load(&worker.tsig_key_file)?;
    let reader = reader.map(Arc::new);
    if let Some(reader) = &reader {
        reader.load_cache(certs);
    }
    let signer = keys.first().map(|k| k.signer());
    let replica = Arc::new(Replica::new(
        worker.primary,
        signer,
        &worker.secondaries,
        reader,
        zones.clone(),
        certs.clone(),
    ));
    for zone in replica.zones() {
        tracker.spawn(replica.clone().run(zone, shutdown.clone()));
    }
    Ok(NotifyPolicy {
        primaries: vec![worker.primary.ip()],
        keys,
        target: replica,
    })
}

/// Where the certificate came from, for the banner.
enum Source {
    LocalCa(PathBuf),
    Files,
    Acme,
    CertificateZone,
}

/// What certificate sources may use of the running node.
struct Parts<'a> {
    certs: &'a Arc<CertSlot>,
    zones: &'a Arc<Zones>,
    force_renewal: &'a Arc<Notify>,
    shutdown: &'a CancellationToken,
    tracker: &'a TaskTracker,
}

fn start_certificates(
    config: &Config,
    tls: &TlsConfig,
    parts: Parts<'_>,
) -> anyhow::Result<Source> {
    let Parts {
        certs,
        zones,
        force_renewal,
        shutdown,
        tracker,
    } = parts;
    match &tls.source {
        CertificateSource::Files { cert, key } => {
            let summary = certs.install(&tls::load_pem_files(cert, key)?)?;
            log_installed(&summary);
            Ok(Source::Files)
        }
        CertificateSource::LocalCa { leaf_days } => {
            let ca = LocalCa::new(&config.state_dir, &tls.names, *leaf_days);
            let leaf = ca.leaf(SystemTime::now())?;
            log_installed(&certs.install(&leaf.served)?);
            let path = ca.ca_path();
            tracker.spawn(renew_local(
                ca,
                leaf.renew_at,
                certs.clone(),
                shutdown.clone(),
            ));
            Ok(Source::LocalCa(path))
        }
        CertificateSource::Acme(acme) => {
            let issuer = Issuer::new(
                (**acme).clone(),
                tls.names.clone(),
                &config.state_dir,
                certs.clone(),
                zones.clone(),
            );
            if !issuer.start()? {
                tracing::info!(
                    "no valid certificate stored: plain DNS is up, TLS follows the first issuance"
                );
            }
            tracker.spawn(issuer.run(force_renewal.clone(), shutdown.clone()));
            Ok(Source::Acme)
        }
        // Installed by the replica from its cache and from the primary.
        CertificateSource::CertificateZone => Ok(Source::CertificateZone),
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

/// `<state-dir>/certzone.pid`, so `certzone renew` can find the node; removed on exit.
struct PidFile(PathBuf);

impl PidFile {
    fn write(state_dir: &std::path::Path) -> anyhow::Result<Self> {
        crate::state::ensure_dir(state_dir)?;
        let path = pid_path(state_dir);
        let pid = format!("{}\n", std::process::id());
        crate::state::write_atomic(&path, pid.as_bytes(), crate::state::PUBLIC)?;
        Ok(Self(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Where a node's pid is written.
pub fn pid_path(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("certzone.pid")
}

/// Replaces the local CA leaf when a third of its life is left.
async fn renew_local(
    ca: LocalCa,
    mut renew_at: SystemTime,
    certs: Arc<CertSlot>,
    shutdown: CancellationToken,
) {
    loop {
        let wait = renew_at
            .duration_since(SystemTime::now())
            .unwrap_or_default();
        tracing::info!(at = %localca::humantime(renew_at), "next local CA renewal");
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        let installed = ca
            .renew(SystemTime::now())
            .map_err(|e| e.to_string())
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
                tracing::error!(error = %e, "local CA renewal failed; keeping the current certificate");
                renew_at = SystemTime::now() + LOCAL_CA_RETRY;
            }
        }
    }
}

/// Waits for SIGTERM/SIGINT; handles SIGHUP (reload) and SIGUSR1 (renew now) meanwhile.
async fn signals(
    zones: &Zones,
    config: &Config,
    certs: &CertSlot,
    force_renewal: &Notify,
) -> anyhow::Result<()> {
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = hup.recv() => reload(zones, config, certs),
            _ = usr1.recv() => force_renewal.notify_one(),
        }
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

fn log_installed(summary: &CertSummary) {
    tracing::info!(
        names = ?summary.subject_names,
        not_after = %localca::humantime(summary.not_after),
        sha256 = %summary.fingerprint,
        "certificate installed"
    );
}

/// What a person needs to start querying: addresses, the CA to trust, lines to paste.
fn print_banner(config: &Config, summary: Option<&CertSummary>, source: Option<&Source>) {
    let listen = &config.listen;
    // "certzone ready" comes last: whoever waits for it has the whole banner.
    let mut out = format!("certzone {:?} node\n", config.role).to_lowercase();
    let zones: Vec<String> = config.zones.iter().map(|z| z.origin.to_string()).collect();
    out += &format!("  zones: {}\n", zones.join(" "));
    for (kind, list) in [
        ("udp", &listen.udp),
        ("tcp", &listen.tcp),
        ("tls", &listen.tls),
        ("https", &listen.https),
    ] {
        for address in list {
            out += &format!("  {kind:<5} {address}\n");
        }
    }
    if let Some(summary) = summary {
        out += &format!(
            "  certificate: {} (not after {}, sha256 {})\n",
            summary.subject_names.join(", "),
            localca::humantime(summary.not_after),
            summary.fingerprint
        );
    }
    let ca = match source {
        Some(Source::LocalCa(path)) => {
            let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
            out += &format!("  local CA (trust this): {}\n", path.display());
            Some(path.display().to_string())
        }
        _ => None,
    };
    out += &examples(config, ca.as_deref());
    out += "certzone ready (SIGHUP re-reads zones, Ctrl-C stops)\n";
    print!("{out}");
}

fn examples(config: &Config, ca: Option<&str>) -> String {
    let query = config
        .zones
        .first()
        .map_or_else(|| ". NS".to_string(), |z| format!("{} SOA", z.origin));
    let name = config.tls.as_ref().map(|t| t.names[0].as_str());
    let trust = |ca: Option<&str>, name: Option<&str>| {
        let mut s = String::new();
        if let Some(ca) = ca {
            s += &format!(" +tls-ca={ca}");
        }
        if let Some(name) = name {
            s += &format!(" +tls-hostname={name}");
        }
        s
    };
    let mut out = String::from("try:\n");
    if let Some(a) = config.listen.udp.first() {
        out += &format!("  dig @{} -p {} {query}\n", a.ip(), a.port());
    }
    if let Some(a) = config.listen.tls.first() {
        out += &format!(
            "  kdig @{} -p {} +tls{} {query}\n",
            a.ip(),
            a.port(),
            trust(ca, name)
        );
    }
    if let Some(a) = config.listen.https.first() {
        out += &format!(
            "  kdig @{} -p {} +https=/dns-query{} {query}\n",
            a.ip(),
            a.port(),
            trust(ca, name)
        );
    }
    out
}
