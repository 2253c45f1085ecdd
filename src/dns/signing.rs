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

use crate::{clock::unix_now, tsig::TsigKey};

/// What a verified request lets the response be signed with.
pub(super) struct Signing {
    pub(super) signer: TSigner,
    /// the request's own MAC, which also tells one signed request from another
    /// (replay memory)
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
    /// Appends the TSIG this rejection calls for (BADKEY, BADSIG unsigned; BADTIME signed)
    /// to an encoded error answer.
    pub(super) fn sign(self, answer: &mut Vec<u8>) {
        if let Some(context) = self.context
            && let Ok(tsig) = context.sign(answer)
        {
            append_tsig(answer, &tsig);
        }
    }

    pub(super) fn response(self, id: u16, query: Query) -> Vec<u8> {
        self.response_as(id, query, OpCode::Query)
    }

    /// [`Rejection::response`] for a request of another opcode (UPDATE).
    pub(super) fn response_as(self, id: u16, query: Query, op_code: OpCode) -> Vec<u8> {
        let mut message = Message::error_msg(id, op_code, self.rcode);
        message.add_query(query);
        // Local invariant: a header and one question always encode.
        let mut bytes = message.to_vec().expect("error answer encodes");
        self.sign(&mut bytes);
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
    // RFC 8945 5.2.1: a key this server does not have under that name *and* algorithm is
    // BADKEY, never BADSIG.
    let Some(key) = keys
        .iter()
        .find(|k| k.name == tsig.name && k.algorithm.hickory() == tsig.data.algorithm)
    else {
        return Err(Rejection {
            reason: "unknown TSIG key or algorithm",
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

#[cfg(test)]
mod tests {
    use hickory_proto::{
        op::{Message, MessageType, OpCode},
        rr::{Name, RecordType, rdata::tsig::TsigError},
    };

    use super::*;
    use crate::tsig::Algorithm;

    fn signed_with(key: &TsigKey) -> (Vec<u8>, Message) {
        let mut message = Message::new(9, MessageType::Query, OpCode::Notify);
        message.add_query(Query::query(
            Name::from_ascii("z.test.").unwrap(),
            RecordType::SOA,
        ));
        message.finalize(&key.signer(), unix_now()).unwrap();
        let bytes = message.to_vec().unwrap();
        (bytes.clone(), Message::from_vec(&bytes).unwrap())
    }

    fn tsig_error(answer: &[u8]) -> Option<TsigError> {
        Message::from_vec(answer)
            .unwrap()
            .signature()
            .and_then(|t| t.data.error)
    }

    #[test]
    fn a_key_name_or_algorithm_mismatch_is_badkey_and_a_wrong_secret_badsig() {
        let name = Name::from_ascii("transfer.").unwrap();
        let ours = TsigKey::generate(name.clone(), Algorithm::HmacSha256);
        let other_algorithm = TsigKey {
            algorithm: Algorithm::HmacSha512,
            ..ours.clone()
        };
        let other_secret = TsigKey::generate(name, Algorithm::HmacSha256);
        let query = Query::query(Name::from_ascii("z.test.").unwrap(), RecordType::SOA);
        for (key, want) in [
            (&other_algorithm, TsigError::BadKey),
            (&other_secret, TsigError::BadSig),
        ] {
            let (raw, message) = signed_with(key);
            let Err(rejection) = authenticate(&raw, &message, std::slice::from_ref(&ours)) else {
                panic!("{key:?} must be refused");
            };
            assert_eq!(rejection.rcode, ResponseCode::NotAuth);
            let answer = rejection.response(9, query.clone());
            assert_eq!(tsig_error(&answer), Some(want), "{key:?}");
        }
        let (raw, message) = signed_with(&ours);
        assert!(authenticate(&raw, &message, &[ours]).is_ok());
    }
}
