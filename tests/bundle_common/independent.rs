//! A second bundle verifier written from docs/PROTOCOL.md alone, with the
//! primitives (p256, hkdf, aes-gcm) and no code of `certzone::bundle`: if
//! it accepts the golden zone text, the document is precise enough.

use aes_gcm::aead::{Aead as _, KeyInit as _, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hkdf::Hkdf;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::elliptic_curve::sec1::ToEncodedPoint as _;
use p256::pkcs8::{DecodePrivateKey as _, DecodePublicKey as _};
use sha2::{Digest as _, Sha256};

struct Line {
    owner: String,
    kind: String,
    rdata: Vec<String>,
}

/// `owner ttl class type rdata...`, one record per line.
fn lines(text: &str) -> Vec<Line> {
    text.lines()
        .map(|l| {
            let fields: Vec<&str> = l.split_whitespace().collect();
            Line {
                owner: fields[0].to_ascii_lowercase(),
                kind: fields[3].to_string(),
                rdata: fields[4..].iter().map(|s| s.to_string()).collect(),
            }
        })
        .collect()
}

fn txt_payload(line: &Line) -> Vec<u8> {
    let joined: String = line.rdata.iter().map(|s| s.trim_matches('"')).collect();
    STANDARD.decode(joined).expect("TXT holds base64")
}

fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0, |acc, b| acc << 8 | u64::from(*b))
}

/// Checks the signature as the document describes and opens this worker's
/// sealed key; returns the PKCS#8 DER. Panics on any failure.
pub(crate) fn verify_and_unseal(
    text: &str,
    zone: &str,
    pinned_pem: &str,
    worker_pem: &str,
) -> Vec<u8> {
    let records = lines(text);
    let manifest_line = records
        .iter()
        .find(|l| l.owner == format!("manifest.{zone}") && l.kind == "TXT");
    let manifest = txt_payload(manifest_line.expect("manifest record"));
    assert_eq!(manifest[0], 1, "format version");
    let version = be(&manifest[1..9]);
    let mut at = 17;
    let name_count = manifest[at] as usize;
    at += 1;
    for _ in 0..name_count {
        at += 1 + manifest[at] as usize;
    }
    let chain_count = manifest[at] as usize;
    let worker_count = be(&manifest[at + 1..at + 3]) as usize;
    let (body, sig) = manifest.split_at(manifest.len() - 64);
    assert_eq!(body.len(), at + 3);

    let mut signed = b"certzone bundle v1 sign\0".to_vec();
    signed.extend_from_slice(body);
    for i in 0..chain_count {
        let line = records
            .iter()
            .find(|l| l.owner == format!("{i}.chain.{zone}"))
            .expect("chain record");
        assert_eq!(line.kind, "CERT");
        assert_eq!(line.rdata[..3], ["1", "0", "0"]);
        let der = STANDARD.decode(&line.rdata[3]).expect("base64");
        signed.extend_from_slice(&(der.len() as u32).to_be_bytes());
        signed.extend_from_slice(&der);
    }
    let suffix = format!(".keys.{zone}");
    let mut keys: Vec<([u8; 8], Vec<u8>)> = records
        .iter()
        .filter_map(|l| {
            l.owner
                .strip_suffix(&suffix)
                .map(|id| (hex8(id), txt_payload(l)))
        })
        .collect();
    keys.sort();
    assert_eq!(keys.len(), worker_count);
    for (id, blob) in &keys {
        signed.extend_from_slice(id);
        signed.extend_from_slice(&(blob.len() as u16).to_be_bytes());
        signed.extend_from_slice(blob);
    }
    let pinned = VerifyingKey::from_public_key_pem(pinned_pem).expect("pinned key");
    let sig = Signature::from_slice(sig).expect("r || s");
    pinned.verify(&signed, &sig).expect("signature verifies");

    let me = p256::SecretKey::from_pkcs8_pem(worker_pem).expect("worker key");
    let my_point = me.public_key().to_encoded_point(false);
    let my_id: [u8; 8] = Sha256::digest(my_point.as_bytes())[..8]
        .try_into()
        .expect("8");
    let blob = &keys
        .iter()
        .find(|(id, _)| *id == my_id)
        .expect("my sealed key")
        .1;
    let (eph, sealed) = blob.split_at(65);
    let eph_key = p256::PublicKey::from_sec1_bytes(eph).expect("point");
    let shared = p256::ecdh::diffie_hellman(me.to_nonzero_scalar(), eph_key.as_affine());

    let mut info = b"certzone bundle v1 seal".to_vec();
    info.push(1);
    info.extend_from_slice(&version.to_be_bytes());
    info.extend_from_slice(&my_id);
    let salt = [eph, my_point.as_bytes()].concat();
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes())
        .expand(&info, &mut okm)
        .expect("hkdf");
    let cipher = Aes256Gcm::new_from_slice(&okm[..32]).expect("key");
    let nonce: [u8; 12] = okm[32..].try_into().expect("12");
    cipher
        .decrypt(
            &Nonce::from(nonce),
            Payload {
                msg: sealed,
                aad: &info,
            },
        )
        .expect("sealed key opens")
}

fn hex8(text: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
