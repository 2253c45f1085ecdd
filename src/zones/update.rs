//! RFC 2136 UPDATE applied to a file zone: prerequisites (section 3.2), the prescan of the
//! update section (3.4.1), the grant check the caller passes in (3.3), and the changes
//! applied together or not at all (3.4.2), kept on disk before the new zone is served.
//!
//! Owns the update semantics. It must not know about keys, messages or sockets (`dns`
//! reads the message and the TSIG, `config` says what a key may change). The records of
//! the master's own ACME challenges (the overlay) are served beside updated TXT records
//! at the same name, and an update never sees or removes them.

use std::{collections::BTreeMap, sync::Arc};

use hickory_proto::{
    op::ResponseCode,
    rr::{DNSClass, Name, RData, Record, RecordType},
};

use super::{
    Loaded, Overlay, Zones,
    dynamic::{self, SetKey},
    snapshot,
};

/// Why an update was not applied; [`UpdateError::rcode`] is the answer's.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("zone {0} is not served here")]
    NotAuth(String),
    #[error(
        "zone {0} is not a zone file of this node (generated or transferred zones are not updated)"
    )]
    NotOpen(String),
    #[error("{name} is outside the zone {zone}")]
    NotZone { name: String, zone: String },
    #[error("malformed update: {0}")]
    FormErr(String),
    #[error("prerequisite failed: {message}")]
    Prerequisite {
        rcode: ResponseCode,
        message: String,
    },
    #[error("the key may not change {rtype} at {name}")]
    Refused { name: String, rtype: RecordType },
    #[error("update not applied: {0}")]
    ServFail(String),
}

impl UpdateError {
    pub fn rcode(&self) -> ResponseCode {
        match self {
            Self::NotAuth(_) => ResponseCode::NotAuth,
            Self::NotOpen(_) | Self::Refused { .. } => ResponseCode::Refused,
            Self::NotZone { .. } => ResponseCode::NotZone,
            Self::FormErr(_) => ResponseCode::FormErr,
            Self::Prerequisite { rcode, .. } => *rcode,
            Self::ServFail(_) => ResponseCode::ServFail,
        }
    }
}

/// An update's sections (RFC 2136 2.2): the zone, its prerequisites, its changes.
pub struct UpdateRequest<'a> {
    pub zone: &'a Name,
    pub prerequisites: &'a [Record],
    pub updates: &'a [Record],
}

impl Zones {
    /// Applies `request` if its prerequisites hold and `allowed` grants every record set it
    /// changes. On success the changes are on disk (fsynced), the zone is served with a
    /// new serial (returned) and NOTIFY follows. A request that changes nothing keeps the
    /// serial.
    pub fn update(
        &self,
        request: &UpdateRequest<'_>,
        allowed: impl Fn(&Name, RecordType) -> bool,
    ) -> Result<u32, UpdateError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(|e| e.into_inner());
        let origin = request.zone;
        let zone = loaded
            .iter_mut()
            .find(|z| z.origin == *origin)
            .ok_or_else(|| UpdateError::NotAuth(origin.to_string()))?;
        if zone.config.is_none() {
            return Err(UpdateError::NotOpen(origin.to_string()));
        }
        check_prerequisites(zone, request.prerequisites)?;
        prescan(origin, request.updates)?;
        for record in request.updates {
            if !allowed(&record.name, record.record_type()) {
                return Err(UpdateError::Refused {
                    name: record.name.to_string(),
                    rtype: record.record_type(),
                });
            }
        }
        let overlay = self
            .overlay
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let touched = apply(zone, &overlay, request.updates);
        if touched.is_empty() {
            return Ok(zone.serial);
        }
        let serial = zone.serial.wrapping_add(1);
        let replace = dynamic::merged_sets(&touched, &overlay, origin);
        let changed = zone
            .zone
            .changed(serial, &replace)
            .map_err(|e| UpdateError::ServFail(e.message))?;
        let mut changes = zone.changes.clone();
        changes.sets.extend(touched);
        changes.file_serial = zone.file_serial;
        changes.serial = serial;
        // Durable before anything is served or acknowledged.
        dynamic::write(&self.dynamic, origin, &changes)
            .map_err(|e| UpdateError::ServFail(e.to_string()))?;
        zone.zone = Arc::new(changed);
        zone.serial = serial;
        zone.changes = changes;
        let stored = zone.stored();
        self.snapshot.store(Arc::new(snapshot(&loaded)));
        drop(loaded);
        if let Err(e) = super::serials::write(&self.serials, origin, stored) {
            tracing::warn!(error = %e, "zone serial not saved; a restart goes past it");
        }
        let _ = self.changes.send(origin.clone());
        Ok(serial)
    }
}

