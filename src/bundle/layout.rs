//! Where the bundle lives in the zone: owner names, record types and the
//! fixed CERT fields (docs/PROTOCOL.md, "Records").
//!
//! ```text
//! manifest.<zone>        TXT   base64(manifest payload, signature included)
//! <i>.chain.<zone>       CERT  PKIX(1) key-tag 0 algorithm 0, DER of cert i (0 = leaf)
//! <key-id>.keys.<zone>   TXT   base64(sealed key for that worker)
//! ```
//!
//! Owns naming and record construction; it must not interpret payloads.
//! Every record of another type or at another name is not the bundle's.

use hickory_proto::rr::rdata::cert::{Algorithm, CertType};
use hickory_proto::rr::rdata::{CERT, TXT};
use hickory_proto::rr::{Name, RData, Record};

use super::error::BundleError;
use super::keys::KeyId;
use super::limits::MAX_CHAIN;
use super::wire::to_txt_chunks;

pub(crate) const MANIFEST_LABEL: &str = "manifest";
pub(crate) const CHAIN_LABEL: &str = "chain";
pub(crate) const KEYS_LABEL: &str = "keys";

/// Which part of the bundle an owner name holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    Manifest,
    Chain(usize),
    Key(KeyId),
}

/// The absolute owner name for `labels` (leftmost first) under `zone`.
fn owner(zone: &Name, labels: &[&str]) -> Result<Name, BundleError> {
    let mut name = Name::from_labels(labels.iter().map(|l| l.as_bytes()))
        .and_then(|rel| rel.append_domain(zone))
        .map_err(|_| BundleError::InvalidInput(format!("zone name {zone} is too long")))?;
    name.set_fqdn(true);
    Ok(name)
}

pub(crate) fn slot_name(zone: &Name, slot: Slot) -> Result<Name, BundleError> {
    match slot {
        Slot::Manifest => owner(zone, &[MANIFEST_LABEL]),
        Slot::Chain(i) => owner(zone, &[&i.to_string(), CHAIN_LABEL]),
        Slot::Key(id) => owner(zone, &[&id.to_string(), KEYS_LABEL]),
    }
}

/// The owner name as text, for error messages.
pub(crate) fn slot_text(zone: &Name, slot: Slot) -> String {
    slot_name(zone, slot).map_or_else(|_| format!("{slot:?}"), |n| n.to_string())
}

pub(crate) fn cert_record(
    zone: &Name,
    ttl: u32,
    i: usize,
    der: &[u8],
) -> Result<Record, BundleError> {
    // RFC 4398 section 2: algorithm 0 and key tag 0 when the key is not a
    // DNSSEC algorithm's; the reader insists on both so no rdata byte is free.
    let cert = CERT::new(CertType::PKIX, 0, Algorithm::from(0), der.to_vec());
    Ok(Record::from_rdata(
        slot_name(zone, Slot::Chain(i))?,
        ttl,
        RData::CERT(cert),
    ))
}

pub(crate) fn txt_record(
    zone: &Name,
    ttl: u32,
    slot: Slot,
    data: &[u8],
) -> Result<Record, BundleError> {
    let chunks = to_txt_chunks(data);
    let txt = TXT::from_bytes(chunks.iter().map(Vec::as_slice).collect());
    Ok(Record::from_rdata(
        slot_name(zone, slot)?,
        ttl,
        RData::TXT(txt),
    ))
}

/// The slot `name` holds under `zone`, `Ok(None)` if it is not a bundle
/// name, an error if it is one in form but its label is not valid.
pub(crate) fn classify(name: &Name, zone: &Name) -> Result<Option<Slot>, BundleError> {
    // Label iterators, not collected label lists: this runs for every record of a zone that
    // holds a sealed key per worker.
    let Some(split) = name.iter().len().checked_sub(zone.iter().len()) else {
        return Ok(None);
    };
    let in_zone = name
        .iter()
        .skip(split)
        .zip(zone.iter())
        .all(|(a, b)| a.eq_ignore_ascii_case(b));
    if !in_zone {
        return Ok(None);
    }
    let mut rel = name.iter().take(split);
    match (rel.next(), rel.next(), rel.next()) {
        (Some(m), None, None) if m.eq_ignore_ascii_case(MANIFEST_LABEL.as_bytes()) => {
            Ok(Some(Slot::Manifest))
        }
        (Some(i), Some(c), None) if c.eq_ignore_ascii_case(CHAIN_LABEL.as_bytes()) => {
            chain_slot(i, name).map(Some)
        }
        (Some(k), Some(s), None) if s.eq_ignore_ascii_case(KEYS_LABEL.as_bytes()) => {
            key_slot(k, name).map(Some)
        }
        _ => Ok(None),
    }
}

/// Positions are plain decimal without leading zeros, below MAX_CHAIN, so
/// each position has exactly one owner name.
fn chain_slot(label: &[u8], name: &Name) -> Result<Slot, BundleError> {
    let digits = label.iter().all(u8::is_ascii_digit);
    let canonical = !label.is_empty() && (label == b"0" || label[0] != b'0');
    if !digits || !canonical || label.len() > 3 {
        return Err(BundleError::malformed(
            name.to_string(),
            "chain position is not a plain number",
        ));
    }
    // local invariant: 1..=3 ASCII digits always parse as usize
    let position: usize = std::str::from_utf8(label)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(usize::MAX);
    if position >= MAX_CHAIN {
        return Err(BundleError::TooLarge {
            what: "chain position",
            got: position,
            limit: MAX_CHAIN - 1,
        });
    }
    Ok(Slot::Chain(position))
}

fn key_slot(label: &[u8], name: &Name) -> Result<Slot, BundleError> {
    std::str::from_utf8(label)
        .ok()
        .and_then(KeyId::from_hex)
        .map(Slot::Key)
        .ok_or_else(|| BundleError::malformed(name.to_string(), "key id is not 16 hex digits"))
}
