//! Dynamic changes (RFC 2136 UPDATE) to a file zone: the record sets updates replaced, kept
//! in `<state-dir>/dynamic/<origin>changes` and replayed on top of the file.
//!
//! Owns that file (written whole, fsynced, renamed, before an update is acknowledged) and
//! the rule for combining it with the zone file, the way BIND combines a zone file with
//! its journal: the changes are replayed while the file's SOA serial is the one they were
//! made against (a restart, a SIGHUP with the file untouched or edited without a new
//! serial). When the file's serial moves, the operator has edited the zone: the file wins,
//! the changes are set aside as `<origin>changes.dropped` and a warning says how many
//! record sets were dropped. It must not decide what an update does (`update`).

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use hickory_proto::{
    rr::{Name, Record, RecordType},
    serialize::binary::{BinDecodable, BinEncodable},
};

use super::{
    Overlay,
    store::{self, Zone},
};
use crate::state;

/// A record set: owner lowercased, type.
pub(super) type SetKey = (Name, RecordType);

const MAGIC: &[u8] = b"certzone-changes 1\n";

/// Every record set dynamic updates replaced in one zone.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Changes {
    /// The file's SOA serial the changes were made against.
    pub(super) file_serial: u32,
    /// The SOA serial served after the last change.
    pub(super) serial: u32,
    /// Each set replaced and what it holds now (nothing: deleted).
    pub(super) sets: BTreeMap<SetKey, Vec<Record>>,
}

impl Changes {
    pub(super) fn is_empty(&self) -> bool {
        self.sets.is_empty()
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        out.extend(self.file_serial.to_be_bytes());
        out.extend(self.serial.to_be_bytes());
        out.extend((self.sets.len() as u32).to_be_bytes());
        for ((owner, rtype), records) in &self.sets {
            out.extend(u16::from(*rtype).to_be_bytes());
            put(&mut out, &owner.to_bytes().unwrap_or_default());
            out.extend((records.len() as u32).to_be_bytes());
            for record in records {
                put(&mut out, &store::encode(record).unwrap_or_default());
            }
        }
        out
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        let mut reader = Reader(bytes.strip_prefix(MAGIC)?);
        let file_serial = reader.u32()?;
        let serial = reader.u32()?;
        let mut sets = BTreeMap::new();
        for _ in 0..reader.u32()? {
            let rtype = RecordType::from(reader.u16()?);
            let owner = Name::from_bytes(reader.chunk()?).ok()?;
            let count = reader.u32()?;
            let records = (0..count)
                .map(|_| store::decode(reader.chunk()?).ok())
                .collect::<Option<Vec<_>>>()?;
            sets.insert((owner, rtype), records);
        }
        reader.0.is_empty().then_some(Self {
            file_serial,
            serial,
            sets,
        })
    }
}

fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend((bytes.len() as u32).to_be_bytes());
    out.extend(bytes);
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (self.0.get(..n)?, self.0.get(n..)?);
        self.0 = rest;
        Some(head)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn chunk(&mut self) -> Option<&'a [u8]> {
        let len = self.u32()? as usize;
        self.take(len)
    }
}

/// `<state-dir>/dynamic/`.
pub(super) fn dir(state_dir: &Path) -> PathBuf {
    state_dir.join("dynamic")
}

fn path(dir: &Path, origin: &Name) -> PathBuf {
    dir.join(format!("{}changes", origin.to_lowercase()))
}

/// Why kept changes cannot be read: the node refuses to start rather than silently lose
/// acknowledged updates.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error(transparent)]
    Read(#[from] state::StateError),
    #[error(
        "dynamic changes {} are unreadable (move the file away to start without them)",
        .0.display()
    )]
    Unreadable(PathBuf),
}

/// The changes kept for `origin`; an unreadable file is an error naming it.
pub(super) fn read(dir: &Path, origin: &Name) -> Result<Option<Changes>, ChangesError> {
    let path = path(dir, origin);
    match state::read_optional(&path)? {
        None => Ok(None),
        Some(bytes) => Changes::decode(&bytes)
            .map(Some)
            .ok_or(ChangesError::Unreadable(path)),
    }
}

