//! The primary's SOA for a zone (serial and timers), asked over UDP then TCP, and serial
//! comparison in RFC 1982 arithmetic.

use std::{net::SocketAddr, time::Duration};

use hickory_proto::{
    op::{Message, Query, ResponseCode},
    rr::{Name, RData, RecordType, rdata::SOA},
};
use tokio::time::timeout;

use crate::dns::exchange;

const WAIT: Duration = Duration::from_secs(2);

/// What a secondary takes from an SOA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Timers {
    pub(super) serial: u32,
    pub(super) refresh: Duration,
    pub(super) retry: Duration,
    /// How long a secondary may answer from its copy without reaching the primary.
    pub(super) expire: Duration,
}

impl From<&SOA> for Timers {
    fn from(soa: &SOA) -> Self {
        let secs = |v: i32| Duration::from_secs(u64::try_from(v).unwrap_or(0).max(1));
        Self {
            serial: soa.serial,
            refresh: secs(soa.refresh),
            retry: secs(soa.retry),
            expire: secs(soa.expire),
        }
    }
}

/// `a` is newer than `b` (RFC 1982 serial number arithmetic, 32 bits).
pub(super) fn newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 1 << 31
}

/// The SOA timers `server` serves for `zone`, asked from `source` when given.
pub(super) async fn query(
    server: SocketAddr,
    source: Option<std::net::IpAddr>,
    zone: &Name,
) -> Result<Timers, String> {
    let mut message = Message::query();
    message.metadata.id = exchange::random_id();
    message.add_query(Query::query(zone.clone(), RecordType::SOA));
    let bytes = message.to_vec().map_err(|e| e.to_string())?;
    let response = match timeout(
        WAIT,
        exchange::udp(server, source, &bytes, message.metadata.id),
    )
    .await
    {
        Ok(Ok(r)) if r.get(2).is_some_and(|flags| flags & 0x02 == 0) => r,
        _ => timeout(WAIT, exchange::tcp(server, source, &bytes))
            .await
            .map_err(|_| format!("no SOA answer from {server} within {WAIT:?}"))?
            .map_err(|e| format!("SOA query to {server}: {e}"))?,
    };
    let answer = Message::from_vec(&response).map_err(|e| e.to_string())?;
    if answer.metadata.id != message.metadata.id {
        return Err(format!("{server} answered another query"));
    }
    if answer.metadata.response_code != ResponseCode::NoError {
        return Err(format!(
            "{server} answered {} for {zone} SOA",
            answer.metadata.response_code
        ));
    }
    answer
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(Timers::from(soa)),
            _ => None,
        })
        .ok_or_else(|| format!("{server} has no SOA for {zone}"))
}

#[cfg(test)]
mod tests {
    use super::newer;

    #[test]
    fn serials_compare_in_rfc_1982_arithmetic() {
        assert!(newer(2, 1));
        assert!(!newer(1, 2));
        assert!(!newer(5, 5));
        assert!(newer(3, u32::MAX), "wraps around");
        assert!(!newer(u32::MAX, 3));
    }
}
