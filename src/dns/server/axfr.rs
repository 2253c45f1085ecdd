//! Zone transfer out (AXFR, RFC 5936), streamed in as many messages as the zone needs, each
//! TSIG-signed (RFC 8945 5.3.1: the first over the request's MAC and all TSIG variables,
//! the next ones over the previous MAC and the timers only).
//!
//! hickory 0.26's `Catalog` answers AXFR with a single message and cuts zones past 64 KB;
//! this module replaces that path. Policy: only TSIG-signed requests with a configured key,
//! and only from listed addresses when a list is configured. IXFR requests are answered with
//! a full transfer in AXFR form, which RFC 1995 section 4 allows. It reads zones through
//! [`Zones::transfer_zone`] and must not change them.
//!
//! Messages are written straight from the zone's wire form: each record's bytes are
//! copied once, with its owner name cut to the labels below the zone's origin and a
//! pointer to the origin's first occurrence in the message (RFC 1035 4.1.4).

use std::{net::IpAddr, sync::Arc};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::RecordType,
    serialize::binary::{BinEncodable, BinEncoder},
};

use crate::{
    tsig::{
        TsigKey,
        server::{ChainSigner, authenticate},
    },
    wire,
    zones::{Zone, Zones, store},
};

/// A transfer message is cut once its records pass this many bytes (before compression),
/// well under the 64 KiB limit, as BIND and Knot do.
const MESSAGE_TARGET: usize = 16 * 1024;

/// Who may transfer.
#[derive(Debug, Clone)]
pub struct TransferPolicy {
    pub keys: Vec<TsigKey>,
    /// Empty: any address holding a key.
    pub allow: Vec<IpAddr>,
}

/// Whether `query` asks for a zone transfer.
pub(super) fn is_transfer(query: &Message) -> bool {
    query
        .queries
        .first()
        .is_some_and(|q| matches!(q.query_type(), RecordType::AXFR | RecordType::IXFR))
}

/// What answers a request on a stream: messages made already, or a transfer that makes
/// each message when the previous one has been written, so the secondary reads the first
/// while the rest are still to be packed and signed.
pub enum Answers {
    Ready(std::vec::IntoIter<Vec<u8>>),
    Transfer(Box<Transfer>),
}

impl From<Vec<Vec<u8>>> for Answers {
    fn from(messages: Vec<Vec<u8>>) -> Self {
        Self::Ready(messages.into_iter())
    }
}

impl Iterator for Answers {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        match self {
            Self::Ready(messages) => messages.next(),
            Self::Transfer(transfer) => transfer.next(),
        }
    }
}

static REFUSED: super::ratelog::RateLog = super::ratelog::RateLog::new();

/// The answer to a transfer request received over a stream from `peer`.
pub(super) async fn respond(
    raw: &[u8],
    request: &Message,
    peer: IpAddr,
    zones: &Zones,
    policy: Option<&TransferPolicy>,
) -> Answers {
    let id = request.metadata.id;
    let Some(query) = request.queries.first().cloned() else {
        return error(id, None, ResponseCode::FormErr);
    };
    // Anyone can ask: the refusals are logged at most once per interval.
    let refused = |reason: &str| {
        if let Some(left_out) = REFUSED.allow() {
            tracing::info!(%peer, zone = %query.name(), left_out, "transfer refused: {reason}");
        }
    };
    let Some(policy) = policy else {
        refused("transfers are not configured");
        return error(id, Some(query), ResponseCode::Refused);
    };
    if !policy.allow.is_empty() && !policy.allow.contains(&peer) {
        refused("address not allowed");
        return error(id, Some(query), ResponseCode::Refused);
    }
    let signing = match authenticate(raw, request, &policy.keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            refused(rejection.reason);
            let answer = rejection.response(id, query);
            let answer = answer.map_err(|e| super::signing_failed("transfer refusal", &e));
            return Vec::from_iter(answer.ok()).into();
        }
    };
    let Some(zone) = zones.transfer_zone(&query.name().into()) else {
        refused("not a zone of this node");
        return error(id, Some(query), ResponseCode::NotAuth);
    };
    let Some(soa) = zone.soa_wire().map(<[u8]>::to_vec) else {
        tracing::warn!(%peer, zone = %query.name(), "transfer failed: the zone has no SOA");
        return error(id, Some(query), ResponseCode::ServFail);
    };
    let origin = soa[..wire::name_len(&soa)].to_vec();
    Answers::Transfer(Box::new(Transfer {
        writer: Writer::new(id, origin),
        zone,
        soa,
        question: Some(query),
        phase: Phase::OpeningSoa,
        set: 0,
        offset: 0,
        records: 0,
        messages: 0,
        signer: ChainSigner::new(signing),
        peer,
    }))
}

/// A zone transfer under way: SOA, every record, SOA again, in messages of about
/// [`MESSAGE_TARGET`] bytes, each TSIG-signed; only the first carries the question.
pub struct Transfer {
    zone: Arc<Zone>,
    writer: Writer,
    /// The apex SOA in wire form, sent first and last.
    soa: Vec<u8>,
    /// Until the first message is written.
    question: Option<Query>,
    phase: Phase,
    /// The record set (see [`Zone::transfer_set`]) and the byte offset in it to send next.
    set: usize,
    offset: usize,
    records: usize,
    messages: usize,
    signer: ChainSigner,
    peer: IpAddr,
}

