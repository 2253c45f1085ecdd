//! X.509 facts the bundle needs: parsing a chain certificate, the leaf's
//! validity and DNS names, a human summary, and "was this certificate signed
//! by that one" (RFC 5280 section 6.1.3 (a)(1) and (a)(4), nothing more).
//!
//! Owns certificate parsing and signature algorithms; it must not decide
//! policy (which checks a reader runs, in which order: that is `checks`).
//! Signatures are verified with ring, the crate's one crypto provider.

use ring::signature::{self as sig, UnparsedPublicKey, VerificationAlgorithm};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::oid_registry::{
    OID_EC_P256, OID_NIST_EC_P384, OID_PKCS1_SHA256WITHRSA, OID_PKCS1_SHA384WITHRSA,
    OID_PKCS1_SHA512WITHRSA, OID_SIG_ECDSA_WITH_SHA256, OID_SIG_ECDSA_WITH_SHA384, OID_SIG_ED25519,
};
use x509_parser::prelude::FromDer as _;
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

use super::error::BundleError;

/// One chain certificate as `certzone verify` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertSummary {
    /// subject distinguished name (RFC 4514 string)
    pub subject: String,
    /// issuer distinguished name (RFC 4514 string)
    pub issuer: String,
    /// notBefore, unix seconds
    pub not_before: i64,
    /// notAfter, unix seconds
    pub not_after: i64,
}

/// What the reader checks about the leaf.
pub(crate) struct LeafFacts {
    pub(crate) not_before: i64,
    pub(crate) not_after: i64,
    /// subjectAltName dNSName entries, lowercased
    pub(crate) dns_names: Vec<String>,
}

/// Parses certificate `position` of the chain; trailing bytes after the
/// DER are refused because they would be signed but never looked at.
pub(crate) fn parse(der: &[u8], position: usize) -> Result<X509Certificate<'_>, BundleError> {
    match X509Certificate::from_der(der) {
        Ok(([], cert)) => Ok(cert),
        _ => Err(BundleError::BadCertificate(position)),
    }
}

pub(crate) fn summary(der: &[u8], position: usize) -> Result<CertSummary, BundleError> {
    let cert = parse(der, position)?;
    Ok(CertSummary {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
    })
}

pub(crate) fn leaf_facts(der: &[u8]) -> Result<LeafFacts, BundleError> {
    let cert = parse(der, 0)?;
    let san = cert
        .subject_alternative_name()
        .map_err(|_| BundleError::BadCertificate(0))?;
    let dns_names = san
        .iter()
        .flat_map(|ext| ext.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::DNSName(dns) => Some(dns.to_ascii_lowercase()),
            _ => None,
        })
        .collect();
    Ok(LeafFacts {
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        dns_names,
    })
}

/// Whether `child` names `issuer` as its issuer and carries a valid
/// signature by `issuer`'s key.
pub(crate) fn issued_by(child: &X509Certificate<'_>, issuer: &X509Certificate<'_>) -> bool {
    child.issuer().as_raw() == issuer.subject().as_raw() && signed_by(child, issuer.public_key())
}

/// Whether `cert`'s signature verifies under `key`.
pub(crate) fn signed_by(cert: &X509Certificate<'_>, key: &SubjectPublicKeyInfo<'_>) -> bool {
    let Some(alg) = algorithm(&cert.signature_algorithm, key) else {
        return false;
    };
    let key = UnparsedPublicKey::new(alg, &key.subject_public_key.data);
    let tbs: &[u8] = cert.tbs_certificate.as_ref();
    key.verify(tbs, &cert.signature_value.data).is_ok()
}

/// Maps a certificate's signature algorithm (and, for ECDSA, the signer's
/// curve) to ring's verifier. SHA-1 and anything ring lacks are refused.
fn algorithm(
    sig_alg: &AlgorithmIdentifier<'_>,
    key: &SubjectPublicKeyInfo<'_>,
) -> Option<&'static dyn VerificationAlgorithm> {
    let oid = &sig_alg.algorithm;
    if *oid == OID_PKCS1_SHA256WITHRSA {
        Some(&sig::RSA_PKCS1_2048_8192_SHA256)
    } else if *oid == OID_PKCS1_SHA384WITHRSA {
        Some(&sig::RSA_PKCS1_2048_8192_SHA384)
    } else if *oid == OID_PKCS1_SHA512WITHRSA {
        Some(&sig::RSA_PKCS1_2048_8192_SHA512)
    } else if *oid == OID_SIG_ECDSA_WITH_SHA256 {
        ecdsa(
            key,
            &sig::ECDSA_P256_SHA256_ASN1,
            &sig::ECDSA_P384_SHA256_ASN1,
        )
    } else if *oid == OID_SIG_ECDSA_WITH_SHA384 {
        ecdsa(
            key,
            &sig::ECDSA_P256_SHA384_ASN1,
            &sig::ECDSA_P384_SHA384_ASN1,
        )
    } else if *oid == OID_SIG_ED25519 {
        Some(&sig::ED25519)
    } else {
        None
    }
}

fn ecdsa(
    key: &SubjectPublicKeyInfo<'_>,
    p256: &'static dyn VerificationAlgorithm,
    p384: &'static dyn VerificationAlgorithm,
) -> Option<&'static dyn VerificationAlgorithm> {
    let curve = key.algorithm.parameters.as_ref()?.as_oid().ok()?;
    if curve == OID_EC_P256 {
        Some(p256)
    } else if curve == OID_NIST_EC_P384 {
        Some(p384)
    } else {
        None
    }
}
