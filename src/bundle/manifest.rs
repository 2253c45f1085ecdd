//! The manifest record's payload and the canonical signed byte string.
//!
//! Owns the byte layout of both (docs/PROTOCOL.md, "Manifest" and "Signed
//! bytes") and the ECDSA P-256 signature over them. It must not interpret
//! certificates or open sealed keys: it signs their bytes as given.

use p256::ecdsa::Signature;
use p256::ecdsa::signature::Signer as _;

use super::error::BundleError;
use super::keys::{KeyId, SigningKey, VerifyingKey};
use super::limits::{
    FORMAT_VERSION, KEY_ID_LEN, MAX_CHAIN, MAX_NAMES, MAX_WORKERS, SIG_LEN, SIGN_LABEL,
};
use super::names::canonical;
use super::wire::{Reader, Writer};

const WHAT: &str = "manifest";

/// Everything the manifest record states, signature aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Manifest {
    pub(crate) version: u64,
    pub(crate) not_after: u64,
    /// canonical, strictly ascending
    pub(crate) names: Vec<String>,
    pub(crate) chain_count: u8,
    /// ids of the workers with a sealed key, strictly ascending: listed so
    /// a reader that fetches records one query at a time knows their names
    pub(crate) workers: Vec<KeyId>,
}

/// The bundle's content in the order it is signed.
pub(crate) struct Content<'a> {
    pub(crate) manifest: &'a Manifest,
    pub(crate) chain: &'a [Vec<u8>],
    /// sorted by key id
    pub(crate) keys: &'a [(KeyId, Vec<u8>)],
}

impl Manifest {
    /// format || version || not_after || names || chain count || worker
    /// count || worker key ids
    fn body(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(FORMAT_VERSION);
        w.u64(self.version);
        w.u64(self.not_after);
        // local invariant: publish and decode cap names at MAX_NAMES (< 256)
        w.u8(self.names.len() as u8);
        for name in &self.names {
            // local invariant: canonical names are at most 253 bytes
            w.u8(name.len() as u8);
            w.bytes(name.as_bytes());
        }
        w.u8(self.chain_count);
        // local invariant: publish and decode cap workers at MAX_WORKERS
        w.u16(self.workers.len() as u16);
        for id in &self.workers {
            w.bytes(&id.0);
        }
        w.0
    }

    /// Parses a manifest payload into the manifest and its raw signature.
    /// The format byte is read first so an unknown format is reported as
    /// such, not as a parse error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, [u8; SIG_LEN]), BundleError> {
        let mut r = Reader::new(bytes, WHAT);
        let format = r.u8()?;
        if format != FORMAT_VERSION {
            return Err(BundleError::UnknownFormat(format));
        }
        let version = r.u64()?;
        let not_after = r.u64()?;
        let names = decode_names(&mut r)?;
        let chain_count = r.u8()?;
        let workers = decode_workers(&mut r)?;
        let sig = r.array::<SIG_LEN>()?;
        r.finish()?;
        let manifest = Self {
            version,
            not_after,
            names,
            chain_count,
            workers,
        };
        manifest.check_counts()?;
        Ok((manifest, sig))
    }

    fn check_counts(&self) -> Result<(), BundleError> {
        let chain = usize::from(self.chain_count);
        if chain == 0 {
            return Err(BundleError::malformed(WHAT, "empty chain"));
        }
        check_limit("chain length", chain, MAX_CHAIN)
    }

    /// The manifest record payload: body || signature over [`signed_bytes`].
    pub(crate) fn sign(content: &Content<'_>, key: &SigningKey) -> Vec<u8> {
        let sig: Signature = key.sign(&signed_bytes(content));
        // low-S so there is one signature encoding per signer and content
        let sig = sig.normalize_s().unwrap_or(sig);
        let mut out = content.manifest.body();
        out.extend_from_slice(&sig.to_bytes());
        out
    }
}

pub(crate) fn check_limit(what: &'static str, got: usize, limit: usize) -> Result<(), BundleError> {
    if got > limit {
        return Err(BundleError::TooLarge { what, got, limit });
    }
    Ok(())
}

fn decode_names(r: &mut Reader<'_>) -> Result<Vec<String>, BundleError> {
    let count = usize::from(r.u8()?);
    check_limit("name count", count, MAX_NAMES)?;
    if count == 0 {
        return Err(BundleError::malformed(WHAT, "no names"));
    }
    let mut names: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let len = usize::from(r.u8()?);
        let name = decode_name(r.take(len)?)?;
        if names.last().is_some_and(|prev| *prev >= name) {
            return Err(BundleError::malformed(WHAT, "names not strictly ascending"));
        }
        names.push(name);
    }
    Ok(names)
}

