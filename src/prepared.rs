//! Prepared answers: the encoded responses of authoritative lookups, kept for one snapshot
//! of the zones and sent again for the same question, patched with the new query's id and
//! the letter case of its question.
//!
//! A question's key is everything in the query that the answer depends on: the lowercased
//! name, type and class, the header's flag bytes, whether EDNS is present and its header
//! (UDP payload size, extended rcode, version, DO bit), and whether the query came as a
//! datagram (truncation). EDNS option contents are left out: no option is answered (there
//! is no NSID to send). A Client Subnet option keeps the query off this path. Only the
//! header's id and the question depend on the query beyond its key: the question is
//! echoed exactly as sent and compression decides on lowercased names
//! (`dns::server::message`), so pointers into the question read back in the new query's
//! case, which the comparison tests in `tests/it/fast_path.rs` and `tests/it/differential.rs`
//! check byte for byte. The name is read with [`crate::wire::uncompressed_name`].
//!
//! Owns the key, the bounded store (by bytes, so a flood of random names cannot grow it past
//! [`MAX_BYTES`]) and the patching. It must not decide what may be stored
//! (`dns::server::handler` stores authoritative lookups only) nor outlive its zones:
//! `zones` makes an empty one with every snapshot it serves, so any zone change is seen by
//! the very next query. Pure: no I/O, no async, no allocation on a hit once the output
//! buffer has grown.

use std::{
    hash::{BuildHasher, RandomState},
    sync::RwLock,
};

use hashbrown::HashTable;

use crate::wire::{HEADER_LEN, MAX_NAME, uncompressed_name};

/// Bytes kept across all shards: keys, responses and `ENTRY_OVERHEAD` each.
pub const MAX_BYTES: usize = 4 << 20;
/// Larger responses are not kept: one would crowd out hundreds of ordinary ones.
const MAX_RESPONSE: usize = 16 << 10;
/// What an entry costs beyond its bytes (allocation, table slot), counted in [`MAX_BYTES`].
const ENTRY_OVERHEAD: usize = 48;
/// Independent locks, so receive loops on different cores rarely meet.
const SHARDS: usize = 16;

/// Key bytes before the name: flags 2, type 2, class 2, datagram 1, EDNS present 1,
/// EDNS payload size 2, EDNS extended rcode, version and flags 4.
const FIXED_KEY: usize = 14;
const TYPE_OPT: u16 = 41;
/// Zone transfers go to `dns::server::axfr`, never through here.
const TYPES_TRANSFER: [u16; 2] = [251, 252];
/// EDNS Client Subnet (RFC 7871): hickory parses it and refuses malformed ones.
const OPTION_SUBNET: u16 = 8;

/// The key of a query that may have a prepared answer, read from its bytes without copying
/// them. `None` from [`Question::parse`] means the query takes the full path.
pub struct Question<'q> {
    key: [u8; FIXED_KEY + MAX_NAME],
    key_len: usize,
    /// The question's name as the client wrote it (wire form, letter case kept).
    name: &'q [u8],
}

impl<'q> Question<'q> {
    /// Reads a plain query: QUERY opcode, one question with an uncompressed name, nothing
    /// but an optional well-formed OPT record after it, no trailing bytes.
    pub fn parse(query: &'q [u8], datagram: bool) -> Option<Self> {
        let header = query.get(..HEADER_LEN)?;
        // QR clear and opcode QUERY: NOTIFY, UPDATE and responses take the full path.
        if header[2] & 0xF8 != 0 {
            return None;
        }
        let count = |at: usize| u16::from_be_bytes([header[at], header[at + 1]]);
        let additional = count(10);
        if count(4) != 1 || count(6) != 0 || count(8) != 0 || additional > 1 {
            return None;
        }
        let name = uncompressed_name(&query[HEADER_LEN..])?;
        let (type_class, rest) = query[HEADER_LEN + name.len()..].split_at_checked(4)?;
        if TYPES_TRANSFER.contains(&u16::from_be_bytes([type_class[0], type_class[1]])) {
            return None;
        }
        let edns = match additional {
            1 => Some(opt(rest)?),
            _ if rest.is_empty() => None,
            _ => return None,
        };
        let mut key = [0u8; FIXED_KEY + MAX_NAME];
        key[..2].copy_from_slice(&header[2..4]);
        key[2..6].copy_from_slice(type_class);
        key[6] = u8::from(datagram);
        if let Some(edns) = edns {
            key[7] = 1;
            key[8..14].copy_from_slice(edns);
        }
        let key_len = FIXED_KEY + name.len();
        for (k, b) in key[FIXED_KEY..key_len].iter_mut().zip(name) {
            *k = b.to_ascii_lowercase();
        }
        Some(Self { key, key_len, name })
    }

    fn key(&self) -> &[u8] {
        &self.key[..self.key_len]
    }
}

/// The prepared answers of one snapshot of the zones.
pub struct PreparedAnswers {
    hasher: RandomState,
    shards: [RwLock<Shard>; SHARDS],
}

