//! A worker's copy, on disk, of each ordinary zone it replicates, so a restart while the
//! primary is down still answers for it (as BIND's secondary zone files do), until the
//! zone's SOA expire says the data is too old; and the same format for the certificate
//! zone's records, which `reader` keeps.
//!
//! Owns the file format: a magic line, then each record in DNS wire form with a length in
//! front. Wire form round-trips every record type exactly, which presentation text would
//! not. It must not decide when to serve or expire; `worker` does.

use std::{path::Path, time::SystemTime};

use hickory_proto::{
    rr::Record,
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable},
};

use crate::{
    state,
    zones::store::{Zone, records_in},
};

const MAGIC: &[u8] = b"certzone zone cache 1\n";

#[derive(Debug, thiserror::Error)]
pub(super) enum CacheError {
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error("zone cache {path}: {message}")]
    Corrupt { path: String, message: String },
    #[error("a zone without an SOA record is not kept")]
    NoSoa,
}

/// The file's bytes for `records` (a record that does not encode was not served either).
pub(super) fn encode(records: &[Record]) -> Vec<u8> {
    let mut out = Encoder::default();
    for wire in records.iter().filter_map(|r| r.to_bytes().ok()) {
        out.push(&wire);
    }
    out.finish()
}

/// The file's bytes, built one record at a time from wire form as a transfer delivers it
/// (no record decoded and encoded again).
pub(super) struct Encoder(Vec<u8>);

impl Default for Encoder {
    fn default() -> Self {
        Self(MAGIC.to_vec())
    }
}

impl Encoder {
    pub(super) fn push(&mut self, wire: &[u8]) {
        // A record longer than u32 cannot come in a DNS message: nothing is dropped.
        if let Ok(len) = u32::try_from(wire.len()) {
            self.0.extend_from_slice(&len.to_be_bytes());
            self.0.extend_from_slice(wire);
        }
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Whether `bytes` are in this format (a certificate cache of an earlier release is text).
pub(super) fn is_cache(bytes: &[u8]) -> bool {
    bytes.starts_with(MAGIC)
}

/// Writes the copy of a served zone straight from its store (the SOA first, then every
/// other record set), without building the file in memory.
pub(super) fn write_zone(path: &Path, zone: &Zone) -> Result<(), CacheError> {
    state::ensure_dir(path.parent().unwrap_or(Path::new(".")))?;
    let soa = zone.soa_wire().ok_or(CacheError::NoSoa)?;
    state::write_atomic_with(path, state::SECRET, |out| {
        out.write_all(MAGIC)?;
        let sets = zone.transfer_sets().flat_map(records_in);
        for wire in std::iter::once(soa).chain(sets) {
            let len = u32::try_from(wire.len()).map_err(std::io::Error::other)?;
            out.write_all(&len.to_be_bytes())?;
            out.write_all(wire)?;
        }
        Ok(())
    })?;
    Ok(())
}

pub(super) fn load(path: &Path) -> Result<Option<(Vec<Record>, SystemTime)>, CacheError> {
    let Some(bytes) = state::read_optional(path)? else {
        return Ok(None);
    };
    let written = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .map_err(|e| corrupt(path, e))?;
    Ok(Some((decode(path, &bytes)?, written)))
}

/// The records of a file's `bytes`; `path` names it in errors.
pub(super) fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<Record>, CacheError> {
    let mut rest = bytes
        .strip_prefix(MAGIC)
        .ok_or_else(|| corrupt(path, "not a certzone zone cache"))?;
    let mut records = Vec::new();
    while !rest.is_empty() {
        let (len, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| corrupt(path, "truncated"))?;
        let len = u32::from_be_bytes(*len) as usize;
        if tail.len() < len {
            return Err(corrupt(path, "truncated"));
        }
        let (one, tail) = tail.split_at(len);
        let record = Record::read(&mut BinDecoder::new(one)).map_err(|e| corrupt(path, e))?;
        records.push(record);
        rest = tail;
    }
    Ok(records)
}

fn corrupt(path: &Path, message: impl ToString) -> CacheError {
    CacheError::Corrupt {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use std::{os::unix::fs::PermissionsExt, str::FromStr};

    use hickory_proto::rr::{Name, RData, rdata};

    use super::*;

    #[test]
    fn records_round_trip_exactly_and_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cache").join("example.test.zone");
        let origin = Name::from_str("example.test.").unwrap();
        let name = Name::from_str("www.example.test.").unwrap();
        let soa = rdata::SOA::new(name.clone(), name.clone(), 7, 3600, 600, 86400, 300);
        let records = vec![
            Record::from_rdata(origin.clone(), 300, RData::SOA(soa)),
            Record::from_rdata(name.clone(), 300, RData::A(rdata::A::new(192, 0, 2, 1))),
            Record::from_rdata(
                name,
                60,
                RData::TXT(rdata::TXT::new(vec![
                    "a \"quoted\" string".into(),
                    "two".into(),
                ])),
            ),
        ];
        assert!(load(&path).unwrap().is_none());
        write_zone(&path, &Zone::from_records(&origin, &records).unwrap()).unwrap();
        let (back, _) = load(&path).unwrap().unwrap();
        assert_eq!(back, records);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(
            mode, 0o600,
            "a zone copy is private like the rest of the state"
        );

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = load(&path).unwrap_err().to_string();
        assert!(
            err.contains("example.test.zone") && err.contains("truncated"),
            "{err}"
        );
    }
}
