//! Key material: the cluster signing key (ECDSA P-256) and the workers'
//! sealing keys (ECDH P-256), their PEM forms, and worker key ids.
//!
//! Pure functions over strings and bytes: writing key files, and their
//! permissions, is the caller's job. Private keys are PKCS#8 PEM
//! (RFC 5958), public keys SPKI PEM (RFC 5280); points are SEC1 uncompressed.

use std::fmt;

use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use p256::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rand_core::CryptoRngCore;
use sha2::{Digest as _, Sha256};
use zeroize::Zeroizing;

use super::error::BundleError;
use super::limits::{KEY_ID_LEN, POINT_LEN};

/// The cluster's signing key; only the master holds it.
pub type SigningKey = p256::ecdsa::SigningKey;
/// The public half of [`SigningKey`]; every worker pins it.
pub type VerifyingKey = p256::ecdsa::VerifyingKey;

/// A fresh cluster signing key.
pub fn generate_signing_key(rng: &mut impl CryptoRngCore) -> SigningKey {
    SigningKey::random(rng)
}

/// PKCS#8 PEM of the signing key (a secret: write it with care).
pub fn signing_key_to_pem(key: &SigningKey) -> Result<String, BundleError> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|_| BundleError::KeyFormat("signing key does not encode"))?;
    Ok(pem.to_string())
}

/// Parses a PKCS#8 PEM P-256 signing key.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, BundleError> {
    SigningKey::from_pkcs8_pem(pem)
        .map_err(|_| BundleError::KeyFormat("not a PKCS#8 PEM P-256 private key"))
}

/// SPKI PEM of the verifying key.
pub fn verifying_key_to_pem(key: &VerifyingKey) -> Result<String, BundleError> {
    key.to_public_key_pem(LineEnding::LF)
        .map_err(|_| BundleError::KeyFormat("verifying key does not encode"))
}

/// Parses an SPKI PEM P-256 public key to pin.
pub fn verifying_key_from_pem(pem: &str) -> Result<VerifyingKey, BundleError> {
    VerifyingKey::from_public_key_pem(pem)
        .map_err(|_| BundleError::KeyFormat("not an SPKI PEM P-256 public key"))
}

/// Every PKCS#8 PEM P-256 signing key in `text`, in file order (a master
/// signing with two keys during a rotation keeps both in one file).
pub fn signing_keys_from_pem(text: &str) -> Result<Vec<SigningKey>, BundleError> {
    pem_blocks(text)?
        .into_iter()
        .map(|block| signing_key_from_pem(&block))
        .collect()
}

/// Every SPKI PEM P-256 public key in `text`, in file order (the keys a
/// worker trusts).
pub fn verifying_keys_from_pem(text: &str) -> Result<Vec<VerifyingKey>, BundleError> {
    pem_blocks(text)?
        .into_iter()
        .map(|block| verifying_key_from_pem(&block))
        .collect()
}

/// The id a v2 bundle names a signer by: the first 8 bytes of SHA-256 over
/// the key's uncompressed SEC1 point, as for worker keys.
pub fn signing_key_id(key: &VerifyingKey) -> KeyId {
    let digest = Sha256::digest(key.to_encoded_point(false).as_bytes());
    let mut id = [0u8; KEY_ID_LEN];
    id.copy_from_slice(&digest[..KEY_ID_LEN]);
    KeyId(id)
}

/// The `-----BEGIN ...-----` to `-----END ...-----` blocks of `text`; at least one.
/// Held in `Zeroizing` strings: the blocks may be private keys.
fn pem_blocks(text: &str) -> Result<Vec<Zeroizing<String>>, BundleError> {
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("-----BEGIN ") {
        let after = &rest[start..];
        let Some(end_at) = after.find("-----END ") else {
            return Err(BundleError::KeyFormat("a PEM block has no END line"));
        };
        let line_end = after[end_at..]
            .find('\n')
            .map_or(after.len(), |n| end_at + n + 1);
        blocks.push(Zeroizing::new(after[..line_end].to_string()));
        rest = &after[line_end..];
    }
    if blocks.is_empty() {
        return Err(BundleError::KeyFormat("no PEM block"));
    }
    Ok(blocks)
}

/// A worker's key id: the first 8 bytes of SHA-256 over its uncompressed
/// SEC1 point. Shown as 16 lowercase hex digits, a valid DNS label.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KeyId(pub [u8; KEY_ID_LEN]);

impl KeyId {
    /// Parses the 16-hex-digit form (either case, as DNS labels are
    /// case-insensitive).
    pub fn from_hex(text: &str) -> Option<Self> {
        let bytes = text.as_bytes();
        if bytes.len() != 2 * KEY_ID_LEN {
            return None;
        }
        let mut id = [0u8; KEY_ID_LEN];
        for (out, pair) in id.iter_mut().zip(bytes.chunks(2)) {
            *out = hex_val(pair[0])? << 4 | hex_val(pair[1])?;
        }
        Some(Self(id))
    }
}

