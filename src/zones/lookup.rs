//! The answer to one question from one zone, by RFC 1034 4.3.2 with the clarifications of
//! RFC 2181 (glue is not authoritative), RFC 2308 (negative answers carry the SOA with
//! TTL min(SOA TTL, MINIMUM)), RFC 4592 (wildcards match only below the closest encloser,
//! never at a name or empty non-terminal that exists), RFC 6604 (the rcode of a CNAME chain
//! is the last name's), RFC 6672 (DNAME), RFC 8482 (ANY answers one record set) and
//! RFC 9471 (in-domain glue is required in referrals).
//!
//! Where the RFCs leave a choice, the answer is the one Knot DNS gives (docs/ARCHITECTURE.md
//! lists them): CNAME chains are followed at most [`CNAME_CHAIN_MAX`] times and only inside
//! the zone; ANY answers the name's first record set by type number; additional addresses
//! are added for NS, MX, SRV, SVCB and HTTPS targets the zone holds, glue included; the
//! referral is to the topmost cut. This module only decides what goes in which section; it
//! must not encode messages (`dns::answer` does) or know which zones exist (`zones`).

use std::borrow::Cow;

use super::store::{Zone, key_of_wire, records_in};
use crate::wire::name_len;

/// CNAME and DNAME steps followed for one question (Knot's limit).
pub const CNAME_CHAIN_MAX: usize = 5;

const A: u16 = 1;
const NS: u16 = 2;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const MX: u16 = 15;
const AAAA: u16 = 28;
const SRV: u16 = 33;
const DNAME: u16 = 39;
const DS: u16 = 43;
const RRSIG: u16 = 46;
const NSEC: u16 = 47;
const SVCB: u16 = 64;
const HTTPS: u16 = 65;
const ANY: u16 = 255;

/// The response code a lookup decides; the message layer decides the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rcode {
    NoError,
    NxDomain,
    /// A DNAME substitution made a name longer than 255 bytes (RFC 6672 2.2).
    YxDomain,
}

/// One record set for a section, as stored or synthesised.
#[derive(Debug)]
pub struct Item<'z> {
    /// Uncompressed wire-form records (owner, type, class, TTL, length, data).
    pub records: Cow<'z, [u8]>,
    /// Replaces every record's owner: the name a wildcard answered for.
    pub owner: Option<Vec<u8>>,
    /// Replaces every record's TTL: a negative answer's SOA.
    pub ttl: Option<u32>,
    /// When it does not fit a datagram: true sets TC, false leaves it out.
    pub required: bool,
}

impl<'z> Item<'z> {
    fn stored(records: &'z [u8]) -> Self {
        Self {
            records: Cow::Borrowed(records),
            owner: None,
            ttl: None,
            required: true,
        }
    }

    /// The type of the set's records.
    pub fn rtype(&self) -> u16 {
        record_type(&self.records)
    }
}

/// What to answer: the sections without the header's other flags.
#[derive(Debug)]
pub struct Resolution<'z> {
    pub rcode: Rcode,
    /// AA: set unless the question itself led to a referral (RFC 1034 4.3.2 step 3b).
    pub authoritative: bool,
    pub answer: Vec<Item<'z>>,
    pub authority: Vec<Item<'z>>,
    pub additional: Vec<Item<'z>>,
}

impl Zone {
    /// Answers `qname` (uncompressed wire form, any letter case; inside this zone) for type
    /// `qtype`.
    pub fn resolve(&self, qname: &[u8], qtype: u16) -> Resolution<'_> {
        let mut resolver = Resolver {
            zone: self,
            qtype,
            rcode: Rcode::NoError,
            answer: Vec::new(),
            chain: 0,
            wildcards: Vec::new(),
        };
        let mut state = resolver.solve(qname);
        let authoritative = !matches!(state, State::Delegation(_));
        while let State::Follow(name) = state {
            state = resolver.solve(&name);
        }
        resolver.finish(state, authoritative)
    }
}

/// Where one step of the lookup ended (Knot's states).
enum State {
    Hit,
    NoData,
    Miss,
    /// A referral from the cut at or above this key.
    Delegation(Vec<u8>),
    /// A CNAME or DNAME led here (wire form).
    Follow(Vec<u8>),
}