#[derive(Default)]
struct Shard {
    entries: HashTable<Entry>,
    bytes: usize,
}

/// A key and its response in one allocation.
struct Entry {
    bytes: Box<[u8]>,
    key_len: usize,
}

impl Entry {
    fn key(&self) -> &[u8] {
        &self.bytes[..self.key_len]
    }

    fn response(&self) -> &[u8] {
        &self.bytes[self.key_len..]
    }
}

impl Default for PreparedAnswers {
    fn default() -> Self {
        Self {
            hasher: RandomState::new(),
            shards: std::array::from_fn(|_| RwLock::default()),
        }
    }
}

impl PreparedAnswers {
    /// Writes the prepared answer to `question` into `out`, with `query`'s id and question
    /// bytes; false when there is none.
    pub fn write(&self, question: &Question<'_>, query: &[u8], out: &mut Vec<u8>) -> bool {
        let key = question.key();
        let hash = self.hasher.hash_one(key);
        {
            // A poisoned lock means a writer panicked between two plain field updates; the
            // table itself is whole.
            let shard = self.shard(hash).read().unwrap_or_else(|e| e.into_inner());
            let Some(entry) = shard.entries.find(hash, |e| e.key() == key) else {
                return false;
            };
            out.clear();
            out.extend_from_slice(entry.response());
        }
        out[..2].copy_from_slice(&query[..2]);
        out[HEADER_LEN..HEADER_LEN + question.name.len()].copy_from_slice(question.name);
        true
    }

    /// Keeps `response`, the full path's answer to `question`, for the next query with the
    /// same key. Responses that do not echo the question, or are too big, are not kept.
    pub fn insert(&self, question: &Question<'_>, response: &[u8]) {
        if response.len() > MAX_RESPONSE || !echoes(question, response) {
            return;
        }
        let key = question.key();
        let hash = self.hasher.hash_one(key);
        let cost = key.len() + response.len() + ENTRY_OVERHEAD;
        let mut shard = self.shard(hash).write().unwrap_or_else(|e| e.into_inner());
        if shard.entries.find(hash, |e| e.key() == key).is_some() {
            // Another query with the same key got here first.
            return;
        }
        if shard.bytes + cost > MAX_BYTES / SHARDS {
            // Full: start the shard over. Names still asked for come back on their next
            // miss; a flood of random names only ever costs this shard's share.
            shard.entries.clear();
            shard.bytes = 0;
        }
        let entry = Entry {
            bytes: [key, response].concat().into_boxed_slice(),
            key_len: key.len(),
        };
        shard
            .entries
            .insert_unique(hash, entry, |e| self.hasher.hash_one(e.key()));
        shard.bytes += cost;
    }

    /// Entries and bytes held now (bytes as counted against [`MAX_BYTES`]).
    pub fn usage(&self) -> (usize, usize) {
        self.shards.iter().fold((0, 0), |(n, b), shard| {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            (n + shard.entries.len(), b + shard.bytes)
        })
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        // Bits the table uses for neither its bucket index (low) nor its tags (top 7).
        &self.shards[(hash >> 40) as usize % SHARDS]
    }
}

/// Whether `response` carries `question`'s question at the usual place, so that patching
/// the name there gives the query's own letter case. Header-only answers (FORMERR) do not.
fn echoes(question: &Question<'_>, response: &[u8]) -> bool {
    let name_end = HEADER_LEN + question.name.len();
    response.len() >= name_end + 4
        && response[4..6] == [0, 1]
        && response[HEADER_LEN..name_end].eq_ignore_ascii_case(question.name)
        && response[name_end..name_end + 4] == question.key[2..6]
}

