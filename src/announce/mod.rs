//! The records a master publishes about the certificate it serves: `_dns` SVCB (RFC 9461),
//! TLSA 3 1 1 for DoT and DoH (RFC 6698), CAA pinned to its ACME account (RFC 8657), put
//! into its own zones beside the file's records and transferred to workers as any change.
//!
//! Owns the TLSA rollover: the next key is made ahead (`next_key`, 0600 in the state
//! directory) and its TLSA published beside the served one; a certificate with it is made
//! only once every listed nameserver answers that TLSA and one TTL has passed
//! ([`Announcer::next_key`]); the old key's TLSA is withdrawn once every listed DoT server
//! presents another key. Also the CAA check before an order. It must not issue
//! certificates, nor touch zones but through [`Zones::set_published`].

mod caa;
mod next_key;
mod records;
mod watch;

use std::{
    future::Future,
    net::SocketAddr,
    path::Path,
    pin::Pin as Pinned,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use hickory_proto::rr::{Name, RData, RecordType};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use records::{Pin, SpkiHash};

use crate::{
    config::{KeyAlgorithm, PublishConfig, TlsName},
    state::StateError,
    tls::CertSlot,
    zones::Zones,
};
use next_key::{NextKey, Store, hex};

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    #[error("failed to make the next certificate key: {0}")]
    Key(rcgen::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{refusal}; refusing to order for {name}")]
    Caa {
        refusal: caa::CaaRefusal,
        name: String,
    },
}

/// How long a new TLSA waits for lagging nameservers before its lead time counts anyway.
const PROPAGATION_LIMIT: Duration = Duration::from_secs(60);
/// How long an old TLSA waits for every DoT server to present the new key.
const WITHDRAW_LIMIT: Duration = Duration::from_secs(3600);
/// Pause between rounds of checks.
const POLL: Duration = Duration::from_millis(200);

/// The master's published records and its key rollover.
pub struct Announcer {
    config: PublishConfig,
    /// Certificate names inside the node's zones (others, such as `localhost`, are skipped).
    names: Vec<Name>,
    algorithm: &'static rcgen::SignatureAlgorithm,
    zones: Arc<Zones>,
    store: Store,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The key of the certificate served now.
    served: Option<SpkiHash>,
    next: Option<Next>,
    /// Keys no longer served here, published until every DoT server presents another.
    withdrawing: Vec<SpkiHash>,
    pin: Option<Pin>,
    warned_no_issuer: bool,
    warned_issuer: bool,
}

struct Next {
    key: NextKey,
    /// When every nameserver answered its TLSA; its lead time counts from here.
    since: Option<Instant>,
}

impl Announcer {
    pub fn new(
        config: PublishConfig,
        tls_names: &[TlsName],
        algorithm: KeyAlgorithm,
        state_dir: &Path,
        zones: Arc<Zones>,
    ) -> Self {
        let names = tls_names
            .iter()
            .filter_map(|name| {
                let Some(name) = name.dns().cloned() else {
                    tracing::info!(%name, "nothing published for this name: not in a zone of this node (or a wildcard)");
                    return None;
                };
                let inside = !name.is_wildcard() && zones.zone_of(&name).is_some();
                if !inside {
                    tracing::info!(%name, "nothing published for this name: not in a zone of this node (or a wildcard)");
                }
                inside.then_some(name)
            })
            .collect();
        Self {
            config,
            names,
            algorithm: match algorithm {
                KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
                KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            },
            zones,
            store: Store::new(state_dir),
            state: Mutex::default(),
        }
    }

    /// Publishes at once, then follows every certificate change until `shutdown`.
    pub async fn run(
        self: Arc<Self>,
        certs: Arc<CertSlot>,
        shutdown: CancellationToken,
        tracker: TaskTracker,
    ) {
        let mut changes = certs.subscribe();
        let tasks = Tasks {
            shutdown: &shutdown,
            tracker: &tracker,
        };
        self.served_changed(served_key(&certs), true, &tasks);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                changed = changes.changed() => if changed.is_err() { return },
            }
            self.served_changed(served_key(&certs), false, &tasks);
        }
    }

    /// A certificate was installed (or the announcer starts): the old key's TLSA waits for
    /// the workers, a used next key is replaced, and everything is published again.
    fn served_changed(self: &Arc<Self>, served: Option<SpkiHash>, start: bool, tasks: &Tasks<'_>) {
        let mut state = self.lock();
        if served == state.served && !start {
            return;
        }
        let old = std::mem::replace(&mut state.served, served);
        if self.config.tlsa {
            if let Some(old) = old.filter(|old| Some(*old) != served) {
                state.withdrawing.push(old);
                tasks.spawn(self.clone().withdraw(old, tasks.shutdown.clone()));
            }
            let used = state
                .next
                .as_ref()
                .is_some_and(|n| Some(n.key.hash) == served);
            if state.next.is_none() || used {
                let made = if used {
                    self.store.make(self.algorithm)
                } else {
                    self.store.load_or_make(self.algorithm, served)
                };
                match made {
                    Ok(key) => {
                        tasks.spawn(self.clone().confirm(key.hash, tasks.shutdown.clone()));
                        state.next = Some(Next { key, since: None });
                    }
                    Err(e) => tracing::error!(error = %e, "no next key: renewals wait for one"),
                }
            }
        }
        self.publish(&state);
    }

    /// Serves the records of `state` (the caller holds its lock).
    fn publish(&self, state: &State) {
        let mut keys: Vec<SpkiHash> = Vec::new();
        let candidates = state
            .served
            .into_iter()
            .chain(state.next.as_ref().map(|n| n.key.hash));
        for key in candidates.chain(state.withdrawing.iter().copied()) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        let records = records::records(&records::Inputs {
            config: &self.config,
            names: &self.names,
            keys: &keys,
            pin: state.pin.as_ref(),
        });
        let tlsa: Vec<String> = keys.iter().map(hex).collect();
        tracing::info!(records = records.len(), ?tlsa, "published records updated");
        self.zones.set_published(records);
    }

    /// Waits until every nameserver answers the next key's TLSA (or the limit passes),
    /// then starts its lead time.
    async fn confirm(self: Arc<Self>, hash: SpkiHash, shutdown: CancellationToken) {
        let Some(owner) = self.tlsa_owner() else {
            return;
        };
        let start = Instant::now();
        for server in &self.config.nameservers {
            let waited = tokio::select! {
                () = shutdown.cancelled() => return,
                w = until_answered(*server, &owner, &hash, start) => w,
            };
            if let Err(last) = waited {
                tracing::warn!(%server, %owner, %last, "nameserver does not answer the next key's TLSA; counting its lead time anyway");
            }
        }
        let mut state = self.lock();
        if let Some(next) = state.next.as_mut().filter(|n| n.key.hash == hash) {
            next.since = Some(Instant::now());
            tracing::info!(
                tlsa = %hex(&hash),
                lead = ?self.config.lead_time(),
                "next key's TLSA served by every nameserver; certificates may use it after the lead time"
            );
        }
    }

    /// Withdraws `old`'s TLSA once every DoT server presents another key (or the limit
    /// passes).
    async fn withdraw(self: Arc<Self>, old: SpkiHash, shutdown: CancellationToken) {
        let start = Instant::now();
        loop {
            let mut laggards = Vec::new();
            for server in &self.config.dot_servers {
                match watch::presented(*server).await {
                    Ok(key) if key != old => {}
                    Ok(_) => laggards.push(format!("{server} still presents it")),
                    Err(e) => laggards.push(format!("{server}: {e}")),
                }
            }
            if laggards.is_empty() {
                break;
            }
            if start.elapsed() >= WITHDRAW_LIMIT {
                tracing::warn!(?laggards, tlsa = %hex(&old), "withdrawing the old key's TLSA without every DoT server");
                break;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(POLL) => {}
            }
        }
        let mut state = self.lock();
        state.withdrawing.retain(|k| *k != old);
        tracing::info!(tlsa = %hex(&old), "old key's TLSA withdrawn: every DoT server presents the new key");
        self.publish(&state);
    }

    /// The key for the next certificate. With TLSA published, it is the next key, given
    /// only once its TLSA has been served for the lead time (at once while no certificate
    /// is served: no client can hold a TLSA for one); without TLSA, a new key.
    pub async fn next_key(&self) -> Result<rcgen::KeyPair, AnnounceError> {
        if !self.config.tlsa {
            return rcgen::KeyPair::generate_for(self.algorithm).map_err(AnnounceError::Key);
        }
        let mut logged = false;
        loop {
            let wait = {
                let state = self.lock();
                let Some(next) = &state.next else {
                    return self.store.make(self.algorithm)?.key_pair();
                };
                let ready = next.since.map(|since| since + self.config.lead_time());
                match ready {
                    _ if state.served.is_none() => return next.key.key_pair(),
                    Some(ready) if ready <= Instant::now() => return next.key.key_pair(),
                    Some(ready) => ready - Instant::now(),
                    None => POLL,
                }
            };
            if !logged {
                tracing::info!(
                    lead = ?self.config.lead_time(),
                    "renewal waits until the next key's TLSA has been served for one TTL"
                );
                logged = true;
            }
            tokio::time::sleep(wait.min(Duration::from_secs(1))).await;
        }
    }

    /// Before an order: pins CAA to `account` at the CA (`caa-issuer`, else the first of
    /// the directory's `identities`), then checks the CAA records that apply to every
    /// name. An error names the record that would make the CA refuse.
    pub fn before_order(&self, account: &str, identities: &[String]) -> Result<(), AnnounceError> {
        let mut ids: Vec<String> = self.config.caa_issuer.iter().cloned().collect();
        ids.extend(identities.iter().map(|i| i.to_lowercase()));
        let mut state = self.lock();
        if let Some(issuer) = &self.config.caa_issuer
            && !identities.is_empty()
            && !ids[1..].contains(issuer)
            && !state.warned_issuer
        {
            state.warned_issuer = true;
            tracing::warn!(%issuer, ?identities, "publish.caa-issuer is not one of the directory's caaIdentities: the CA may refuse");
        }
        if self.config.caa {
            match ids.first() {
                Some(issuer) => {
                    let pin = Pin {
                        issuer: issuer.clone(),
                        account: account.to_string(),
                    };
                    if state.pin.as_ref() != Some(&pin) {
                        state.pin = Some(pin);
                        self.publish(&state);
                    }
                }
                None if !state.warned_no_issuer => {
                    state.warned_no_issuer = true;
                    tracing::warn!(
                        "no CAA published: the directory lists no caaIdentities; set publish.caa-issuer"
                    );
                }
                None => {}
            }
        }
        drop(state);
        if ids.is_empty() {
            return Ok(());
        }
        for name in &self.names {
            let (owner, set) = self.relevant_caa(name);
            caa::check(&owner, &set, &ids, account).map_err(|refusal| AnnounceError::Caa {
                refusal,
                name: name.to_string(),
            })?;
        }
        Ok(())
    }

    /// RFC 8659 3: the CAA set at the name or its closest ancestor that has one, within
    /// the zone.
    fn relevant_caa(&self, name: &Name) -> (Name, Vec<hickory_proto::rr::rdata::CAA>) {
        let apex = self.zones.zone_of(name);
        let mut at = name.clone();
        loop {
            let set: Vec<_> = self
                .zones
                .records_at(&at, RecordType::CAA)
                .unwrap_or_default()
                .into_iter()
                .filter_map(|r| match r.data {
                    RData::CAA(caa) => Some(caa),
                    _ => None,
                })
                .collect();
            if !set.is_empty() || Some(&at) == apex.as_ref() || at.is_root() {
                return (at, set);
            }
            at = at.base_name();
        }
    }

    fn tlsa_owner(&self) -> Option<Name> {
        let name = self.names.first()?;
        records::tlsa_owners(name, &self.config).into_iter().next()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A poisoned lock means a holder panicked; the state under it is still whole.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl crate::acme::Announce for Announcer {
    // Errors cross into `acme` boxed, as their own types.

    fn next_key(
        &self,
    ) -> Pinned<Box<dyn Future<Output = Result<rcgen::KeyPair, crate::acme::Refusal>> + Send + '_>>
    {
        Box::pin(async move { Ok(Self::next_key(self).await?) })
    }

    fn before_order(
        &self,
        account: &str,
        identities: &[String],
    ) -> Result<(), crate::acme::Refusal> {
        Ok(Self::before_order(self, account, identities)?)
    }

    fn pins_account(&self) -> bool {
        self.config.caa || self.config.caa_issuer.is_some()
    }
}

/// Where the rollover's waiting tasks run.
struct Tasks<'a> {
    shutdown: &'a CancellationToken,
    tracker: &'a TaskTracker,
}

impl Tasks<'_> {
    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.tracker.spawn(task);
    }
}

fn served_key(certs: &CertSlot) -> Option<SpkiHash> {
    let served = certs.served()?;
    crate::tls::spki_sha256(served.chain.first()?).ok()
}

/// Asks `server` until it answers `hash` at `owner`; the last problem after the limit.
async fn until_answered(
    server: SocketAddr,
    owner: &Name,
    hash: &SpkiHash,
    start: Instant,
) -> Result<(), String> {
    loop {
        let last = match watch::tlsa_at(server, owner).await {
            Ok(found) if found.contains(hash) => return Ok(()),
            Ok(found) => format!("{} other TLSA records", found.len()),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= PROPAGATION_LIMIT {
            return Err(last);
        }
        tokio::time::sleep(POLL).await;
    }
}