enum Alias {
    Cname,
    Dname,
}

struct Resolver<'z> {
    zone: &'z Zone,
    qtype: u16,
    rcode: Rcode,
    answer: Vec<Item<'z>>,
    chain: usize,
    /// Wildcard nodes already expanded: a second visit is a loop (RFC 4592 4.3).
    wildcards: Vec<Vec<u8>>,
}

impl<'z> Resolver<'z> {
    /// One name: found, covered by a wildcard or DNAME, below a cut, or missing.
    fn solve(&mut self, sname: &[u8]) -> State {
        let Some(key) = key_of_wire(sname) else {
            return State::Hit;
        };
        if !key.starts_with(self.zone.apex_key()) {
            // A chain left the zone: the resolver goes on from the last CNAME.
            return State::Hit;
        }
        if self.zone.exists(&key) {
            return self.found(&key, sname, false);
        }
        let encloser = closest_encloser(self.zone, &key);
        self.not_found(&encloser, sname)
    }

    fn found(&mut self, node: &[u8], sname: &[u8], wildcard: bool) -> State {
        let zone = self.zone;
        if (is_cut(zone, node) && self.qtype != DS) || below_cut(zone, node) {
            return State::Delegation(node.to_vec());
        }
        let sets = zone.sets_at(node);
        let follows = ![CNAME, RRSIG, NSEC, ANY].contains(&self.qtype);
        if follows && let Some(cname) = sets.iter().find(|s| s.rtype == CNAME) {
            return self.follow(zone.wire(cname), node, sname, wildcard, Alias::Cname);
        }
        let set = match self.qtype {
            ANY => sets.first(),
            qtype => sets.iter().find(|s| s.rtype == qtype),
        };
        let Some(set) = set else {
            return State::NoData;
        };
        let mut item = Item::stored(zone.wire(set));
        item.owner = wildcard.then(|| sname.to_vec());
        self.answer.push(item);
        State::Hit
    }

    fn not_found(&mut self, encloser: &[u8], sname: &[u8]) -> State {
        let zone = self.zone;
        let wildcard = [encloser, b"\x01*"].concat();
        if zone.exists(&wildcard) {
            let state = self.found(&wildcard, sname, true);
            if !self.wildcards.contains(&wildcard) {
                self.wildcards.push(wildcard);
            }
            return state;
        }
        let authoritative = !is_cut(zone, encloser) && !below_cut(zone, encloser);
        if authoritative
            && let Some(dname) = zone.sets_at(encloser).iter().find(|s| s.rtype == DNAME)
        {
            return self.follow(zone.wire(dname), encloser, sname, false, Alias::Dname);
        }
        let mut node = encloser;
        while node.len() > zone.apex_key().len()
            && (zone.sets_at(node).is_empty() || below_cut(zone, node))
        {
            node = parent(node);
        }
        if is_cut(zone, node) {
            State::Delegation(node.to_vec())
        } else {
            State::Miss
        }
    }

    /// Puts the alias in the answer and names where the chain goes on, if anywhere.
    fn follow(
        &mut self,
        alias: &'z [u8],
        node: &[u8],
        sname: &[u8],
        wildcard: bool,
        kind: Alias,
    ) -> State {
        self.chain += 1;
        if self.chain > CNAME_CHAIN_MAX {
            return State::Hit;
        }
        let owner = wildcard.then(|| sname.to_vec());
        let repeated = self
            .answer
            .iter()
            .any(|i| i.records.as_ref() == alias && i.owner == owner);
        if repeated {
            // A loop: the CNAME is in the answer already.
            return State::Hit;
        }
        let mut item = Item::stored(alias);
        item.owner = owner;
        self.answer.push(item);
        let next = match kind {
            Alias::Cname => first_rdata(alias).to_vec(),
            Alias::Dname => {
                let Some(next) = self.synthesise(alias, sname) else {
                    self.rcode = Rcode::YxDomain;
                    return State::Hit;
                };
                if self.qtype == CNAME {
                    // The synthesised CNAME is the answer itself.
                    return State::Hit;
                }
                next
            }
        };
        if wildcard {
            if self.wildcards.iter().any(|w| w == node) {
                return State::Hit;
            }
            self.wildcards.push(node.to_vec());
        }
        State::Follow(next)
    }