fn key(name: &Name, rtype: RecordType) -> SetKey {
    (name.to_lowercase(), rtype)
}

fn is_empty_rdata(record: &Record) -> bool {
    matches!(record.data, RData::Update0(_))
}

/// RFC 2136 3.2: every prerequisite against the zone as served.
fn check_prerequisites(zone: &Loaded, prerequisites: &[Record]) -> Result<(), UpdateError> {
    let served = &zone.zone;
    let fail = |rcode, message: String| Err(UpdateError::Prerequisite { rcode, message });
    let mut values: BTreeMap<SetKey, Vec<RData>> = BTreeMap::new();
    for rr in prerequisites {
        let (name, rtype) = (&rr.name, rr.record_type());
        if rr.ttl != 0 {
            return Err(UpdateError::FormErr(format!(
                "prerequisite {name} has a TTL"
            )));
        }
        if !zone.origin.zone_of(name) {
            return Err(not_zone(name, &zone.origin));
        }
        let in_use = !dynamic::types_at(served, name).is_empty();
        let exists = !dynamic::rrset(served, name, rtype).is_empty();
        match (rr.dns_class, rtype, is_empty_rdata(rr)) {
            (DNSClass::ANY, RecordType::ANY, true) if !in_use => {
                return fail(ResponseCode::NXDomain, format!("{name} is not in use"));
            }
            (DNSClass::ANY, _, true) if rtype != RecordType::ANY && !exists => {
                return fail(ResponseCode::NXRRSet, format!("no {rtype} at {name}"));
            }
            (DNSClass::NONE, RecordType::ANY, true) if in_use => {
                return fail(ResponseCode::YXDomain, format!("{name} is in use"));
            }
            (DNSClass::NONE, _, true) if rtype != RecordType::ANY && exists => {
                return fail(ResponseCode::YXRRSet, format!("{rtype} exists at {name}"));
            }
            (DNSClass::ANY | DNSClass::NONE, _, true) => {}
            (DNSClass::IN, _, false) if rtype != RecordType::ANY => {
                values
                    .entry(key(name, rtype))
                    .or_default()
                    .push(rr.data.clone());
            }
            _ => {
                return Err(UpdateError::FormErr(format!(
                    "prerequisite {name} {} {rtype} is not one of RFC 2136 2.4",
                    rr.dns_class
                )));
            }
        }
    }
    for ((name, rtype), wanted) in values {
        let have: Vec<RData> = dynamic::rrset(served, &name, rtype)
            .into_iter()
            .map(|r| r.data)
            .collect();
        let same =
            wanted.iter().all(|w| have.contains(w)) && have.iter().all(|h| wanted.contains(h));
        if !same {
            return fail(
                ResponseCode::NXRRSet,
                format!("{rtype} at {name} is not the set given"),
            );
        }
    }
    Ok(())
}

fn not_zone(name: &Name, zone: &Name) -> UpdateError {
    UpdateError::NotZone {
        name: name.to_string(),
        zone: zone.to_string(),
    }
}

/// Types no update may carry (RFC 2136 3.4.1.3: meta types and transfers).
fn is_meta(rtype: RecordType) -> bool {
    matches!(
        rtype,
        RecordType::AXFR
            | RecordType::IXFR
            | RecordType::Unknown(253 | 254)
            | RecordType::OPT
            | RecordType::TSIG
    )
}

/// RFC 2136 3.4.1.3: each update's zone, class, TTL and data are checked before anything
/// is applied.
fn prescan(origin: &Name, updates: &[Record]) -> Result<(), UpdateError> {
    for rr in updates {
        let (name, rtype) = (&rr.name, rr.record_type());
        if !origin.zone_of(name) {
            return Err(not_zone(name, origin));
        }
        let ok = match rr.dns_class {
            DNSClass::IN => rtype != RecordType::ANY && !is_meta(rtype) && !is_empty_rdata(rr),
            DNSClass::ANY => rr.ttl == 0 && is_empty_rdata(rr) && !is_meta(rtype),
            DNSClass::NONE => rr.ttl == 0 && rtype != RecordType::ANY && !is_meta(rtype),
            _ => false,
        };
        if !ok {
            return Err(UpdateError::FormErr(format!(
                "update {name} {} {rtype} is not one of RFC 2136 2.5",
                rr.dns_class
            )));
        }
    }
    Ok(())
}

