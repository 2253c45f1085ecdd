//! TSIG (RFC 8945) on the client side: signing a request and checking the answers to it,
//! one message or a transfer's chain of them, and saying in words why an answer failed.
//!
//! Owns the MAC chain only: what a failure means (a refusal, a fallback to queries) is the
//! caller's (`dns::client::transfer`, `replication::soa`).

use hickory_proto::{
    dnssec::DnsSecError,
    op::{Message, ResponseCode},
    rr::TSigner,
};

/// Why an answer's TSIG does not authenticate it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum VerifyError {
    #[error("{0}")]
    Mac(#[from] DnsSecError),
    #[error("its time is outside the fudge window")]
    Time,
    #[error("tsig validation error: outdated response")]
    Outdated,
}

/// One answer checked: its TSIG verifies under `signer`, chained to our request's MAC,
/// signed within the fudge of now (SOA checks, NOTIFY acknowledgements).
pub(crate) fn verify_one(
    answer: &[u8],
    signer: &TSigner,
    request_mac: Option<&[u8]>,
) -> Result<(), VerifyError> {
    let (_, _, window) = super::verify_message(signer, answer, request_mac, true)?;
    if window.contains(&crate::clock::unix_now()) {
        Ok(())
    } else {
        Err(VerifyError::Time)
    }
}

/// The request's TSIG and the server's answers, checked in a chain (RFC 8945 5.3.1) the
/// way hickory's `TSigVerifier` does it, but without decoding each message twice more.
pub(crate) struct Chain {
    signer: TSigner,
    previous: Vec<u8>,
    remote_time: u64,
    request_time: u64,
}

impl Chain {
    /// Signs `request` (its id already set: the MAC covers it) and starts the chain its
    /// answers are checked in.
    pub(crate) fn sign(request: &mut Message, signer: &TSigner) -> Result<Self, String> {
        request
            .finalize(signer, crate::clock::unix_now())
            .map_err(|e| format!("cannot sign the request: {e}"))?;
        let signature = request
            .signature()
            .ok_or_else(|| "the request was not signed".to_string())?;
        Ok(Self {
            signer: signer.clone(),
            previous: signature.data.mac.clone(),
            remote_time: 0,
            request_time: signature.data.time,
        })
    }

    /// Checks the next answer message, in order.
    pub(crate) fn verify(&mut self, bytes: &[u8]) -> Result<(), VerifyError> {
        let (mac, time, range) = super::verify_message(
            &self.signer,
            bytes,
            Some(&self.previous),
            self.remote_time == 0,
        )?;
        if time >= self.remote_time && range.contains(&self.request_time) {
            self.previous = mac;
            self.remote_time = time;
            Ok(())
        } else {
            Err(VerifyError::Outdated)
        }
    }
}

/// What a TSIG-checked answer failed on, for messages: "the REFUSED answer is not
/// TSIG-signed", "the NOTAUTH answer carries TSIG error BADKEY", ...
pub(crate) fn failure(message: &Message, verified: Result<(), VerifyError>) -> Option<String> {
    let rcode = rcode_name(message.metadata.response_code);
    let Some(tsig) = message.signature() else {
        return Some(format!("the {rcode} answer is not TSIG-signed"));
    };
    let reason = verified.err()?;
    Some(match tsig.data.error {
        Some(error) => format!(
            "the {rcode} answer carries TSIG error {}",
            format!("{error:?}").to_uppercase()
        ),
        None => format!("the {rcode} answer's TSIG does not verify: {reason}"),
    })
}

/// The rcode as zone files and dig spell it.
fn rcode_name(rcode: ResponseCode) -> String {
    match rcode {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        other => other.to_string(),
    }
}
