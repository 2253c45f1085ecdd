//! Authoritative answers: a query's bytes in, the response's bytes out.
//!
//! Reads the query (header, one question, EDNS, whether a TSIG follows), picks the zone
//! (the deepest holding the name; for DS, the parent's side, RFC 4035 3.1.4.1), lets
//! [`crate::zones::Zone::resolve`] decide the sections and writes them with
//! [`super::message`]. It owns the message-level rules, matching Knot where the RFCs leave
//! a choice: FORMERR for malformed queries, NOTIMP for opcodes other than QUERY (UPDATE is
//! REFUSED here; the handler hands it to `update` first), REFUSED for classes other than IN and ANY and for names outside every zone,
//! BADVERS for EDNS versions above 0 (RFC 6891 6.1.3), and the size a datagram answer may
//! take: 512 bytes without EDNS, else the client's size within 512 and the node's cap
//! (RFC 6891 6.2.5). It must not know about sockets, forwarding or TSIG keys (`handler`).

use crate::{
    wire,
    zones::{Rcode, ZoneIndex},
};

use super::message::{HEADER_LEN, Message, Section};

/// Space kept for a TSIG record when the query is signed (key name, algorithm, MAC).
const TSIG_RESERVE: usize = 400;

const TYPE_OPT: u16 = 41;
const TYPE_TSIG: u16 = 250;
const TYPE_DS: u16 = 43;
const CLASS_IN: u16 = 1;
const CLASS_ANY: u16 = 255;
const OPCODE_QUERY: u8 = 0;
const OPCODE_UPDATE: u8 = 5;

const NOERROR: u8 = 0;
const FORMERR: u8 = 1;
const NXDOMAIN: u8 = 3;
const NOTIMP: u8 = 4;
const REFUSED: u8 = 5;
const YXDOMAIN: u8 = 6;
/// BADVERS: extended rcode 16, written as 1 in the OPT record and 0 in the header.
const BADVERS_HIGH: u8 = 1;

/// A query read from its bytes.
#[derive(Debug)]
pub(super) struct Query<'q> {
    header: &'q [u8],
    /// Name, type and class, as sent.
    question: &'q [u8],
    edns: Option<Edns>,
    /// A TSIG record ends the message (the handler checks it).
    pub(super) signed: bool,
}

#[derive(Debug, Clone, Copy)]
struct Edns {
    payload: u16,
    version: u8,
    dnssec_ok: bool,
}

/// Why a query could not be read; FORMERR, with the question when it was readable.
#[derive(Debug)]
pub(super) struct Malformed<'q> {
    header: &'q [u8],
    question: &'q [u8],
}

impl<'q> Query<'q> {
    /// Reads `bytes`; `None` when there is not even a header to answer.
    pub(super) fn parse(bytes: &'q [u8]) -> Option<Result<Self, Malformed<'q>>> {
        let header = bytes.get(..HEADER_LEN)?;
        let count = |at: usize| usize::from(u16::from_be_bytes([header[at], header[at + 1]]));
        let malformed = |question| Malformed { header, question };
        if count(4) != 1 {
            return Some(Err(malformed(&[])));
        }
        // The question's name cannot point anywhere but into the header: it must be whole.
        let Some(question_end) = wire::skip_name(bytes, HEADER_LEN)
            .filter(|&end| bytes[end - 1] == 0)
            .map(|end| end + 4)
            .filter(|&end| end <= bytes.len())
        else {
            return Some(Err(malformed(&[])));
        };
        let question = &bytes[HEADER_LEN..question_end];
        let mut records = Records {
            bytes,
            at: question_end,
        };
        for _ in 0..count(6) + count(8) {
            if records.next().is_none() {
                return Some(Err(malformed(question)));
            }
        }
        let (mut edns, mut signed) = (None, false);
        for index in 0..count(10) {
            let Some((owner_is_root, rtype, class, ttl)) = records.next() else {
                return Some(Err(malformed(question)));
            };
            match rtype {
                TYPE_OPT if edns.is_none() && owner_is_root && !signed => {
                    edns = Some(Edns {
                        payload: class,
                        version: (ttl >> 16) as u8,
                        dnssec_ok: ttl & 0x8000 != 0,
                    });
                }
                TYPE_TSIG if index + 1 == count(10) => signed = true,
                TYPE_OPT | TYPE_TSIG => return Some(Err(malformed(question))),
                _ => {}
            }
        }
        if records.at != bytes.len() {
            return Some(Err(malformed(question)));
        }
        Some(Ok(Self {
            header,
            question,
            edns,
            signed,
        }))
    }

    /// The question's name, uncompressed wire form as sent.
    pub(super) fn name(&self) -> &'q [u8] {
        &self.question[..self.question.len() - 4]
    }

    pub(super) fn qtype(&self) -> u16 {
        let at = self.question.len() - 4;
        u16::from_be_bytes([self.question[at], self.question[at + 1]])
    }

    fn qclass(&self) -> u16 {
        let at = self.question.len() - 2;
        u16::from_be_bytes([self.question[at], self.question[at + 1]])
    }

    fn opcode(&self) -> u8 {
        (self.header[2] >> 3) & 0x0F
    }

    /// The most bytes a datagram answer to this query may have.
    pub(super) fn datagram_limit(&self, udp_max_payload: u16) -> usize {
        match self.edns {
            Some(edns) => usize::from(edns.payload.min(udp_max_payload).max(512)),
            None => 512,
        }
    }
}

