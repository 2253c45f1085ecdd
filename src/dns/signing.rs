//! TSIG (RFC 8945) on the server side, shared by every request kind: checking a request's
//! signature against the node's keys, signing the one answer to it, and the unsigned or
//! signed error answers when the check fails. Transfers chain further MACs in `axfr`.

use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{
        Record, TSigResponseContext, TSigner,
        rdata::tsig::{TSIG, TsigError},
    },
    serialize::binary::BinEncodable,
};

use crate::{tsig::TsigKey, unix_now};

/// What a verified request lets the response be signed with.
pub(super) struct Signing {
    pub(super) signer: TSigner,
    pub(super) request_mac: Vec<u8>,
    pub(super) time: u64,
    pub(super) original_id: u16,
}

/// Why a request was refused, and the TSIG context for the error response.
pub(super) struct Rejection {
    pub(super) reason: &'static str,
    rcode: ResponseCode,
    context: Option<TSigResponseContext>,
}

impl Rejection {
    pub(super) fn response(self, id: u16, query: Query) -> Vec<u8> {
        let mut bytes = error_message(id, Some(query), self.rcode);
        if let Some(context) = self.context
            && let Ok(tsig) = context.sign(&bytes)
        {
            append_tsig(&mut bytes, &tsig);
        }
        bytes
    }
}

/// Checks a request's TSIG against `keys`: what to sign the answer with, or why not.
pub(super) fn authenticate(
    raw: &[u8],
    request: &Message,
    keys: &[TsigKey],
) -> Result<Signing, Rejection> {
    let now = unix_now();
    let id = request.metadata.id;
    let Some(tsig) = request.signature() else {
        return Err(Rejection {
            reason: "request is not TSIG-signed",
            rcode: ResponseCode::Refused,
            context: None,
        });
    };
    let Some(key) = keys.iter().find(|k| k.name == tsig.name) else {
        return Err(Rejection {
            reason: "unknown TSIG key",
            rcode: ResponseCode::NotAuth,
            context: Some(TSigResponseContext::unknown_key(id, now, tsig.name.clone())),
        });
    };
    let signer = key.signer();
    let Ok((request_mac, _, window)) = signer.verify_message_byte(raw, None, true) else {
        return Err(Rejection {
            reason: "bad TSIG signature",
            rcode: ResponseCode::NotAuth,
            context: Some(TSigResponseContext::bad_signature(id, now, signer)),
        });
    };
    if !window.contains(&now) {
        return Err(Rejection {
            reason: "TSIG time outside the fudge window",
            rcode: ResponseCode::NotAuth,
            context: Some(TSigResponseContext::new(
                id,
                now,
                signer,
                request_mac,
                Some(TsigError::BadTime),
            )),
        });
    }
    Ok(Signing {
        signer,
        request_mac,
        time: now,
        // The answer carries the request's id, and its MAC is computed over it: the
        // request's Original ID only matters to forwarders.
        original_id: id,
    })
}

/// Signs a single answer to a verified request (RFC 8945 5.3).
pub(super) fn sign_single(message: &mut Vec<u8>, signing: Signing) {
    let Signing {
        signer,
        request_mac,
        time,
        original_id,
    } = signing;
    let context = TSigResponseContext::new(original_id, time, signer, request_mac, None);
    if let Ok(tsig) = context.sign(message) {
        append_tsig(message, &tsig);
    }
}

/// Appends a TSIG record as the last additional record.
pub(super) fn append_tsig(message: &mut Vec<u8>, tsig: &Record<TSIG>) {
    let Ok(bytes) = tsig.to_bytes() else { return };
    let additionals = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&additionals.to_be_bytes());
    message.extend_from_slice(&bytes);
}

/// A header-and-question answer with `rcode`.
pub(super) fn error_message(id: u16, query: Option<Query>, rcode: ResponseCode) -> Vec<u8> {
    let mut message = Message::error_msg(id, OpCode::Query, rcode);
    if let Some(query) = query {
        message.add_query(query);
    }
    // Local invariant: a header and one question always encode.
    message.to_vec().expect("error answer encodes")
}