fn hex_val(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

/// A worker's public sealing key, as the master lists it.
#[derive(Clone, PartialEq, Eq)]
pub struct WorkerPublicKey(pub(crate) p256::PublicKey);

impl WorkerPublicKey {
    /// Uncompressed SEC1 point (65 bytes).
    pub fn sec1(&self) -> [u8; POINT_LEN] {
        let point = self.0.to_encoded_point(false);
        let mut out = [0u8; POINT_LEN];
        // local invariant: an uncompressed P-256 point is always 65 bytes
        out.copy_from_slice(point.as_bytes());
        out
    }

    /// The id that names this worker's record in the bundle.
    pub fn key_id(&self) -> KeyId {
        let digest = Sha256::digest(self.sec1());
        let mut id = [0u8; KEY_ID_LEN];
        id.copy_from_slice(&digest[..KEY_ID_LEN]);
        KeyId(id)
    }

    /// SPKI PEM.
    pub fn to_pem(&self) -> Result<String, BundleError> {
        self.0
            .to_public_key_pem(LineEnding::LF)
            .map_err(|_| BundleError::KeyFormat("worker public key does not encode"))
    }

    /// Parses SPKI PEM of a P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, BundleError> {
        p256::PublicKey::from_public_key_pem(pem)
            .map(Self)
            .map_err(|_| BundleError::KeyFormat("not an SPKI PEM P-256 public key"))
    }
}

impl fmt::Debug for WorkerPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerPublicKey({})", self.key_id())
    }
}

/// A worker's secret sealing key; only that worker holds it. Its public half is kept
/// beside it: deriving it is a scalar multiplication, and a worker needs it (and its key
/// id) for every bundle it opens.
#[derive(Clone)]
pub struct WorkerSecretKey {
    pub(crate) secret: p256::SecretKey,
    public: WorkerPublicKey,
}

impl WorkerSecretKey {
    fn from_secret(secret: p256::SecretKey) -> Self {
        let public = WorkerPublicKey(secret.public_key());
        Self { secret, public }
    }

    /// A fresh worker key pair.
    pub fn generate(rng: &mut impl CryptoRngCore) -> Self {
        Self::from_secret(p256::SecretKey::random(rng))
    }

    /// The public half, to give to the master.
    pub fn public_key(&self) -> WorkerPublicKey {
        self.public.clone()
    }

    /// This worker's key id.
    pub fn key_id(&self) -> KeyId {
        self.public.key_id()
    }

    /// PKCS#8 PEM (a secret: write it with care).
    pub fn to_pem(&self) -> Result<String, BundleError> {
        let pem = self
            .secret
            .to_pkcs8_pem(LineEnding::LF)
            .map_err(|_| BundleError::KeyFormat("worker secret key does not encode"))?;
        Ok(pem.to_string())
    }

    /// Parses PKCS#8 PEM of a P-256 key.
    pub fn from_pem(pem: &str) -> Result<Self, BundleError> {
        p256::SecretKey::from_pkcs8_pem(pem)
            .map(Self::from_secret)
            .map_err(|_| BundleError::KeyFormat("not a PKCS#8 PEM P-256 private key"))
    }
}

impl fmt::Debug for WorkerSecretKey {
    // never print the scalar
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkerSecretKey({})", self.key_id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn pem_round_trips() {
        let sk = generate_signing_key(&mut OsRng);
        let back = signing_key_from_pem(&signing_key_to_pem(&sk).unwrap()).unwrap();
        assert_eq!(back, sk);
        let vk = *sk.verifying_key();
        assert_eq!(
            verifying_key_from_pem(&verifying_key_to_pem(&vk).unwrap()).unwrap(),
            vk
        );
        let wk = WorkerSecretKey::generate(&mut OsRng);
        let back = WorkerSecretKey::from_pem(&wk.to_pem().unwrap()).unwrap();
        assert_eq!(back.key_id(), wk.key_id());
        let wp = WorkerPublicKey::from_pem(&wk.public_key().to_pem().unwrap()).unwrap();
        assert_eq!(wp, wk.public_key());
    }

    #[test]
    fn several_keys_in_one_file() {
        let a = generate_signing_key(&mut OsRng);
        let b = generate_signing_key(&mut OsRng);
        let both = format!(
            "{}\n# comment\n{}",
            signing_key_to_pem(&a).unwrap().as_str(),
            signing_key_to_pem(&b).unwrap().as_str()
        );
        let keys = signing_keys_from_pem(&both).unwrap();
        assert_eq!(keys, vec![a.clone(), b.clone()]);
        let pubs = format!(
            "{}{}",
            verifying_key_to_pem(a.verifying_key()).unwrap(),
            verifying_key_to_pem(b.verifying_key()).unwrap()
        );
        let pinned = verifying_keys_from_pem(&pubs).unwrap();
        assert_eq!(pinned, vec![*a.verifying_key(), *b.verifying_key()]);
        assert_ne!(signing_key_id(&pinned[0]), signing_key_id(&pinned[1]));
        assert!(verifying_keys_from_pem("nothing here").is_err());
        assert!(
            signing_keys_from_pem(&pubs).is_err(),
            "public keys are not signing keys"
        );
    }

    #[test]
    fn key_id_hex_round_trips() {
        let id = WorkerSecretKey::generate(&mut OsRng).key_id();
        let text = id.to_string();
        assert_eq!(text.len(), 16);
        assert_eq!(KeyId::from_hex(&text), Some(id));
        assert_eq!(KeyId::from_hex(&text.to_uppercase()), Some(id));
        assert_eq!(KeyId::from_hex("zz"), None);
        assert!(
            format!("{:?}", WorkerSecretKey::generate(&mut OsRng)).starts_with("WorkerSecretKey(")
        );
    }
}
