//! The canonical signed byte string and the ECDSA P-256 signatures over it
//! (docs/PROTOCOL.md, "Signed bytes and signatures"): one by the pinned key
//! in format 1, one per signing key in format 2 (key rotation).
//!
//! Owns signing and verifying. It must not parse records or certificates:
//! it signs their bytes as given.

use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer as _;

use super::error::BundleError;
use super::keys::{KeyId, SigningKey, VerifyingKey, signing_key_id};
use super::limits::{SIG_LEN, SIGN_LABEL, SIGN_LABEL_V2};
use super::manifest::Manifest;
use super::wire::Writer;

/// The bundle's content in the order it is signed.
pub(crate) struct Content<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) chain: &'a [Vec<u8>],
    /// sorted by key id
    pub(crate) keys: &'a [(KeyId, Vec<u8>)],
}

/// label || 0x00 || manifest body || each cert (u32 len || DER) || each key
/// (id || u16 len || blob), keys in ascending id order.
pub(crate) fn signed_bytes(content: &Content<'_>) -> Vec<u8> {
    let mut w = Writer::default();
    let label = match content.manifest.v2 {
        Some(_) => SIGN_LABEL_V2,
        None => SIGN_LABEL,
    };
    w.bytes(label);
    w.u8(0);
    w.bytes(&content.manifest.body());
    for cert in content.chain {
        // local invariant: certificates are capped at MAX_CERT_SIZE
        w.u32(cert.len() as u32);
        w.bytes(cert);
    }
    for (id, blob) in content.keys {
        w.bytes(&id.0);
        // local invariant: sealed blobs are capped at MAX_SEALED
        w.u16(blob.len() as u16);
        w.bytes(blob);
    }
    w.0
}

/// The manifest record payload: body || one signature per key, in the
/// order of the manifest's signer ids (format 1: the one key). The caller
/// passes the keys in that order.
pub(crate) fn sign(content: &Content<'_>, keys: &[&SigningKey]) -> Vec<u8> {
    let bytes = signed_bytes(content);
    let mut out = content.manifest.body();
    for key in keys {
        let sig: Signature = key.sign(&bytes);
        // low-S so there is one signature encoding per signer and content
        let sig = sig.normalize_s().unwrap_or(sig);
        out.extend_from_slice(&sig.to_bytes());
    }
    out
}

/// Checks the signatures against the pinned keys and returns the ids of the
/// pinned keys whose signature verified. Format 1: its one signature must
/// verify under one pinned key. Format 2: every signature by a pinned key
/// must verify, and there must be at least one; signatures by other keys
/// are not looked at.
pub(crate) fn verify(
    content: &Content<'_>,
    sigs: &[[u8; SIG_LEN]],
    pinned: &[VerifyingKey],
) -> Result<Vec<KeyId>, BundleError> {
    let bytes = signed_bytes(content);
    let Some(v2) = &content.manifest.v2 else {
        let sig = sigs.first().ok_or(BundleError::BadSignature)?;
        return pinned
            .iter()
            .find(|key| verify_one(&bytes, sig, key))
            .map(|key| vec![signing_key_id(key)])
            .ok_or(BundleError::BadSignature);
    };
    let mut verified = Vec::new();
    for (id, sig) in v2.signers.iter().zip(sigs) {
        let Some(key) = pinned.iter().find(|k| signing_key_id(k) == *id) else {
            continue;
        };
        if !verify_one(&bytes, sig, key) {
            return Err(BundleError::BadSignature);
        }
        verified.push(*id);
    }
    if verified.is_empty() {
        let signers = v2.signers.iter().map(ToString::to_string).collect();
        return Err(BundleError::UnknownSigner(signers));
    }
    Ok(verified)
}

/// One signature, r and s in [1, n-1] and low-S, over `bytes` under `key`.
fn verify_one(bytes: &[u8], sig: &[u8; SIG_LEN], key: &VerifyingKey) -> bool {
    let Ok(parsed) = Signature::from_slice(sig) else {
        return false;
    };
    if parsed.normalize_s().is_some() {
        return false;
    }
    // ring's P-256 arithmetic is several times faster than the pure-Rust curve, and every
    // worker verifies every bundle at the same moment.
    let point = key.to_encoded_point(false);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        point.as_bytes(),
    )
    .verify(bytes, sig)
    .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::manifest::V2Fields;
    use rand_core::OsRng;

    fn manifest(signers: &[&SigningKey]) -> Manifest {
        let mut ids: Vec<KeyId> = signers
            .iter()
            .map(|k| signing_key_id(k.verifying_key()))
            .collect();
        ids.sort();
        Manifest {
            version: 3,
            not_after: 1_900_000_000,
            names: vec!["example.test".into()],
            chain_count: 1,
            workers: vec![],
            v2: Some(V2Fields {
                minimum_format: 2,
                published: 1,
                zone: b"\x04test\x00".to_vec(),
                cluster_id: String::new(),
                signers: ids,
            }),
        }
    }

    fn signed(m: &Manifest, keys: &[&SigningKey]) -> Vec<[u8; SIG_LEN]> {
        let mut keys = keys.to_vec();
        keys.sort_by_key(|k| signing_key_id(k.verifying_key()));
        let chain = vec![vec![1u8]];
        let content = Content {
            manifest: m,
            chain: &chain,
            keys: &[],
        };
        let payload = sign(&content, &keys);
        Manifest::decode(&payload).unwrap().1
    }

    #[test]
    fn any_pinned_signer_is_enough_and_every_pinned_one_must_verify() {
        let (a, b) = (
            SigningKey::random(&mut OsRng),
            SigningKey::random(&mut OsRng),
        );
        let m = manifest(&[&a, &b]);
        let sigs = signed(&m, &[&a, &b]);
        let chain = vec![vec![1u8]];
        let content = Content {
            manifest: &m,
            chain: &chain,
            keys: &[],
        };
        let only_b = [*b.verifying_key()];
        assert_eq!(
            verify(&content, &sigs, &only_b).unwrap(),
            vec![signing_key_id(b.verifying_key())]
        );
        let both = [*a.verifying_key(), *b.verifying_key()];
        assert_eq!(verify(&content, &sigs, &both).unwrap().len(), 2);
        let stranger = [*SigningKey::random(&mut OsRng).verifying_key()];
        assert!(matches!(
            verify(&content, &sigs, &stranger),
            Err(BundleError::UnknownSigner(_))
        ));
        let mut broken = sigs;
        broken[1][5] ^= 1;
        assert!(
            verify(&content, &broken, &both).is_err(),
            "a pinned signer's bad signature fails the bundle"
        );
    }

    #[test]
    fn high_s_is_refused() {
        let a = SigningKey::random(&mut OsRng);
        let m = manifest(&[&a]);
        let sigs = signed(&m, &[&a]);
        let sig = Signature::from_slice(&sigs[0]).unwrap();
        let high = Signature::from_scalars(sig.r(), -*sig.s()).unwrap();
        let chain = vec![vec![1u8]];
        let content = Content {
            manifest: &m,
            chain: &chain,
            keys: &[],
        };
        let pinned = [*a.verifying_key()];
        assert!(verify(&content, &sigs, &pinned).is_ok());
        let high_bytes: [u8; SIG_LEN] = high.to_bytes().into();
        assert_eq!(
            verify(&content, &[high_bytes], &pinned),
            Err(BundleError::BadSignature)
        );
    }
}
