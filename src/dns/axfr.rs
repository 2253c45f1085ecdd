//! Zone transfer out (AXFR, RFC 5936), streamed in as many messages as the zone needs, each
//! TSIG-signed (RFC 8945 5.3.1: the first over the request's MAC and all TSIG variables,
//! the next ones over the previous MAC and the timers only).
//!
//! hickory 0.26's catalog answers AXFR with a single message and cuts zones past 64 KB;
//! this module replaces that path. Policy: only TSIG-signed requests with a configured key,
//! and only from listed addresses when a list is configured. IXFR requests are answered with
//! a full transfer in AXFR form, which RFC 1995 section 4 allows. It reads zones through
//! [`Zones::transfer_records`] and must not change them.

use std::net::IpAddr;

use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{
        Record, RecordType, TSigResponseContext, TSigner,
        rdata::tsig::{TSIG, make_tsig_record},
    },
    serialize::binary::BinEncodable,
};

use super::signing::{Signing, append_tsig, authenticate};
use crate::{tsig::TsigKey, zones::Zones};

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
    let Some((soa, records)) = zones.transfer_records(&query.name().into()).await else {
        tracing::info!(%peer, zone = %query.name(), "transfer refused: not a zone of this node");
        return error(id, Some(query), ResponseCode::NotAuth);
    };
    let count = records.len() + 2;
    let messages = sign_all(pack(id, query.clone(), soa, records), signing);
    tracing::info!(%peer, zone = %query.name(), records = count, messages = messages.len(), "zone transferred");
    messages
}

/// SOA, every record, SOA again, in messages of about [`MESSAGE_TARGET`] bytes; only the
/// first carries the question.
fn pack(id: u16, query: Query, soa: Record, records: Vec<Record>) -> Vec<Vec<u8>> {
    let all = std::iter::once(soa.clone())
        .chain(records)
        .chain(std::iter::once(soa));
    let mut messages = Vec::new();
    let mut current = start(id, Some(query));
    let mut size = 0;
    for record in all {
        let record_size = record.to_bytes().map_or(512, |b| b.len());
        if size + record_size > MESSAGE_TARGET && !current.answers.is_empty() {
            messages.push(encode(&current));
            current = start(id, None);
            size = 0;
        }
        size += record_size;
        current.add_answer(record);
    }
    messages.push(encode(&current));
    messages
}

fn start(id: u16, query: Option<Query>) -> Message {
    let mut message = Message::response(id, OpCode::Query);
    message.metadata.authoritative = true;
    if let Some(query) = query {
        message.add_query(query);
    }
    message
}

fn encode(message: &Message) -> Vec<u8> {
    // Local invariant: records that came out of a zone encode, and a message of them under
    // 64 KiB fits (records are cut at a quarter of that).
    message.to_vec().expect("transfer message encodes")
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
