//! Zone transfer out (AXFR, RFC 5936), streamed in as many messages as the zone needs, each
//! TSIG-signed (RFC 8945 5.3.1: the first over the request's MAC and all TSIG variables,
//! the next ones over the previous MAC and the timers only).
//!
//! hickory 0.26's catalog answers AXFR with a single message and cuts zones past 64 KB;
//! this module replaces that path. Policy: only TSIG-signed requests with a configured key,
//! and only from listed addresses when a list is configured. IXFR requests are answered with
//! a full transfer in AXFR form, which RFC 1995 section 4 allows. It reads zones through
//! [`Zones::transfer_zone`] and must not change them.
//!
//! Messages are written straight from the zone's wire form: each record's bytes are
//! copied once, with its owner name cut to the labels below the zone's origin and a
//! pointer to the origin's first occurrence in the message (RFC 1035 4.1.4).

use std::net::IpAddr;

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{
        Record, RecordType, TSigResponseContext, TSigner,
        rdata::tsig::{TSIG, make_tsig_record},
    },
    serialize::binary::{BinEncodable, BinEncoder},
};

use super::signing::{Signing, append_tsig, authenticate};
use crate::{
    tsig::TsigKey,
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

/// The messages answering a transfer request received over a stream from `peer`.
pub(super) async fn respond(
    raw: &[u8],
    request: &Message,
    peer: IpAddr,
    zones: &Zones,
    policy: Option<&TransferPolicy>,
) -> Vec<Vec<u8>> {
    let id = request.metadata.id;
    let Some(query) = request.queries.first().cloned() else {
        return error(id, None, ResponseCode::FormErr);
    };
    let Some(policy) = policy else {
        tracing::info!(%peer, zone = %query.name(), "transfer refused: transfers are not configured");
        return error(id, Some(query), ResponseCode::Refused);
    };
    if !policy.allow.is_empty() && !policy.allow.contains(&peer) {
        tracing::info!(%peer, zone = %query.name(), "transfer refused: address not allowed");
        return error(id, Some(query), ResponseCode::Refused);
    }
    let signing = match authenticate(raw, request, &policy.keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            tracing::info!(%peer, zone = %query.name(), reason = rejection.reason, "transfer refused");
            return vec![rejection.response(id, query)];
        }
    };
    let Some(zone) = zones.transfer_zone(&query.name().into()) else {
        tracing::info!(%peer, zone = %query.name(), "transfer refused: not a zone of this node");
        return error(id, Some(query), ResponseCode::NotAuth);
    };
    let Some((messages, count)) = pack(id, &query, &zone) else {
        tracing::warn!(%peer, zone = %query.name(), "transfer failed: the zone has no SOA");
        return error(id, Some(query), ResponseCode::ServFail);
    };
    let messages = sign_all(messages, signing);
    tracing::info!(%peer, zone = %query.name(), records = count, messages = messages.len(), "zone transferred");
    messages
}

/// SOA, every record, SOA again, in messages of about [`MESSAGE_TARGET`] bytes; only the
/// first carries the question. Also returns how many records went out.
fn pack(id: u16, query: &Query, zone: &Zone) -> Option<(Vec<Vec<u8>>, usize)> {
    let soa = zone.soa_wire()?;
    let origin = &soa[..store::name_len(soa)];
    let mut writer = Writer::new(id, Some(query), origin);
    let mut count = 0;
    let all = std::iter::once(soa)
        .chain(zone.transfer_sets())
        .chain(std::iter::once(soa));
    for record in all.flat_map(store::records_in) {
        writer.push(record);
        count += 1;
    }
    Some((writer.finish(), count))
}

/// Fills transfer messages.
struct Writer<'a> {
    id: u16,
    /// The origin as the zone spells it (uncompressed wire form).
    origin: &'a [u8],
    messages: Vec<Vec<u8>>,
    current: Vec<u8>,
    answers: u16,
    /// Where `origin` first appears in the current message: the pointer target.
    origin_at: Option<u16>,
}

const HEADER: usize = 12;

impl<'a> Writer<'a> {
    fn new(id: u16, query: Option<&Query>, origin: &'a [u8]) -> Self {
        let mut writer = Self {
            id,
            origin,
            messages: Vec::new(),
            current: Vec::with_capacity(MESSAGE_TARGET + 1024),
            answers: 0,
            origin_at: None,
        };
        writer.start(query);
        writer
    }

    fn start(&mut self, query: Option<&Query>) {
        self.current.clear();
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

    /// Appends one record (uncompressed wire form), starting a new message first if this
    /// one is full.
    fn push(&mut self, record: &[u8]) {
        if self.current.len() + record.len() > MESSAGE_TARGET && self.answers > 0 {
            self.flush();
            self.start(None);
        }
        let owner = &record[..store::name_len(record)];
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

    fn flush(&mut self) {
        self.current[6..8].copy_from_slice(&self.answers.to_be_bytes());
        self.messages.push(self.current.clone());
    }

    fn finish(mut self) -> Vec<Vec<u8>> {
        self.flush();
        self.messages
    }
}

/// Signs each message in turn, chaining MACs (RFC 8945 5.3.1).
fn sign_all(messages: Vec<Vec<u8>>, signing: Signing) -> Vec<Vec<u8>> {
    let Signing {
        signer,
        request_mac,
        time,
        original_id,
    } = signing;
    let mut previous_mac = request_mac;
    let mut signed = Vec::with_capacity(messages.len());
    for (index, mut bytes) in messages.into_iter().enumerate() {
        let tsig = if index == 0 {
            TSigResponseContext::new(
                original_id,
                time,
                signer.clone(),
                previous_mac.clone(),
                None,
            )
            .sign(&bytes)
        } else {
            next_tsig(&signer, &previous_mac, &bytes, time, original_id)
        };
        // Local invariant: HMAC over bytes we just encoded cannot fail.
        let tsig = tsig.expect("TSIG signing of an encoded message");
        previous_mac = tsig.data.mac.clone();
        append_tsig(&mut bytes, &tsig);
        signed.push(bytes);
    }
    signed
}

/// A later message's TSIG: MAC over the previous MAC, the message and the timers.
fn next_tsig(
    signer: &TSigner,
    previous_mac: &[u8],
    message: &[u8],
    time: u64,
    original_id: u16,
) -> Result<Box<Record<TSIG>>, hickory_proto::ProtoError> {
    let mut tbs = Vec::with_capacity(previous_mac.len() + message.len() + 10);
    tbs.extend_from_slice(&(previous_mac.len() as u16).to_be_bytes());
    tbs.extend_from_slice(previous_mac);
    tbs.extend_from_slice(message);
    tbs.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
    tbs.extend_from_slice(&(time as u32).to_be_bytes());
    tbs.extend_from_slice(&signer.fudge().to_be_bytes());
    let mac = signer
        .sign(&tbs)
        .map_err(|e| hickory_proto::ProtoError::from(e.to_string()))?;
    let rdata = TSIG::new(
        signer.algorithm().clone(),
        time,
        signer.fudge(),
        mac,
        original_id,
        None,
        Vec::new(),
    );
    Ok(Box::new(make_tsig_record(
        signer.signer_name().clone(),
        rdata,
    )))
}

fn error(id: u16, query: Option<Query>, rcode: ResponseCode) -> Vec<Vec<u8>> {
    vec![super::signing::error_message(id, query, rcode)]
}