#[derive(PartialEq)]
enum Phase {
    OpeningSoa,
    Records,
    ClosingSoa,
    Done,
}

impl Iterator for Transfer {
    type Item = Vec<u8>;

    fn next(&mut self) -> Option<Vec<u8>> {
        if self.phase == Phase::Done {
            return None;
        }
        self.writer.start(self.question.take().as_ref());
        if self.phase == Phase::OpeningSoa {
            self.writer.push(&self.soa);
            self.records += 1;
            self.phase = Phase::Records;
        }
        while self.phase == Phase::Records {
            let Some(set) = self.zone.transfer_set(self.set) else {
                self.phase = Phase::ClosingSoa;
                break;
            };
            let Some(record) = store::records_in(&set[self.offset..]).next() else {
                self.set += 1;
                self.offset = 0;
                continue;
            };
            if !self.writer.fits(record.len()) {
                break;
            }
            self.writer.push(record);
            self.offset += record.len();
            self.records += 1;
        }
        if self.phase == Phase::ClosingSoa && self.writer.fits(self.soa.len()) {
            self.writer.push(&self.soa);
            self.records += 1;
            self.phase = Phase::Done;
        }
        let mut message = self.writer.finish();
        if let Err(e) = self.signer.sign(&mut message) {
            // Never a message without its TSIG: the transfer ends here and the secondary
            // sees the connection close before the closing SOA.
            super::signing_failed("transfer", &e);
            self.phase = Phase::Done;
            return None;
        }
        self.messages += 1;
        if self.phase == Phase::Done {
            tracing::info!(peer = %self.peer, zone = %self.zone.origin(), records = self.records,
                messages = self.messages, "zone transferred");
        }
        Some(message)
    }
}

/// Builds one transfer message at a time.
struct Writer {
    id: u16,
    /// The origin as the zone spells it (uncompressed wire form).
    origin: Vec<u8>,
    current: Vec<u8>,
    answers: u16,
    /// Where `origin` first appears in the current message: the pointer target.
    origin_at: Option<u16>,
}

const HEADER: usize = 12;

impl Writer {
    fn new(id: u16, origin: Vec<u8>) -> Self {
        Self {
            id,
            origin,
            current: Vec::new(),
            answers: 0,
            origin_at: None,
        }
    }

    fn start(&mut self, query: Option<&Query>) {
        self.current = Vec::with_capacity(MESSAGE_TARGET + 1024);
        self.current.extend_from_slice(&self.id.to_be_bytes());
        // QR, opcode QUERY, AA; no error.
        self.current.extend_from_slice(&[0x84, 0x00]);
        let questions: u16 = query.is_some().into();
        self.current.extend_from_slice(&questions.to_be_bytes());
        self.current.extend_from_slice(&[0; 6]);
        self.answers = 0;
        self.origin_at = None;
        if let Some(query) = query {
            let mut question = Vec::new();
            let mut encoder = BinEncoder::new(&mut question);
            // Local invariant: a question parsed from a request encodes again.
            query.emit(&mut encoder).expect("question encodes");
            if question.len() >= self.origin.len() + 4
                && question[..question.len() - 4] == *self.origin
            {
                self.origin_at = Some(HEADER as u16);
            }
            self.current.extend_from_slice(&question);
        }
    }

    /// Whether a record of `len` bytes goes in this message (the first always does).
    fn fits(&self, len: usize) -> bool {
        self.answers == 0 || self.current.len() + len <= MESSAGE_TARGET
    }

    /// Appends one record (uncompressed wire form), its owner name compressed against the
    /// origin when it ends with it.
    fn push(&mut self, record: &[u8]) {
        let owner = &record[..wire::name_len(record)];
        match self.origin_suffix(owner) {
            Some(cut) => {
                let at = self.current.len();
                self.current.extend_from_slice(&owner[..cut]);
                match self.origin_at {
                    Some(pointer) => self
                        .current
                        .extend_from_slice(&(0xC000 | pointer).to_be_bytes()),
                    None => {
                        self.origin_at = u16::try_from(at + cut).ok().filter(|p| *p < 0x4000);
                        self.current.extend_from_slice(&owner[cut..]);
                    }
                }
            }
            None => self.current.extend_from_slice(owner),
        }
        self.current.extend_from_slice(&record[owner.len()..]);
        self.answers += 1;
    }

    /// Where the origin starts in `owner`, if `owner` ends with it at a label boundary.
    fn origin_suffix(&self, owner: &[u8]) -> Option<usize> {
        let cut = owner.len().checked_sub(self.origin.len())?;
        if owner[cut..] != *self.origin {
            return None;
        }
        let mut at = 0;
        while at < cut {
            at += 1 + owner[at] as usize;
        }
        (at == cut).then_some(cut)
    }

    fn finish(&mut self) -> Vec<u8> {
        self.current[6..8].copy_from_slice(&self.answers.to_be_bytes());
        std::mem::take(&mut self.current)
    }
}

fn error(id: u16, query: Option<Query>, rcode: ResponseCode) -> Answers {
    vec![crate::tsig::server::error_message(id, query, rcode)].into()
}