/// How a response may be sized: a datagram's limit, or a stream's 65,535 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) datagram: bool,
    pub(super) udp_max_payload: u16,
}

/// The response to `query` from `zones`; `None` for a message that gets no answer (a
/// response, or less than a header). Names outside every zone are REFUSED.
pub(super) fn respond(bytes: &[u8], zones: &ZoneIndex, limits: Limits) -> Option<Vec<u8>> {
    if bytes.get(2)? & 0x80 != 0 {
        return None;
    }
    let query = match Query::parse(bytes)? {
        Ok(query) => query,
        Err(malformed) => return Some(formerr(&malformed)),
    };
    Some(authoritative(&query, zones, limits))
}

/// A header-and-question answer with `rcode` (and OPT when the query had one): for
/// transfers over UDP, and for names the handler will not serve.
pub(super) fn refuse(bytes: &[u8], rcode: u8, limits: Limits) -> Option<Vec<u8>> {
    if bytes.get(2)? & 0x80 != 0 {
        return None;
    }
    Some(match Query::parse(bytes)? {
        Ok(query) => error(&query, rcode, limits),
        Err(malformed) => formerr(&malformed),
    })
}

/// REFUSED, for callers that do not serve a query at all.
pub(super) const REFUSED_RCODE: u8 = REFUSED;

fn authoritative(query: &Query<'_>, zones: &ZoneIndex, limits: Limits) -> Vec<u8> {
    if query.edns.is_some_and(|e| e.version > 0) {
        let message = Message::new(query.header, query.question, usize::MAX, 0);
        return message.finish(Some(&opt(query, limits, BADVERS_HIGH)));
    }
    match query.opcode() {
        OPCODE_QUERY => {}
        OPCODE_UPDATE => return error(query, REFUSED, limits),
        _ => return error(query, NOTIMP, limits),
    }
    if query.qtype() == 0 {
        return error(query, NOTIMP, limits);
    }
    if ![CLASS_IN, CLASS_ANY].contains(&query.qclass()) {
        return error(query, REFUSED, limits);
    }
    let zone = match query.qtype() {
        TYPE_DS => zones.find_for_ds(query.name()),
        _ => zones.find(query.name()),
    };
    let Some(zone) = zone else {
        return error(query, REFUSED, limits);
    };
    let resolution = zone.resolve(query.name(), query.qtype());
    let mut message = start(query, limits);
    if resolution.authoritative {
        message.set_authoritative();
    }
    message.set_rcode(match resolution.rcode {
        Rcode::NoError => NOERROR,
        Rcode::NxDomain => NXDOMAIN,
        Rcode::YxDomain => YXDOMAIN,
    });
    let sections = [
        (Section::Answer, &resolution.answer),
        (Section::Authority, &resolution.authority),
        (Section::Additional, &resolution.additional),
    ];
    for (section, items) in sections {
        for item in items {
            message.push(section, item);
        }
    }
    let opt = query.edns.map(|_| opt(query, limits, 0));
    message.finish(opt.as_deref())
}

/// A message sized for `query` over its transport, space kept for OPT and TSIG.
fn start<'a>(query: &Query<'a>, limits: Limits) -> Message {
    let limit = if limits.datagram {
        query.datagram_limit(limits.udp_max_payload)
    } else {
        usize::from(u16::MAX)
    };
    let reserve = query.edns.map_or(0, |_| OPT_LEN) + if query.signed { TSIG_RESERVE } else { 0 };
    Message::new(query.header, query.question, limit, reserve)
}

fn error(query: &Query<'_>, rcode: u8, limits: Limits) -> Vec<u8> {
    let mut message = start(query, limits);
    message.set_rcode(rcode);
    let opt = query.edns.map(|_| opt(query, limits, 0));
    message.finish(opt.as_deref())
}

fn formerr(malformed: &Malformed<'_>) -> Vec<u8> {
    let mut message = Message::new(malformed.header, malformed.question, usize::MAX, 0);
    message.set_rcode(FORMERR);
    message.finish(None)
}

const OPT_LEN: usize = 11;

/// The response's OPT record: the node's datagram size, DO echoed (RFC 3225 3), no options.
fn opt(query: &Query<'_>, limits: Limits, extended_rcode: u8) -> Vec<u8> {
    let dnssec_ok = query.edns.is_some_and(|e| e.dnssec_ok && e.version == 0);
    let mut record = vec![0, 0, 41];
    record.extend_from_slice(&limits.udp_max_payload.to_be_bytes());
    record.extend_from_slice(&[extended_rcode, 0, if dnssec_ok { 0x80 } else { 0 }, 0]);
    record.extend_from_slice(&[0, 0]);
    record
}

/// Records after the question, read one at a time.
struct Records<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Records<'_> {
    /// Whether the owner is the root, then type, class and TTL; `None` if malformed.
    fn next(&mut self) -> Option<(bool, u16, u16, u32)> {
        let owner_is_root = *self.bytes.get(self.at)? == 0;
        let end = wire::skip_name(self.bytes, self.at)?;
        let fixed = self.bytes.get(end..end + 10)?;
        let field = |at: usize| u16::from_be_bytes([fixed[at], fixed[at + 1]]);
        let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
        let data_end = end + 10 + usize::from(field(8));
        if data_end > self.bytes.len() {
            return None;
        }
        self.at = data_end;
        Some((owner_is_root, field(0), field(2), ttl))
    }
}
