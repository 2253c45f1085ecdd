//! The built-in local CA: a P-256 CA and a leaf for the node's TLS names, in the state
//! directory, for a first run and for tests that need no outside CA.
//!
//! Owns the files under `<state-dir>/local-ca/` and the decision to reuse or reissue the
//! leaf. It must not install anything: it hands back a [`Served`] and the caller installs it.
//! Files: `ca.pem` (give it to clients), `ca.key` (0600), `leaf.pem`, `leaf.key` (0600).

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::{Duration, SystemTime},
};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::{
    clock,
    state::{self, StateError},
    tls::{self, Served, TlsError},
};

const CA_YEARS: u64 = 10;
const DAY: Duration = Duration::from_secs(86_400);

#[derive(Debug, thiserror::Error)]
pub enum LocalCaError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error("local CA file {path} is unusable: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("failed to make a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// The local CA of one node.
#[derive(Debug, Clone)]
pub struct LocalCa {
    dir: PathBuf,
    names: Vec<String>,
    leaf_lifetime: Duration,
}

/// A leaf ready to serve, and when to replace it.
#[derive(Debug)]
pub struct Leaf {
    pub served: Served,
    pub renew_at: SystemTime,
}

impl LocalCa {
    pub fn new(state_dir: &Path, names: &[String], leaf_days: u32) -> Self {
        Self {
            dir: state_dir.join("local-ca"),
            names: names.to_vec(),
            leaf_lifetime: DAY * leaf_days,
        }
    }

    /// Where clients find the CA certificate to trust.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// Checks the files that exist, without writing: for `check-config`.
    pub fn check(&self) -> Result<(), LocalCaError> {
        if self.ca_path().exists() {
            self.load_ca()?;
        }
        Ok(())
    }

    /// Returns a leaf valid now: the stored one if it is still good, else a new one.
    pub fn leaf(&self, now: SystemTime) -> Result<Leaf, LocalCaError> {
        state::ensure_dir(&self.dir)?;
        let (ca_cert, ca_key) = self.load_or_create_ca()?;
        if let Some(leaf) = self.stored_leaf(&ca_cert, now)? {
            return Ok(leaf);
        }
        self.issue(&ca_cert, &ca_key, now)
    }

    /// Issues a new leaf whatever the stored one is (renewal), for `key` when given (the
    /// key whose TLSA is already published), else a new one.
    pub fn renew(&self, now: SystemTime, key: Option<KeyPair>) -> Result<Leaf, LocalCaError> {
        state::ensure_dir(&self.dir)?;
        let (ca_cert, ca_key) = self.load_or_create_ca()?;
        self.issue_with(&ca_cert, &ca_key, now, key)
    }

    fn load_or_create_ca(&self) -> Result<(rcgen::Certificate, KeyPair), LocalCaError> {
        if self.ca_path().exists() {
            return self.load_ca();
        }
        let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        let tag = &tls::sha256_hex(&key.public_key_der())[..8];
        dn.push(DnType::CommonName, format!("certzone local CA {tag}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + time::Duration::days(365 * CA_YEARS as i64);
        let cert = params.self_signed(&key)?;
        state::write_atomic(
            &self.dir.join("ca.key"),
            key.serialize_pem().as_bytes(),
            state::SECRET,
        )?;
        state::write_atomic(&self.ca_path(), cert.pem().as_bytes(), state::PUBLIC)?;
        tracing::info!(path = %self.ca_path().display(), "local CA created");
        Ok((cert, key))
    }

    fn load_ca(&self) -> Result<(rcgen::Certificate, KeyPair), LocalCaError> {
        let key_path = self.dir.join("ca.key");
        let key_pem = read_text(&key_path)?;
        let key = KeyPair::from_pem(&key_pem).map_err(|e| corrupt(&key_path, e))?;
        let cert_pem = read_text(&self.ca_path())?;
        let params = CertificateParams::from_ca_cert_pem(&cert_pem)
            .map_err(|e| corrupt(&self.ca_path(), e))?;
        // Re-signing the same subject with the same key gives an issuer identical for
        // verification purposes: clients only ever see the stored ca.pem.
        let cert = params
            .self_signed(&key)
            .map_err(|e| corrupt(&self.ca_path(), e))?;
        Ok((cert, key))
    }

    fn stored_leaf(
        &self,
        ca_cert: &rcgen::Certificate,
        now: SystemTime,
    ) -> Result<Option<Leaf>, LocalCaError> {
        let (cert_path, key_path) = (self.dir.join("leaf.pem"), self.dir.join("leaf.key"));
        let (Some(cert), Some(key)) = (
            state::read_optional(&cert_path)?,
            state::read_optional(&key_path)?,
        ) else {
            return Ok(None);
        };
        let Ok(served) = tls::parse_pem(&cert, &key) else {
            tracing::warn!(path = %cert_path.display(), "stored local CA leaf is unreadable; issuing a new one");
            return Ok(None);
        };
        let summary = tls::summarize(&served.chain[0])?;
        let same_names = sorted(&summary.subject_names) == sorted(&self.names);
        let same_issuer = issued_by(&served.chain[0], ca_cert);
        let renew_at = clock::renewal_start(summary.not_before, summary.not_after);
        if !same_names || !same_issuer || now >= renew_at {
            return Ok(None);
        }
        Ok(Some(Leaf { served, renew_at }))
    }

    fn issue(
        &self,
        ca_cert: &rcgen::Certificate,
        ca_key: &KeyPair,
        now: SystemTime,
    ) -> Result<Leaf, LocalCaError> {
        self.issue_with(ca_cert, ca_key, now, None)
    }

    fn issue_with(
        &self,
        ca_cert: &rcgen::Certificate,
        ca_key: &KeyPair,
        now: SystemTime,
        key: Option<KeyPair>,
    ) -> Result<Leaf, LocalCaError> {
        let key = match key {
            Some(key) => key,
            None => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?,
        };
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, self.names[0].clone());
        params.distinguished_name = dn;
        params.subject_alt_names = self
            .names
            .iter()
            .map(|n| san(n))
            .collect::<Result<_, _>>()?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let start = time::OffsetDateTime::from(now) - time::Duration::minutes(5);
        params.not_before = start;
        params.not_after = start + self.leaf_lifetime;
        let cert = params.signed_by(&key, ca_cert, ca_key)?;
        let key_pem = key.serialize_pem();
        state::write_atomic(
            &self.dir.join("leaf.key"),
            key_pem.as_bytes(),
            state::SECRET,
        )?;
        state::write_atomic(
            &self.dir.join("leaf.pem"),
            cert.pem().as_bytes(),
            state::PUBLIC,
        )?;
        let served = Served {
            chain: vec![CertificateDer::from(cert.der().to_vec())],
            key: Arc::new(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                key.serialize_der(),
            ))),
        };
        let summary = tls::summarize(&served.chain[0])?;
        tracing::info!(names = ?self.names, not_after = %clock::rfc3339(summary.not_after), "local CA issued a leaf");
        Ok(Leaf {
            served,
            renew_at: clock::renewal_start(summary.not_before, summary.not_after),
        })
    }
}

