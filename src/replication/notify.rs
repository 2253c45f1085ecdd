//! NOTIFY out (RFC 1996): tells secondaries a zone changed, TSIG-signed (RFC 8945).
//!
//! Over UDP with retries and growing waits, then one attempt over TCP, until the secondary
//! acknowledges or the attempts run out; a secondary that never acknowledges is logged (it
//! catches up on its SOA refresh timer). Every target is notified in parallel.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Message, MessageType, OpCode, Query, ResponseCode},
    rr::{DNSClass, Name, RecordType},
};
use tokio::time::timeout;

use crate::{dns::exchange, tsig::TsigKey};

/// Waits for an acknowledgement over UDP, doubling after each try.
const UDP_WAITS: [Duration; 5] = [
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];
const TCP_WAIT: Duration = Duration::from_secs(5);

/// Sends NOTIFY for `zone` with `serial` to `target`; true once it is acknowledged.
/// `source` is the address the NOTIFY leaves from: secondaries accept it only from the
/// primary's address.
pub(super) async fn notify(
    target: SocketAddr,
    source: IpAddr,
    zone: &Name,
    serial: u32,
    key: Option<&TsigKey>,
) -> bool {
    let id = exchange::random_id();
    let Some(message) = message(id, zone, key) else {
        return false;
    };
    for wait in UDP_WAITS {
        if let Ok(Ok(true)) = timeout(wait, over_udp(target, source, &message, id)).await {
            tracing::debug!(%target, %zone, serial, "NOTIFY acknowledged");
            return true;
        }
    }
    if let Ok(Ok(true)) = timeout(TCP_WAIT, over_tcp(target, source, &message, id)).await {
        tracing::debug!(%target, %zone, serial, "NOTIFY acknowledged over TCP");
        return true;
    }
    tracing::warn!(%target, %zone, serial, "NOTIFY not acknowledged; the secondary will catch up on its refresh timer");
    false
}

fn message(id: u16, zone: &Name, key: Option<&TsigKey>) -> Option<Vec<u8>> {
    let mut message = Message::new(id, MessageType::Query, OpCode::Notify);
    message.metadata.authoritative = true;
    let mut query = Query::query(zone.clone(), RecordType::SOA);
    query.set_query_class(DNSClass::IN);
    message.add_query(query);
    if let Some(key) = key {
        let (tsig, _) = key
            .signer()
            .sign_message(&message, crate::unix_now())
            .ok()?;
        message.set_signature(tsig);
    }
    message.to_vec().ok()
}

async fn over_udp(
    target: SocketAddr,
    source: IpAddr,
    message: &[u8],
    id: u16,
) -> std::io::Result<bool> {
    let answer = exchange::udp(target, Some(source), message, id).await?;
    Ok(acknowledged(&answer, id).unwrap_or(false))
}

async fn over_tcp(
    target: SocketAddr,
    source: IpAddr,
    message: &[u8],
    id: u16,
) -> std::io::Result<bool> {
    let answer = exchange::tcp(target, Some(source), message).await?;
    Ok(acknowledged(&answer, id).unwrap_or(false))
}

/// `Some(true)` for a NOERROR answer to our NOTIFY, `Some(false)` for a refusal, `None`
/// for anything that is not an answer to it.
fn acknowledged(response: &[u8], id: u16) -> Option<bool> {
    let message = Message::from_vec(response).ok()?;
    let m = &message.metadata;
    if m.id != id || m.message_type != MessageType::Response || m.op_code != OpCode::Notify {
        return None;
    }
    if m.response_code != ResponseCode::NoError {
        tracing::warn!(rcode = %m.response_code, "NOTIFY refused");
    }
    Some(m.response_code == ResponseCode::NoError)
}