    /// The CNAME a DNAME makes for `sname` (RFC 6672 2.2), put in the answer; its target,
    /// or `None` when the target would be too long.
    fn synthesise(&mut self, dname: &[u8], sname: &[u8]) -> Option<Vec<u8>> {
        let owner_len = name_len(dname);
        let prefix = sname.len().checked_sub(owner_len)?;
        let target = [&sname[..prefix], first_rdata(dname)].concat();
        if target.len() > 255 {
            return None;
        }
        let ttl = &dname[owner_len + 4..owner_len + 8];
        let mut record = sname.to_vec();
        record.extend_from_slice(&CNAME.to_be_bytes());
        record.extend_from_slice(&1u16.to_be_bytes());
        record.extend_from_slice(ttl);
        record.extend_from_slice(&(target.len() as u16).to_be_bytes());
        record.extend_from_slice(&target);
        self.answer.push(Item {
            records: Cow::Owned(record),
            owner: None,
            ttl: None,
            required: true,
        });
        Some(target)
    }

    fn finish(self, state: State, authoritative: bool) -> Resolution<'z> {
        let zone = self.zone;
        let mut rcode = self.rcode;
        let mut authority = Vec::new();
        match &state {
            State::Miss | State::NoData => {
                if matches!(state, State::Miss) {
                    rcode = Rcode::NxDomain;
                }
                if let Some(soa) = zone.find(zone.apex_key(), SOA.into()) {
                    let soa = zone.wire(soa);
                    authority.push(Item {
                        records: Cow::Borrowed(soa),
                        owner: None,
                        ttl: Some(negative_ttl(soa)),
                        required: false,
                    });
                }
            }
            State::Delegation(node) => {
                let cut = topmost_cut(zone, node);
                if let Some(ns) = zone.find(&cut, NS.into()) {
                    authority.push(Item::stored(zone.wire(ns)));
                }
            }
            State::Hit | State::Follow(_) => {}
        }
        let referral = matches!(state, State::Delegation(_));
        let mut additional = Vec::new();
        for item in self.answer.iter().chain(&authority) {
            additionals(zone, item, referral, &mut additional);
        }
        Resolution {
            rcode,
            authoritative,
            answer: self.answer,
            authority,
            additional,
        }
    }
}

/// Addresses (and for SVCB/HTTPS, the target's own SVCB/HTTPS) of the names `item`'s
/// records point to, when the zone holds them. In a referral, glue below the cut comes
/// first and sets TC when it does not fit (RFC 9471 3.1); the rest is left out instead.
fn additionals<'z>(zone: &'z Zone, item: &Item<'z>, referral: bool, out: &mut Vec<Item<'z>>) {
    let rtype = item.rtype();
    let types: &[u16] = match rtype {
        NS | MX | SRV => &[A, AAAA],
        SVCB => &[A, AAAA, SVCB],
        HTTPS => &[A, AAAA, HTTPS],
        _ => return,
    };
    let owner_key = key_of_wire(&item.records[..name_len(&item.records)]).unwrap_or_default();
    let mut mandatory = Vec::new();
    let mut optional = Vec::new();
    for record in records_in(&item.records) {
        let Some(target) = target_name(rtype, rdata(record)) else {
            continue;
        };
        let Some((node, wildcard)) = glue_node(zone, target) else {
            continue;
        };
        let in_cut = rtype == NS
            && (is_cut(zone, &node) || below_cut(zone, &node))
            && node_key_of(target).starts_with(&owner_key);
        let glue = (node, wildcard.then(|| target.to_vec()));
        if in_cut {
            mandatory.push(glue);
        } else {
            optional.push(glue);
        }
    }
    let count = mandatory.len();
    for (index, (node, owner)) in mandatory.into_iter().chain(optional).enumerate() {
        for &wanted in types {
            let Some(set) = zone.sets_at(&node).iter().find(|s| s.rtype == wanted) else {
                continue;
            };
            let records = zone.wire(set);
            let seen = out
                .iter()
                .any(|i| i.records.as_ref() == records && i.owner == owner);
            if !seen {
                out.push(Item {
                    records: Cow::Borrowed(records),
                    owner: owner.clone(),
                    ttl: None,
                    required: referral && index < count,
                });
            }
        }
    }
}

