//! The swappable certificate behind every TLS listener, and TLS material loading.
//!
//! Owns the one door through which certificates reach DoT and DoH: [`CertSlot`], a
//! `ResolvesServerCert` over `ArcSwap`. Installing a certificate changes what new handshakes
//! get; connections already open keep the certificate they started with. It must not know
//! where certificates come from (local CA, files, ACME, the certificate zone).
//!
//! Also the client side's configs: [`client_config`], the one builder every TLS client of
//! this process uses (one provider and protocol set), and [`probe_client_config`] for
//! reading which leaf a server presents.

use std::{fmt, path::Path, sync::Arc, time::SystemTime};

use arc_swap::ArcSwapOption;
use rustls::{
    DigitallySignedStruct, ServerConfig, SignatureScheme,
    client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier},
    crypto::ring::sign::any_supported_type,
    crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature},
    pki_types::{ServerName, UnixTime},
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::sync::watch;
use x509_parser::prelude::{FromDer, X509Certificate};

/// A problem with a certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("failed to read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a PEM certificate file: {reason}")]
    NotCertPem { path: String, reason: String },
    #[error("{path} is not a PEM private key file: {reason}")]
    NotKeyPem { path: String, reason: String },
    #[error("the private key is not usable for TLS: {0}")]
    Key(String),
    #[error("the private key does not match the certificate")]
    KeyMismatch,
    #[error("the certificate cannot be parsed: {0}")]
    Certificate(String),
}

/// A certificate chain with its key, ready to serve.
#[derive(Clone)]
pub struct Served {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: Arc<PrivateKeyDer<'static>>,
}

impl Drop for Served {
    // The last holder of the key wipes it: a replaced certificate's key does not linger in
    // freed memory.
    fn drop(&mut self) {
        if let Some(key) = Arc::get_mut(&mut self.key) {
            zeroize::Zeroize::zeroize(key);
        }
    }
}

impl fmt::Debug for Served {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Served")
            .field("chain_len", &self.chain.len())
            .finish_non_exhaustive()
    }
}

/// What operators see of a certificate: in logs, in status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// SHA-256 of the leaf's DER, hex.
    pub fingerprint: String,
    pub subject_names: Vec<String>,
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

/// The swappable certificate. Clone the `Arc` into every TLS listener.
#[derive(Debug)]
pub struct CertSlot {
    current: ArcSwapOption<CertifiedKey>,
    /// The chain and key behind `current`, for the certificate zone to publish.
    served: ArcSwapOption<Served>,
    changes: watch::Sender<Option<CertSummary>>,
}

impl Default for CertSlot {
    fn default() -> Self {
        Self {
            current: ArcSwapOption::empty(),
            served: ArcSwapOption::empty(),
            changes: watch::channel(None).0,
        }
    }
}

/// What a failure leaves served, for log lines: never "keeping" a certificate there is not.
pub fn keeping(certs: &CertSlot) -> &'static str {
    if certs.served().is_some() {
        "keeping the current certificate"
    } else {
        "no certificate served yet (TLS waits for one)"
    }
}

impl CertSlot {
    /// Installs `served` for every handshake from now on, and tells subscribers.
    pub fn install(&self, served: &Served) -> Result<CertSummary, TlsError> {
        let certified = certified_key(served)?;
        let summary = summarize(&served.chain[0])?;
        self.served.store(Some(Arc::new(served.clone())));
        self.current.store(Some(Arc::new(certified)));
        self.changes.send_replace(Some(summary.clone()));
        Ok(summary)
    }

    /// Stops serving the certificate with `fingerprint`, if it is still the one served (a
    /// newer install in the meantime wins). Handshakes fail until the next install.
    pub fn withdraw(&self, fingerprint: &str) -> bool {
        let current = self.summary().is_some_and(|s| s.fingerprint == fingerprint);
        if current {
            self.current.store(None);
            self.served.store(None);
            self.changes.send_replace(None);
        }
        current
    }

    /// The chain and key now served, if any.
    pub fn served(&self) -> Option<Arc<Served>> {
        self.served.load_full()
    }

    /// The certificate now served, if any.
    pub fn summary(&self) -> Option<CertSummary> {
        self.changes.borrow().clone()
    }

    /// Notified on every install: the event later layers (certificate zone) subscribe to.
    pub fn subscribe(&self) -> watch::Receiver<Option<CertSummary>> {
        self.changes.subscribe()
    }
}

impl ResolvesServerCert for CertSlot {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.load_full()
    }
}

/// A server config for listeners that take their certificate from `slot`.
pub fn server_config(slot: Arc<CertSlot>, alpn: &[&[u8]]) -> Arc<ServerConfig> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            // Local invariant: ring's default provider supports the safe default versions.
            .expect("ring supports the default protocol versions")
            .with_no_client_auth()
            .with_cert_resolver(slot);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// Reads a PEM chain and key, and checks that they belong together.
