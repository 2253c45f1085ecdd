//! The primary's SOA for a zone (serial and timers), asked over UDP then TCP, and serial
//! comparison in RFC 1982 arithmetic.
//!
//! With a TSIG key (RFC 8945) the query is signed and only an answer whose TSIG verifies
//! under that key, to this query, counts: over UDP, answers that do not verify are skipped
//! while the wait lasts, so a forged datagram cannot even cut the check short. The answer's
//! question must be the one asked. Timers are clamped ([`Timers::clamped`]) whoever sent
//! them. Owns the check only; when to check is `worker`'s.

use std::{
    net::{IpAddr, SocketAddr},
    time::Duration,
};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{DNSClass, Name, RData, RecordType, TSigner, rdata::SOA},
};
use tokio::{net::UdpSocket, time::timeout};

use crate::dns::client::exchange;

const WAIT: Duration = Duration::from_secs(2);

/// Bounds on the primary's timers, Knot's defaults for the lower ones (`refresh-min-interval`
/// 2 s, `retry-min-interval` 1 s): a signed answer from a broken or hostile primary can
/// neither park a zone for decades nor withdraw it after one failed refresh.
pub(super) const REFRESH_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(2), Duration::from_secs(86_400));
pub(super) const RETRY_BOUNDS: (Duration, Duration) =
    (Duration::from_secs(1), Duration::from_secs(86_400));
/// The expire is at least the (clamped) refresh and retry, at most 8 weeks.
pub(super) const EXPIRE_MAX: Duration = Duration::from_secs(8 * 7 * 86_400);

/// Why the primary's SOA could not be had; every message names the server.
#[derive(Debug, thiserror::Error)]
pub(super) enum SoaError {
    #[error("no SOA answer from {server} within {waited:?}")]
    Timeout {
        server: SocketAddr,
        waited: Duration,
    },
    #[error("failed to ask {server} for the SOA: {source}")]
    Io {
        server: SocketAddr,
        source: std::io::Error,
    },
    #[error("TSIG check failed for the SOA answer from {server}: {reason}")]
    Tsig { server: SocketAddr, reason: String },
    #[error("{server} answered a question other than {zone} SOA")]
    Question { server: SocketAddr, zone: String },
    #[error("{server} answered {rcode} for {zone} SOA")]
    Rcode {
        server: SocketAddr,
        zone: String,
        rcode: ResponseCode,
    },
    #[error("{server} has no SOA for {zone}")]
    Missing { server: SocketAddr, zone: String },
    #[error("failed to make or read the SOA exchange with {server}: {reason}")]
    Message { server: SocketAddr, reason: String },
}

impl SoaError {
    /// An answer came but could not be authenticated: a forgery or a primary without our key.
    pub(super) fn unauthenticated(&self) -> bool {
        matches!(self, Self::Tsig { .. } | Self::Question { .. })
    }
}

/// What a secondary takes from an SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timers {
    pub(super) serial: u32,
    pub(super) refresh: Duration,
    pub(super) retry: Duration,
    /// How long a secondary may answer from its copy without reaching the primary.
    pub(super) expire: Duration,
}

impl Timers {
    /// The SOA's timers within [`REFRESH_BOUNDS`], [`RETRY_BOUNDS`] and
    /// [refresh.max(retry), [`EXPIRE_MAX`]]; values out of bounds are logged.
    pub(super) fn clamped(soa: &SOA, zone: &Name) -> Self {
        let secs = |v: i32| Duration::from_secs(u64::try_from(v).unwrap_or(0));
        let (refresh, retry, expire) = (secs(soa.refresh), secs(soa.retry), secs(soa.expire));
        let refresh_c = refresh.clamp(REFRESH_BOUNDS.0, REFRESH_BOUNDS.1);
        let retry_c = retry.clamp(RETRY_BOUNDS.0, RETRY_BOUNDS.1);
        let expire_c = expire.clamp(refresh_c.max(retry_c), EXPIRE_MAX);
        if (refresh_c, retry_c, expire_c) != (refresh, retry, expire) {
            tracing::warn!(
                %zone,
                refresh = ?refresh, retry = ?retry, expire = ?expire,
                clamped_refresh = ?refresh_c, clamped_retry = ?retry_c, clamped_expire = ?expire_c,
                "SOA timers out of bounds; clamped"
            );
        }
        Self {
            serial: soa.serial,
            refresh: refresh_c,
            retry: retry_c,
            expire: expire_c,
        }
    }
}

/// `a` is newer than `b` (RFC 1982 serial number arithmetic, 32 bits).
pub(super) fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The SOA timers `server` serves for `zone`, asked from `source` when given, signed with
/// `tsig` when given.
pub(super) async fn query(
    server: SocketAddr,
    source: Option<IpAddr>,
    zone: &Name,
    tsig: Option<&TSigner>,
) -> Result<Timers, SoaError> {
    let (bytes, id, request_mac) = request(server, zone, tsig)?;
    let check = |answer: &[u8]| authenticate(server, answer, tsig, request_mac.as_deref());
    let udp = timeout(WAIT, over_udp(server, source, &bytes, id, &check)).await;
    let message = match udp {
        Ok(Ok(Some(message))) => message,
        // TC set, timed out, or only answers that did not verify: ask over TCP
        Ok(Ok(None)) | Ok(Err(_)) | Err(_) => {
            let answer = timeout(WAIT, exchange::tcp(server, source, &bytes))
                .await
                .map_err(|_| SoaError::Timeout {
                    server,
                    waited: WAIT,
                })?
                .map_err(|source| SoaError::Io { server, source })?;
            let message = decode(server, &answer, id)?;
            check(&answer)?;
            message
        }
    };
    timers(server, zone, &message)
}

