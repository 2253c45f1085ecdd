//! Protocol constants: the format version, the domain-separation labels and
//! the size limits every parser enforces before it allocates.
//!
//! Owns numbers only. Changing any value here changes the wire contract
//! (docs/PROTOCOL.md) and needs a new format version.

/// The only format version this code writes and reads.
pub const FORMAT_VERSION: u8 = 1;

/// Prefix of the signed byte string (followed by one 0x00 byte), so a
/// signature over a bundle can never be mistaken for one over anything else
/// made with the same key.
pub const SIGN_LABEL: &[u8] = b"certzone bundle v1 sign";

/// HKDF info prefix and AEAD associated-data prefix for sealed keys
/// (RFC 5869 section 3.2: info binds the derived key to its use).
pub const SEAL_LABEL: &[u8] = b"certzone bundle v1 seal";

/// Most certificates in a chain, leaf included.
pub const MAX_CHAIN: usize = 8;
/// Largest DER certificate accepted.
pub const MAX_CERT_SIZE: usize = 16 * 1024;
/// Most workers (sealed keys) in one bundle.
pub const MAX_WORKERS: usize = 256;
/// Most names in one bundle.
pub const MAX_NAMES: usize = 100;
/// Longest name, in presentation form without the trailing dot.
pub const MAX_NAME_LEN: usize = 253;
/// Largest PKCS#8 private key that may be sealed (RSA 4096 fits).
pub const MAX_PRIVATE_KEY: usize = 4096;

/// Bytes in a key id (hex in the owner name: twice as many characters).
pub const KEY_ID_LEN: usize = 8;
/// Uncompressed SEC1 P-256 point: 0x04 || x || y.
pub const POINT_LEN: usize = 65;
/// AES-GCM tag.
pub const TAG_LEN: usize = 16;
/// ECDSA P-256 signature as r || s.
pub const SIG_LEN: usize = 64;
/// Longest TXT character-string (RFC 1035 section 3.3).
pub const TXT_CHUNK: usize = 255;

/// Largest sealed key blob: point, ciphertext of the largest key, tag.
pub const MAX_SEALED: usize = POINT_LEN + MAX_PRIVATE_KEY + TAG_LEN;
/// Largest manifest: fixed fields, the most and longest names, the most
/// key ids, signature.
pub const MAX_MANIFEST: usize =
    1 + 8 + 8 + 1 + MAX_NAMES * (1 + MAX_NAME_LEN) + 1 + 2 + MAX_WORKERS * KEY_ID_LEN + SIG_LEN;

/// Base64 length of `n` bytes (padded).
pub(crate) const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}
