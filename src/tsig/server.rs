//! TSIG (RFC 8945) on the server side, shared by every request kind: checking a request's
//! signature against the node's keys, signing the one answer to it or every message of a
//! transfer (MACs chained, 5.3.1), and the unsigned or signed error answers when the check
//! fails. Which requests need it is the caller's (`dns::server`) decision.
//!
//! Signing returns [`SignError`] rather than an unsigned message: see the module map
//! ([`crate::tsig`]) for what the server does with it.

use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{
        Record, TSigResponseContext, TSigner,
        rdata::tsig::{TSIG, TsigError, make_tsig_record},
    },
    serialize::binary::BinEncodable,
};

use crate::{clock::unix_now, tsig::TsigKey};

/// Signing an answer to a verified request failed. HMAC over bytes just encoded cannot
/// fail, so this is a programming error; the answer is never sent unsigned instead.
#[derive(Debug, thiserror::Error)]
#[error("TSIG signing failed: {0}")]
pub(crate) struct SignError(String);

/// What a verified request lets the response be signed with.
pub(crate) struct Signing {
    pub(crate) signer: TSigner,
    /// the request's own MAC, which also tells one signed request from another
    /// (replay memory)
    pub(crate) request_mac: Vec<u8>,
    pub(crate) time: u64,
    pub(crate) original_id: u16,
}

/// Why a request was refused, and the TSIG context for the error response.
pub(crate) struct Rejection {
    pub(crate) reason: &'static str,
    rcode: ResponseCode,
    context: Option<TSigResponseContext>,
}

impl Rejection {
    /// Appends the TSIG this rejection calls for (BADKEY, BADSIG unsigned, as RFC 8945
    /// 5.3.2 says; BADTIME signed) to an encoded error answer.
    pub(crate) fn sign(self, answer: &mut Vec<u8>) -> Result<(), SignError> {
        match self.context {
            Some(context) => {
                let tsig = context.sign(answer).map_err(|e| SignError(e.to_string()))?;
                append_tsig(answer, &tsig)
            }
            None => Ok(()),
        }
    }

    pub(crate) fn response(self, id: u16, query: Query) -> Result<Vec<u8>, SignError> {
        self.response_as(id, query, OpCode::Query)
    }

    /// [`Rejection::response`] for a request of another opcode (UPDATE).
    pub(crate) fn response_as(
        self,
        id: u16,
        query: Query,
        op_code: OpCode,
    ) -> Result<Vec<u8>, SignError> {
        let mut message = Message::error_msg(id, op_code, self.rcode);
        message.add_query(query);
        // Local invariant: a header and one question always encode.
        let mut bytes = message.to_vec().expect("error answer encodes");
        self.sign(&mut bytes)?;
        Ok(bytes)
    }
}

/// Checks a request's TSIG against `keys`: what to sign the answer with, or why not.
pub(crate) fn authenticate(
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
    let Ok((request_mac, _, window)) = super::verify_message(&signer, raw, None, true) else {
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
pub(crate) fn sign_single(message: &mut Vec<u8>, signing: Signing) -> Result<(), SignError> {
    let tsig = first_tsig(&signing, message)?;
    append_tsig(message, &tsig)
}

/// The TSIG of the first (or only) answer: over the request's MAC and all TSIG variables.
fn first_tsig(signing: &Signing, message: &[u8]) -> Result<Box<Record<TSIG>>, SignError> {
    TSigResponseContext::new(
        signing.original_id,
        signing.time,
        signing.signer.clone(),
        signing.request_mac.clone(),
        None,
    )
    .sign(message)
    .map_err(|e| SignError(e.to_string()))
}

/// Signs the messages of one transfer in order: the first over the request's MAC and all
/// TSIG variables, each later one over the previous MAC and the timers only (RFC 8945
/// 5.3.1).
pub(crate) struct ChainSigner {
    signing: Signing,
    previous_mac: Vec<u8>,
    first: bool,
}

impl ChainSigner {
    pub(crate) fn new(signing: Signing) -> Self {
        Self {
            previous_mac: signing.request_mac.clone(),
            signing,
            first: true,
        }
    }

    /// Signs the next message of the transfer.
    pub(crate) fn sign(&mut self, message: &mut Vec<u8>) -> Result<(), SignError> {
        let Signing {
            signer,
            time,
            original_id,
            ..
        } = &self.signing;
        let tsig = if self.first {
            first_tsig(&self.signing, message)?
        } else {
            next_tsig(signer, &self.previous_mac, message, *time, *original_id)?
        };
        self.first = false;
        self.previous_mac.clone_from(&tsig.data.mac);
        append_tsig(message, &tsig)
    }
}

/// A later message's TSIG: MAC over the previous MAC, the message and the timers.
fn next_tsig(
    signer: &TSigner,
    previous_mac: &[u8],
    message: &[u8],
    time: u64,
    original_id: u16,
) -> Result<Box<Record<TSIG>>, SignError> {
    let mut tbs = Vec::with_capacity(previous_mac.len() + message.len() + 10);
    let mac_len = u16::try_from(previous_mac.len()).map_err(|e| SignError(e.to_string()))?;
    tbs.extend_from_slice(&mac_len.to_be_bytes());
    tbs.extend_from_slice(previous_mac);
    tbs.extend_from_slice(message);
    tbs.extend_from_slice(&((time >> 32) as u16).to_be_bytes());
    tbs.extend_from_slice(&(time as u32).to_be_bytes());
    tbs.extend_from_slice(&signer.fudge().to_be_bytes());
    let mac = signer.sign(&tbs).map_err(|e| SignError(e.to_string()))?;
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

/// Appends a TSIG record as the last additional record.
fn append_tsig(message: &mut Vec<u8>, tsig: &Record<TSIG>) -> Result<(), SignError> {
    let bytes = tsig.to_bytes().map_err(|e| SignError(e.to_string()))?;
    let additionals = u16::from_be_bytes([message[10], message[11]]).saturating_add(1);
    message[10..12].copy_from_slice(&additionals.to_be_bytes());
    message.extend_from_slice(&bytes);
    Ok(())
}

/// A header-and-question answer with `rcode`.
pub(crate) fn error_message(id: u16, query: Option<Query>, rcode: ResponseCode) -> Vec<u8> {
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
            let answer = rejection.response(9, query.clone()).unwrap();
            assert_eq!(tsig_error(&answer), Some(want), "{key:?}");
        }
        let (raw, message) = signed_with(&ours);
        assert!(authenticate(&raw, &message, &[ours]).is_ok());
    }
}