/// The node holding `target`'s data: its own, or the wildcard covering it (whether the
/// wildcard was used is returned too).
fn glue_node(zone: &Zone, target: &[u8]) -> Option<(Vec<u8>, bool)> {
    let key = key_of_wire(target)?;
    if !key.starts_with(zone.apex_key()) {
        return None;
    }
    if zone.exists(&key) {
        return Some((key, false));
    }
    let wildcard = [closest_encloser(zone, &key).as_slice(), b"\x01*"].concat();
    zone.exists(&wildcard).then_some((wildcard, true))
}

fn node_key_of(name: &[u8]) -> Vec<u8> {
    key_of_wire(name).unwrap_or_default()
}

/// The longest ancestor of `key` that exists in the zone (the apex at least).
fn closest_encloser(zone: &Zone, key: &[u8]) -> Vec<u8> {
    let mut node = parent(key);
    while node.len() > zone.apex_key().len() && !zone.exists(node) {
        node = parent(node);
    }
    node.to_vec()
}

/// The key one label up (the root's parent is the root).
fn parent(key: &[u8]) -> &[u8] {
    let mut at = 0;
    let mut last = 0;
    while at < key.len() {
        last = at;
        at += 1 + usize::from(key[at]);
    }
    &key[..last]
}

/// A zone cut: NS below the apex, not itself below another cut.
fn is_cut(zone: &Zone, key: &[u8]) -> bool {
    key.len() > zone.apex_key().len()
        && zone.find(key, NS.into()).is_some()
        && !below_cut(zone, key)
}

/// Whether a cut lies strictly between the apex and `key` (the name is glue or occluded).
fn below_cut(zone: &Zone, key: &[u8]) -> bool {
    let apex = zone.apex_key().len();
    let mut node = parent(key);
    while node.len() > apex {
        if zone.find(node, NS.into()).is_some() {
            return true;
        }
        node = parent(node);
    }
    false
}

/// The topmost cut at or above `key`: where the referral points.
fn topmost_cut(zone: &Zone, key: &[u8]) -> Vec<u8> {
    let mut cut = key;
    let mut node = key;
    while node.len() > zone.apex_key().len() {
        if zone.find(node, NS.into()).is_some() {
            cut = node;
        }
        node = parent(node);
    }
    cut.to_vec()
}

fn record_type(record: &[u8]) -> u16 {
    let at = name_len(record);
    record
        .get(at..at + 2)
        .map_or(0, |t| u16::from_be_bytes([t[0], t[1]]))
}

/// A record's data, after owner, type, class, TTL and length.
fn rdata(record: &[u8]) -> &[u8] {
    record.get(name_len(record) + 10..).unwrap_or_default()
}

/// The data of the first record in `records` (a CNAME's or DNAME's target).
fn first_rdata(records: &[u8]) -> &[u8] {
    let first = records_in(records).next().unwrap_or_default();
    let data = rdata(first);
    &data[..name_len(data)]
}

/// The name an NS, MX, SRV, SVCB or HTTPS record points to.
fn target_name(rtype: u16, rdata: &[u8]) -> Option<&[u8]> {
    let skip = match rtype {
        NS => 0,
        MX | SVCB | HTTPS => 2,
        SRV => 6,
        _ => return None,
    };
    let name = rdata.get(skip..)?;
    let len = name_len(name);
    (len > 1).then(|| &name[..len])
}

/// TTL of the SOA in a negative answer: min(SOA TTL, MINIMUM) (RFC 2308 3).
fn negative_ttl(soa: &[u8]) -> u32 {
    let owner = name_len(soa);
    let ttl = soa
        .get(owner + 4..owner + 8)
        .map_or(0, |t| u32::from_be_bytes([t[0], t[1], t[2], t[3]]));
    let data = rdata(soa);
    let minimum = data.len().checked_sub(4).map_or(ttl, |at| {
        u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]])
    });
    ttl.min(minimum)
}

#[cfg(test)]
mod tests;
