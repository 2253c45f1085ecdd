//! The manifest record's payload: its byte layout in format 1 and format 2
//! (docs/PROTOCOL.md, "Manifest payload"), parsed strictly.
//!
//! Owns the layout only. It must not interpret certificates or open sealed
//! keys, and it does not sign or verify (that is `signature`).

use super::error::BundleError;
use super::keys::KeyId;
use super::limits::{
    FORMAT_V1, FORMAT_V2, KEY_ID_LEN, MAX_CHAIN, MAX_CLUSTER_ID, MAX_NAMES, MAX_SIGNERS,
    MAX_WORKERS, SIG_LEN,
};
use super::names::{canonical, cluster_id_ok, zone_wire_ok};
use super::wire::{Reader, Writer};

const WHAT: &str = "manifest";
const KEY_IDS_UNORDERED: &str = "key ids not strictly ascending";

/// Everything the manifest record states, signatures aside.
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
    /// format 2's fields; `None` for format 1
    pub(crate) v2: Option<V2Fields>,
}

/// What format 2 adds to format 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct V2Fields {
    /// readers that accepted this bundle refuse any format below it from then on
    pub(crate) minimum_format: u8,
    /// unix seconds at publication
    pub(crate) published: u64,
    /// the certificate zone's name, RFC 4034 section 6.2 canonical wire form
    pub(crate) zone: Vec<u8>,
    /// the operator's cluster id, possibly empty
    pub(crate) cluster_id: String,
    /// ids of the signing keys, strictly ascending; one signature each, in this order
    pub(crate) signers: Vec<KeyId>,
}

impl Manifest {
    pub(crate) fn format(&self) -> u8 {
        if self.v2.is_some() {
            FORMAT_V2
        } else {
            FORMAT_V1
        }
    }

    /// The manifest body: every field before the signatures.
    pub(crate) fn body(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(self.format());
        if let Some(v2) = &self.v2 {
            w.u8(v2.minimum_format);
            w.u64(self.version);
            w.u64(v2.published);
            w.u64(self.not_after);
            // local invariant: zone wire form is at most 255 bytes (publish checks it)
            w.u8(v2.zone.len() as u8);
            w.bytes(&v2.zone);
            // local invariant: cluster ids are at most 63 bytes (publish checks it)
            w.u8(v2.cluster_id.len() as u8);
            w.bytes(v2.cluster_id.as_bytes());
        } else {
            w.u64(self.version);
            w.u64(self.not_after);
        }
        self.write_names_and_counts(&mut w);
        if let Some(v2) = &self.v2 {
            // local invariant: publish caps signers at MAX_SIGNERS
            w.u8(v2.signers.len() as u8);
            for id in &v2.signers {
                w.bytes(&id.0);
            }
        }
        w.0
    }

    fn write_names_and_counts(&self, w: &mut Writer) {
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
    }

    /// Parses a manifest payload into the manifest and its raw signatures
    /// (one for format 1, one per signer for format 2). The format byte is
    /// read first so an unknown format is reported as such, not as a parse
    /// error.
    pub(crate) fn decode(bytes: &[u8]) -> Result<(Self, Vec<[u8; SIG_LEN]>), BundleError> {
        let mut r = Reader::new(bytes, WHAT);
        let format = r.u8()?;
        let (manifest, count) = match format {
            FORMAT_V1 => (decode_v1(&mut r)?, 1),
            FORMAT_V2 => {
                let manifest = decode_v2(&mut r)?;
                let count = manifest.v2.as_ref().map_or(1, |v2| v2.signers.len());
                (manifest, count)
            }
            other => return Err(BundleError::UnknownFormat(other)),
        };
        let sigs = (0..count)
            .map(|_| r.array::<SIG_LEN>())
            .collect::<Result<Vec<_>, _>>()?;
        r.finish()?;
        manifest.check_counts()?;
        Ok((manifest, sigs))
    }

    fn check_counts(&self) -> Result<(), BundleError> {
        let chain = usize::from(self.chain_count);
        if chain == 0 {
            return Err(BundleError::malformed(WHAT, "empty chain"));
        }
        check_limit("chain length", chain, MAX_CHAIN)
    }
}

fn decode_v1(r: &mut Reader<'_>) -> Result<Manifest, BundleError> {
    let version = r.u64()?;
    let not_after = r.u64()?;
    let names = decode_names(r)?;
    let chain_count = r.u8()?;
    let workers = decode_ids(r, "worker count", MAX_WORKERS, KEY_IDS_UNORDERED)?;
    Ok(Manifest {
        version,
        not_after,
        names,
        chain_count,
        workers,
        v2: None,
    })
}

fn decode_v2(r: &mut Reader<'_>) -> Result<Manifest, BundleError> {
    let minimum_format = r.u8()?;
    if !(FORMAT_V1..=FORMAT_V2).contains(&minimum_format) {
        return Err(BundleError::malformed(WHAT, "minimum format is not 1 or 2"));
    }
    let version = r.u64()?;
    let published = r.u64()?;
    let not_after = r.u64()?;
    let zone = decode_zone(r)?;
    let cluster_id = decode_cluster_id(r)?;
    let names = decode_names(r)?;
    let chain_count = r.u8()?;
    let workers = decode_ids(r, "worker count", MAX_WORKERS, KEY_IDS_UNORDERED)?;
    let signers = usize::from(r.u8()?);
    if signers == 0 {
        return Err(BundleError::malformed(WHAT, "no signer"));
    }
    let signers = decode_id_list(
        r,
        signers,
        "signer count",
        MAX_SIGNERS,
        "signer ids not strictly ascending",
    )?;
    Ok(Manifest {
        version,
        not_after,
        names,
        chain_count,
        workers,
        v2: Some(V2Fields {
            minimum_format,
            published,
            zone,
            cluster_id,
            signers,
        }),
    })
}

