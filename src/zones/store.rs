//! One zone's records, kept compact and answered from directly.
//!
//! hickory's in-memory store keeps each record as a decoded `Record` (about 280 bytes) in
//! its own record set, map entry and `Arc`: a 100,000-record zone took 150 MB, and every
//! transfer cloned and re-encoded it all. Here a zone is three flat vectors: every record
//! in uncompressed wire form, the lowercased owner names as lookup keys, and one small
//! index entry per record set. Queries decode only the record sets they answer with; a
//! transfer copies the wire bytes as they are ([`Zone::transfer_sets`]).
//!
//! Lookups keep the answers hickory's in-memory store gives (a test compares both on
//! every name and type of a test zone): delegations, CNAME chains, wildcards, additional
//! A/AAAA for NS, MX and SRV targets, QTYPE=ANY as one type (RFC 8482). ANAME, hickory's
//! own draft type, is served as a plain type. A zone is immutable: a change builds a new
//! one ([`Zone::changed`]), which the caller swaps in. This module owns the layout and the
//! lookup rules; it must not read files (`parse`) or know which zones exist (`zones`).

use std::{collections::HashSet, sync::Arc};

use hickory_proto::{
    rr::{DNSClass, LowerName, Name, RData, Record, RecordSet, RecordType},
    serialize::binary::{BinDecodable, BinDecoder, BinEncodable, BinEncoder, NameEncoding},
};
use hickory_server::{
    dnssec::NxProofKind,
    server::{Request, RequestInfo},
    zone_handler::{
        AuthLookup, AxfrPolicy, LookupControlFlow, LookupError, LookupOptions, LookupRecords,
        Nsec3QueryInfo, ZoneHandler, ZoneTransfer, ZoneType,
    },
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
    /// Every record in wire form (owner, type, class, TTL, length, data), uncompressed,
    /// grouped by record set in `sets` order.
    records: Vec<u8>,
    /// Owner keys (see [`key_of`]), each stored once.
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
struct Set {
    key: u32,
    key_len: u16,
    rtype: u16,
    start: u32,
    end: u32,
}

/// The lookup key of a name: its labels from the root down, lowercased, each after its
/// length. A name's descendants are exactly the keys that start with its key, so they sit
/// together in sorted order.
fn key_of(name: &Name) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 1);
    for label in name.iter().rev() {
        key.push(label.len() as u8);
        key.extend(label.iter().map(u8::to_ascii_lowercase));
    }
    key
}

/// Where each ancestor's key ends within a key: `[0, first label, ..., whole]`.
fn label_ends(key: &[u8]) -> Vec<usize> {
    let mut ends = vec![0];
    let mut at = 0;
    while at < key.len() {
        at += 1 + key[at] as usize;
        ends.push(at.min(key.len()));
    }
    ends
}

/// Collects records into a [`Zone`].
pub struct Builder {
    origin: Name,
    class: DNSClass,
    entries: Vec<Entry>,
}

struct Entry {
    key: Box<[u8]>,
    rtype: u16,
    line: u32,
    wire: Box<[u8]>,
}