/// W, then W key ids; W is checked against the limit before anything is
/// allocated for the ids.
fn decode_workers(r: &mut Reader<'_>) -> Result<Vec<KeyId>, BundleError> {
    let count = usize::from(r.u16()?);
    check_limit("worker count", count, MAX_WORKERS)?;
    let mut ids: Vec<KeyId> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = KeyId(r.array::<KEY_ID_LEN>()?);
        if ids.last().is_some_and(|prev| *prev >= id) {
            return Err(BundleError::malformed(
                WHAT,
                "key ids not strictly ascending",
            ));
        }
        ids.push(id);
    }
    Ok(ids)
}

fn decode_name(bytes: &[u8]) -> Result<String, BundleError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| BundleError::malformed(WHAT, "name not ascii"))?;
    match canonical(text) {
        Some(name) if name == text => Ok(name),
        _ => Err(BundleError::malformed(WHAT, "name not canonical")),
    }
}

/// The canonical signed byte string:
/// label || 0x00 || manifest body || each cert (u32 len || DER) || each key
/// (id || u16 len || blob), keys in ascending id order.
pub(crate) fn signed_bytes(content: &Content<'_>) -> Vec<u8> {
    let mut w = Writer::default();
    w.bytes(SIGN_LABEL);
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

/// Checks `sig` over `content` with the pinned key; a high-S signature is
/// refused like a wrong one.
pub(crate) fn verify(
    content: &Content<'_>,
    sig: &[u8; SIG_LEN],
    pinned: &VerifyingKey,
) -> Result<(), BundleError> {
    let parsed = Signature::from_slice(sig).map_err(|_| BundleError::BadSignature)?;
    if parsed.normalize_s().is_some() {
        return Err(BundleError::BadSignature);
    }
    // ring's P-256 arithmetic is several times faster than the pure-Rust curve, and every
    // worker verifies every bundle at the same moment.
    let point = pinned.to_encoded_point(false);
    ring::signature::UnparsedPublicKey::new(
        &ring::signature::ECDSA_P256_SHA256_FIXED,
        point.as_bytes(),
    )
    .verify(&signed_bytes(content), sig)
    .map_err(|_| BundleError::BadSignature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    fn sample() -> Manifest {
        Manifest {
            version: 3,
            not_after: 1_900_000_000,
            names: vec!["*.example.test".into(), "example.test".into()],
            chain_count: 2,
            workers: vec![KeyId([1; 8]), KeyId([2; 8])],
        }
    }

    #[test]
    fn sign_decode_verify() {
        let key = SigningKey::random(&mut OsRng);
        let m = sample();
        let chain = vec![vec![1u8, 2], vec![3u8]];
        let content = Content {
            manifest: &m,
            chain: &chain,
            keys: &[],
        };
        let payload = Manifest::sign(&content, &key);
        let (back, sig) = Manifest::decode(&payload).unwrap();
        assert_eq!(back, m);
        verify(&content, &sig, key.verifying_key()).unwrap();
        let other = SigningKey::random(&mut OsRng);
        assert_eq!(
            verify(&content, &sig, other.verifying_key()),
            Err(BundleError::BadSignature)
        );
    }

    #[test]
    fn format_byte_is_checked_first() {
        assert_eq!(Manifest::decode(&[2]), Err(BundleError::UnknownFormat(2)));
        assert!(matches!(
            Manifest::decode(&[]),
            Err(BundleError::Malformed { .. })
        ));
    }

    #[test]
    fn key_ids_must_ascend_and_are_capped() {
        let key = SigningKey::random(&mut OsRng);
        let mut m = sample();
        m.workers.reverse();
        let content = Content {
            manifest: &m,
            chain: &[],
            keys: &[],
        };
        let err = Manifest::decode(&Manifest::sign(&content, &key)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "key ids not strictly ascending")
        );
        m.workers = (0..=MAX_WORKERS as u16)
            .map(|i| KeyId([0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8]))
            .collect();
        let content = Content {
            manifest: &m,
            chain: &[],
            keys: &[],
        };
        let err = Manifest::decode(&Manifest::sign(&content, &key)).unwrap_err();
        assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
    }
}
