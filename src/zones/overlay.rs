//! Records that live beside a zone file and survive its reloads: ACME challenge TXT
//! records, and the records the node publishes about its certificate (SVCB, TLSA, CAA from
//! `crate::announce`).
//!
//! Owns which sets the overlay puts into a file's zone and the warning when a published set
//! replaces a hand-written one. It must not decide what is published.

use std::collections::BTreeMap;

use hickory_proto::rr::{Name, RData, Record, RecordType, rdata::TXT};

use super::store::Zone;

/// TTL of challenge records: short, they change with every order.
const CHALLENGE_TTL: u32 = 60;

/// One record set to put into a zone: owner, type, records (none: the set goes).
pub(super) type Set = (Name, RecordType, Vec<Record>);

#[derive(Debug, Clone, Default)]
pub(super) struct Overlay {
    /// Challenge TXT values by owner.
    pub(super) txt: BTreeMap<Name, Vec<String>>,
    /// Published sets by owner and type: each replaces the file's set of that name and type.
    pub(super) published: BTreeMap<(Name, u16), Vec<Record>>,
}

impl Overlay {
    /// Whether any overlay record falls in the zone `origin`.
    pub(super) fn touches(&self, origin: &Name) -> bool {
        self.txt.keys().any(|owner| origin.zone_of(owner))
            || self
                .published
                .keys()
                .any(|(owner, _)| origin.zone_of(owner))
    }

    /// Replaces the published sets with `records` (grouped here by name and type); returns
    /// the sets that change in the zone `origin`, a set no longer published included (as
    /// empty). `zone` is what is served now: a set it holds that was not published before
    /// is a hand-written one, and is named in a warning.
    pub(super) fn publish(&mut self, records: Vec<Record>, origin: &Name, zone: &Zone) -> Vec<Set> {
        let next = grouped(records);
        let mut changes = Vec::new();
        for ((owner, rtype), records) in &next {
            if !origin.zone_of(owner)
                || self.published.get(&(owner.clone(), *rtype)) == Some(records)
            {
                continue;
            }
            let rtype = RecordType::from(*rtype);
            if !self
                .published
                .contains_key(&(owner.clone(), u16::from(rtype)))
                && zone.has_set(owner, rtype)
            {
                warn_replaced(owner, rtype);
            }
            changes.push((owner.clone(), rtype, records.clone()));
        }
        for (owner, rtype) in self.published.keys() {
            if origin.zone_of(owner) && !next.contains_key(&(owner.clone(), *rtype)) {
                changes.push((owner.clone(), RecordType::from(*rtype), Vec::new()));
            }
        }
        self.published = next;
        changes
    }

    /// Warns for every published set that replaces one of `zone` (a file just read).
    pub(super) fn warn_replaced(&self, origin: &Name, zone: &Zone) {
        for (owner, rtype) in self.published.keys() {
            let rtype = RecordType::from(*rtype);
            if origin.zone_of(owner) && zone.has_set(owner, rtype) {
                warn_replaced(owner, rtype);
            }
        }
    }
}

/// Records by owner and type.
pub(super) fn grouped(records: Vec<Record>) -> BTreeMap<(Name, u16), Vec<Record>> {
    let mut sets: BTreeMap<(Name, u16), Vec<Record>> = BTreeMap::new();
    for record in records {
        let key = (record.name.clone(), u16::from(record.record_type()));
        sets.entry(key).or_default().push(record);
    }
    sets
}

fn warn_replaced(owner: &Name, rtype: RecordType) {
    tracing::warn!(
        %owner,
        %rtype,
        "the zone file's {rtype} records at {owner} are replaced by the ones this node \
         publishes ([publish]); remove them from the file"
    );
}

pub(super) fn txt_records<'a>(
    owner: &'a Name,
    values: &'a [String],
) -> impl Iterator<Item = Record> + 'a {
    values.iter().map(|v| {
        Record::from_rdata(
            owner.clone(),
            CHALLENGE_TTL,
            RData::TXT(TXT::new(vec![v.clone()])),
        )
    })
}