pub fn load_pem_files(cert: &Path, key: &Path) -> Result<Served, TlsError> {
    let cert_text = read(cert)?;
    let key_text = read(key)?;
    let served = parse_pem(&cert_text, &key_text).map_err(|e| match e {
        TlsError::NotCertPem { reason, .. } => TlsError::NotCertPem {
            path: cert.display().to_string(),
            reason,
        },
        TlsError::NotKeyPem { reason, .. } => TlsError::NotKeyPem {
            path: key.display().to_string(),
            reason,
        },
        other => other,
    })?;
    certified_key(&served)?;
    Ok(served)
}

/// Parses PEM text of a chain (leaf first) and a key.
pub fn parse_pem(cert_text: &[u8], key_text: &[u8]) -> Result<Served, TlsError> {
    let chain = CertificateDer::pem_slice_iter(cert_text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NotCertPem {
            path: String::new(),
            reason: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NotCertPem {
            path: String::new(),
            reason: "no CERTIFICATE block found".into(),
        });
    }
    let key = PrivateKeyDer::from_pem_slice(key_text).map_err(|e| TlsError::NotKeyPem {
        path: String::new(),
        reason: e.to_string(),
    })?;
    Ok(Served {
        chain,
        key: Arc::new(key),
    })
}

/// Names, validity and fingerprint of a leaf.
pub fn summarize(leaf: &CertificateDer<'_>) -> Result<CertSummary, TlsError> {
    let (_, cert) =
        X509Certificate::from_der(leaf).map_err(|e| TlsError::Certificate(e.to_string()))?;
    let validity = cert.validity();
    let to_time = |t: &x509_parser::time::ASN1Time| {
        SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.timestamp().max(0) as u64)
    };
    Ok(CertSummary {
        fingerprint: sha256_hex(leaf),
        subject_names: subject_names(&cert),
        not_before: to_time(&validity.not_before),
        not_after: to_time(&validity.not_after),
    })
}

/// The leaf a server presented in a finished client handshake.
pub fn presented_leaf(
    conn: &rustls::ClientConnection,
) -> Result<CertificateDer<'static>, &'static str> {
    conn.peer_certificates()
        .and_then(|c| c.first())
        .cloned()
        .ok_or("no certificate presented")
}

/// Hex SHA-256, the fingerprint form operators compare.
/// SHA-256 of the leaf's SubjectPublicKeyInfo: what a TLSA 3 1 1 record holds.
pub fn spki_sha256(leaf: &CertificateDer<'_>) -> Result<[u8; 32], TlsError> {
    let (_, cert) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    Ok(
        ring::digest::digest(&ring::digest::SHA256, cert.tbs_certificate.subject_pki.raw)
            .as_ref()
            .try_into()
            // Local invariant: SHA-256 digests are 32 bytes.
            .expect("SHA-256 is 32 bytes"),
    )
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    // Not `format!` per byte: a string each, on every install and every bundle check.
    digest
        .as_ref()
        .iter()
        .flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]])
        .map(char::from)
        .collect()
}

fn subject_names(cert: &X509Certificate<'_>) -> Vec<String> {
    use x509_parser::extensions::GeneralName;
    let Ok(Some(san)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    san.value
        .general_names
        .iter()
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_string()),
            GeneralName::IPAddress(ip) => ip_to_string(ip),
            _ => None,
        })
        .collect()
}

fn ip_to_string(bytes: &[u8]) -> Option<String> {
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::from(<[u8; 4]>::try_from(bytes).ok()?).to_string()),
        16 => Some(std::net::Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?).to_string()),
        _ => None,
    }
}

fn certified_key(served: &Served) -> Result<CertifiedKey, TlsError> {
    let signing_key = any_supported_type(&served.key).map_err(|e| TlsError::Key(e.to_string()))?;
    let certified = CertifiedKey::new(served.chain.clone(), signing_key);
    certified.keys_match().map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => TlsError::KeyMismatch,
        other => TlsError::Certificate(other.to_string()),
    })?;
    Ok(certified)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

/// The TLS client config of every connection this process makes that trusts certificates:
/// DoT upstreams, the ACME CA, the docker test CA. ring is the one provider, with rustls's
/// safe default protocol versions; the caller chooses the roots.
pub fn client_config(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    client_builder(Arc::new(rustls::crypto::ring::default_provider()))
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn client_builder(
    provider: Arc<CryptoProvider>,
) -> rustls::ConfigBuilder<rustls::ClientConfig, rustls::WantsVerifier> {
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        // Local invariant: ring's default provider supports the safe default versions.
        .expect("ring supports the default protocol versions")
}

/// A DoT client config that accepts any certificate, still checking the handshake's
/// signatures: for reading which leaf a server presents (`cluster up`'s table, the TLSA
/// rollover's check of the workers), never for trusting it.
pub fn probe_client_config() -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = client_builder(provider.clone())
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = vec![b"dot".to_vec()];
    Arc::new(config)
}

/// Accepts any certificate, still checking the handshake signatures made with it.
#[derive(Debug)]
struct AnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
