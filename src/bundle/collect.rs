//! Picks the bundle's records out of a zone's records and checks their
//! structure: one record per slot, fixed CERT fields, canonical TXT split,
//! size limits, and the counts the manifest announces.
//!
//! Owns record-level structure only; it must not verify signatures or look
//! inside certificates. Records of other types, names or classes (SOA, NS,
//! RRSIG, NSEC, a CH-class TXT, anything) are skipped, never errors.

use std::collections::BTreeMap;

use hickory_proto::rr::rdata::cert::CertType;
use hickory_proto::rr::{DNSClass, Name, RData, Record};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use super::error::BundleError;
use super::keys::KeyId;
use super::layout::{Slot, classify, slot_text};
use super::limits::{MAX_CERT_SIZE, MAX_MANIFEST, MAX_SEALED, MAX_WORKERS};
use super::manifest::{Manifest, check_limit};
use super::wire::from_txt_chunks;

/// The bundle's payloads as found, before any signature check.
#[derive(Default)]
pub(crate) struct Collected {
    pub(crate) manifest: Option<Vec<u8>>,
    pub(crate) chain: BTreeMap<usize, Vec<u8>>,
    pub(crate) keys: BTreeMap<KeyId, Vec<u8>>,
}

/// Chain (leaf first) and sealed keys (ascending id), matched to the manifest.
pub(crate) struct Parts {
    pub(crate) chain: Vec<Vec<u8>>,
    pub(crate) keys: Vec<(KeyId, Vec<u8>)>,
}

/// The format byte, read from the first base64 quad of the manifest alone,
/// before any other record is judged: the one thing every format version
/// keeps is a TXT at `manifest.<zone>` whose payload starts with it. So a
/// newer bundle is refused as `UnknownFormat`, not as whatever its other
/// records look like to this reader. `None`: no readable manifest (the
/// full parse reports why).
pub(crate) fn manifest_format(records: &[Record], zone: &Name) -> Option<u8> {
    let txt = records
        .iter()
        .filter(|r| r.dns_class == DNSClass::IN)
        .find_map(|r| match (&r.data, classify(&r.name, zone)) {
            (RData::TXT(txt), Ok(Some(Slot::Manifest))) => Some(txt),
            _ => None,
        })?;
    let quad = txt.txt_data.first()?.get(..4)?;
    STANDARD.decode(quad).ok()?.first().copied()
}

pub(crate) fn collect(records: &[Record], zone: &Name) -> Result<Collected, BundleError> {
    let mut found = Collected::default();
    for record in records.iter().filter(|r| r.dns_class == DNSClass::IN) {
        let Some(slot) = classify(&record.name, zone)? else {
            continue;
        };
        if let Some(payload) = payload(record, slot)? {
            found.insert(slot, payload, zone)?;
        }
    }
    Ok(found)
}

/// The payload bytes of a record in a bundle slot, `None` if its type is
/// not the slot's (an RRSIG next to the manifest, say).
fn payload(record: &Record, slot: Slot) -> Result<Option<Vec<u8>>, BundleError> {
    // The name goes into errors only: spelling it out for every record cost more than the
    // base64 (a zone has a sealed key per worker).
    let what = &record.name;
    match (slot, &record.data) {
        (Slot::Manifest, RData::TXT(txt)) => {
            from_txt_chunks(&txt.txt_data, MAX_MANIFEST, what).map(Some)
        }
        (Slot::Key(_), RData::TXT(txt)) => {
            from_txt_chunks(&txt.txt_data, MAX_SEALED, what).map(Some)
        }
        (Slot::Chain(_), RData::CERT(cert)) => cert_payload(cert, what).map(Some),
        _ => Ok(None),
    }
}

fn cert_payload(
    cert: &hickory_proto::rr::rdata::CERT,
    what: &Name,
) -> Result<Vec<u8>, BundleError> {
    let fixed =
        cert.cert_type == CertType::PKIX && cert.key_tag == 0 && u8::from(cert.algorithm) == 0;
    if !fixed {
        return Err(BundleError::malformed(
            what.to_string(),
            "CERT fields are not PKIX 0 0",
        ));
    }
    check_limit("certificate size", cert.cert_data.len(), MAX_CERT_SIZE)?;
    Ok(cert.cert_data.clone())
}

impl Collected {
    fn insert(&mut self, slot: Slot, payload: Vec<u8>, zone: &Name) -> Result<(), BundleError> {
        let fresh = match slot {
            Slot::Manifest => self.manifest.replace(payload).is_none(),
            Slot::Chain(i) => self.chain.insert(i, payload).is_none(),
            Slot::Key(id) => self.keys.insert(id, payload).is_none(),
        };
        if !fresh {
            return Err(BundleError::DuplicateRecord(slot_text(zone, slot)));
        }
        check_limit("sealed key count", self.keys.len(), MAX_WORKERS)
    }

    pub(crate) fn take_manifest(&mut self, zone: &Name) -> Result<Vec<u8>, BundleError> {
        self.manifest
            .take()
            .ok_or_else(|| BundleError::MissingRecord(slot_text(zone, Slot::Manifest)))
    }

    /// Checks the records against the manifest: every chain position
    /// present, none past the end, a sealed key for exactly the listed ids.
    pub(crate) fn into_parts(self, manifest: &Manifest, zone: &Name) -> Result<Parts, BundleError> {
        let count = usize::from(manifest.chain_count);
        if let Some((&extra, _)) = self.chain.range(count..).next() {
            return Err(BundleError::UnexpectedRecord(slot_text(
                zone,
                Slot::Chain(extra),
            )));
        }
        if let Some(missing) = (0..count).find(|i| !self.chain.contains_key(i)) {
            return Err(BundleError::MissingRecord(slot_text(
                zone,
                Slot::Chain(missing),
            )));
        }
        check_key_ids(&self.keys, &manifest.workers, zone)?;
        Ok(Parts {
            chain: self.chain.into_values().collect(),
            keys: self.keys.into_iter().collect(),
        })
    }
}

/// The `keys` records must be exactly the manifest's list: an extra one is
/// reported before a missing one, as for chain positions.
fn check_key_ids(
    found: &BTreeMap<KeyId, Vec<u8>>,
    listed: &[KeyId],
    zone: &Name,
) -> Result<(), BundleError> {
    if let Some(extra) = found.keys().find(|id| listed.binary_search(id).is_err()) {
        return Err(BundleError::UnexpectedRecord(slot_text(
            zone,
            Slot::Key(*extra),
        )));
    }
    match listed.iter().find(|id| !found.contains_key(id)) {
        Some(missing) => Err(BundleError::MissingRecord(slot_text(
            zone,
            Slot::Key(*missing),
        ))),
        None => Ok(()),
    }
}
