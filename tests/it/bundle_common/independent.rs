//! A second bundle verifier written from docs/PROTOCOL.md alone, with the
//! primitives (p256, hkdf, aes-gcm) and no code of `certzone::bundle`: if
//! it accepts the golden zone texts (format 1, format 2, and format 2 signed
//! by two keys), the document is precise enough.

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

/// What section 4 needs, gathered from the zone text.
struct Bundle {
    format: u8,
    version: u64,
    signed: Vec<u8>,
    /// (signer id, signature); format 1: one, with no id
    sigs: Vec<(Option<[u8; 8]>, Vec<u8>)>,
    keys: Vec<([u8; 8], Vec<u8>)>,
}

/// Checks the zone and cluster (format 2) and the pinned key's signature as
/// the document describes, and opens this worker's sealed key; returns the
/// PKCS#8 DER. Panics on any failure.
pub(crate) fn verify_and_unseal(
    text: &str,
    zone: &str,
    cluster: &str,
    pinned_pem: &str,
    worker_pem: &str,
) -> Vec<u8> {
    let bundle = gather(&lines(text), zone, cluster);
    let pinned = VerifyingKey::from_public_key_pem(pinned_pem).expect("pinned key");
    let pinned_id = id_of(pinned.to_encoded_point(false).as_bytes());
    let (_, sig) = bundle
        .sigs
        .iter()
        .find(|(id, _)| id.is_none() || *id == Some(pinned_id))
        .expect("a signature by the pinned key");
    let sig = Signature::from_slice(sig).expect("r || s");
    assert!(sig.normalize_s().is_none(), "low-S");
    pinned
        .verify(&bundle.signed, &sig)
        .expect("signature verifies");
    unseal(&bundle, worker_pem)
}

fn id_of(point: &[u8]) -> [u8; 8] {
    Sha256::digest(point)[..8].try_into().expect("8")
}

/// Sections 3 and 3a (manifest) and section 4 (signed bytes).
fn gather(records: &[Line], zone: &str, cluster: &str) -> Bundle {
    let manifest_line = records
        .iter()
        .find(|l| l.owner == format!("manifest.{zone}") && l.kind == "TXT");
    let manifest = txt_payload(manifest_line.expect("manifest record"));
    let format = manifest[0];
    // format 1: version at 1, not-after at 9, names at 17.
    // format 2: minimum format at 1, version at 2, published at 10, not-after at 18,
    // zone at 26, then the cluster id, then the names.
    let (version, mut at) = match format {
        1 => (be(&manifest[1..9]), 17),
        2 => {
            assert!((1..=2).contains(&manifest[1]), "minimum format");
            let zone_len = manifest[26] as usize;
            assert_eq!(manifest[27..27 + zone_len], wire_name(zone), "signed zone");
            let at = 27 + zone_len;
            let cluster_len = manifest[at] as usize;
            assert_eq!(&manifest[at + 1..at + 1 + cluster_len], cluster.as_bytes());
            (be(&manifest[2..10]), at + 1 + cluster_len)
        }
        other => panic!("unknown format {other}"),
    };
    for _ in 0..manifest[at] {
        at += 1 + manifest[at + 1] as usize;
    }
    at += 1;
    let chain_count = manifest[at] as usize;
    let worker_count = be(&manifest[at + 1..at + 3]) as usize;
    let listed: Vec<[u8; 8]> = manifest[at + 3..at + 3 + 8 * worker_count]
        .chunks(8)
        .map(|id| id.try_into().expect("8"))
        .collect();
    let mut body_end = at + 3 + 8 * worker_count;
    let signers: Vec<Option<[u8; 8]>> = if format == 2 {
        let count = manifest[body_end] as usize;
        let ids = manifest[body_end + 1..body_end + 1 + 8 * count]
            .chunks(8)
            .map(|id| Some(id.try_into().expect("8")))
            .collect();
        body_end += 1 + 8 * count;
        ids
    } else {
        vec![None]
    };
    let (body, sig_bytes) = manifest.split_at(body_end);
    assert_eq!(
        sig_bytes.len(),
        64 * signers.len(),
        "nothing after the signatures"
    );
    let mut signed = format!("certzone bundle v{format} sign\0").into_bytes();
    signed.extend_from_slice(body);
    for i in 0..chain_count {
        signed.extend(cert_entry(records, &format!("{i}.chain.{zone}")));
    }
    let keys = sealed_keys(records, zone);
    let found: Vec<[u8; 8]> = keys.iter().map(|(id, _)| *id).collect();
    assert_eq!(found, listed, "keys records are exactly the listed ids");
    for (id, blob) in &keys {
        signed.extend_from_slice(id);
        signed.extend_from_slice(&(blob.len() as u16).to_be_bytes());
        signed.extend_from_slice(blob);
    }
    let sigs = signers
        .into_iter()
        .zip(sig_bytes.chunks(64).map(<[u8]>::to_vec))
        .collect();
    Bundle {
        format,
        version,
        signed,
        sigs,
        keys,
    }
}

