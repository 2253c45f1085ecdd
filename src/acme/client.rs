//! One conversation with the CA: the account, one order from creation to certificate.
//!
//! Owns the HTTP client (TCP_NODELAY on: instant-acme's own leaves it off, ~44 ms a request
//! on loopback; every request, answer included, bounded by `http-timeout-secs`), the
//! account's life (created once, reused, recreated if the CA forgot it), and the order's
//! steps, each logged, the whole order bounded by `order-timeout-secs`: a CA that stalls
//! becomes a failed attempt the issuer's backoff retries. It publishes challenges through
//! [`ChallengeZone`] and never touches zones or certificates otherwise.

use std::{collections::BTreeMap, future::Future, path::Path, pin::Pin, sync::Arc, time::Duration};

use bytes::Bytes;
use hickory_proto::rr::Name;
use hyper_util::{
    client::legacy::{Client as HyperClient, connect::HttpConnector},
    rt::TokioExecutor,
};
use instant_acme::{
    Account, AuthorizationStatus, BodyWrapper, BytesResponse, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, HttpClient, Identifier, NewAccount, NewOrder, Order, OrderStatus,
    RetryPolicy,
};
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, pem::PemObject};

use super::{AcmeError, ChallengeZone, propagation, store::StoredAccount};
use crate::config::{AcmeConfig, KeyAlgorithm, TlsName};

/// Order polls start fast (Pebble validates in milliseconds) and back off gently.
const POLL: RetryPolicy = RetryPolicy::new()
    .initial_delay(Duration::from_millis(15))
    .backoff(1.5)
    .timeout(Duration::from_secs(120));

/// A certificate fresh from the CA.
pub(super) struct Issued {
    pub(super) chain_pem: String,
    pub(super) key_pem: String,
}

/// The HTTP client for the CA: system roots plus the configured extra roots, NODELAY on.
pub(super) fn http_client(config: &AcmeConfig) -> Result<Box<dyn HttpClient>, AcmeError> {
    let mut roots = RootCertStore::empty();
    roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    for path in &config.ca_roots {
        for cert in read_roots(path)? {
            roots.add(cert).map_err(|e| root_error(path, e))?;
        }
    }
    let tls = crate::tls::client_config(roots);
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client: HyperClient<_, BodyWrapper<Bytes>> =
        HyperClient::builder(TokioExecutor::new()).build(https);
    Ok(Box::new(Bounded {
        inner: Arc::new(client),
        limit: config.http_timeout,
    }))
}

/// An HTTP client whose every request, connection and whole answer included, ends within
/// `limit`.
struct Bounded {
    inner: Arc<dyn HttpClient>,
    limit: Duration,
}

/// A CA that took too long.
#[derive(Debug, thiserror::Error)]
#[error("no answer from the CA within {0:?}")]
struct Stalled(Duration);

impl HttpClient for Bounded {
    fn request(
        &self,
        request: http::Request<BodyWrapper<Bytes>>,
    ) -> Pin<Box<dyn Future<Output = Result<BytesResponse, instant_acme::Error>> + Send>> {
        let (inner, limit) = (self.inner.clone(), self.limit);
        Box::pin(async move {
            let stalled = || instant_acme::Error::Other(Box::new(Stalled(limit)));
            let whole = async {
                let response = inner.request(request).await?;
                let parts = response.parts;
                let mut body = response.body;
                let bytes = body
                    .into_bytes()
                    .await
                    .map_err(instant_acme::Error::Other)?;
                let body = BodyWrapper::from(bytes.to_vec());
                Ok(BytesResponse::from(http::Response::from_parts(parts, body)))
            };
            tokio::time::timeout(limit, whole)
                .await
                .map_err(|_| stalled())?
        })
    }
}

/// Checks the extra roots without building anything: for `check-config`.
pub(super) fn check_roots(config: &AcmeConfig) -> Result<(), AcmeError> {
    config
        .ca_roots
        .iter()
        .try_for_each(|p| read_roots(p).map(drop))
}

fn read_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, AcmeError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| root_error(path, e))?;
    if certs.is_empty() {
        return Err(root_error(path, "no CERTIFICATE block found"));
    }
    Ok(certs)
}

fn root_error(path: &Path, reason: impl ToString) -> AcmeError {
    AcmeError::Roots {
        path: path.display().to_string(),
        reason: reason.to_string(),
    }
}

