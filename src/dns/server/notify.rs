//! NOTIFY in (RFC 1996) on a secondary: accepted only from a configured primary address,
//! TSIG-signed with a configured key (RFC 8945), for a zone the node replicates. Others get
//! REFUSED (wrong source, unknown zone) or NOTAUTH with the TSIG error (BADKEY, BADSIG,
//! BADTIME), and nothing moves.
//!
//! A NOTIFY asks for a refresh now. The zone's SOA serial it carries in its answer section
//! (RFC 1996 3.7) is passed on: the NOTIFY's TSIG covers it, so it is as authentic as a
//! signed SOA answer would be. Replays are remembered: a signed NOTIFY whose MAC was seen
//! within the TSIG window is acknowledged (a primary's retry after a lost acknowledgement
//! sends the same bytes) and ignored.
//!
//! The zone's refresh is asked for through the [`Notifiable`] trait this module owns, so
//! the DNS layer never reaches into replication.

use std::{
    collections::VecDeque,
    net::IpAddr,
    sync::{Arc, Mutex},
};

use hickory_proto::{
    op::{Message, OpCode, ResponseCode},
    rr::{Name, RData},
};

use crate::tsig::{
    FUDGE, TsigKey,
    server::{self as tsig_server, Signing},
};

/// The most NOTIFY MACs remembered; only authenticated NOTIFYs are remembered, so only the
/// primary fills it.
const REPLAY_MEMORY: usize = 1024;

/// What a NOTIFY asks of the node.
pub trait Notifiable: Send + Sync + 'static {
    /// Whether `zone` is replicated here (its primary may NOTIFY it).
    fn replicates(&self, zone: &Name) -> bool;
    /// `zone` changed at the primary: check it now. `serial` is the zone's SOA serial the
    /// NOTIFY carried, if any; only authenticated NOTIFYs get here.
    fn notified(&self, zone: &Name, serial: Option<u32>);
}

/// Who may NOTIFY this node.
#[derive(Clone)]
pub struct NotifyPolicy {
    pub primaries: Vec<IpAddr>,
    pub keys: Vec<TsigKey>,
    pub target: Arc<dyn Notifiable>,
    /// MACs of NOTIFYs accepted lately.
    replays: Arc<ReplayMemory>,
}

impl NotifyPolicy {
    /// NOTIFY from `primaries` signed with one of `keys` wakes `target`.
    pub fn new(primaries: Vec<IpAddr>, keys: Vec<TsigKey>, target: Arc<dyn Notifiable>) -> Self {
        Self {
            primaries,
            keys,
            target,
            replays: Arc::default(),
        }
    }
}

/// The MACs of recently accepted NOTIFYs, each kept until its TSIG time can no longer
/// pass the fudge check (at most twice the fudge from now).
#[derive(Default)]
pub(super) struct ReplayMemory {
    seen: Mutex<VecDeque<(Vec<u8>, u64)>>,
}

impl ReplayMemory {
    /// Remembers `mac` at `now`; false if it was already remembered (a replay).
    fn first_time(&self, mac: &[u8], now: u64) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|(_, until)| *until >= now);
        if seen.iter().any(|(m, _)| m == mac) {
            return false;
        }
        if seen.len() == REPLAY_MEMORY {
            seen.pop_front();
        }
        seen.push_back((mac.to_vec(), now + 2 * u64::from(FUDGE)));
        true
    }
}

static REFUSED: super::ratelog::RateLog = super::ratelog::RateLog::new();

/// The answer to a NOTIFY `raw` from `peer`.
pub(super) fn respond(raw: &[u8], peer: IpAddr, policy: Option<&NotifyPolicy>) -> Option<Vec<u8>> {
    let request = Message::from_vec(raw).ok()?;
    let id = request.metadata.id;
    let zone = request.queries.first().map(|q| q.name().clone());
    let Some(policy) = policy else {
        return answer(&request, ResponseCode::Refused, None);
    };
    // Anyone can send one: the refusals are logged at most once per interval.
    let Some(zone) = zone.filter(|z| policy.target.replicates(z)) else {
        if let Some(left_out) = REFUSED.allow() {
            tracing::info!(%peer, left_out, "NOTIFY refused: not a zone this node replicates");
        }
        return answer(&request, ResponseCode::Refused, None);
    };
    if !policy.primaries.contains(&peer) {
        if let Some(left_out) = REFUSED.allow() {
            tracing::warn!(%peer, %zone, left_out, "NOTIFY refused: not from the primary");
        }
        return answer(&request, ResponseCode::Refused, None);
    }
    let signing = match tsig_server::authenticate(raw, &request, &policy.keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            if let Some(left_out) = REFUSED.allow() {
                tracing::warn!(%peer, %zone, reason = rejection.reason, left_out, "NOTIFY refused");
            }
            let mut refused = answer(&request, ResponseCode::NotAuth, None)?;
            return rejection
                .sign(&mut refused)
                .map_err(|e| super::signing_failed("NOTIFY refusal", &e))
                .ok()
                .map(|()| refused);
        }
    };
    if policy
        .replays
        .first_time(&signing.request_mac, signing.time)
    {
        let serial = announced_serial(&request, &zone);
        tracing::info!(%peer, %zone, id, serial, "NOTIFY accepted");
        policy.target.notified(&zone, serial);
    } else {
        tracing::warn!(%peer, %zone, id, "NOTIFY replayed; acknowledged and ignored");
    }
    answer(&request, ResponseCode::NoError, Some(signing))
}

/// The serial of the SOA for `zone` in the NOTIFY's answer section, if there is one.
fn announced_serial(request: &Message, zone: &Name) -> Option<u32> {
    request.answers.iter().find_map(|r| match &r.data {
        RData::SOA(soa) if r.name == *zone => Some(soa.serial),
        _ => None,
    })
}

/// The answer, signed when the request was; `None` when signing failed (logged): a signed
/// NOTIFY never gets an unsigned answer.
fn answer(request: &Message, rcode: ResponseCode, signing: Option<Signing>) -> Option<Vec<u8>> {
    let mut message = Message::response(request.metadata.id, OpCode::Notify);
    message.metadata.authoritative = true;
    message.metadata.response_code = rcode;
    for query in &request.queries {
        message.add_query(query.clone());
    }
    // Local invariant: a header and a question always encode.
    let mut bytes = message.to_vec().expect("NOTIFY answer encodes");
    if let Some(signing) = signing {
        tsig_server::sign_single(&mut bytes, signing)
            .map_err(|e| super::signing_failed("NOTIFY answer", &e))
            .ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replays_are_told_apart_until_the_window_passes() {
        let memory = ReplayMemory::default();
        assert!(memory.first_time(b"mac-1", 1000));
        assert!(!memory.first_time(b"mac-1", 1001), "a replay");
        assert!(memory.first_time(b"mac-2", 1001));
        let later = 1000 + 2 * u64::from(FUDGE) + 1;
        assert!(
            memory.first_time(b"mac-1", later),
            "forgotten once no TSIG check could pass"
        );
    }

    #[test]
    fn memory_is_bounded() {
        let memory = ReplayMemory::default();
        for i in 0..(REPLAY_MEMORY as u32 + 10) {
            assert!(memory.first_time(&i.to_be_bytes(), 1000));
        }
        assert_eq!(memory.seen.lock().unwrap().len(), REPLAY_MEMORY);
    }
}