impl Builder {
    pub fn new(origin: &Name) -> Self {
        Self {
            origin: origin.clone(),
            class: DNSClass::IN,
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
        self.entries.push(Entry {
            key: key_of(&record.name).into(),
            rtype: record.record_type().into(),
            line: line.try_into().unwrap_or(u32::MAX),
            wire: wire.into(),
        });
        Ok(())
    }

    /// Sorts and packs the records. Within a record set they keep the order they came in;
    /// a repeated record counts once, a later SOA or CNAME replaces an earlier one (as a
    /// record set does). A CNAME beside other data at the same name is refused.
    pub fn finish(mut self) -> Result<Zone, BuildError> {
        self.entries
            .sort_by(|a, b| (&a.key, a.rtype).cmp(&(&b.key, b.rtype)));
        let mut zone = Zone {
            origin: LowerName::new(&self.origin),
            records: Vec::new(),
            keys: Vec::new(),
            sets: Vec::new(),
        };
        let mut entries = self.entries.into_iter().peekable();
        while let Some(first) = entries.next() {
            let mut group = vec![first];
            while let Some(next) =
                entries.next_if(|e| e.key == group[0].key && e.rtype == group[0].rtype)
            {
                group.push(next);
            }
            zone.check_cname(&group[0])?;
            let rtype = RecordType::from(group[0].rtype);
            let line = group[0].line as usize;
            let set = if group.len() == 1 || !needs_merging(rtype) && distinct(&group) {
                // The common case: nothing to merge, the bytes go in as they are.
                let start = zone.records.len();
                for entry in &group {
                    zone.records.extend_from_slice(&entry.wire);
                }
                (start, zone.records.len())
            } else {
                let set = merged(&group).map_err(|message| BuildError { line, message })?;
                let start = zone.records.len();
                for record in set.records_without_rrsigs() {
                    let wire = encode(record).map_err(|e| BuildError {
                        line,
                        message: e.to_string(),
                    })?;
                    zone.records.extend_from_slice(&wire);
                }
                (start, zone.records.len())
            };
            zone.push_set(&group[0].key, group[0].rtype, set);
        }
        zone.records.shrink_to_fit();
        zone.keys.shrink_to_fit();
        zone.sets.shrink_to_fit();
        Ok(zone)
    }
}

/// SOA and CNAME sets hold one record: a later one replaces the earlier.
fn needs_merging(rtype: RecordType) -> bool {
    matches!(rtype, RecordType::SOA | RecordType::CNAME)
}

/// Whether no two records of a group have the same data (the owner and TTL aside).
fn distinct(group: &[Entry]) -> bool {
    let mut seen = HashSet::with_capacity(group.len());
    group.iter().all(|e| seen.insert(rdata_of(&e.wire)))
}

/// The record set a group makes, by hickory's rules for inserting into one.
fn merged(group: &[Entry]) -> Result<RecordSet, String> {
    let mut set: Option<RecordSet> = None;
    for entry in group {
        let record = decode(&entry.wire).map_err(|e| e.to_string())?;
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

fn encode(record: &Record) -> Result<Vec<u8>, hickory_proto::ProtoError> {
    let mut bytes = Vec::with_capacity(64);
    let mut encoder = BinEncoder::new(&mut bytes);
    encoder.set_name_encoding(NameEncoding::Uncompressed);
    record.emit(&mut encoder)?;
    Ok(bytes)
}

fn decode(wire: &[u8]) -> Result<Record, hickory_proto::ProtoError> {
    Ok(Record::read(&mut BinDecoder::new(wire))?)
}

/// The length of the uncompressed name at the start of `wire`.
pub fn name_len(wire: &[u8]) -> usize {
    let mut at = 0;
    while let Some(&len) = wire.get(at) {
        at += 1 + len as usize;
        if len == 0 {
            break;
        }
    }
    at.min(wire.len())
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

    fn push_set(&mut self, key: &[u8], rtype: u16, (start, end): (usize, usize)) {
        let key_at = match self.sets.last() {
            Some(last) if self.key(last) == key => last.key,
            _ => {
                let at = self.keys.len() as u32;
                self.keys.extend_from_slice(key);
                at
            }
        };
        self.sets.push(Set {
            key: key_at,
            key_len: key.len() as u16,
            rtype,
            start: start as u32,
            end: end as u32,
        });
    }

    /// Refuses `entry` if its name would hold a CNAME and other data. Sets come in key
    /// order, so the ones already pushed at this key are all there is to compare with.
    fn check_cname(&self, entry: &Entry) -> Result<(), BuildError> {
        let cname = u16::from(RecordType::CNAME);
        // DNSSEC records may sit beside a CNAME (RFC 2181 10.1).
        let beside = [RecordType::RRSIG, RecordType::NSEC, RecordType::NSEC3].map(u16::from);
        let types = self
            .sets_at(&entry.key)
            .iter()
            .map(|s| s.rtype)
            .chain([entry.rtype]);
        let (mut has_cname, mut has_data) = (false, false);
        for rtype in types {
            has_cname |= rtype == cname;
            has_data |= rtype != cname && !beside.contains(&rtype);
        }
        if has_cname && has_data {
            let name = decode(&entry.wire)
                .map(|r| r.name.to_string())
                .unwrap_or_default();
            return Err(BuildError {
                line: entry.line as usize,
                message: format!(
                    "{name} has a CNAME and other data (RFC 1034 3.6.2 allows only the CNAME)"
                ),
            });
        }
        Ok(())
    }

    fn key(&self, set: &Set) -> &[u8] {
        &self.keys[set.key as usize..set.key as usize + set.key_len as usize]
    }

    fn wire(&self, set: &Set) -> &[u8] {
        &self.records[set.start as usize..set.end as usize]
    }

    /// Record sets at exactly `key`.
    fn sets_at(&self, key: &[u8]) -> &[Set] {
        let from = self.sets.partition_point(|s| self.key(s) < key);
        let to = from + self.sets[from..].partition_point(|s| self.key(s) == key);
        &self.sets[from..to]
    }

    fn find(&self, key: &[u8], rtype: RecordType) -> Option<&Set> {
        let rtype = u16::from(rtype);
        self.sets_at(key).iter().find(|s| s.rtype == rtype)
    }

    /// Whether `key` or any name below it owns records (an empty non-terminal exists).
    fn exists(&self, key: &[u8]) -> bool {
        let from = self.sets.partition_point(|s| self.key(s) < key);
        self.sets
            .get(from)
            .is_some_and(|s| self.key(s).starts_with(key))
    }

    fn rrset(&self, set: &Set) -> Option<Arc<RecordSet>> {
        let mut records: Option<RecordSet> = None;
        for wire in records_in(self.wire(set)) {
            // Local invariant: every record here was encoded by `encode`.
            let record = decode(wire).ok()?;
            records
                .get_or_insert_with(|| RecordSet::new(record.name.clone(), record.record_type(), 0))
                .insert(record, 0);
        }
        records.map(Arc::new)
    }

    /// The SOA record at the apex.
    pub fn soa(&self) -> Option<Record> {
        let set = self.find(&key_of(&self.origin), RecordType::SOA)?;
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
        let apex_soa = set.rtype == u16::from(RecordType::SOA)
            && self.key(set) == key_of(&self.origin).as_slice();
        Some(if apex_soa { &[] } else { self.wire(set) })
    }

    /// The apex SOA in wire form.
    pub fn soa_wire(&self) -> Option<&[u8]> {
        let set = self.find(&key_of(&self.origin), RecordType::SOA)?;
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
                builder.entries.push(Entry {
                    key: key.into(),
                    rtype: set.rtype,
                    line: 0,
                    wire: wire.into(),
                });
            }
        }
        for record in replace.iter().flat_map(|(_, _, records)| records) {
            builder.add(record, 0)?;
        }
        builder.finish()
    }

    // --- lookups, by the rules of hickory's in-memory store ----------------------------

    /// The record set answering `name`/`rtype`: a delegation's NS set, the name's own set
    /// or CNAME, or a wildcard's, renamed.
    fn inner_lookup(&self, name: &LowerName, rtype: RecordType) -> Option<Arc<RecordSet>> {
        let key = key_of(name);
        let ends = label_ends(&key);
        // Walk up from the name: NS without SOA is a delegation, NS with SOA the apex.
        for depth in (1..ends.len()).rev() {
            let at = &key[..ends[depth]];
            let ns = self.find(at, RecordType::NS);
            let has_soa = self.find(at, RecordType::SOA).is_some();
            let ds_exact = rtype == RecordType::DS && depth == ends.len() - 1;
            match (ns, has_soa) {
                // DS lives in the parent: the delegation point answers it.
                (Some(_), false) if ds_exact => {}
                (Some(ns), false) => return self.rrset(ns),
                (Some(_), true) => break,
                (None, _) => {}
            }
        }
        let wanted = u16::from(rtype);
        let cname = u16::from(RecordType::CNAME);
        match self
            .sets_at(&key)
            .iter()
            .find(|s| s.rtype == wanted || s.rtype == cname)
        {
            Some(set) => self.rrset(set),
            None => self.wildcard(name, rtype),
        }
    }

    fn wildcard(&self, name: &LowerName, rtype: RecordType) -> Option<Arc<RecordSet>> {
        if name.is_wildcard() || name.is_root() {
            return None;
        }
        let mut wildcard = name.clone().into_wildcard();
        loop {
            let Some(found) = self.inner_lookup(&wildcard, rtype) else {
                let parent = wildcard.base_name();
                if parent.is_root() {
                    return None;
                }
                wildcard = parent.into_wildcard();
                continue;
            };
            let mut renamed =
                RecordSet::with_ttl(Name::from(name), found.record_type(), found.ttl());
            for record in found.records_without_rrsigs() {
                renamed.add_rdata(record.data.clone());
            }
            return Some(Arc::new(renamed));
        }
    }

    /// The CNAME chain from `first` (RFC 1034 3.6.2), ending with the answer when the
    /// zone holds it; at most 8 sets, stopping at a loop.
    fn chase_cnames(
        &self,
        name: &LowerName,
        first: Arc<RecordSet>,
        rtype: RecordType,
    ) -> Vec<Arc<RecordSet>> {
        const MAX_CNAME_DEPTH: usize = 8;
        let mut chain = vec![first];
        let mut seen = HashSet::from([name.clone()]);
        while chain.len() < MAX_CNAME_DEPTH {
            let target = match chain.last().and_then(|s| s.records_without_rrsigs().next()) {
                Some(Record {
                    data: RData::CNAME(cname),
                    ..
                }) => LowerName::from(&cname.0),
                _ => break,
            };
            if !seen.insert(target.clone()) {
                break;
            }
            match self.inner_lookup(&target, rtype) {
                Some(set) if set.record_type() == RecordType::CNAME => chain.push(set),
                Some(set) => {
                    chain.push(set);
                    break;
                }
                None => break,
            }
        }
        chain
    }

    /// Address records of NS, MX and SRV targets (and what CNAMEs lead to) for the
    /// additional section.
    fn additionals(
        &self,
        name: &LowerName,
        query_type: RecordType,
        first: LowerName,
    ) -> Option<Vec<Arc<RecordSet>>> {
        let mut found: Vec<Arc<RecordSet>> = Vec::new();
        let types: &[RecordType] = match query_type {
            RecordType::NS | RecordType::MX | RecordType::SRV => &[RecordType::A, RecordType::AAAA],
            _ => &[query_type][..],
        };
        for &rtype in types {
            let mut names = HashSet::new();
            if rtype == query_type {
                names.insert(name.clone());
            }
            let mut next = Some(first.clone());
            while let Some(search) = next.take() {
                if names.contains(&search) {
                    break;
                }
                let set = self.inner_lookup(&search, rtype);
                names.insert(search);
                if let Some(set) = set {
                    if !found.contains(&set) {
                        found.push(set.clone());
                    }
                    next = if set.record_type() == RecordType::CNAME {
                        match set.records_without_rrsigs().next().map(|r| &r.data) {
                            Some(RData::CNAME(cname)) => Some(LowerName::from(&cname.0)),
                            _ => None,
                        }
                    } else {
                        next_name(&set, rtype)
                    };
                }
            }
        }
        (!found.is_empty()).then_some(found)
    }

    /// RFC 8482 4.1: QTYPE=ANY answers one type (CNAME, A, AAAA or MX first).
    fn replace_any(&self, name: &LowerName) -> RecordType {
        let mut first = None;
        for set in self.sets_at(&key_of(name)) {
            let rtype = RecordType::from(set.rtype);
            if matches!(
                rtype,
                RecordType::CNAME | RecordType::A | RecordType::AAAA | RecordType::MX
            ) {
                return rtype;
            }
            first.get_or_insert(rtype);
        }
        first.unwrap_or(RecordType::A)
    }
}

/// The name whose addresses an NS, MX or SRV answer puts in the additional section.
fn next_name(set: &RecordSet, query_type: RecordType) -> Option<LowerName> {
    if set.record_type() != query_type {
        return None;
    }
    match &set.records_without_rrsigs().next()?.data {
        RData::NS(ns) if query_type == RecordType::NS => Some(LowerName::from(&ns.0)),
        RData::MX(mx) if query_type == RecordType::MX => Some(LowerName::from(&mx.exchange)),
        RData::SRV(srv) if query_type == RecordType::SRV => Some(LowerName::from(&srv.target)),
        _ => None,
    }
}

#[async_trait::async_trait]
impl ZoneHandler for Zone {
    fn zone_type(&self) -> ZoneType {
        ZoneType::Primary
    }

