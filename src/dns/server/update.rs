//! RFC 2136 UPDATE in: the message read, its TSIG checked against the update keys, the
//! signing key's grants handed to [`Zones::update`], the answer signed with the same key.
//!
//! Owns who may send an update and the answer's rcode: REFUSED on a node without
//! `[update]` (workers: clients send updates to the master, RFC 2136 6 forwarding is not
//! done) and for unsigned updates or changes outside the key's grants, NOTAUTH for a key
//! or MAC that does not check out (RFC 8945 5.2) and for zones not served here. Refusals
//! are logged with the key name and the name tried, rate-limited. After a change is
//! applied, NOERROR waits (at most `[update] wait-for-workers-ms`) until every address in
//! `[transfer] notify` answers the zone's SOA with the new serial, so a client that tells
//! its CA at once finds the record on every node. It must not apply changes itself
//! (`zones`).

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{Name, RData, RecordType, SerialNumber},
};

use super::ratelog::RateLog;
use crate::{
    config::UpdateKey,
    dns::client::exchange,
    tsig::{
        TsigKey,
        server::{self as tsig_server, Signing},
    },
    zones::{UpdateError, UpdateRequest, Zones},
};

/// The update keys of a master, each with its grants.
pub struct UpdatePolicy {
    pub keys: Vec<(TsigKey, UpdateKey)>,
    /// The secondaries NOERROR waits for (`[transfer] notify`).
    pub workers: Vec<SocketAddr>,
    /// How long NOERROR waits for them at most; zero: not at all.
    pub wait: Duration,
}

static REFUSALS: RateLog = RateLog::new();

/// The answer to the UPDATE `query` from `src`.
pub(super) async fn respond(
    query: &[u8],
    src: IpAddr,
    policy: Option<&UpdatePolicy>,
    zones: &Arc<Zones>,
) -> Option<Vec<u8>> {
    let Ok(message) = Message::from_vec(query) else {
        let id = u16::from_be_bytes([*query.first()?, *query.get(1)?]);
        return Some(reply(id, None, ResponseCode::FormErr));
    };
    let id = message.metadata.id;
    let zone = match message.queries.as_slice() {
        [zone] if zone.query_type() == RecordType::SOA => zone.clone(),
        _ => {
            let first = message.queries.first().cloned();
            return Some(reply(id, first, ResponseCode::FormErr));
        }
    };
    let tried = message
        .authorities
        .first()
        .map_or_else(|| zone.name().clone(), |r| r.name.clone());
    let key_name = message.signature().map(|t| t.name.to_string());
    let key_name = key_name.as_deref().unwrap_or("(unsigned)");
    let Some(policy) = policy else {
        refused(
            src,
            key_name,
            &tried,
            "this node takes no updates (no [update])",
        );
        return Some(reply(id, Some(zone), ResponseCode::Refused));
    };
    let keys: Vec<TsigKey> = policy.keys.iter().map(|(k, _)| k.clone()).collect();
    let signing = match tsig_server::authenticate(query, &message, &keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            refused(src, key_name, &tried, rejection.reason);
            return rejection
                .response_as(id, zone, OpCode::Update)
                .map_err(|e| super::signing_failed("update refusal", &e))
                .ok();
        }
    };
    let grants = policy
        .keys
        .iter()
        .find(|(k, _)| Some(&k.name) == message.signature().map(|t| &t.name))
        .map(|(_, grants)| grants.clone())?;
    let result = apply(zones, message, &zone, grants).await;
    let who = Who {
        src,
        key: key_name,
        tried: &tried,
    };
    let rcode = outcome(policy, zone.name(), result, &who).await;
    signed(reply(id, Some(zone), rcode), signing)
}

/// Who sent an update and the name it tried, for the log.
struct Who<'a> {
    src: IpAddr,
    key: &'a str,
    tried: &'a Name,
}