/// A query as sent: its bytes, its id and, when signed, its MAC.
type Request = (Vec<u8>, u16, Option<Vec<u8>>);

fn request(server: SocketAddr, zone: &Name, tsig: Option<&TSigner>) -> Result<Request, SoaError> {
    let mut message = Message::query();
    let id = exchange::random_id();
    message.metadata.id = id;
    let mut question = Query::query(zone.clone(), RecordType::SOA);
    question.set_query_class(DNSClass::IN);
    message.add_query(question);
    let bad = |e: &dyn std::fmt::Display| SoaError::Message {
        server,
        reason: e.to_string(),
    };
    let mac = match tsig {
        Some(signer) => {
            message
                .finalize(signer, crate::clock::unix_now())
                .map_err(|e| bad(&e))?;
            message.signature().map(|t| t.data.mac.clone())
        }
        None => None,
    };
    let bytes = message.to_vec().map_err(|e| bad(&e))?;
    Ok((bytes, id, mac))
}

/// The first UDP answer with our id that passes `check`; `None` when the answer that
/// passes is truncated (ask over TCP). Answers that fail are skipped until the caller's
/// timeout.
async fn over_udp(
    server: SocketAddr,
    source: Option<IpAddr>,
    bytes: &[u8],
    id: u16,
    check: &impl Fn(&[u8]) -> Result<(), SoaError>,
) -> Result<Option<Message>, SoaError> {
    let io = |source| SoaError::Io { server, source };
    let local = source.unwrap_or(if server.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    });
    let socket = UdpSocket::bind(SocketAddr::new(local, 0))
        .await
        .map_err(io)?;
    socket.connect(server).await.map_err(io)?;
    socket.send(bytes).await.map_err(io)?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(io)?;
        let answer = &buf[..n];
        let Ok(message) = decode(server, answer, id) else {
            continue;
        };
        if let Err(e) = check(answer) {
            tracing::warn!(%server, error = %e, "SOA answer over UDP ignored");
            continue;
        }
        if message.metadata.truncation {
            return Ok(None);
        }
        return Ok(Some(message));
    }
}

/// With a key, the answer carries a TSIG that verifies under it, chained to our query's
/// MAC, signed within the fudge of now.
fn authenticate(
    server: SocketAddr,
    answer: &[u8],
    tsig: Option<&TSigner>,
    request_mac: Option<&[u8]>,
) -> Result<(), SoaError> {
    let Some(signer) = tsig else {
        return Ok(());
    };
    let fail = |reason: String| SoaError::Tsig { server, reason };
    let message = Message::from_vec(answer).map_err(|e| fail(e.to_string()))?;
    let verified = crate::tsig::client::verify_one(answer, signer, request_mac);
    match crate::tsig::client::failure(&message, verified) {
        None => Ok(()),
        Some(reason) => Err(fail(reason)),
    }
}

fn decode(server: SocketAddr, answer: &[u8], id: u16) -> Result<Message, SoaError> {
    let message = Message::from_vec(answer).map_err(|e| SoaError::Message {
        server,
        reason: e.to_string(),
    })?;
    if message.metadata.id != id {
        return Err(SoaError::Message {
            server,
            reason: "an answer to another query".into(),
        });
    }
    Ok(message)
}

/// The question must be ours, the rcode NOERROR, and an SOA at the zone's apex there.
fn timers(server: SocketAddr, zone: &Name, message: &Message) -> Result<Timers, SoaError> {
    let text = || zone.to_string();
    let ours = matches!(message.queries.as_slice(), [q]
        if q.name() == zone && q.query_type() == RecordType::SOA && q.query_class() == DNSClass::IN);
    if !ours {
        return Err(SoaError::Question {
            server,
            zone: text(),
        });
    }
    if message.metadata.response_code != ResponseCode::NoError {
        return Err(SoaError::Rcode {
            server,
            zone: text(),
            rcode: message.metadata.response_code,
        });
    }
    message
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) if r.name == *zone => Some(Timers::clamped(soa, zone)),
            _ => None,
        })
        .ok_or_else(|| SoaError::Missing {
            server,
            zone: text(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_compare_in_rfc_1982_arithmetic() {
        assert!(newer(2, 1));
        assert!(!newer(1, 2));
        assert!(!newer(5, 5));
        assert!(newer(3, u32::MAX), "wraps around");
        assert!(!newer(u32::MAX, 3));
    }

    #[test]
    fn timers_are_clamped() {
        let zone = Name::from_ascii("z.test.").unwrap();
        let soa = |refresh, retry, expire| {
            SOA::new(zone.clone(), zone.clone(), 1, refresh, retry, expire, 60)
        };
        let huge = Timers::clamped(&soa(i32::MAX, i32::MAX, i32::MAX), &zone);
        assert_eq!(huge.refresh, REFRESH_BOUNDS.1);
        assert_eq!(huge.retry, RETRY_BOUNDS.1);
        assert_eq!(huge.expire, EXPIRE_MAX);
        let tiny = Timers::clamped(&soa(0, -5, 1), &zone);
        assert_eq!(tiny.refresh, REFRESH_BOUNDS.0);
        assert_eq!(tiny.retry, RETRY_BOUNDS.0);
        assert_eq!(
            tiny.expire, REFRESH_BOUNDS.0,
            "expire is at least the refresh"
        );
        let sane = Timers::clamped(&soa(3600, 600, 1_209_600), &zone);
        assert_eq!(
            (sane.refresh, sane.retry, sane.expire),
            (
                Duration::from_secs(3600),
                Duration::from_secs(600),
                Duration::from_secs(1_209_600)
            )
        );
    }
}
