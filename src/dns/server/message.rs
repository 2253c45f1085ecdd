//! A response being written: header, question, sections and OPT, with name compression
//! (RFC 1035 4.1.4) and a size limit that drops or truncates whole record sets.
//!
//! Names are compared without regard to letter case, so a record owned by the question's
//! name points at the question and reads back in the client's own case (as Knot and BIND
//! answer). Every choice here depends only on lowercased names, so two queries that differ
//! in letter case get answers that differ only in the question's bytes: what prepared
//! answers rely on. Names inside record data are compressed only for the types of RFC 1035
//! whose data may be compressed (NS, CNAME, PTR, MX, SOA; RFC 3597 4); all other data is
//! copied as stored. This module owns the bytes; what goes in which section is decided by
//! `zones::lookup` and `answer`.

pub(crate) use crate::wire::HEADER_LEN;
use crate::{
    wire::name_len,
    zones::{Item, store::records_in},
};

/// Offsets a compression pointer can reach.
const MAX_POINTER: usize = 0x3FFF;

const NS: u16 = 2;
const CNAME: u16 = 5;
const SOA: u16 = 6;
const PTR: u16 = 12;
const MX: u16 = 15;

/// A response under construction.
pub(crate) struct Message {
    bytes: Vec<u8>,
    /// Where names (and the suffixes inside them) start, for compression.
    names: Vec<u16>,
    /// The most bytes the finished message may have, space kept for OPT and TSIG aside.
    limit: usize,
    counts: [u16; 3],
    truncated: bool,
}

/// The sections after the question.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Section {
    Answer = 0,
    Authority = 1,
    Additional = 2,
}

impl Message {
    /// Starts a response to `header` (the query's) with `question` (its wire bytes: name,
    /// type, class; empty for none), at most `limit` bytes once `reserve` bytes are added.
    pub(crate) fn new(header: &[u8], question: &[u8], limit: usize, reserve: usize) -> Self {
        let mut bytes = Vec::with_capacity(512);
        bytes.extend_from_slice(&header[..HEADER_LEN]);
        // QR set, opcode and RD kept; AA, TC, RA, AD, CD and the rcode clear (CD too:
        // an authoritative answer is not validated, RFC 4035 3.1.6).
        bytes[2] = 0x80 | (header[2] & 0x79);
        bytes[3] = 0;
        bytes[4..12].fill(0);
        let mut names = Vec::new();
        if !question.is_empty() {
            bytes[5] = 1;
            let name = name_len(question);
            remember(&mut names, &question[..name], HEADER_LEN);
            bytes.extend_from_slice(question);
        }
        Self {
            bytes,
            names,
            limit: limit.saturating_sub(reserve),
            counts: [0; 3],
            truncated: false,
        }
    }

    pub(crate) fn set_authoritative(&mut self) {
        self.bytes[2] |= 0x04;
    }

    pub(crate) fn set_rcode(&mut self, rcode: u8) {
        self.bytes[3] = (self.bytes[3] & 0xF0) | (rcode & 0x0F);
    }

    /// Adds `item`'s records to `section` if they all fit. A required set that does not
    /// fit sets TC and ends the message; another is left out.
    pub(crate) fn push(&mut self, section: Section, item: &Item<'_>) {
        if self.truncated {
            return;
        }
        let (length, names) = (self.bytes.len(), self.names.len());
        let mut count = 0u16;
        for record in records_in(&item.records) {
            self.record(record, item.owner.as_deref(), item.ttl);
            count += 1;
        }
        if self.bytes.len() > self.limit {
            self.bytes.truncate(length);
            self.names.truncate(names);
            if item.required {
                self.truncated = true;
                self.bytes[2] |= 0x02;
            }
            return;
        }
        self.counts[section as usize] += count;
    }

    /// The finished message, with `opt` (a whole OPT record) last if given.
    pub(crate) fn finish(mut self, opt: Option<&[u8]>) -> Vec<u8> {
        let [answer, authority, mut additional] = self.counts;
        if let Some(opt) = opt {
            self.bytes.extend_from_slice(opt);
            additional += 1;
        }
        self.bytes[6..8].copy_from_slice(&answer.to_be_bytes());
        self.bytes[8..10].copy_from_slice(&authority.to_be_bytes());
        self.bytes[10..12].copy_from_slice(&additional.to_be_bytes());
        self.bytes
    }

    fn record(&mut self, record: &[u8], owner: Option<&[u8]>, ttl: Option<u32>) {
        let stored_owner = name_len(record);
        self.name(owner.unwrap_or(&record[..stored_owner]));
        let fixed = &record[stored_owner..stored_owner + 10];
        let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
        self.bytes.extend_from_slice(&fixed[..4]);
        match ttl {
            Some(ttl) => self.bytes.extend_from_slice(&ttl.to_be_bytes()),
            None => self.bytes.extend_from_slice(&fixed[4..8]),
        }
        let length_at = self.bytes.len();
        self.bytes.extend_from_slice(&[0, 0]);
        let data = &record[stored_owner + 10..];
        match rtype {
            NS | CNAME | PTR => self.name(data),
            MX => {
                self.bytes.extend_from_slice(&data[..2]);
                self.name(&data[2..]);
            }
            SOA => {
                let mname = name_len(data);
                let rname = mname + name_len(&data[mname..]);
                self.name(&data[..mname]);
                self.name(&data[mname..rname]);
                self.bytes.extend_from_slice(&data[rname..]);
            }
            _ => self.bytes.extend_from_slice(data),
        }
        let length = (self.bytes.len() - length_at - 2) as u16;
        self.bytes[length_at..length_at + 2].copy_from_slice(&length.to_be_bytes());
    }

