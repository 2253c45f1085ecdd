//! One zone's records, kept compact and answered from directly.
//!
//! hickory's in-memory store keeps each record as a decoded `Record` (about 280 bytes) in
//! its own record set, map entry and `Arc`: a 100,000-record zone took 150 MB, and every
//! transfer cloned and re-encoded it all. Here a zone is three flat vectors: every record
//! in uncompressed wire form, the lowercased owner names as lookup keys, and one small
//! index entry per record set. Queries decode only the record sets they answer with; a
//! transfer copies the wire bytes as they are ([`Zone::transfer_sets`]).
//!
//! A zone is immutable: a change builds a new one ([`Zone::changed`]), which the caller
//! swaps in. This module owns the layout and the primitive searches (a name's record sets,
//! whether a name or anything below it exists); the answer rules of RFC 1034 4.3.2 are in
//! `super::lookup`. It must not read files (`parse`) or know which zones exist (`zones`).

mod build;

pub use build::Builder;

use crate::wire::{self, name_len};

use hickory_proto::{
    rr::{LowerName, Name, RData, Record, RecordType},
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding},
};

/// A record a zone cannot hold, with the position the caller gave it.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuildError {
    /// What the caller passed with the record (a file's line), 0 when none.
    pub line: usize,
    pub message: String,
}

/// One zone, answered from compact storage.
pub struct Zone {
    origin: LowerName,
    /// The origin's key (see [`key_of`]).
    apex: Box<[u8]>,
    /// Every record in wire form (owner, type, class, TTL, length, data), uncompressed,
    /// grouped by record set in `sets` order.
    records: Vec<u8>,
    /// Owner keys (see [`key_of`]) where the sets point: each owner's once, unless a zone
    /// built in place had its records apart (see `build`).
    keys: Vec<u8>,
    /// Record sets sorted by (key, type).
    sets: Vec<Set>,
}

impl std::fmt::Debug for Zone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zone")
            .field("origin", &self.origin)
            .field("sets", &self.sets.len())
            .field("bytes", &self.records.len())
            .finish()
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Set {
    key: u32,
    key_len: u16,
    pub(super) rtype: u16,
    start: u32,
    end: u32,
}

impl Set {
    fn new(key: u32, key_len: usize, rtype: u16, (start, end): (usize, usize)) -> Self {
        Self {
            key,
            key_len: key_len as u16,
            rtype,
            start: start as u32,
            end: end as u32,
        }
    }
}

/// The lookup key of a name: its labels from the root down, lowercased, each after its
/// length. A name's descendants are exactly the keys that start with its key, so they sit
/// together in sorted order.
pub(super) fn key_of(name: &Name) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    for label in name.iter().rev() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key
}

/// The lookup key of an uncompressed wire-form name (see [`key_of`]); `None` if it is not
/// one (a pointer, a bad label length, bytes after the root).
pub(crate) fn key_of_wire(name: &[u8]) -> Option<Vec<u8>> {
    if wire::uncompressed_name(name)?.len() != name.len() {
        return None;
    }
    let mut labels = Vec::with_capacity(8);
    let mut at = 0;
    while name[at] != 0 {
        let len = usize::from(name[at]);
        labels.push(&name[at + 1..at + 1 + len]);
        at += 1 + len;
    }
    let mut key = Vec::with_capacity(name.len());
    for label in labels.iter().rev() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    Some(key)
}

pub(super) fn encode(record: &Record) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut bytes = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.emit(&mut encoder)?;
    Ok(bytes)
}

pub(super) fn decode(wire: &[u8]) -> Result<Record, hickory_proto::ProtoError> {
    Ok(Record::read(&mut BinDecoder::new(wire))?)
}

/// One record's data, after its owner, type, class, TTL and length.
fn rdata_of(wire: &[u8]) -> &[u8] {
    wire.get(name_len(wire) + 10..).unwrap_or(&[])
}