    fn axfr_policy(&self) -> AxfrPolicy {
        // Transfers are served by `dns::axfr`, never through the catalog.
        AxfrPolicy::Deny
    }

    fn origin(&self) -> &LowerName {
        &self.origin
    }

    async fn lookup(
        &self,
        name: &LowerName,
        query_type: RecordType,
        _request_info: Option<&RequestInfo<'_>>,
        options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        use LookupControlFlow::{Break, Continue};
        if query_type == RecordType::AXFR {
            return Break(Err(LookupError::NetError(
                "AXFR must be handled with ZoneHandler::zone_transfer()".into(),
            )));
        }
        let query_type = if query_type == RecordType::ANY {
            self.replace_any(name)
        } else {
            query_type
        };
        let answer = self.inner_lookup(name, query_type);
        let (answer, chain) = match answer {
            Some(a) if a.record_type() == RecordType::CNAME && query_type != RecordType::CNAME => {
                let chain = self.chase_cnames(name, a, query_type);
                let last = chain
                    .last()
                    .filter(|s| s.record_type() != RecordType::CNAME)
                    .cloned();
                (last, Some(chain))
            }
            other => (other, None),
        };
        let additionals = answer
            .as_ref()
            .and_then(|a| next_name(a, query_type))
            .and_then(|next| self.additionals(name, query_type, next));
        let answers = match (chain, answer) {
            (Some(chain), _) => LookupRecords::many(options, chain),
            (None, Some(set)) => LookupRecords::new(options, set),
            (None, None) => {
                let error = if self.exists(&key_of(name)) {
                    LookupError::NameExists
                } else if self.origin.zone_of(name) {
                    LookupError::from(hickory_proto::op::ResponseCode::NXDomain)
                } else {
                    LookupError::from(hickory_proto::op::ResponseCode::Refused)
                };
                return Continue(Err(error));
            }
        };
        Continue(Ok(AuthLookup::answers(
            answers,
            additionals.map(|a| LookupRecords::many(options, a)),
        )))
    }