    /// Writes an uncompressed wire name, pointing at an earlier copy of its longest suffix.
    fn name(&mut self, name: &[u8]) {
        let mut at = 0;
        while name.get(at).is_some_and(|&len| len != 0) {
            let suffix = &name[at..];
            if let Some(&earlier) = self
                .names
                .iter()
                .find(|&&offset| same_name(&self.bytes, usize::from(offset), suffix))
            {
                let start = self.bytes.len();
                self.bytes.extend_from_slice(&name[..at]);
                remember_prefix(&mut self.names, &name[..at], start);
                self.bytes
                    .extend_from_slice(&(0xC000 | earlier).to_be_bytes());
                return;
            }
            at += 1 + usize::from(name[at]);
        }
        let start = self.bytes.len();
        self.bytes.extend_from_slice(&name[..name_len(name)]);
        remember(&mut self.names, name, start);
    }
}

/// Records where each suffix of `name` (written at `start`) begins, root excluded.
fn remember(names: &mut Vec<u16>, name: &[u8], start: usize) {
    remember_prefix(names, &name[..name_len(name).saturating_sub(1)], start);
}

/// Records the label starts of `labels` (no root), written at `start`.
fn remember_prefix(names: &mut Vec<u16>, labels: &[u8], start: usize) {
    let mut at = 0;
    while at < labels.len() {
        if start + at <= MAX_POINTER {
            names.push((start + at) as u16);
        }
        at += 1 + usize::from(labels[at]);
    }
}

/// Whether the name at `offset` in `message` (following pointers) equals `name`,
/// ignoring ASCII case.
fn same_name(message: &[u8], mut offset: usize, name: &[u8]) -> bool {
    let mut at = 0;
    let mut jumps = 0;
    loop {
        let Some(&len) = message.get(offset) else {
            return false;
        };
        if len & 0xC0 == 0xC0 {
            let Some(&low) = message.get(offset + 1) else {
                return false;
            };
            offset = usize::from(len & 0x3F) << 8 | usize::from(low);
            jumps += 1;
            if jumps > 64 {
                return false;
            }
            continue;
        }
        let len = usize::from(len);
        let (Some(ours), Some(theirs)) = (
            message.get(offset..offset + 1 + len),
            name.get(at..at + 1 + len),
        ) else {
            return false;
        };
        if !ours.eq_ignore_ascii_case(theirs) {
            return false;
        }
        if len == 0 {
            return true;
        }
        offset += 1 + len;
        at += 1 + len;
    }
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;

    use super::*;

    /// id 0x1234, RD, one question.
    fn header() -> [u8; 12] {
        [0x12, 0x34, 0x01, 0x10, 0, 1, 0, 0, 0, 0, 0, 0]
    }

    fn item(records: Vec<u8>) -> Item<'static> {
        Item {
            records: Cow::Owned(records),
            owner: None,
            ttl: None,
            required: true,
        }
    }

    #[test]
    fn owners_and_targets_point_at_earlier_names_in_any_case() {
        let question = b"\x03WWW\x04test\x00\x00\x05\x00\x01";
        let mut message = Message::new(&header(), question, 512, 0);
        // www.test. CNAME a.www.test.
        let mut cname = b"\x03www\x04test\x00\x00\x05\x00\x01\x00\x00\x00\x3c\x00\x0c".to_vec();
        cname.extend_from_slice(b"\x01a\x03www\x04test\x00");
        message.push(Section::Answer, &item(cname));
        let bytes = message.finish(None);
        // Owner: a pointer to the question; target: "a" then a pointer to it too.
        let answer = &bytes[12 + question.len()..];
        assert_eq!(&answer[..2], &[0xC0, 12]);
        assert_eq!(&answer[10..12], &[0, 4]);
        assert_eq!(&answer[12..], &[1, b'a', 0xC0, 12]);
        assert_eq!(&bytes[2..4], &[0x81, 0x00]);
        assert_eq!(&bytes[6..8], &[0, 1]);
    }

    #[test]
    fn a_set_that_does_not_fit_is_left_out_or_truncates() {
        let question = b"\x01t\x00\x00\x10\x00\x01";
        let txt = |n: usize| {
            let mut r = b"\x01t\x00\x00\x10\x00\x01\x00\x00\x00\x3c".to_vec();
            r.extend_from_slice(&(n as u16 + 1).to_be_bytes());
            r.push(n as u8);
            r.extend(std::iter::repeat_n(b'x', n));
            r
        };
        let mut message = Message::new(&header(), question, 400, 11);
        message.push(Section::Answer, &item(txt(200)));
        let mut optional = item(txt(250));
        optional.required = false;
        message.push(Section::Additional, &optional);
        assert!(!message.truncated);
        message.push(Section::Answer, &item(txt(250)));
        assert!(message.truncated);
        let bytes = message.finish(Some(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]));
        assert!(bytes.len() <= 400);
        assert_eq!(bytes[2] & 0x02, 0x02, "TC");
        assert_eq!(&bytes[6..12], &[0, 1, 0, 0, 0, 1]);
    }
}
