//! Building a [`Zone`]: records are added one at a time (from a zone file, a transfer, a
//! change) into two flat byte arenas, then sorted and packed once.
//!
//! Memory is what a million-record zone is about: per record the builder keeps its owner
//! key and wire bytes in the arenas and a 20-byte entry, no allocation of its own. When
//! every record set arrived in one piece (a transfer from certzone, BIND or Knot sends
//! them so), the wire and key arenas *become* the zone's record bytes and owner keys and
//! nothing is copied, so a transfer's peak stays close to the zone it leaves behind; an
//! owner's records in a row share one copy of its key.

use std::collections::HashSet;

use hickory_proto::rr::{DNSClass, LowerName, Name, Record, RecordSet, RecordType};

use super::{BuildError, Set, Zone, decode, encode, key_of, key_of_wire, rdata_of};
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
        // A record of the same owner as the one before shares its key: a transfer sends an
        // owner's records together, so the arena holds each owner once, as the zone does.
        let key_at = match self.entries.last() {
            Some(last) if self.key(last) == key => last.key_at,
            _ => u32::try_from(self.keys.len()).map_err(|_| too_big())?,
        };
        let entry = Entry {
            key_at,
            wire_at: u32::try_from(self.wires.len()).map_err(|_| too_big())?,
            wire_len: u32::try_from(wire.len()).map_err(|_| too_big())?,
            line: line.try_into().unwrap_or(u32::MAX),
            rtype,
            key_len: u8::try_from(key.len()).map_err(|_| too_big())?,
        };
        u32::try_from(self.wires.len() + wire.len()).map_err(|_| too_big())?;
        if key_at as usize == self.keys.len() {
            self.keys.extend_from_slice(key);
        }
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
        if in_place {
            return self.finish_in_place(&entries);
        }
        let mut zone = self.zone(Vec::new(), Vec::new());
        for group in Groups::new(&entries, same) {
            let first = &group[0];
            zone.check_cname(
                self.key(first),
                first.rtype,
                self.wire(first),
                first.line as usize,
            )?;
            let range = self.copy_set(group, &mut zone.records)?;
            zone.push_set(self.key(first), first.rtype, range);
        }
        drop(entries);
        Ok(packed(zone))
    }

    /// [`Builder::finish`] when every set's records sit together in the wire arena and need
    /// no merging (a transfer's do): both arenas become the zone's as they are, the sets
    /// pointing into them, rather than copies beside them (at a million records, the key
    /// arena alone is about 20 MB).
    fn finish_in_place(mut self, entries: &[Entry]) -> Result<Zone, BuildError> {
        let (records, keys) = (
            std::mem::take(&mut self.wires),
            std::mem::take(&mut self.keys),
        );
        let mut zone = self.zone(records, keys);
        let keys = &zone.keys;
        let key = |e: &Entry| &keys[e.key_at as usize..][..usize::from(e.key_len)];
        let same = |a: &Entry, b: &Entry| key(a) == key(b) && a.rtype == b.rtype;
        for group in Groups::new(entries, same) {
            let (first, last) = (group[0], group[group.len() - 1]);
            let wire = &zone.records[first.wire_at as usize..][..first.wire_len as usize];
            zone.check_cname(key(&first), first.rtype, wire, first.line as usize)?;
            let key_at = zone.shared_key(key(&first)).unwrap_or(first.key_at);
            let range = (
                first.wire_at as usize,
                (last.wire_at + last.wire_len) as usize,
            );
            let set = Set::new(key_at, usize::from(first.key_len), first.rtype, range);
            zone.sets.push(set);
        }
        Ok(packed(zone))
    }

    /// An empty zone of this builder's origin holding `records` and `keys`.
    fn zone(&self, records: Vec<u8>, keys: Vec<u8>) -> Zone {
        Zone {
            origin: LowerName::new(&self.origin),
            apex: key_of(&self.origin).into(),
            records,
            keys,
            sets: Vec::new(),
        }
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

/// `zone` without its arenas' spare capacity.
fn packed(mut zone: Zone) -> Zone {
    zone.records.shrink_to_fit();
    zone.keys.shrink_to_fit();
    zone.sets.shrink_to_fit();
    zone
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

    /// A transfer's order (each owner's records together, each set in one piece) is built
    /// in place, the arenas becoming the zone's; the same records with the owners in
    /// another order are copied. Both serve the same, and in place an owner's key is kept
    /// once for all its records.
    #[test]
    fn built_in_place_serves_the_same_as_copied() {
        let origin = Name::from_str("example.test.").unwrap();
        let n = |s: &str| Name::from_str(s).unwrap();
        let soa = rdata::SOA::new(n("ns1.example.test."), n("h.example.test."), 7, 1, 2, 3, 4);
        let soa = Record::from_rdata(origin.clone(), 300, RData::SOA(soa));
        let a = |name: &str, last| {
            Record::from_rdata(n(name), 60, RData::A(rdata::A::new(192, 0, 2, last)))
        };
        let txt = |name: &str| {
            Record::from_rdata(n(name), 60, RData::TXT(rdata::TXT::new(vec![name.into()])))
        };
        let names: Vec<String> = (0..50).map(|i| format!("h{i}.example.test.")).collect();
        let of = |i: usize, name: &String| [a(name, i as u8), a(name, 200), txt(name)];
        // As a primary sends them: the SOA first, then owner by owner.
        let mut sent = vec![soa.clone()];
        sent.extend(names.iter().enumerate().flat_map(|(i, name)| of(i, name)));
        // Owners backwards, and one owner's sets apart: not in one piece in the arena.
        let mut apart = vec![soa];
        apart.extend(
            names
                .iter()
                .enumerate()
                .rev()
                .flat_map(|(i, name)| of(i, name)),
        );
        apart.push(a("h3.example.test.", 9));
        sent.insert(sent.len() - 1, a("h49.example.test.", 9));
        let (in_place, copied) = (zone_of(&origin, &sent), zone_of(&origin, &apart));
        assert!(
            in_place.keys.len() < 60 * 20,
            "one key per owner, not per record"
        );
        for (i, name) in names.iter().enumerate() {
            let mut want = vec![a(name, i as u8), a(name, 200)];
            if i == 49 {
                want.push(a(name, 9));
            }
            assert_eq!(
                in_place.set_records(&n(name), RecordType::A),
                want,
                "{name}"
            );
            assert_eq!(
                in_place.set_records(&n(name), RecordType::TXT),
                vec![txt(name)]
            );
            if i != 3 && i != 49 {
                assert_eq!(copied.set_records(&n(name), RecordType::A), want, "{name}");
            }
        }
        assert!(!in_place.has_set(&n("nope.example.test."), RecordType::A));
        assert_eq!((in_place.serial(), in_place.count_records()), (7, 152));
        assert_eq!(copied.count_records(), 152);
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