/// The length of the record at the start of `wire`.
fn record_len(wire: &[u8]) -> usize {
    let fixed = name_len(wire) + 10;
    match wire.get(fixed - 2..fixed) {
        Some(len) => (fixed + u16::from_be_bytes([len[0], len[1]]) as usize).min(wire.len()),
        None => wire.len(),
    }
}

/// The records of a record set's (or any run of) uncompressed wire bytes, one by one.
pub fn records_in(mut wire: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if wire.is_empty() {
            return None;
        }
        let (record, rest) = wire.split_at(record_len(wire));
        wire = rest;
        Some(record)
    })
}

impl Zone {
    /// Builds a zone of `records` (the whole zone, SOA included).
    pub fn from_records<'a>(
        origin: &Name,
        records: impl IntoIterator<Item = &'a Record>,
    ) -> Result<Self, BuildError> {
        let mut builder = Builder::new(origin);
        for record in records {
            builder.add(record, 0)?;
        }
        builder.finish()
    }

    fn push_set(&mut self, key: &[u8], rtype: u16, range: (usize, usize)) {
        let key_at = self.shared_key(key).unwrap_or_else(|| {
            let at = self.keys.len() as u32;
            self.keys.extend_from_slice(key);
            at
        });
        self.sets.push(Set::new(key_at, key.len(), rtype, range));
    }

    /// Where the last set keeps `key`, when a new set has the same owner: sets of one
    /// owner share one copy of its key.
    fn shared_key(&self, key: &[u8]) -> Option<u32> {
        self.sets
            .last()
            .filter(|last| self.key(last) == key)
            .map(|last| last.key)
    }

    /// Refuses a record set of `rtype` at `key` if its name would then hold a CNAME and
    /// other data. Sets come in key order, so the ones already pushed at this key are all
    /// there is to compare with; `wire` (one of its records) and `line` name it.
    fn check_cname(
        &self,
        key: &[u8],
        rtype: u16,
        wire: &[u8],
        line: usize,
    ) -> Result<(), BuildError> {
        let cname = u16::from(RecordType::CNAME);
        // DNSSEC records may sit beside a CNAME (RFC 2181 10.1).
        let beside = [RecordType::RRSIG, RecordType::NSEC, RecordType::NSEC3].map(u16::from);
        let types = self.sets_at(key).iter().map(|s| s.rtype).chain([rtype]);
        let (mut has_cname, mut has_data) = (false, false);
        for rtype in types {
            has_cname |= rtype == cname;
            has_data |= rtype != cname && !beside.contains(&rtype);
        }
        if has_cname && has_data {
            let name = decode(wire).map(|r| r.name.to_string()).unwrap_or_default();
            return Err(BuildError {
                line,
                message: format!(
                    "{name} has a CNAME and other data (RFC 1034 3.6.2 allows only the CNAME)"
                ),
            });
        }
        Ok(())
    }

    /// The zone's name.
    pub fn origin(&self) -> &LowerName {
        &self.origin
    }

    /// The key of the zone's apex (see [`key_of`]).
    pub(crate) fn apex_key(&self) -> &[u8] {
        &self.apex
    }

    fn key(&self, set: &Set) -> &[u8] {
        &self.keys[set.key as usize..set.key as usize + set.key_len as usize]
    }

    /// The records of `set`, in uncompressed wire form.
    pub(super) fn wire(&self, set: &Set) -> &[u8] {
        &self.records[set.start as usize..set.end as usize]
    }

    /// Record sets at exactly `key`, by type.
    pub(super) fn sets_at(&self, key: &[u8]) -> &[Set] {
        let from = self.sets.partition_point(|s| self.key(s) < key);
        let to = from + self.sets[from..].partition_point(|s| self.key(s) == key);
        &self.sets[from..to]
    }

    pub(super) fn find(&self, key: &[u8], rtype: RecordType) -> Option<&Set> {
        let rtype = u16::from(rtype);
        self.sets_at(key).iter().find(|s| s.rtype == rtype)
    }

    /// Whether `owner` has records of type `rtype`.
    pub fn has_set(&self, owner: &Name, rtype: RecordType) -> bool {
        self.find(&key_of(owner), rtype).is_some()
    }

    /// The records of type `rtype` at `owner`, decoded.
    pub fn set_records(&self, owner: &Name, rtype: RecordType) -> Vec<Record> {
        self.find(&key_of(owner), rtype)
            .map(|set| {
                records_in(self.wire(set))
                    .filter_map(|wire| decode(wire).ok())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Whether `key` or any name below it owns records (an empty non-terminal exists).
    pub(super) fn exists(&self, key: &[u8]) -> bool {
        let from = self.sets.partition_point(|s| self.key(s) < key);
        self.sets
            .get(from)
            .is_some_and(|s| self.key(s).starts_with(key))
    }

    /// The SOA record at the apex.
    pub fn soa(&self) -> Option<Record> {
        let set = self.find(&self.apex, RecordType::SOA)?;
        decode(self.wire(set)).ok()
    }

    /// The SOA serial (0 if the zone had none, which loading refuses).
    pub fn serial(&self) -> u32 {
        match self.soa().map(|r| r.data) {
            Some(RData::SOA(soa)) => soa.serial,
            _ => 0,
        }
    }

    /// How many records the zone holds.
    #[cfg(test)]
    pub fn count_records(&self) -> usize {
        self.sets.iter().map(|s| self.set_len(s)).sum()
    }

    #[cfg(test)]
    fn set_len(&self, set: &Set) -> usize {
        records_in(self.wire(set)).count()
    }

    /// Every record but the SOA, as wire bytes (uncompressed), one record set at a time:
    /// what a transfer sends between its two SOAs.
    pub fn transfer_sets(&self) -> impl Iterator<Item = &[u8]> + '_ {
        (0..).map_while(|i| self.transfer_set(i))
    }

    /// Record set `index` of [`Zone::transfer_sets`] by position (empty for the apex SOA,
    /// which a transfer sends first and last); `None` past the end.
    pub fn transfer_set(&self, index: usize) -> Option<&[u8]> {
        let set = self.sets.get(index)?;
        let apex_soa = set.rtype == u16::from(RecordType::SOA) && self.key(set) == &*self.apex;
        Some(if apex_soa { &[] } else { self.wire(set) })
    }

    /// The apex SOA in wire form.
    pub fn soa_wire(&self) -> Option<&[u8]> {
        let set = self.find(&self.apex, RecordType::SOA)?;
        let wire = self.wire(set);
        Some(&wire[..record_len(wire)])
    }

    /// Every record, decoded.
    #[cfg(test)]
    pub fn records(&self) -> Vec<Record> {
        self.sets
            .iter()
            .flat_map(|s| records_in(self.wire(s)))
            .filter_map(|wire| decode(wire).ok())
            .collect()
    }

    /// A copy with SOA serial `serial` in which each `(owner, type)` of `replace` holds
    /// exactly the records given (none: the set is gone).
    pub fn changed(
        &self,
        serial: u32,
        replace: &[(Name, RecordType, Vec<Record>)],
    ) -> Result<Self, BuildError> {
        let replaced: Vec<(Vec<u8>, u16)> = replace
            .iter()
            .map(|(owner, rtype, _)| (key_of(owner), u16::from(*rtype)))
            .collect();
        let mut builder = Builder::new(&self.origin);
        let apex = key_of(&self.origin);
        for set in &self.sets {
            let key = self.key(set);
            if replaced
                .iter()
                .any(|(k, t)| k.as_slice() == key && *t == set.rtype)
            {
                continue;
            }
            if key == apex.as_slice() && set.rtype == u16::from(RecordType::SOA) {
                let mut soa = decode(self.wire(set)).map_err(|e| BuildError {
                    line: 0,
                    message: e.to_string(),
                })?;
                if let RData::SOA(data) = &mut soa.data {
                    data.serial = serial;
                }
                builder.add(&soa, 0)?;
                continue;
            }
            for wire in records_in(self.wire(set)) {
                builder.push(key, set.rtype, 0, wire)?;
            }
        }
        for record in replace.iter().flat_map(|(_, _, records)| records) {
            builder.add(record, 0)?;
        }
        builder.finish()
    }
}