/// Keeps `changes` for `origin`, durably: when this returns, a crash cannot lose them.
pub(super) fn write(dir: &Path, origin: &Name, changes: &Changes) -> Result<(), state::StateError> {
    state::ensure_dir(dir)?;
    state::write_atomic(&path(dir, origin), &changes.encode(), state::PUBLIC)
}

/// Sets the changes of `origin` aside (the file's serial moved), keeping them for the
/// operator as `<origin>changes.dropped`.
pub(super) fn set_aside(dir: &Path, origin: &Name, changes: &Changes, file_serial: u32) {
    tracing::warn!(
        zone = %origin,
        sets = changes.sets.len(),
        changes_made_against = changes.file_serial,
        file_serial,
        "the zone file's SOA serial moved: dynamic updates made against the old file are \
         dropped, the file wins (kept in {}.dropped)",
        path(dir, origin).display()
    );
    let from = path(dir, origin);
    let mut to = from.clone().into_os_string();
    to.push(".dropped");
    if let Err(e) = std::fs::rename(&from, &to) {
        tracing::warn!(error = %e, "dropped dynamic changes not set aside");
    }
}

/// What replaces each of `sets` in the served zone `origin`: the set, and at the names of
/// the master's challenges the challenge TXT beside it (duplicates merge in the zone).
pub(super) fn merged_sets<'a>(
    sets: impl IntoIterator<Item = (&'a SetKey, &'a Vec<Record>)>,
    overlay: &Overlay,
    origin: &Name,
) -> Vec<(Name, RecordType, Vec<Record>)> {
    let mut merged: BTreeMap<SetKey, Vec<Record>> = sets
        .into_iter()
        .filter(|((owner, _), _)| origin.zone_of(owner))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (owner, values) in overlay.txt.iter().filter(|(o, _)| origin.zone_of(o)) {
        merged
            .entry((owner.to_lowercase(), RecordType::TXT))
            .or_default()
            .extend(super::overlay::txt_records(owner, values));
    }
    // A published set (SVCB, TLSA, CAA) is the master's own: it replaces whatever the file
    // or an update put at that name and type.
    for ((owner, rtype), records) in overlay
        .published
        .iter()
        .filter(|((o, _), _)| origin.zone_of(o))
    {
        merged.insert(
            (owner.to_lowercase(), RecordType::from(*rtype)),
            records.clone(),
        );
    }
    merged
        .into_iter()
        .map(|((owner, rtype), records)| (owner, rtype, records))
        .collect()
}

/// The records of `rtype` at `owner` in `zone`.
pub(super) fn rrset(zone: &Zone, owner: &Name, rtype: RecordType) -> Vec<Record> {
    zone.find(&store::key_of(owner), rtype)
        .map(|set| {
            store::records_in(zone.wire(set))
                .filter_map(|wire| store::decode(wire).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The types of the record sets at exactly `owner` in `zone`.
pub(super) fn types_at(zone: &Zone, owner: &Name) -> Vec<RecordType> {
    zone.sets_at(&store::key_of(owner))
        .iter()
        .map(|set| RecordType::from(set.rtype))
        .collect()
}

#[cfg(test)]
mod tests {
    use hickory_proto::rr::{RData, rdata::TXT};

    use super::*;

    #[test]
    fn changes_read_back_as_written_and_a_torn_file_is_refused() {
        let owner = Name::from_ascii("_acme-challenge.web.example.test.").unwrap();
        let record = Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec!["v".into()])));
        let mut changes = Changes {
            file_serial: 7,
            serial: 9,
            ..Changes::default()
        };
        changes
            .sets
            .insert((owner.clone(), RecordType::TXT), vec![record]);
        changes.sets.insert((owner, RecordType::A), Vec::new());
        let bytes = changes.encode();
        assert_eq!(Changes::decode(&bytes), Some(changes));
        assert_eq!(Changes::decode(&bytes[..bytes.len() - 1]), None);
    }
}
