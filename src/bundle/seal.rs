//! Sealing the leaf's private key to one worker: ephemeral-static ECDH on
//! P-256 (SEC1 section 3.3.1, the shared secret is the x-coordinate), HKDF-SHA256
//! (RFC 5869) to an AES-256-GCM key and nonce, and associated data binding the
//! ciphertext to the format version, the bundle version and the worker id.
//!
//! Owns the sealed blob only. It must not look at records or certificates;
//! the blob is opaque to everything but this file.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use hkdf::Hkdf;
use p256::ecdh::diffie_hellman;
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
#[cfg(test)]
use rand_core::CryptoRngCore;
use sha2::Sha256;
use zeroize::{Zeroize as _, Zeroizing};

use super::error::BundleError;
use super::keys::{KeyId, WorkerPublicKey, WorkerSecretKey};
use super::limits::{FORMAT_V1, POINT_LEN, SEAL_LABEL, SEAL_LABEL_V2, TAG_LEN};
use super::wire::Writer;

/// What a sealed key is bound to besides the worker's key pair.
#[derive(Clone, Copy)]
pub(crate) struct SealContext {
    pub(crate) format: u8,
    pub(crate) version: u64,
    pub(crate) id: KeyId,
}

impl SealContext {
    /// HKDF info and AEAD associated data: label || format || version || id, the label
    /// naming the format too.
    fn bound_bytes(self) -> Vec<u8> {
        let mut w = Writer::default();
        w.bytes(if self.format == FORMAT_V1 {
            SEAL_LABEL
        } else {
            SEAL_LABEL_V2
        });
        w.u8(self.format);
        w.u64(self.version);
        w.bytes(&self.id.0);
        w.0
    }
}

/// Seals `secret` to `worker`: `ephemeral point (65) || ciphertext || tag (16)`.
#[cfg(test)]
pub(crate) fn seal(
    secret: &[u8],
    worker: &WorkerPublicKey,
    at: (u8, u64),
    rng: &mut impl CryptoRngCore,
) -> Vec<u8> {
    seal_with(secret, worker, at, &p256::SecretKey::random(rng))
}

/// [`seal`] with the ephemeral key drawn by the caller (so draws stay in a fixed order
/// while the curve arithmetic runs on several threads).
/// `at` is the bundle's (format, version).
#[cfg(test)]
pub(crate) fn seal_with(
    secret: &[u8],
    worker: &WorkerPublicKey,
    at: (u8, u64),
    ephemeral: &p256::SecretKey,
) -> Vec<u8> {
    seal_padded(secret, worker, at, &SealPad::new(worker, ephemeral))
}

/// The part of a seal to one worker that does not depend on the secret: the ephemeral
/// point and the ECDH secret with the worker's key, that is both scalar multiplications a
/// seal costs. Made ahead, so a renewal seals with a hash and an AES-GCM per worker. Each
/// pad seals once: the ephemeral key is fresh for every seal, as with [`seal`]. The shared
/// secret is wiped when the pad is dropped; it never leaves the process.
pub(crate) struct SealPad {
    eph_point: [u8; POINT_LEN],
    shared_x: Zeroizing<[u8; 32]>,
}

impl SealPad {
    pub(crate) fn new(worker: &WorkerPublicKey, ephemeral: &p256::SecretKey) -> Self {
        let mut eph_point = [0u8; POINT_LEN];
        // local invariant: an uncompressed P-256 point is always 65 bytes
        eph_point.copy_from_slice(ephemeral.public_key().to_encoded_point(false).as_bytes());
        let shared = diffie_hellman(ephemeral.to_nonzero_scalar(), worker.0.as_affine());
        let mut shared_x = Zeroizing::new([0u8; 32]);
        shared_x.copy_from_slice(shared.raw_secret_bytes());
        Self {
            eph_point,
            shared_x,
        }
    }
}

/// Seals `secret` to `worker` with `pad`, which must have been made for `worker`.
pub(crate) fn seal_padded(
    secret: &[u8],
    worker: &WorkerPublicKey,
    at: (u8, u64),
    pad: &SealPad,
) -> Vec<u8> {
    let ctx = SealContext {
        format: at.0,
        version: at.1,
        id: worker.key_id(),
    };
    let cipher = derive(pad.shared_x.as_ref(), &pad.eph_point, &worker.sec1(), ctx);
    let mut out = pad.eph_point.to_vec();
    out.extend(cipher.seal(secret));
    out
}

/// Opens a blob made by [`seal`] for `me`, `at` the bundle's (format, version); any
/// failure is `UnsealFailed`. The plaintext is wiped when dropped.
pub(crate) fn unseal(
    blob: &[u8],
    me: &WorkerSecretKey,
    at: (u8, u64),
) -> Result<Zeroizing<Vec<u8>>, BundleError> {
    if blob.len() < POINT_LEN + TAG_LEN {
        return Err(BundleError::UnsealFailed);
    }
    let (eph_bytes, sealed) = blob.split_at(POINT_LEN);
    let ctx = SealContext {
        format: at.0,
        version: at.1,
        id: me.key_id(),
    };
    let me_point = me.public_key().sec1();
    static_ecdh(me, eph_bytes, |shared_x| {
        derive(shared_x, eph_bytes, &me_point, ctx)
    })?
    .open(sealed)
}