fn san(name: &str) -> Result<SanType, rcgen::Error> {
    Ok(match name.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(name.trim_end_matches('.').try_into()?),
    })
}

fn issued_by(leaf: &CertificateDer<'_>, ca: &rcgen::Certificate) -> bool {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (Ok((_, leaf)), Ok((_, ca))) = (
        X509Certificate::from_der(leaf),
        X509Certificate::from_der(ca.der()),
    ) else {
        return false;
    };
    leaf.verify_signature(Some(ca.public_key())).is_ok()
}

fn sorted(names: &[String]) -> Vec<String> {
    let mut names: Vec<String> = names
        .iter()
        .map(|n| n.trim_end_matches('.').to_lowercase())
        .collect();
    names.sort();
    names
}

fn read_text(path: &Path) -> Result<String, LocalCaError> {
    std::fs::read_to_string(path).map_err(|e| corrupt(path, e))
}

fn corrupt(path: &Path, reason: impl ToString) -> LocalCaError {
    LocalCaError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn ca_and_leaf_are_reused_and_renewed() {
        let dir = tempfile::tempdir().unwrap();
        let names = vec!["ns1.example.test".to_string(), "127.0.0.1".to_string()];
        let ca = LocalCa::new(dir.path(), &names, 90);
        let now = SystemTime::now();
        let first = ca.leaf(now).unwrap();
        let ca_pem = std::fs::read(ca.ca_path()).unwrap();
        let again = ca.leaf(now).unwrap();
        assert_eq!(
            first.served.chain, again.served.chain,
            "a good leaf is reused"
        );
        let later = ca.leaf(first.renew_at + Duration::from_secs(1)).unwrap();
        assert_ne!(
            first.served.chain, later.served.chain,
            "a leaf past its renewal point is replaced"
        );
        assert_eq!(
            std::fs::read(ca.ca_path()).unwrap(),
            ca_pem,
            "the CA survives renewals"
        );
        for key in ["ca.key", "leaf.key"] {
            let mode = std::fs::metadata(dir.path().join("local-ca").join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
        let summary = tls::summarize(&later.served.chain[0]).unwrap();
        assert_eq!(sorted(&summary.subject_names), sorted(&names));
    }

    #[test]
    fn changed_names_get_a_new_leaf() {
        let dir = tempfile::tempdir().unwrap();
        let now = SystemTime::now();
        let one = LocalCa::new(dir.path(), &["a.example.test".into()], 90)
            .leaf(now)
            .unwrap();
        let two = LocalCa::new(dir.path(), &["b.example.test".into()], 90)
            .leaf(now)
            .unwrap();
        assert_ne!(one.served.chain, two.served.chain);
    }
}