/// The zone's canonical wire form: each label as a length byte and the
/// label lowercased, then a zero byte.
fn wire_name(zone: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for label in zone.trim_end_matches('.').split('.') {
        out.push(label.len() as u8);
        out.extend(label.to_ascii_lowercase().bytes());
    }
    out.push(0);
    out
}

/// u32 length || DER of the CERT record at `owner`.
fn cert_entry(records: &[Line], owner: &str) -> Vec<u8> {
    let line = records
        .iter()
        .find(|l| l.owner == owner)
        .expect("chain record");
    assert_eq!(line.kind, "CERT");
    assert_eq!(line.rdata[..3], ["1", "0", "0"]);
    let der = STANDARD.decode(&line.rdata[3]).expect("base64");
    let mut out = (der.len() as u32).to_be_bytes().to_vec();
    out.extend(der);
    out
}

/// (key id, sealed key), ascending id.
fn sealed_keys(records: &[Line], zone: &str) -> Vec<([u8; 8], Vec<u8>)> {
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
    keys
}

/// Section 5, opening.
fn unseal(bundle: &Bundle, worker_pem: &str) -> Vec<u8> {
    let me = p256::SecretKey::from_pkcs8_pem(worker_pem).expect("worker key");
    let my_point = me.public_key().to_encoded_point(false);
    let my_id = id_of(my_point.as_bytes());
    let blob = &bundle
        .keys
        .iter()
        .find(|(id, _)| *id == my_id)
        .expect("my sealed key")
        .1;
    let (eph, sealed) = blob.split_at(65);
    let eph_key = p256::PublicKey::from_sec1_bytes(eph).expect("point");
    let shared = p256::ecdh::diffie_hellman(me.to_nonzero_scalar(), eph_key.as_affine());
    let mut info = format!("certzone bundle v{} seal", bundle.format).into_bytes();
    info.push(bundle.format);
    info.extend_from_slice(&bundle.version.to_be_bytes());
    info.extend_from_slice(&my_id);
    let salt = [eph, my_point.as_bytes()].concat();
    let mut okm = [0u8; 44];
    Hkdf::<Sha256>::new(Some(&salt), shared.raw_secret_bytes())
        .expand(&info, &mut okm)
        .expect("hkdf");
    let cipher = Aes256Gcm::new_from_slice(&okm[..32]).expect("key");
    let nonce: [u8; 12] = okm[32..].try_into().expect("12");
    let payload = Payload {
        msg: sealed,
        aad: &info,
    };
    cipher
        .decrypt(&Nonce::from(nonce), payload)
        .expect("sealed key opens")
}

fn hex8(text: &str) -> [u8; 8] {
    let mut out = [0u8; 8];
    for (i, b) in out.iter_mut().enumerate() {
        *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).expect("hex");
    }
    out
}