fn decode_zone(r: &mut Reader<'_>) -> Result<Vec<u8>, BundleError> {
    let len = usize::from(r.u8()?);
    let wire = r.take(len)?;
    // a u8 length is at most MAX_ZONE_WIRE (255); zone_wire_ok checks the rest
    if !zone_wire_ok(wire) {
        return Err(BundleError::malformed(
            WHAT,
            "zone name is not canonical wire form",
        ));
    }
    Ok(wire.to_vec())
}

fn decode_cluster_id(r: &mut Reader<'_>) -> Result<String, BundleError> {
    let len = usize::from(r.u8()?);
    check_limit("cluster id length", len, MAX_CLUSTER_ID)?;
    let bytes = r.take(len)?;
    match std::str::from_utf8(bytes) {
        Ok(id) if cluster_id_ok(id) => Ok(id.to_string()),
        _ => Err(BundleError::malformed(WHAT, "cluster id not canonical")),
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

/// A u16 count, then that many key ids; the count is checked against the
/// limit before anything is allocated for the ids.
fn decode_ids(
    r: &mut Reader<'_>,
    what: &'static str,
    limit: usize,
    unordered: &'static str,
) -> Result<Vec<KeyId>, BundleError> {
    let count = usize::from(r.u16()?);
    decode_id_list(r, count, what, limit, unordered)
}

fn decode_id_list(
    r: &mut Reader<'_>,
    count: usize,
    what: &'static str,
    limit: usize,
    unordered: &'static str,
) -> Result<Vec<KeyId>, BundleError> {
    check_limit(what, count, limit)?;
    let mut ids: Vec<KeyId> = Vec::with_capacity(count);
    for _ in 0..count {
        let id = KeyId(r.array::<KEY_ID_LEN>()?);
        if ids.last().is_some_and(|prev| *prev >= id) {
            return Err(BundleError::malformed(WHAT, unordered));
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

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample(v2: bool) -> Manifest {
        Manifest {
            version: 3,
            not_after: 1_900_000_000,
            names: vec!["*.example.test".into(), "example.test".into()],
            chain_count: 2,
            workers: vec![KeyId([1; 8]), KeyId([2; 8])],
            v2: v2.then(|| V2Fields {
                minimum_format: 2,
                published: 1_800_000_000,
                zone: b"\x09_certzone\x07example\x04test\x00".to_vec(),
                cluster_id: "prod".into(),
                signers: vec![KeyId([3; 8]), KeyId([4; 8])],
            }),
        }
    }

    fn payload(m: &Manifest, sigs: usize) -> Vec<u8> {
        let mut out = m.body();
        out.extend(std::iter::repeat_n(7u8, SIG_LEN * sigs));
        out
    }

    #[test]
    fn both_formats_round_trip() {
        for (m, sigs) in [(sample(false), 1), (sample(true), 2)] {
            let (back, got) = Manifest::decode(&payload(&m, sigs)).unwrap();
            assert_eq!(back, m);
            assert_eq!(got.len(), sigs);
        }
    }

    #[test]
    fn format_byte_is_checked_first() {
        assert_eq!(Manifest::decode(&[3]), Err(BundleError::UnknownFormat(3)));
        assert!(matches!(
            Manifest::decode(&[]),
            Err(BundleError::Malformed { .. })
        ));
    }

    #[test]
    fn v2_fields_are_parsed_strictly() {
        let mut m = sample(true);
        m.v2.as_mut().unwrap().minimum_format = 3;
        let err = Manifest::decode(&payload(&m, 2)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "minimum format is not 1 or 2")
        );
        let mut m = sample(true);
        m.v2.as_mut().unwrap().zone = b"\x07Example\x00".to_vec();
        let err = Manifest::decode(&payload(&m, 2)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "zone name is not canonical wire form")
        );
        let mut m = sample(true);
        m.v2.as_mut().unwrap().cluster_id = "Prod".into();
        let err = Manifest::decode(&payload(&m, 2)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "cluster id not canonical")
        );
        let mut m = sample(true);
        m.v2.as_mut().unwrap().signers.reverse();
        let err = Manifest::decode(&payload(&m, 2)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "signer ids not strictly ascending")
        );
        let mut m = sample(true);
        m.v2.as_mut().unwrap().signers = (0..5u8).map(|i| KeyId([i; 8])).collect();
        let err = Manifest::decode(&payload(&m, 5)).unwrap_err();
        assert!(
            matches!(
                err,
                BundleError::TooLarge {
                    what: "signer count",
                    ..
                }
            ),
            "{err}"
        );
        let mut m = sample(true);
        m.v2.as_mut().unwrap().signers.clear();
        let err = Manifest::decode(&payload(&m, 0)).unwrap_err();
        assert_eq!(err, BundleError::malformed(WHAT, "no signer"));
    }

    #[test]
    fn key_ids_must_ascend_and_are_capped() {
        let mut m = sample(false);
        m.workers.reverse();
        let err = Manifest::decode(&payload(&m, 1)).unwrap_err();
        assert_eq!(
            err,
            BundleError::malformed(WHAT, "key ids not strictly ascending")
        );
        m.workers = (0..=MAX_WORKERS as u16)
            .map(|i| KeyId([0, 0, 0, 0, 0, 0, (i >> 8) as u8, i as u8]))
            .collect();
        let err = Manifest::decode(&payload(&m, 1)).unwrap_err();
        assert!(matches!(err, BundleError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn a_missing_or_extra_signature_is_malformed() {
        let m = sample(true);
        assert!(Manifest::decode(&payload(&m, 1)).is_err());
        assert!(Manifest::decode(&payload(&m, 3)).is_err());
    }
}
