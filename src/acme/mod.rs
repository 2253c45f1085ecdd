//! The master's own ACME client (RFC 8555): obtains the certificate, answers DNS-01 from its
//! own zones, renews on schedule, and installs each new certificate without a restart.
//!
//! Owns the issuer loop: start-up (a valid stored certificate is served at once and no order
//! is made), the renewal schedule (`schedule`: ARI window when the CA offers RFC 9773, else
//! a third of the lifetime left), backoff after failures, a cap on orders per hour, and the
//! files in `<state-dir>/acme/` (`store`). It publishes challenge TXT records through the
//! small [`ChallengeZone`] trait it owns and installs certificates through
//! [`crate::tls::CertSlot`]; it never reaches into zones or listeners otherwise.
//!
//! Not implemented yet: http-01 and tls-alpn-01, a custom resolver for reaching the CA.

mod client;
mod error;
mod propagation;
mod schedule;
mod store;

use std::{
    sync::Arc,
    time::{Duration, SystemTime},
};

use hickory_proto::rr::Name;
use instant_acme::{Account, CertificateIdentifier};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

pub use error::{AcmeError, Refusal};
pub use propagation::Laggard;
use schedule::Validity;
use store::Store;

use crate::{
    clock::rfc3339,
    config::{AcmeConfig, TlsName},
    state::StateError,
    tls::{self, CertSlot},
};

/// ARI windows are fetched again at least this often (RFC 9773 asks for twice a day).
const ARI_RECHECK: Duration = Duration::from_secs(12 * 3600);

/// Where challenge records go: the consumer's view of the zones.
pub trait ChallengeZone: Send + Sync + 'static {
    /// Serves exactly `values` as TXT at `owner`; an empty slice removes them.
    fn publish(&self, owner: &Name, values: &[String]) -> impl Future<Output = ()> + Send;
}

/// What the issuer asks of the records announcing its certificate (`crate::announce`):
/// boxed futures, so the issuer holds it as a trait object.
pub trait Announce: Send + Sync + 'static {
    /// The key for the next certificate, once clients can know it (its TLSA served long
    /// enough).
    fn next_key(
        &self,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<rcgen::KeyPair, Refusal>> + Send + '_>>;
    /// Called with the account's URL and the CA's CAA identities before every order; an
    /// error (a CAA record the CA would refuse on) refuses the order.
    fn before_order(&self, account: &str, identities: &[String]) -> Result<(), Refusal>;
    /// Whether the account matters before the first order (CAA is published or checked):
    /// then the issuer loads it at start.
    fn pins_account(&self) -> bool;
}

/// Checks what the issuer will need, without network: for `check-config`.
pub fn check(config: &AcmeConfig) -> Result<(), AcmeError> {
    client::check_roots(config)
}

/// The certificate being served, as the schedule sees it.
struct Current {
    validity: Validity,
    names: Vec<String>,
    id: Option<CertificateIdentifier<'static>>,
    /// Where in the renewal window this certificate renews, drawn once.
    fraction: f64,
}

/// What the loop does next.
enum Next {
    Order,
    /// Wait, then look again (ARI re-check) without ordering.
    Recheck(SystemTime),
    Renew(SystemTime),
}

/// The issuer of one master.
pub struct Issuer<Z> {
    config: AcmeConfig,
    names: Vec<TlsName>,
    store: Store,
    certs: Arc<CertSlot>,
    zone: Arc<Z>,
    account: Option<Account>,
    /// Whether the CA answered renewal information (RFC 9773): only then is `replaces` sent.
    ari: bool,
    failures: u32,
    retry_at: Option<SystemTime>,
    announce: Option<Arc<dyn Announce>>,
    /// The directory's `caaIdentities`, fetched once.
    identities: Option<Vec<String>>,
}

impl<Z: ChallengeZone> Issuer<Z> {
    pub fn new(
        config: AcmeConfig,
        names: Vec<TlsName>,
        state_dir: &std::path::Path,
        certs: Arc<CertSlot>,
        zone: Arc<Z>,
    ) -> Self {
        Self {
            config,
            names,
            store: Store::new(state_dir),
            certs,
            zone,
            account: None,
            ari: false,
            failures: 0,
            retry_at: None,
            announce: None,
            identities: None,
        }
    }

    /// Certificates use the announcer's keys, and orders pass its CAA check first.
    pub fn with_announce(mut self, announce: Arc<dyn Announce>) -> Self {
        self.announce = Some(announce);
        self
    }

    /// Installs a valid stored certificate, if any, so TLS is up before the loop starts.
    pub fn start(&self) -> Result<bool, AcmeError> {
        self.store.ensure()?;
        Ok(self.load_stored()?.is_some())
    }

