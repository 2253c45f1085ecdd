//! NOTIFY out (RFC 1996): tells secondaries a zone changed, TSIG-signed (RFC 8945).
//!
//! Over UDP with retries and growing waits, then one attempt over TCP, until the secondary
//! acknowledges or the attempts run out; a secondary that never acknowledges is logged (it
//! catches up on its SOA refresh timer). Every target is notified in parallel. A signed
//! NOTIFY counts as acknowledged only by an answer whose TSIG verifies under the same key;
//! an unsigned or forged "acknowledgement" is ignored and the retries go on.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, Record, RecordType, TSigner},
};
use tokio::time::timeout;

use crate::{dns::client::exchange, tsig::TsigKey};

/// Waits for an acknowledgement over UDP, doubling after each try.
const UDP_WAITS: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
const TCP_WAIT: Duration = Duration::from_secs(5);

/// Sends NOTIFY for the zone of `soa` (its apex SOA with `serial`, carried in the answer
/// section) to `target`; true once it is acknowledged. `source` is the address the NOTIFY leaves from:
/// secondaries accept it only from the primary's address.
pub(super) async fn notify(
    target: SocketAddr,
    source: IpAddr,
    soa: &Record,
    serial: u32,
    key: Option<&TsigKey>,
) -> bool {
    let id = exchange::random_id();
    let zone = &soa.name;
    let Some(sent) = message(id, soa, key) else {
        return false;
    };
    for wait in UDP_WAITS {
        if let Ok(Ok(true)) = timeout(wait, over_udp(target, source, &sent)).await {
            tracing::debug!(%target, %zone, serial, "NOTIFY acknowledged");
            return true;
        }
    }
    if let Ok(Ok(true)) = timeout(TCP_WAIT, over_tcp(target, source, &sent)).await {
        tracing::debug!(%target, %zone, serial, "NOTIFY acknowledged over TCP");
        return true;
    }
    tracing::warn!(%target, %zone, serial, "NOTIFY not acknowledged; the secondary will catch up on its refresh timer");
    false
}

/// A NOTIFY as sent: its bytes, its id, and what its acknowledgement must be signed with.
struct Sent {
    bytes: Vec<u8>,
    id: u16,
    /// the key and the NOTIFY's MAC, when signed
    signed: Option<(TSigner, Vec<u8>)>,
}

fn message(id: u16, soa: &Record, key: Option<&TsigKey>) -> Option<Sent> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    let mut query = Query::query(soa.name.clone(), RecordType::SOA);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    message.add_answer(soa.clone());
    let mut signed = None;
    if let Some(key) = key {
        let signer = key.signer();
        let (tsig, _) = signer
            .sign_message(&message, crate::clock::unix_now())
            .ok()?;
        signed = Some((signer, tsig.data.mac.clone()));
        message.set_signature(tsig);
    }
    Some(Sent {
        bytes: message.to_vec().ok()?,
        id,
        signed,
    })
}

async fn over_udp(target: SocketAddr, source: IpAddr, sent: &Sent) -> std::io::Result<bool> {
    let answer = exchange::udp(target, Some(source), &sent.bytes, sent.id).await?;
    Ok(acknowledged(&answer, sent).unwrap_or(false))
}

async fn over_tcp(target: SocketAddr, source: IpAddr, sent: &Sent) -> std::io::Result<bool> {
    let answer = exchange::tcp(target, Some(source), &sent.bytes).await?;
    Ok(acknowledged(&answer, sent).unwrap_or(false))
}

/// `Some(true)` for a NOERROR answer to our NOTIFY (signed under our key when we signed),
/// `Some(false)` for a refusal, `None` for anything that is not an authenticated answer
/// to it.
fn acknowledged(response: &[u8], sent: &Sent) -> Option<bool> {
    let message = Message::from_vec(response).ok()?;
    let m = &message.metadata;
    if m.id != sent.id || m.message_type != MessageType::Response || m.op_code != OpCode::Notify {
        return None;
    }
    if let Some((signer, mac)) = &sent.signed
        && let Err(reason) = crate::tsig::client::verify_one(response, signer, Some(mac))
    {
        tracing::warn!(rcode = %m.response_code, %reason, "NOTIFY answer ignored: not signed with our key");
        return None;
    }
    if m.response_code != ResponseCode::NoError {
        tracing::warn!(rcode = %m.response_code, "NOTIFY refused");
    }
    Some(m.response_code == ResponseCode::NoError)
}

#[cfg(test)]
mod tests {
    use hickory_proto::{
        rr::{Name, RData, TSigResponseContext, rdata::SOA},
        serialize::binary::BinEncodable as _,
    };

    use super::*;
    use crate::tsig::Algorithm;

    fn ack(sent: &Sent, sign_with: Option<&TsigKey>) -> Vec<u8> {
        let mut reply = Message::response(sent.id, OpCode::Notify);
        reply.metadata.authoritative = true;
        let mut bytes = reply.to_vec().unwrap();
        if let (Some(key), Some((_, mac))) = (sign_with, &sent.signed) {
            let context = TSigResponseContext::new(
                sent.id,
                crate::clock::unix_now(),
                key.signer(),
                mac.clone(),
                None,
            );
            let tsig = context.sign(&bytes).unwrap().to_bytes().unwrap();
            bytes[11] += 1; // one more additional record
            bytes.extend_from_slice(&tsig);
        }
        bytes
    }

    #[test]
    fn a_signed_notify_is_acknowledged_only_by_a_signed_answer() {
        let key = TsigKey::generate(
            Name::from_ascii("transfer.").unwrap(),
            Algorithm::HmacSha256,
        );
        let zone = Name::from_ascii("z.test.").unwrap();
        let soa = SOA::new(zone.clone(), zone.clone(), 42, 60, 60, 600, 60);
        let soa = Record::from_rdata(zone, 60, RData::SOA(soa));
        let sent = message(77, &soa, Some(&key)).unwrap();
        let parsed = Message::from_vec(&sent.bytes).unwrap();
        assert_eq!(
            parsed.answers,
            vec![soa.clone()],
            "the SOA rides in the answer"
        );
        assert_eq!(acknowledged(&ack(&sent, Some(&key)), &sent), Some(true));
        assert_eq!(acknowledged(&ack(&sent, None), &sent), None, "unsigned");
        let stranger = TsigKey::generate(
            Name::from_ascii("transfer.").unwrap(),
            Algorithm::HmacSha256,
        );
        assert_eq!(
            acknowledged(&ack(&sent, Some(&stranger)), &sent),
            None,
            "another secret"
        );
        let unsigned = message(78, &soa, None).unwrap();
        assert_eq!(acknowledged(&ack(&unsigned, None), &unsigned), Some(true));
    }
}
