//! Building a [`Zone`]: records are added one at a time (from a zone file, a transfer, a
//! change) into two flat byte arenas, then sorted and packed once.
//!
//! Memory is what a million-record zone is about: per record the builder keeps its owner
//! key and wire bytes in the arenas and a 20-byte entry, no allocation of its own. When
//! every record set arrived in one piece (a transfer from certzone, BIND or Knot sends
//! them so), the wire arena *becomes* the zone's record bytes and nothing is copied, so a
//! transfer's peak stays close to the zone it leaves behind.

use std::collections::HashSet;

use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordSet, RecordType};

use super::{BuildError, Zone, decode, encode, key_of, key_of_wire, rdata_of};
use crate::wire::name_len;

/// Collects records into a [`Zone`].
pub struct Builder {
    origin: Name,
    class: DNSClass,
    keys: Vec<u8>,
    wires: Vec<u8>,
    entries: Vec<Entry>,
}

/// One record: where its key and wire bytes sit in the arenas.
#[derive(Clone, Copy)]
struct Entry {
    key_at: u32,
    wire_at: u32,
    wire_len: u32,
    line: u32,
    rtype: u16,
    key_len: u8,
}

/// The arenas are indexed with 32 bits, as the zone's own sets are.
const TOO_BIG: &str = "the zone holds over 4 GiB of records";

impl Builder {
    pub fn new(origin: &Name) -> Self {
        Self {
            origin: origin.clone(),
            class: DNSClass::IN,
            keys: Vec::new(),
            wires: Vec::new(),
            entries: Vec::new(),
        }
    }

    /// Adds `record`; `line` is reported with any error about it.
    pub fn add(&mut self, record: &Record, line: usize) -> Result<(), BuildError> {
        let error = |message: String| BuildError { line, message };
        if record.dns_class != self.class {
            return Err(error(format!(
                "{} {} has class {}; the zone's class is {}",
                record.name,
                record.record_type(),
                record.dns_class,
                self.class
            )));
        }
        let wire = encode(record).map_err(|e| {
            error(format!(
                "{} {} cannot be encoded: {e}",
                record.name,
                record.record_type()
            ))
        })?;
        self.push(
            &key_of(&record.name),
            record.record_type().into(),
            line,
            &wire,
        )
    }

    /// Adds one record in uncompressed wire form (as a transfer reads it).
    pub fn add_wire(&mut self, wire: &[u8], line: usize) -> Result<(), BuildError> {
        let error = |message: &str| BuildError {
            line,
            message: message.into(),
        };
        let owner = name_len(wire);
        let fixed = wire
            .get(owner..owner + 10)
            .ok_or_else(|| error("a record shorter than its fixed fields"))?;
        let key = key_of_wire(&wire[..owner])
            .ok_or_else(|| error("a record whose owner is not a whole name"))?;
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        let class = DNSClass::from(u16::from_be_bytes([fixed[2], fixed[3]]));
        if class != self.class {
            let name = decode(wire).map(|r| r.name.to_string()).unwrap_or_default();
            return Err(error(&format!(
                "{name} {} has class {class}; the zone's class is {}",
                RecordType::from(rtype),
                self.class
            )));
        }
        self.push(&key, rtype, line, wire)
    }

    pub(super) fn push(
        &mut self,
        key: &[u8],
        rtype: u16,
        line: usize,
        wire: &[u8],
    ) -> Result<(), BuildError> {
        let too_big = || BuildError {
            line,
            message: TOO_BIG.into(),
        };
        let entry = Entry {
            key_at: u32::try_from(self.keys.len()).map_err(|_| too_big())?,
            wire_at: u32::try_from(self.wires.len()).map_err(|_| too_big())?,
            wire_len: u32::try_from(wire.len()).map_err(|_| too_big())?,
            line: line.try_into().unwrap_or(u32::MAX),
            rtype,
            key_len: u8::try_from(key.len()).map_err(|_| too_big())?,
        };
        u32::try_from(self.wires.len() + wire.len()).map_err(|_| too_big())?;
        self.keys.extend_from_slice(key);
        self.wires.extend_from_slice(wire);
        self.entries.push(entry);
        Ok(())
    }

