//! Reading by queries: which records a bundle consists of, learned from its
//! manifest alone, so a reader refused a zone transfer can ask for each one
//! (docs/PROTOCOL.md, "Reading by queries").
//!
//! Owns only the list of owner names and types. It checks the manifest's
//! structure (rules 1 to 3) but cannot check the signature: that needs the
//! records it lists, and the caller passes everything to `read` or `inspect`.

use hickory_proto::rr::{Name, Record, RecordType};

use super::collect::{collect, manifest_format};
use super::error::BundleError;
use super::layout::{Slot, slot_name};
use super::limits::{FORMAT_V1, FORMAT_V2};
use super::manifest::Manifest;

/// The owner names and types of the chain and sealed-key records the
/// manifest among `records` calls for: `<i>.chain` CERT for i = 0 .. C-1,
/// then `<id>.keys` TXT for each listed worker id. Unverified: the
/// signature over all of them is checked when they are read.
pub fn record_names(
    records: &[Record],
    zone: &Name,
) -> Result<Vec<(Name, RecordType)>, BundleError> {
    match manifest_format(records, zone) {
        Some(format) if format != FORMAT_V1 && format != FORMAT_V2 => {
            return Err(BundleError::UnknownFormat(format));
        }
        _ => {}
    }
    let (manifest, _) = Manifest::decode(&collect(records, zone)?.take_manifest(zone)?)?;
    let chain = (0..usize::from(manifest.chain_count)).map(|i| (Slot::Chain(i), RecordType::CERT));
    let keys = manifest
        .workers
        .iter()
        .map(|id| (Slot::Key(*id), RecordType::TXT));
    chain
        .chain(keys)
        .map(|(slot, kind)| Ok((slot_name(zone, slot)?, kind)))
        .collect()
}

/// `manifest.<zone>`, the first record to ask for.
pub fn manifest_name(zone: &Name) -> Result<Name, BundleError> {
    slot_name(zone, Slot::Manifest)
}