    /// Runs until `shutdown`; `force` starts a renewal now (SIGUSR1, `certzone renew`).
    pub async fn run(mut self, force: Arc<Notify>, shutdown: CancellationToken) {
        let mut current = match self.load_stored() {
            Ok(current) => current,
            Err(e) => {
                tracing::error!(error = %e, "stored ACME certificate unreadable; ordering a new one");
                None
            }
        };
        self.announce_account().await;
        loop {
            let wake = match self.next(current.as_ref()).await {
                Next::Order => None,
                Next::Recheck(at) => Some((at, false)),
                Next::Renew(at) => {
                    tracing::info!(at = %rfc3339(at), "next certificate renewal");
                    let unix = at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    crate::metrics::STATS.record(|m| m.acme.next_renewal = Some(unix));
                    Some((at, true))
                }
            };
            if let Some((at, renew)) = wake {
                let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = force.notified() => tracing::info!("certificate renewal forced"),
                    () = tokio::time::sleep(wait) => if !renew { continue },
                }
            }
            if let Some(issued) = self.attempt(current.as_ref(), &shutdown).await {
                current = Some(issued);
            }
        }
    }

    /// One order under the hourly cap; on failure, schedules the retry.
    async fn attempt(
        &mut self,
        current: Option<&Current>,
        shutdown: &CancellationToken,
    ) -> Option<Current> {
        let now = SystemTime::now();
        match self.under_cap(now) {
            Ok(true) => {}
            Ok(false) => return None,
            Err(e) => tracing::warn!(error = %e, "cannot read the order log; ordering anyway"),
        }
        let result = tokio::select! {
            () = shutdown.cancelled() => return None,
            r = self.renew(current) => r,
        };
        crate::metrics::STATS.record(|m| {
            m.acme.orders += 1;
            m.acme.failures += u64::from(result.is_err());
        });
        match result {
            Ok(issued) => {
                self.failures = 0;
                self.retry_at = None;
                Some(issued)
            }
            Err(e) => {
                self.failures += 1;
                let delay = schedule::backoff(self.failures, self.config.retry_base);
                self.retry_at = Some(SystemTime::now() + delay);
                tracing::error!(
                    error = %e,
                    attempt = self.failures,
                    retry_in = ?delay,
                    "certificate order failed; {}",
                    tls::keeping(&self.certs)
                );
                None
            }
        }
    }

    /// False (and a retry time set) when the hourly cap is reached.
    fn under_cap(&mut self, now: SystemTime) -> Result<bool, StateError> {
        let recent = self.store.recent_orders(now)?;
        if recent.len() < self.config.max_orders_per_hour as usize {
            self.store.record_order(now)?;
            return Ok(true);
        }
        let oldest = recent.iter().min().copied().unwrap_or(now);
        let until = oldest + Duration::from_secs(3600);
        tracing::warn!(
            orders = recent.len(),
            until = %rfc3339(until),
            "order cap per hour reached; waiting"
        );
        self.retry_at = Some(until);
        Ok(false)
    }

    /// Decides when the next order happens.
    async fn next(&mut self, current: Option<&Current>) -> Next {
        if let Some(at) = self.retry_at {
            return Next::Renew(at);
        }
        let Some(current) = current else {
            return Next::Order;
        };
        if !same_names(&current.names, &self.names) {
            tracing::info!("configured names differ from the certificate's; ordering");
            return Next::Order;
        }
        let now = SystemTime::now();
        if let Some((window, recheck)) = self.ari_window(current).await {
            let at = schedule::renewal_time(current.validity, window, current.fraction, now);
            let recheck_at = now + recheck.min(ARI_RECHECK);
            return if at <= recheck_at {
                Next::Renew(at)
            } else {
                Next::Recheck(recheck_at)
            };
        }
        let window = schedule::default_window(current.validity);
        Next::Renew(schedule::renewal_time(
            current.validity,
            window,
            current.fraction,
            now,
        ))
    }

    /// The CA's suggested window (RFC 9773), if it offers one.
    async fn ari_window(
        &mut self,
        current: &Current,
    ) -> Option<((SystemTime, SystemTime), Duration)> {
        let id = current.id.clone()?;
        let account = self.account().await.ok()?;
        match account.renewal_info(&id).await {
            Ok((info, recheck)) => {
                self.ari = true;
                let window = (
                    SystemTime::from(info.suggested_window.start),
                    SystemTime::from(info.suggested_window.end),
                );
                Some((window, recheck))
            }
            Err(instant_acme::Error::Unsupported(_)) => None,
            Err(e) => {
                tracing::warn!(error = %e, "renewal information unavailable; using the certificate's lifetime");
                None
            }
        }
    }

    /// Orders, stores and installs a certificate.
    async fn renew(&mut self, current: Option<&Current>) -> Result<Current, AcmeError> {
        let replaces = current.filter(|_| self.ari).and_then(|c| c.id.clone());
        let issued = match self.order(replaces.clone()).await {
            Err(e) if e.is_account_gone() => {
                tracing::warn!("the CA no longer knows the account; creating a new one");
                self.account = None;
                self.store.forget_account()?;
                self.order(replaces).await?
            }
            other => other?,
        };
        self.store
            .save_certificate(&issued.chain_pem, &issued.key_pem)?;
        let served = tls::parse_pem(issued.chain_pem.as_bytes(), issued.key_pem.as_bytes())?;
        self.install(&served)
    }

    async fn order(
        &mut self,
        replaces: Option<CertificateIdentifier<'static>>,
    ) -> Result<client::Issued, AcmeError> {
        let account = self.account().await?;
        let key = match self.announce.clone() {
            Some(announce) => {
                let identities = self.identities().await;
                announce
                    .before_order(account.id(), &identities)
                    .map_err(AcmeError::Announce)?;
                Some(announce.next_key().await.map_err(AcmeError::Announce)?)
            }
            None => None,
        };
        client::order(
            &account,
            &self.config,
            &self.names,
            replaces,
            self.zone.as_ref(),
            key,
        )
        .await
    }

    /// At start, the account's CAA is published (and checked) without waiting for an order.
    async fn announce_account(&mut self) {
        let Some(announce) = self.announce.clone().filter(|a| a.pins_account()) else {
            return;
        };
        let account = match self.account().await {
            Ok(account) => account,
            Err(e) => {
                tracing::warn!(error = %e, "no ACME account yet: CAA follows the first order");
                return;
            }
        };
        let identities = self.identities().await;
        if let Err(e) = announce.before_order(account.id(), &identities) {
            tracing::error!(error = %e, "the next order will be refused");
        }
    }

    /// The directory's `caaIdentities` (RFC 8555 7.1.1), fetched once; none when the CA
    /// lists none or cannot be asked.
    async fn identities(&mut self) -> Vec<String> {
        if let Some(identities) = &self.identities {
            return identities.clone();
        }
        match client::caa_identities(&self.config).await {
            Ok(identities) => {
                self.identities = Some(identities.clone());
                identities
            }
            Err(e) => {
                tracing::warn!(error = %e, "the directory's caaIdentities are unknown");
                Vec::new()
            }
        }
    }

    async fn account(&mut self) -> Result<Account, AcmeError> {
        if let Some(account) = &self.account {
            return Ok(account.clone());
        }
        let stored = self.store.account(&self.config.directory)?;
        let (account, created) = client::account(&self.config, stored).await?;
        if let Some(created) = created {
            self.store.save_account(&created)?;
        }
        self.account = Some(account.clone());
        Ok(account)
    }

    fn load_stored(&self) -> Result<Option<Current>, AcmeError> {
        let Some((_, served)) = self.store.certificate()? else {
            return Ok(None);
        };
        let summary = tls::summarize(&served.chain[0])?;
        if summary.not_after <= SystemTime::now() {
            tracing::info!(not_after = %rfc3339(summary.not_after), "stored certificate has expired");
            return Ok(None);
        }
        self.install(&served).map(Some)
    }

    fn install(&self, served: &tls::Served) -> Result<Current, AcmeError> {
        let summary = self.certs.install(served)?;
        tracing::info!(
            names = ?summary.subject_names,
            not_after = %rfc3339(summary.not_after),
            sha256 = %summary.fingerprint,
            "certificate installed"
        );
        Ok(Current {
            validity: Validity {
                not_before: summary.not_before,
                not_after: summary.not_after,
            },
            names: summary.subject_names,
            id: certificate_id(&served.chain[0]),
            fraction: random_fraction(),
        })
    }
}