/// Loads the stored account, or creates one (with EAB when configured).
pub(super) async fn account(
    config: &AcmeConfig,
    stored: Option<StoredAccount>,
) -> Result<(Account, Option<StoredAccount>), AcmeError> {
    if let Some(stored) = stored {
        let account = Account::builder_with_http(http_client(config)?)
            .from_credentials(stored.credentials)
            .await
            .map_err(AcmeError::ca("load the account"))?;
        tracing::info!(id = account.id(), "ACME account loaded");
        return Ok((account, None));
    }
    let contact: Vec<&str> = config.contact.iter().map(String::as_str).collect();
    let eab = config
        .eab
        .as_ref()
        .map(|e| ExternalAccountKey::new(e.key_id.clone(), &e.hmac_key));
    let new = NewAccount {
        contact: &contact,
        terms_of_service_agreed: true,
        only_return_existing: false,
    };
    let (account, credentials) = Account::builder_with_http(http_client(config)?)
        .create(&new, config.directory.clone(), eab.as_ref())
        .await
        .map_err(AcmeError::ca("create the account"))?;
    tracing::info!(id = account.id(), directory = %config.directory, "ACME account created");
    let stored = StoredAccount {
        directory: config.directory.clone(),
        credentials,
    };
    Ok((account, Some(stored)))
}

/// Places an order for `names`, answers dns-01, and returns the certificate.
pub(super) async fn order<Z: ChallengeZone>(
    account: &Account,
    config: &AcmeConfig,
    names: &[TlsName],
    replaces: Option<CertificateIdentifier<'static>>,
    zone: &Z,
    key: Option<rcgen::KeyPair>,
) -> Result<Issued, AcmeError> {
    let deadline = tokio::time::Instant::now() + config.order_timeout;
    let mut order = within(deadline, config, new_order(account, names, replaces)).await?;
    let texts: Vec<String> = names.iter().map(|n| n.as_str().to_string()).collect();
    tracing::info!(url = order.url(), names = ?texts, "ACME order created");
    let wanted = within(deadline, config, challenges(&mut order, names)).await?;
    for (owner, values) in &wanted {
        zone.publish(owner, values).await;
    }
    let result = within(
        deadline,
        config,
        prove_and_finish(&mut order, config, &texts, &wanted, key),
    )
    .await;
    for owner in wanted.keys() {
        zone.publish(owner, &[]).await;
    }
    if !wanted.is_empty() {
        tracing::info!(owners = wanted.len(), "challenge records removed");
    }
    result
}

/// `step`, unless the order's `deadline` passes first.
async fn within<T>(
    deadline: tokio::time::Instant,
    config: &AcmeConfig,
    step: impl Future<Output = Result<T, AcmeError>>,
) -> Result<T, AcmeError> {
    tokio::time::timeout_at(deadline, step).await.map_err(|_| {
        AcmeError::Order(format!(
            "not finished within acme.order-timeout-secs ({:?})",
            config.order_timeout
        ))
    })?
}

/// A new order; sent again without `replaces` if the CA says it was already replaced.
async fn new_order(
    account: &Account,
    names: &[TlsName],
    replaces: Option<CertificateIdentifier<'static>>,
) -> Result<Order, AcmeError> {
    let identifiers: Vec<Identifier> = (names.iter())
        .map(|n| Identifier::Dns(n.as_str().to_string()))
        .collect();
    let Some(replaces) = replaces else {
        return account
            .new_order(&NewOrder::new(&identifiers))
            .await
            .map_err(AcmeError::ca("create the order"));
    };
    match account
        .new_order(&NewOrder::new(&identifiers).replaces(replaces))
        .await
    {
        Err(instant_acme::Error::Api(problem)) if problem_is(&problem, "alreadyReplaced") => {
            tracing::info!(
                "the CA says the certificate was already replaced; ordering without `replaces`"
            );
            account
                .new_order(&NewOrder::new(&identifiers))
                .await
                .map_err(AcmeError::ca("create the order"))
        }
        other => other.map_err(AcmeError::ca("create the order")),
    }
}

/// The TXT values each challenge owner must serve, from the order's pending authorizations.
async fn challenges(
    order: &mut Order,
    names: &[TlsName],
) -> Result<BTreeMap<Name, Vec<String>>, AcmeError> {
    let mut wanted: BTreeMap<Name, Vec<String>> = BTreeMap::new();
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(AcmeError::ca("fetch an authorization"))?;
        let identifier = authz.identifier().to_string();
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => {
                tracing::info!(%identifier, "authorization already valid");
                continue;
            }
            status => {
                return Err(AcmeError::Order(format!(
                    "authorization for {identifier} is {status:?}"
                )));
            }
        }
        let challenge = authz.challenge(ChallengeType::Dns01).ok_or_else(|| {
            AcmeError::Order(format!(
                "the CA offers no dns-01 challenge for {identifier}"
            ))
        })?;
        let value = challenge.key_authorization().dns_value();
        // The owner comes from the configured name (the config check proved it fits a
        // zone); the CA's identifier only says which name it is.
        let owner = (names.iter().find(|n| n.is(&identifier)))
            .and_then(TlsName::challenge_owner)
            .ok_or_else(|| AcmeError::Order(format!("{identifier} is not one of tls.names")))?
            .map_err(|e| AcmeError::Order(format!("{identifier}: {e}")))?;
        tracing::info!(%identifier, %owner, "authorization pending: dns-01 challenge");
        wanted.entry(owner).or_default().push(value);
    }
    Ok(wanted)
}