/// `kdf` of x(w * E) for the worker's static secret w and the uncompressed point E (a
/// point not on the curve is `UnsealFailed`), computed by ring.
///
/// Every worker opens its key at the same moment of a renewal, and ring's P-256 is about
/// seven times faster than the pure-Rust curve (90 against 620 us here). ring only offers
/// ECDH with a key it generates, so the key is "generated" from a source that yields w's
/// bytes: ring takes the first draw that is a valid scalar, and w is one. The source is
/// ring's deprecated test helper, pinned by Cargo.lock; the unit test below checks the
/// result against the `p256` crate's.
fn static_ecdh<R>(
    me: &WorkerSecretKey,
    point: &[u8],
    kdf: impl FnOnce(&[u8]) -> R,
) -> Result<R, BundleError> {
    use ring::agreement::{self, ECDH_P256, EphemeralPrivateKey, UnparsedPublicKey};
    let secret: Zeroizing<[u8; 32]> = Zeroizing::new(me.secret.to_bytes().into());
    #[allow(deprecated)]
    let source = ring::test::rand::FixedSliceRandom {
        bytes: secret.as_slice(),
    };
    let key = EphemeralPrivateKey::generate(&ECDH_P256, &source)
        .map_err(|_| BundleError::UnsealFailed)?;
    agreement::agree_ephemeral(key, &UnparsedPublicKey::new(&ECDH_P256, point), kdf)
        .map_err(|_| BundleError::UnsealFailed)
}

/// The AEAD key, nonce and associated data for one sealed blob; key and nonce are wiped
/// when dropped.
struct Sealer {
    key: [u8; 32],
    nonce: [u8; 12],
    aad: Vec<u8>,
}

impl Drop for Sealer {
    fn drop(&mut self) {
        self.key.zeroize();
        self.nonce.zeroize();
    }
}

/// HKDF-SHA256: salt = ephemeral point || worker point, IKM = ECDH x, info =
/// the bound bytes; 44 bytes out = AES key (32) || GCM nonce (12). The key is
/// fresh for every seal, so a derived nonce is never reused under one key.
fn derive(shared_x: &[u8], eph_point: &[u8], worker_point: &[u8], ctx: SealContext) -> Sealer {
    let salt = [eph_point, worker_point].concat();
    let info = ctx.bound_bytes();
    let mut okm = Zeroizing::new([0u8; 44]);
    // local invariant: 44 bytes is far below HKDF-SHA256's 255*32 limit
    Hkdf::<Sha256>::new(Some(&salt), shared_x)
        .expand(&info, okm.as_mut())
        .expect("44 bytes is a valid HKDF-SHA256 length");
    let (key, nonce) = okm.split_at(32);
    Sealer {
        key: key.try_into().expect("split at 32"),
        nonce: nonce.try_into().expect("44 - 32 = 12"),
        aad: info,
    }
}

impl Sealer {
    fn cipher(&self) -> Aes256Gcm {
        // local invariant: the key is exactly 32 bytes
        Aes256Gcm::new_from_slice(&self.key).expect("32-byte key")
    }

    fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let payload = Payload {
            msg: plain,
            aad: &self.aad,
        };
        // local invariant: AES-GCM encryption only fails past 64 GiB
        self.cipher()
            .encrypt(&Nonce::from(self.nonce), payload)
            .expect("sealed keys are small")
    }

    fn open(&self, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, BundleError> {
        let payload = Payload {
            msg: sealed,
            aad: &self.aad,
        };
        self.cipher()
            .decrypt(&Nonce::from(self.nonce), payload)
            .map(Zeroizing::new)
            .map_err(|_| BundleError::UnsealFailed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::OsRng;

    #[test]
    fn seals_and_opens_only_for_its_worker_and_version() {
        let me = WorkerSecretKey::generate(&mut OsRng);
        let other = WorkerSecretKey::generate(&mut OsRng);
        let blob = seal(b"secret pkcs8", &me.public_key(), (2, 7), &mut OsRng);
        assert_eq!(
            unseal(&blob, &me, (2, 7)).unwrap().as_slice(),
            b"secret pkcs8"
        );
        assert_eq!(
            unseal(&blob, &other, (2, 7)),
            Err(BundleError::UnsealFailed)
        );
        assert_eq!(unseal(&blob, &me, (2, 8)), Err(BundleError::UnsealFailed));
        assert_eq!(
            unseal(&blob, &me, (1, 7)),
            Err(BundleError::UnsealFailed),
            "format bound"
        );
        assert_eq!(
            unseal(&blob[..70], &me, (2, 7)),
            Err(BundleError::UnsealFailed)
        );
    }

    #[test]
    fn ring_ecdh_with_the_static_key_agrees_with_the_p256_crate() {
        for _ in 0..50 {
            let me = WorkerSecretKey::generate(&mut OsRng);
            let eph = p256::SecretKey::random(&mut OsRng);
            let point = eph.public_key().to_encoded_point(false);
            let ours = static_ecdh(&me, point.as_bytes(), <[u8]>::to_vec).unwrap();
            let theirs = diffie_hellman(eph.to_nonzero_scalar(), me.public_key().0.as_affine());
            assert_eq!(ours[..], theirs.raw_secret_bytes()[..]);
        }
        let me = WorkerSecretKey::generate(&mut OsRng);
        let mut off_curve = [4u8; POINT_LEN];
        off_curve[1] = 7;
        assert!(static_ecdh(&me, &off_curve, <[u8]>::to_vec).is_err());
        let compressed = me.public_key().0.to_encoded_point(true);
        assert!(static_ecdh(&me, compressed.as_bytes(), <[u8]>::to_vec).is_err());
    }
}