/// The record sets the updates change, each as it ends up (RFC 2136 3.4.2), sets left as
/// they were dropped. The master's challenge records are not part of what updates see.
fn apply(zone: &Loaded, overlay: &Overlay, updates: &[Record]) -> BTreeMap<SetKey, Vec<Record>> {
    let view = View {
        zone,
        overlay,
        touched: BTreeMap::new(),
    };
    let mut view = updates.iter().fold(view, |mut view, rr| {
        view.apply(rr);
        view
    });
    let touched = std::mem::take(&mut view.touched);
    touched
        .into_iter()
        .filter(|((name, rtype), records)| !same_data(records, &view.base(name, *rtype)))
        .collect()
}

fn same_data(a: &[Record], b: &[Record]) -> bool {
    a.len() == b.len()
        && a.iter()
            .all(|x| b.iter().any(|y| x.data == y.data && x.ttl == y.ttl))
}

/// The zone as updates see it: the file with earlier dynamic changes, without the
/// master's own challenge records, plus what this update changed so far.
struct View<'a> {
    zone: &'a Loaded,
    overlay: &'a Overlay,
    touched: BTreeMap<SetKey, Vec<Record>>,
}

impl View<'_> {
    /// The set before this update.
    fn base(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        let key = key(name, rtype);
        if let Some(records) = self.zone.changes.sets.get(&key) {
            return records.clone();
        }
        let mut records = dynamic::rrset(&self.zone.zone, name, rtype);
        if rtype == RecordType::TXT && self.overlay.txt.contains_key(name) {
            // Served TXT here is the challenge alone (it replaced the file's).
            records.clear();
        }
        records
    }

    fn current(&self, name: &Name, rtype: RecordType) -> Vec<Record> {
        match self.touched.get(&key(name, rtype)) {
            Some(records) => records.clone(),
            None => self.base(name, rtype),
        }
    }

    /// Every type holding records at `name` now.
    fn types_at(&self, name: &Name) -> Vec<RecordType> {
        let lower = name.to_lowercase();
        let mut types = dynamic::types_at(&self.zone.zone, name);
        types.extend(
            self.zone
                .changes
                .sets
                .keys()
                .filter(|(n, _)| *n == lower)
                .map(|k| k.1),
        );
        types.extend(
            self.touched
                .keys()
                .filter(|(n, _)| *n == lower)
                .map(|k| k.1),
        );
        types.sort_unstable_by_key(|t| u16::from(*t));
        types.dedup();
        types.retain(|t| !self.current(name, *t).is_empty());
        types
    }

    fn set(&mut self, name: &Name, rtype: RecordType, records: Vec<Record>) {
        self.touched.insert(key(name, rtype), records);
    }

    fn apply(&mut self, rr: &Record) {
        let (name, rtype) = (&rr.name, rr.record_type());
        let apex = *name == self.zone.origin;
        // The SOA is the server's; the apex NS set is never emptied (RFC 2136 3.4.2.3/4).
        let protected = |t: RecordType| t == RecordType::SOA || (apex && t == RecordType::NS);
        match rr.dns_class {
            DNSClass::IN => self.add(rr),
            DNSClass::ANY if rtype == RecordType::ANY => {
                for t in self.types_at(name) {
                    if !protected(t) {
                        self.set(name, t, Vec::new());
                    }
                }
            }
            DNSClass::ANY if !protected(rtype) => self.set(name, rtype, Vec::new()),
            DNSClass::NONE if rtype != RecordType::SOA => {
                let mut records = self.current(name, rtype);
                records.retain(|r| r.data != rr.data);
                if !(records.is_empty() && protected(rtype)) {
                    self.set(name, rtype, records);
                }
            }
            _ => {}
        }
    }

    /// RFC 2136 3.4.2.2: an addition; CNAME beside other data is ignored either way, and
    /// the whole set takes the new TTL (RFC 2181 5.2).
    fn add(&mut self, rr: &Record) {
        let (name, rtype) = (&rr.name, rr.record_type());
        if rtype == RecordType::SOA {
            return;
        }
        let types = self.types_at(name);
        let cname = RecordType::CNAME;
        let others = types.iter().any(|t| *t != cname);
        if (rtype == cname && others) || (rtype != cname && types.contains(&cname)) {
            return;
        }
        let mut records = self.current(name, rtype);
        records.retain(|r| r.data != rr.data);
        if rtype == cname {
            records.clear();
        }
        let mut added = rr.clone();
        added.dns_class = DNSClass::IN;
        records.push(added);
        for record in &mut records {
            record.ttl = rr.ttl;
        }
        self.set(name, rtype, records);
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::{rr::rdata::TXT, serialize::binary::BinEncodable};

    use super::*;
    use crate::config::ZoneConfig;

    fn name(text: &str) -> Name {
        Name::from_ascii(text).unwrap()
    }

    fn load(dir: &std::path::Path, serial: u32) -> Zones {
        let file = dir.join("example.test.zone");
        let text = format!(
            "$ORIGIN example.test.\n$TTL 300\n@ IN SOA ns1 hm ( {serial} 3600 600 86400 300 )\n  IN NS ns1\nns1 IN A 192.0.2.1\n"
        );
        std::fs::write(&file, text).unwrap();
        let config = ZoneConfig {
            origin: name("example.test."),
            file,
        };
        Zones::load(&[config], &dir.join("state")).unwrap()
    }

    fn served_txt(zones: &Zones, owner: &Name) -> Vec<String> {
        let snapshot = zones.snapshot();
        let zone = snapshot.zones.find(&owner.to_bytes().unwrap()).unwrap();
        let mut values: Vec<String> = dynamic::rrset(zone, owner, RecordType::TXT)
            .iter()
            .map(|r| r.data.to_string())
            .collect();
        values.sort();
        values
    }

    fn txt(owner: &Name, value: &str) -> Record {
        Record::from_rdata(owner.clone(), 60, RData::TXT(TXT::new(vec![value.into()])))
    }

    fn update(zones: &Zones, updates: &[Record]) -> u32 {
        let request = UpdateRequest {
            zone: &name("example.test."),
            prerequisites: &[],
            updates,
        };
        zones.update(&request, |_, _| true).unwrap()
    }

    #[tokio::test]
    async fn challenges_and_updates_at_one_name_never_remove_each_other() {
        let dir = tempfile::tempdir().unwrap();
        let zones = load(dir.path(), 7);
        let owner = name("_acme-challenge.example.test.");
        assert!(zones.set_txt(&owner, &["master".into()]).await);
        update(&zones, &[txt(&owner, "client")]);
        assert_eq!(served_txt(&zones, &owner), ["client", "master"]);
        assert!(zones.set_txt(&owner, &[]).await);
        assert_eq!(
            served_txt(&zones, &owner),
            ["client"],
            "the master's removal"
        );
        assert!(zones.set_txt(&owner, &["master-2".into()]).await);
        let mut delete_all = Record::update0(owner.clone(), 0, RecordType::TXT);
        delete_all.dns_class = DNSClass::ANY;
        update(&zones, &[delete_all]);
        assert_eq!(
            served_txt(&zones, &owner),
            ["master-2"],
            "a client's delete-all"
        );
        // A reload keeps both layers.
        zones.reload();
        assert_eq!(served_txt(&zones, &owner), ["master-2"]);
    }

    #[tokio::test]
    async fn the_serial_goes_round_by_rfc_1982_and_a_restart_keeps_the_changes() {
        let dir = tempfile::tempdir().unwrap();
        let zones = load(dir.path(), u32::MAX);
        zones.save_serials().unwrap();
        let owner = name("_acme-challenge.web.example.test.");
        assert_eq!(update(&zones, &[txt(&owner, "a")]), 0);
        drop(zones);
        let zones = load(dir.path(), u32::MAX);
        assert_eq!(served_txt(&zones, &owner), ["a"]);
        assert_eq!(zones.serial(&name("example.test.")).await, Some(1));
        assert_eq!(
            update(&zones, &[txt(&owner, "a")]),
            1,
            "no change, same serial"
        );
    }
}