/// The OPT record that must fill `bytes` exactly (RFC 6891 6.1.2): root owner, type OPT,
/// options well-formed. Returns its payload size and TTL fields.
fn opt(bytes: &[u8]) -> Option<&[u8]> {
    let (fixed, rdata) = bytes.split_at_checked(11)?;
    if fixed[0] != 0 || u16::from_be_bytes([fixed[1], fixed[2]]) != TYPE_OPT {
        return None;
    }
    if usize::from(u16::from_be_bytes([fixed[9], fixed[10]])) != rdata.len() {
        return None;
    }
    let mut options = rdata;
    while !options.is_empty() {
        let (option, rest) = options.split_at_checked(4)?;
        let code = u16::from_be_bytes([option[0], option[1]]);
        let len = usize::from(u16::from_be_bytes([option[2], option[3]]));
        if code == OPTION_SUBNET || rest.len() < len {
            return None;
        }
        options = &rest[len..];
    }
    Some(&fixed[3..9])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// id 0xabcd, RD, one question `Www.Example.` A IN, then `tail` (additional records).
    fn query(arcount: u8, tail: &[u8]) -> Vec<u8> {
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, arcount];
        q.extend_from_slice(b"\x03Www\x07Example\x00\x00\x01\x00\x01");
        q.extend_from_slice(tail);
        q
    }

    /// An OPT record: payload 1232, DO set, with `options`.
    fn opt_record(options: &[u8]) -> Vec<u8> {
        let mut r = vec![0, 0, 41, 0x04, 0xd0, 0, 0, 0x80, 0];
        r.extend_from_slice(&u16::try_from(options.len()).unwrap().to_be_bytes());
        r.extend_from_slice(options);
        r
    }

    /// A response to `query` (first question echoed), with `rest` after the question.
    fn response_to(query: &[u8], rest: &[u8]) -> Vec<u8> {
        let name_end = HEADER_LEN + uncompressed_name(&query[HEADER_LEN..]).unwrap().len() + 4;
        let mut r = query[..name_end].to_vec();
        r[2] |= 0x84;
        r[10..12].fill(0);
        r.extend_from_slice(rest);
        r
    }

    #[test]
    fn keys_ignore_id_and_case_but_not_flags_or_edns() {
        let plain = query(0, &[]);
        let key = |q: &[u8], datagram| Question::parse(q, datagram).unwrap().key().to_vec();
        let mut other = plain.clone();
        other[..2].copy_from_slice(&[0, 7]);
        other[13..16].copy_from_slice(b"wWW");
        assert_eq!(key(&plain, true), key(&other, true));
        assert_ne!(key(&plain, true), key(&plain, false));
        let mut no_rd = plain.clone();
        no_rd[2] = 0;
        assert_ne!(key(&plain, true), key(&no_rd, true));
        let edns = query(1, &opt_record(&[]));
        assert_ne!(key(&plain, true), key(&edns, true));
        let mut no_do = edns.clone();
        no_do[plain.len() + 7] = 0;
        assert_ne!(key(&edns, true), key(&no_do, true));
        // A cookie does not change the answer, so it does not change the key.
        let cookie = query(1, &opt_record(&[0, 10, 0, 8, 1, 2, 3, 4, 5, 6, 7, 8]));
        assert_eq!(key(&edns, true), key(&cookie, true));
    }

    #[test]
    fn only_plain_well_formed_queries_have_a_key() {
        let plain = query(0, &[]);
        assert!(Question::parse(&plain, true).is_some());
        let mut notify = plain.clone();
        notify[2] = 0x20;
        let mut response = plain.clone();
        response[2] |= 0x80;
        let mut compressed = plain[..HEADER_LEN].to_vec();
        compressed.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1]);
        let mut axfr = plain.clone();
        axfr[HEADER_LEN + 13..HEADER_LEN + 15].copy_from_slice(&[0, 252]);
        let trailing = query(0, &[0]);
        let subnet = query(1, &opt_record(&[0, 8, 0, 4, 0, 1, 24, 0]));
        let short_option = query(1, &opt_record(&[0, 10, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8]));
        let tsig_like = query(1, b"\x03key\x00\x00\xfa\x00\xff\x00\x00\x00\x00\x00\x00");
        for refused in [
            &notify,
            &response,
            &compressed,
            &axfr,
            &trailing,
            &subnet,
            &short_option,
            &tsig_like,
            &plain[..20].to_vec(),
        ] {
            assert!(Question::parse(refused, true).is_none(), "{refused:?}");
        }
    }

    #[test]
    fn a_hit_carries_the_new_id_and_letter_case() {
        let answers = PreparedAnswers::default();
        let first = query(0, &[]);
        let record = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x01\x2c\x00\x04\xc0\x00\x02\x01";
        answers.insert(
            &Question::parse(&first, true).unwrap(),
            &response_to(&first, record),
        );
        let mut second = first;
        second[..2].copy_from_slice(&[0x12, 0x34]);
        second[13..16].copy_from_slice(b"WWW");
        let mut out = Vec::new();
        assert!(answers.write(&Question::parse(&second, true).unwrap(), &second, &mut out));
        assert_eq!(out, response_to(&second, record));
        let stream = Question::parse(&second, false).unwrap();
        assert!(!answers.write(&stream, &second, &mut out));
    }

    #[test]
    fn header_only_answers_are_not_kept() {
        let answers = PreparedAnswers::default();
        let q = query(0, &[]);
        let question = Question::parse(&q, true).unwrap();
        answers.insert(&question, &[0xab, 0xcd, 0x81, 0x01, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(answers.usage().0, 0);
    }

    #[test]
    fn random_names_never_grow_it_past_the_bound() {
        let answers = PreparedAnswers::default();
        let rest = [0u8; 200];
        for i in 0..100_000u32 {
            let mut q = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 8];
            q.extend_from_slice(format!("{i:08x}").as_bytes());
            q.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
            answers.insert(&Question::parse(&q, true).unwrap(), &response_to(&q, &rest));
            assert!(answers.usage().1 <= MAX_BYTES);
        }
        assert!(answers.usage().0 > 1000, "it does keep answers");
    }
}