    async fn search(
        &self,
        request: &Request,
        options: LookupOptions,
    ) -> (
        LookupControlFlow<AuthLookup>,
        Option<hickory_proto::rr::TSigResponseContext>,
    ) {
        let info = match request.request_info() {
            Ok(info) => info,
            Err(e) => return (LookupControlFlow::Break(Err(e)), None),
        };
        let name = info.query.name();
        let rtype = info.query.query_type();
        (self.lookup(name, rtype, Some(&info), options).await, None)
    }

    /// Transfers reach the catalog only over UDP (streams go to `dns::axfr`, which checks
    /// TSIG): refused, IXFR too (hickory's store sent a whole zone for IXFR, unsigned).
    async fn zone_transfer(
        &self,
        _request: &Request,
        _options: LookupOptions,
        _now: u64,
    ) -> Option<(
        Result<ZoneTransfer, LookupError>,
        Option<hickory_proto::rr::TSigResponseContext>,
    )> {
        Some((
            Err(LookupError::from(hickory_proto::op::ResponseCode::Refused)),
            None,
        ))
    }

    async fn nsec_records(
        &self,
        _name: &LowerName,
        _options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        LookupControlFlow::Continue(Ok(AuthLookup::default()))
    }

    async fn nsec3_records(
        &self,
        _info: Nsec3QueryInfo<'_>,
        _options: LookupOptions,
    ) -> LookupControlFlow<AuthLookup> {
        LookupControlFlow::Continue(Ok(AuthLookup::default()))
    }

    fn nx_proof_kind(&self) -> Option<&NxProofKind> {
        None
    }
}

#[cfg(test)]
mod tests;
