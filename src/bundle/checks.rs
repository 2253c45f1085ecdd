//! The reader rules that look inside certificates: chain links, roots,
//! the leaf's validity and names, and that a private key is the leaf's.
//!
//! Owns those rules only, each failing with its own `BundleError`. It must
//! not parse records or verify the bundle signature; the publisher runs the
//! same checks (bar the clock) so it never signs what a worker will refuse.

use ring::rand::SystemRandom;
use ring::signature::{self as sig, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair};

use super::certs::{self, LeafFacts};
use super::error::BundleError;
use super::names::{any_covers, canonical};

/// Each certificate is issued and signed by the next one (leaf first).
pub(crate) fn check_links(chain: &[Vec<u8>]) -> Result<(), BundleError> {
    let parsed = chain
        .iter()
        .enumerate()
        .map(|(i, der)| certs::parse(der, i))
        .collect::<Result<Vec<_>, _>>()?;
    for (position, pair) in parsed.windows(2).enumerate() {
        if !certs::issued_by(&pair[0], &pair[1]) {
            return Err(BundleError::ChainBroken { position });
        }
    }
    Ok(())
}

/// With roots configured, the last chain certificate is one of them or is
/// issued by one of them. No roots: nothing to check.
pub(crate) fn check_roots(chain: &[Vec<u8>], roots: &[Vec<u8>]) -> Result<(), BundleError> {
    let Some(last_der) = chain.last() else {
        return Err(BundleError::UntrustedRoot);
    };
    if roots.is_empty() || roots.contains(last_der) {
        return Ok(());
    }
    let last = certs::parse(last_der, chain.len() - 1)?;
    let reached = roots
        .iter()
        .filter_map(|der| certs::parse(der, 0).ok())
        .any(|root| certs::issued_by(&last, &root));
    if reached {
        Ok(())
    } else {
        Err(BundleError::UntrustedRoot)
    }
}

/// The leaf is inside [notBefore, notAfter] at `now` (both ends inclusive,
/// as RFC 5280 section 4.1.2.5 defines the period).
pub(crate) fn check_validity(leaf: &LeafFacts, now: u64) -> Result<(), BundleError> {
    let now_signed = i64::try_from(now).unwrap_or(i64::MAX);
    if now_signed < leaf.not_before {
        return Err(BundleError::LeafNotYetValid {
            not_before: leaf.not_before,
            now,
        });
    }
    if now_signed > leaf.not_after {
        return Err(BundleError::LeafExpired {
            not_after: leaf.not_after,
            now,
        });
    }
    Ok(())
}

/// Every bundle name is covered by a leaf dNSName.
pub(crate) fn check_leaf_names(leaf: &LeafFacts, names: &[String]) -> Result<(), BundleError> {
    match names.iter().find(|n| !any_covers(&leaf.dns_names, n)) {
        Some(name) => Err(BundleError::LeafNameMismatch(name.clone())),
        None => Ok(()),
    }
}

/// Every name the node serves is covered by a bundle name.
pub(crate) fn check_required_names(
    names: &[String],
    required: &[String],
) -> Result<(), BundleError> {
    for wanted in required {
        let covered = canonical(wanted).is_some_and(|w| any_covers(names, &w));
        if !covered {
            return Err(BundleError::NameNotCovered(wanted.clone()));
        }
    }
    Ok(())
}

/// The PKCS#8 key's public half equals the leaf's subjectPublicKey.
pub(crate) fn check_key_matches(leaf_der: &[u8], pkcs8: &[u8]) -> Result<(), BundleError> {
    let leaf = certs::parse(leaf_der, 0)?;
    let want: &[u8] = &leaf.public_key().subject_public_key.data;
    match public_of(pkcs8) {
        Some(got) if got == want => Ok(()),
        _ => Err(BundleError::KeyMismatch),
    }
}

/// The subjectPublicKey bytes of a PKCS#8 key: the SEC1 point for ECDSA,
/// the raw key for Ed25519, RSAPublicKey DER for RSA (the same bytes the
/// certificate's SPKI BIT STRING holds).
fn public_of(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let rng = SystemRandom::new();
    let curves = [
        &sig::ECDSA_P256_SHA256_ASN1_SIGNING,
        &sig::ECDSA_P384_SHA384_ASN1_SIGNING,
    ];
    for alg in curves {
        if let Ok(pair) = EcdsaKeyPair::from_pkcs8(alg, pkcs8, &rng) {
            return Some(pair.public_key().as_ref().to_vec());
        }
    }
    if let Ok(pair) = Ed25519KeyPair::from_pkcs8_maybe_unchecked(pkcs8) {
        return Some(pair.public_key().as_ref().to_vec());
    }
    let pair = RsaKeyPair::from_pkcs8(pkcs8).ok()?;
    Some(pair.public_key().as_ref().to_vec())
}