fn same_names(a: &[String], b: &[TlsName]) -> bool {
    let norm = |names: &mut dyn Iterator<Item = &str>| {
        let mut n: Vec<String> = names
            .map(|s| s.trim_end_matches('.').to_lowercase())
            .collect();
        n.sort();
        n.dedup();
        n
    };
    norm(&mut a.iter().map(String::as_str)) == norm(&mut b.iter().map(TlsName::as_str))
}

/// The ARI identifier (RFC 9773 4.1): authority key id and serial of the leaf.
fn certificate_id(leaf: &[u8]) -> Option<CertificateIdentifier<'static>> {
    use x509_parser::{extensions::ParsedExtension, prelude::*};
    let (_, cert) = X509Certificate::from_der(leaf).ok()?;
    let aki = cert
        .extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::AuthorityKeyIdentifier(aki) => {
                aki.key_identifier.as_ref().map(|k| k.0.to_vec())
            }
            _ => None,
        })?;
    let serial = cert.tbs_certificate.raw_serial().to_vec();
    Some(CertificateIdentifier::new(aki.as_slice().into(), serial.as_slice().into()).into_owned())
}

fn random_fraction() -> f64 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 4];
    let _ = SystemRandom::new().fill(&mut bytes);
    f64::from(u32::from_be_bytes(bytes)) / f64::from(u32::MAX)
}