    fn key(&self, e: &Entry) -> &[u8] {
        &self.keys[e.key_at as usize..e.key_at as usize + usize::from(e.key_len)]
    }

    fn wire(&self, e: &Entry) -> &[u8] {
        &self.wires[e.wire_at as usize..(e.wire_at + e.wire_len) as usize]
    }

    /// Sorts and packs the records. Within a record set they keep the order they came in;
    /// a repeated record counts once, a later SOA or CNAME replaces an earlier one (as a
    /// record set does). A CNAME beside other data at the same name is refused.
    pub fn finish(mut self) -> Result<Zone, BuildError> {
        let mut entries = std::mem::take(&mut self.entries);
        // Stable: a set's records keep their order. Presorted runs make this near linear.
        entries.sort_by(|a, b| (self.key(a), a.rtype).cmp(&(self.key(b), b.rtype)));
        let same = |a: &Entry, b: &Entry| self.key(a) == self.key(b) && a.rtype == b.rtype;
        // Two walks over the groups rather than a list of them: at a million records such a
        // list would be 16 MB more at the peak.
        let in_place = Groups::new(&entries, same).all(|g| self.simple(g) && contiguous(g));
        let mut zone = Zone {
            origin: LowerName::new(&self.origin),
            apex: key_of(&self.origin).into(),
            records: Vec::new(),
            keys: Vec::new(),
            sets: Vec::new(),
        };
        for group in Groups::new(&entries, same) {
            let first = &group[0];
            zone.check_cname(
                self.key(first),
                first.rtype,
                self.wire(first),
                first.line as usize,
            )?;
            let range = if in_place {
                let last = group[group.len() - 1];
                (
                    first.wire_at as usize,
                    (last.wire_at + last.wire_len) as usize,
                )
            } else {
                self.copy_set(group, &mut zone.records)?
            };
            zone.push_set(self.key(first), first.rtype, range);
        }
        drop(entries);
        if in_place {
            zone.records = std::mem::take(&mut self.wires);
        }
        zone.records.shrink_to_fit();
        zone.keys.shrink_to_fit();
        zone.sets.shrink_to_fit();
        Ok(zone)
    }

    /// Nothing to merge: one record, or distinct records of a type that holds several.
    fn simple(&self, group: &[Entry]) -> bool {
        group.len() == 1 || !needs_merging(RecordType::from(group[0].rtype)) && self.distinct(group)
    }

    /// Appends a set's records to `records`: as they are, or merged by record-set rules.
    fn copy_set(
        &self,
        group: &[Entry],
        records: &mut Vec<u8>,
    ) -> Result<(usize, usize), BuildError> {
        let start = records.len();
        if self.simple(group) {
            for entry in group {
                records.extend_from_slice(self.wire(entry));
            }
            return Ok((start, records.len()));
        }
        let line = group[0].line as usize;
        let set = self
            .merged(group)
            .map_err(|message| BuildError { line, message })?;
        for record in set.records_without_rrsigs() {
            let wire = encode(record).map_err(|e| BuildError {
                line,
                message: e.to_string(),
            })?;
            records.extend_from_slice(&wire);
        }
        Ok((start, records.len()))
    }

    /// Whether no two records of a group have the same data (the owner and TTL aside).
    fn distinct(&self, group: &[Entry]) -> bool {
        let mut seen = HashSet::with_capacity(group.len());
        group.iter().all(|e| seen.insert(rdata_of(self.wire(e))))
    }

    /// The record set a group makes, by hickory's rules for inserting into one.
    fn merged(&self, group: &[Entry]) -> Result<RecordSet, String> {
        let mut set: Option<RecordSet> = None;
        for entry in group {
            let record = decode(self.wire(entry)).map_err(|e| e.to_string())?;
            match &mut set {
                None => {
                    let mut first = RecordSet::new(record.name.clone(), record.record_type(), 0);
                    first.insert(record, 0);
                    set = Some(first);
                }
                Some(set) => {
                    set.insert(record, 0);
                }
            }
        }
        set.ok_or_else(|| "empty record set".to_string())
    }
}

/// The runs of equal neighbours in `entries`, in order.
struct Groups<'a, F> {
    entries: &'a [Entry],
    same: F,
}

impl<'a, F: Fn(&Entry, &Entry) -> bool> Groups<'a, F> {
    fn new(entries: &'a [Entry], same: F) -> Self {
        Self { entries, same }
    }
}