async fn prove_and_finish(
    order: &mut Order,
    config: &AcmeConfig,
    names: &[String],
    wanted: &BTreeMap<Name, Vec<String>>,
    key: Option<rcgen::KeyPair>,
) -> Result<Issued, AcmeError> {
    for (owner, values) in wanted {
        propagation::confirm(
            &config.authoritative,
            owner,
            values,
            config.propagation_timeout,
        )
        .await?;
    }
    set_ready(order).await?;
    let status = order
        .poll_ready(&POLL)
        .await
        .map_err(AcmeError::ca("wait for validation"))?;
    if status != OrderStatus::Ready {
        return Err(AcmeError::Order(format!(
            "validation failed: {}",
            validation_errors(order).await
        )));
    }
    tracing::info!("validation succeeded; finalizing");
    // The announcer's key when TLSA is published (its record is already out), else a new one.
    let key = match key {
        Some(key) => key,
        None => key_pair(config.key_algorithm)?,
    };
    let mut params = rcgen::CertificateParams::new(names.to_vec()).map_err(AcmeError::Key)?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(AcmeError::Key)?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(AcmeError::ca("finalize the order"))?;
    let chain_pem = order
        .poll_certificate(&POLL)
        .await
        .map_err(AcmeError::ca("download the certificate"))?;
    Ok(Issued {
        chain_pem,
        key_pem: key.serialize_pem(),
    })
}

async fn set_ready(order: &mut Order) -> Result<(), AcmeError> {
    // The authorizations are cached from the first pass: this makes no extra fetches.
    let mut authorizations = order.authorizations();
    while let Some(authz) = authorizations.next().await {
        let mut authz = authz.map_err(AcmeError::ca("fetch an authorization"))?;
        if authz.status != AuthorizationStatus::Pending {
            continue;
        }
        let identifier = authz.identifier().to_string();
        if let Some(mut challenge) = authz.challenge(ChallengeType::Dns01) {
            challenge
                .set_ready()
                .await
                .map_err(AcmeError::ca("mark the challenge ready"))?;
            tracing::info!(%identifier, "challenge marked ready");
        }
    }
    Ok(())
}

/// What the CA said about each failed challenge.
async fn validation_errors(order: &mut Order) -> String {
    let mut errors = Vec::new();
    let mut authorizations = order.authorizations();
    while let Some(Ok(mut authz)) = authorizations.next().await {
        let identifier = authz.identifier().to_string();
        let Ok(state) = authz.refresh().await else {
            continue;
        };
        for challenge in &state.challenges {
            if let Some(problem) = &challenge.error {
                errors.push(format!("{identifier}: {}", describe(problem)));
            }
        }
    }
    if errors.is_empty() {
        "the order became invalid".into()
    } else {
        errors.join("; ")
    }
}

fn key_pair(algorithm: KeyAlgorithm) -> Result<rcgen::KeyPair, AcmeError> {
    let alg = match algorithm {
        KeyAlgorithm::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        KeyAlgorithm::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
    };
    rcgen::KeyPair::generate_for(alg).map_err(AcmeError::Key)
}

/// The directory's `meta.caaIdentities` (RFC 8555 7.1.1): the issuer domain names CAA
/// records name this CA by.
pub(super) async fn caa_identities(config: &AcmeConfig) -> Result<Vec<String>, AcmeError> {
    let fail = |detail: String| AcmeError::Ca {
        action: "read the directory",
        detail,
        problem: None,
    };
    let request = http::Request::get(&config.directory)
        .body(BodyWrapper::from(Vec::new()))
        .map_err(|e| fail(e.to_string()))?;
    let mut response = http_client(config)?
        .request(request)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let body = response
        .body
        .into_bytes()
        .await
        .map_err(|e| fail(e.to_string()))?;
    #[derive(serde::Deserialize, Default)]
    #[serde(rename_all = "camelCase")]
    struct Meta {
        #[serde(default)]
        caa_identities: Vec<String>,
    }
    #[derive(serde::Deserialize)]
    struct Directory {
        #[serde(default)]
        meta: Meta,
    }
    let directory: Directory = serde_json::from_slice(&body).map_err(|e| fail(e.to_string()))?;
    Ok(directory.meta.caa_identities)
}

/// `urn:ietf:params:acme:error:<name>`
pub(super) fn problem_is(problem: &instant_acme::Problem, name: &str) -> bool {
    problem
        .r#type
        .as_deref()
        .is_some_and(|t| t.strip_prefix("urn:ietf:params:acme:error:") == Some(name))
}

/// An ACME problem as operators want it: its type and detail.
pub(super) fn describe(problem: &instant_acme::Problem) -> String {
    format!(
        "{} ({})",
        problem.detail.as_deref().unwrap_or("no detail"),
        problem.r#type.as_deref().unwrap_or("no type")
    )
}