/// The rcode for an applied or refused update; after a change, once the workers serve it.
async fn outcome(
    policy: &UpdatePolicy,
    zone: &Name,
    result: Result<u32, UpdateError>,
    who: &Who<'_>,
) -> ResponseCode {
    let Who { src, key, tried } = *who;
    match result {
        Ok(serial) => {
            tracing::info!(key, zone = %zone, name = %tried, serial, "update applied");
            let started = Instant::now();
            let late = wait_for_workers(policy, zone, serial).await;
            if !late.is_empty() {
                tracing::warn!(
                    zone = %zone,
                    serial,
                    ?late,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "update acknowledged before these workers served it"
                );
            }
            ResponseCode::NoError
        }
        Err(e) => {
            if matches!(e.rcode(), ResponseCode::Refused | ResponseCode::NotAuth) {
                refused(src, key, tried, &e.to_string());
            } else {
                tracing::info!(key, zone = %zone, name = %tried, error = %e, "update not applied");
            }
            e.rcode()
        }
    }
}

/// Applies the update off the runtime's threads: it waits for an fsync.
async fn apply(
    zones: &Arc<Zones>,
    message: Message,
    zone: &Query,
    grants: UpdateKey,
) -> Result<u32, UpdateError> {
    let zones = zones.clone();
    let origin = zone.name().clone();
    let task = tokio::task::spawn_blocking(move || {
        let request = UpdateRequest {
            zone: &origin,
            prerequisites: &message.answers,
            updates: &message.authorities,
        };
        zones.update(&request, |name: &Name, rtype| grants.allows(name, rtype))
    });
    task.await
        .unwrap_or_else(|e| Err(UpdateError::ServFail(e.to_string())))
}

/// Asks each worker for the zone's SOA until it serves `serial` or later, within the
/// policy's wait; returns the workers that did not.
async fn wait_for_workers(policy: &UpdatePolicy, zone: &Name, serial: u32) -> Vec<SocketAddr> {
    let deadline = Instant::now() + policy.wait;
    let mut pending = policy.workers.clone();
    while !pending.is_empty() && Instant::now() < deadline {
        let mut still = Vec::new();
        for worker in pending {
            let served = worker_serial(worker, zone, deadline).await;
            if !served.is_some_and(|s| SerialNumber::new(s) >= SerialNumber::new(serial)) {
                still.push(worker);
            }
        }
        pending = still;
        if !pending.is_empty() {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    pending
}

/// The SOA serial `worker` serves for `zone`, if it answers before `deadline` (and within
/// 200 ms: a lost datagram is asked again).
async fn worker_serial(worker: SocketAddr, zone: &Name, deadline: Instant) -> Option<u32> {
    let id = exchange::random_id();
    let mut query = Message::query();
    query.metadata.id = id;
    query.add_query(Query::query(zone.clone(), RecordType::SOA));
    let bytes = query.to_vec().ok()?;
    let limit = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_millis(200));
    let answer = tokio::time::timeout(limit, exchange::udp(worker, None, &bytes, id))
        .await
        .ok()?
        .ok()?;
    Message::from_vec(&answer)
        .ok()?
        .answers
        .iter()
        .find_map(|r| match &r.data {
            RData::SOA(soa) => Some(soa.serial),
            _ => None,
        })
}

fn refused(src: IpAddr, key: &str, tried: &Name, reason: &str) {
    if let Some(left_out) = REFUSALS.allow() {
        tracing::warn!(%src, key, name = %tried, reason, left_out, "update refused");
    }
}

fn reply(id: u16, zone: Option<Query>, rcode: ResponseCode) -> Vec<u8> {
    let mut message = Message::error_msg(id, OpCode::Update, rcode);
    if let Some(zone) = zone {
        message.add_query(zone);
    }
    // Local invariant: a header and one question always encode.
    message.to_vec().expect("update answer encodes")
}

/// `None` when signing fails (logged): a signed update never gets an unsigned answer.
fn signed(mut answer: Vec<u8>, signing: Signing) -> Option<Vec<u8>> {
    tsig_server::sign_single(&mut answer, signing)
        .map_err(|e| super::signing_failed("update answer", &e))
        .ok()?;
    Some(answer)
}
