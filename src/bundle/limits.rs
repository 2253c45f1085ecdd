//! Protocol constants: the format versions, the domain-separation labels and
//! the size limits every parser enforces before it allocates.
//!
//! Owns numbers only. Changing any value here changes the wire contract
//! (docs/PROTOCOL.md) and needs a new format version.

/// Format 1: one signature, nothing about the zone or the cluster signed.
pub const FORMAT_V1: u8 = 1;
/// Format 2: zone name, cluster id, publication time and minimum format signed; one or
/// more signatures.
pub const FORMAT_V2: u8 = 2;
/// The format the publisher writes unless told otherwise.
pub const FORMAT_VERSION: u8 = FORMAT_V2;

/// Prefix of the v1 signed byte string (followed by one 0x00 byte), so a
/// signature over a bundle can never be mistaken for one over anything else
/// made with the same key.
pub const SIGN_LABEL: &[u8] = b"certzone bundle v1 sign";
/// The same for format 2.
pub const SIGN_LABEL_V2: &[u8] = b"certzone bundle v2 sign";

/// HKDF info prefix and AEAD associated-data prefix for v1 sealed keys
/// (RFC 5869 section 3.2: info binds the derived key to its use).
pub const SEAL_LABEL: &[u8] = b"certzone bundle v1 seal";
/// The same for format 2.
pub const SEAL_LABEL_V2: &[u8] = b"certzone bundle v2 seal";

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
/// Most signatures on one v2 bundle (two during a key rotation).
pub const MAX_SIGNERS: usize = 4;
/// Longest cluster id (one DNS label's worth).
pub const MAX_CLUSTER_ID: usize = 63;
/// Longest zone name in wire form (RFC 1035 section 3.1).
pub const MAX_ZONE_WIRE: usize = 255;
/// How far ahead of the reader's clock a v2 bundle's version and publication time may
/// be, in seconds. TSIG already needs the clocks within 300 s of each other.
pub const MAX_AHEAD_SECS: u64 = 3600;

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
/// Largest v1 manifest: fixed fields, the most and longest names, the most
/// key ids, signature.
pub const MAX_MANIFEST_V1: usize =
    1 + 8 + 8 + 1 + MAX_NAMES * (1 + MAX_NAME_LEN) + 1 + 2 + MAX_WORKERS * KEY_ID_LEN + SIG_LEN;
/// Largest v2 manifest: format, minimum format, version, published, not-after, zone,
/// cluster id, names, chain length, key ids, signer ids and signatures.
pub const MAX_MANIFEST_V2: usize = 2
    + 3 * 8
    + 1
    + MAX_ZONE_WIRE
    + 1
    + MAX_CLUSTER_ID
    + 1
    + MAX_NAMES * (1 + MAX_NAME_LEN)
    + 1
    + 2
    + MAX_WORKERS * KEY_ID_LEN
    + 1
    + MAX_SIGNERS * (KEY_ID_LEN + SIG_LEN);
/// The manifest record's limit, whatever its format.
pub const MAX_MANIFEST: usize = if MAX_MANIFEST_V2 > MAX_MANIFEST_V1 {
    MAX_MANIFEST_V2
} else {
    MAX_MANIFEST_V1
};

/// Base64 length of `n` bytes (padded).
pub(crate) const fn b64_len(n: usize) -> usize {
    n.div_ceil(3) * 4
}