impl<'a, F: Fn(&Entry, &Entry) -> bool> Iterator for Groups<'a, F> {
    type Item = &'a [Entry];

    fn next(&mut self) -> Option<Self::Item> {
        let first = self.entries.first()?;
        let len = 1 + self.entries[1..]
            .iter()
            .take_while(|e| (self.same)(first, e))
            .count();
        let (group, rest) = self.entries.split_at(len);
        self.entries = rest;
        Some(group)
    }
}

/// Whether a group's records sit one after another in the wire arena, in order.
fn contiguous(group: &[Entry]) -> bool {
    group
        .windows(2)
        .all(|w| w[0].wire_at + w[0].wire_len == w[1].wire_at)
}

/// SOA and CNAME sets hold one record: a later one replaces the earlier.
fn needs_merging(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::SOA | RecordType::CNAME)
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use hickory_proto::rr::{RData, rdata};

    use super::*;

    fn zone_of(origin: &Name, records: &[Record]) -> Zone {
        let mut builder = Builder::new(origin);
        for r in records {
            builder.add(r, 0).unwrap();
        }
        builder.finish().unwrap()
    }

    fn bytes_of(zone: &Zone) -> Vec<Vec<u8>> {
        let mut all = vec![zone.soa_wire().unwrap().to_vec()];
        all.extend(
            zone.transfer_sets()
                .filter(|s| !s.is_empty())
                .map(<[u8]>::to_vec),
        );
        all
    }

    /// Sets that arrive in one piece are kept in place; interleaved ones, repeated records
    /// and a second SOA (the higher serial stays, as in a record set) go through the
    /// copying path; all give the same zone.
    #[test]
    fn in_place_and_copied_builds_give_the_same_zone() {
        let origin = Name::from_str("example.test.").unwrap();
        let n = |s: &str| Name::from_str(s).unwrap();
        let soa = |serial| {
            let data = rdata::SOA::new(
                n("ns1.example.test."),
                n("h.example.test."),
                serial,
                1,
                2,
                3,
                4,
            );
            Record::from_rdata(origin.clone(), 300, RData::SOA(data))
        };
        let a = |name: &str, last| {
            Record::from_rdata(n(name), 60, RData::A(rdata::A::new(192, 0, 2, last)))
        };
        let txt = |name: &str| {
            Record::from_rdata(n(name), 60, RData::TXT(rdata::TXT::new(vec!["t".into()])))
        };
        let in_one_piece = [
            soa(1),
            a("b.example.test.", 1),
            a("b.example.test.", 2),
            txt("b.example.test."),
            a("a.example.test.", 3),
        ];
        let interleaved = [
            a("b.example.test.", 1),
            txt("b.example.test."),
            soa(1),
            a("a.example.test.", 3),
            a("b.example.test.", 2),
        ];
        let repeated = [
            soa(0),
            a("b.example.test.", 1),
            a("b.example.test.", 1),
            a("b.example.test.", 2),
            txt("b.example.test."),
            a("a.example.test.", 3),
            soa(1),
        ];
        let expected = bytes_of(&zone_of(&origin, &in_one_piece));
        assert_eq!(expected.len(), 4, "SOA, a A, b A (two records), b TXT");
        assert_eq!(bytes_of(&zone_of(&origin, &interleaved)), expected);
        assert_eq!(bytes_of(&zone_of(&origin, &repeated)), expected);
    }

    #[test]
    fn wire_records_are_checked_like_decoded_ones() {
        let origin = Name::from_str("example.test.").unwrap();
        let mut builder = Builder::new(&origin);
        assert!(
            builder.add_wire(&[3, b'a', b'b'], 7).is_err(),
            "a cut owner name"
        );
        let mut chaos = vec![
            1, b'x', 7, b'e', b'x', b'a', b'm', b'p', b'l', b'e', 4, b't', b'e', b's', b't', 0,
        ];
        chaos.extend_from_slice(&[0, 16, 0, 3, 0, 0, 0, 60, 0, 2, 1, b'y']);
        let err = builder.add_wire(&chaos, 9).unwrap_err();
        assert!(err.message.contains("class") && err.line == 9, "{err:?}");
    }
}
