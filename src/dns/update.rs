//! RFC 2136 UPDATE in: the message read, its TSIG checked against the update keys, the
//! signing key's grants handed to [`Zones::update`], the answer signed with the same key.
//!
//! Owns who may send an update and the answer's rcode: REFUSED on a node without
//! `[update]` (workers: clients send updates to the master, RFC 2136 6 forwarding is not
//! done) and for unsigned updates or changes outside the key's grants, NOTAUTH for a key
//! or MAC that does not check out (RFC 8945 5.2) and for zones not served here. Refusals
//! are logged with the key name and the name tried, rate-limited. It must not apply
//! changes itself (`zones`).

use std::{net::IpAddr, sync::Arc};

use hickory_proto::{
    op::{Message, OpCode, Query, ResponseCode},
    rr::{Name, RecordType},
};

use super::{
    ratelog::RateLog,
    signing::{self, Signing},
};
use crate::{
    config::UpdateKey,
    tsig::TsigKey,
    zones::{UpdateError, UpdateRequest, Zones},
};

/// The update keys of a master, each with its grants.
pub struct UpdatePolicy {
    pub keys: Vec<(TsigKey, UpdateKey)>,
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
            return Some(reply(
                id,
                message.queries.first().cloned(),
                ResponseCode::FormErr,
            ));
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
    let signing = match signing::authenticate(query, &message, &keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            refused(src, key_name, &tried, rejection.reason);
            return Some(rejection.response_as(id, zone, OpCode::Update));
        }
    };
    let grants = policy
        .keys
        .iter()
        .find(|(k, _)| Some(&k.name) == message.signature().map(|t| &t.name))
        .map(|(_, grants)| grants.clone())?;
    let result = apply(zones, message, &zone, grants).await;
    let rcode = match result {
        Ok(serial) => {
            tracing::info!(key = key_name, zone = %zone.name(), name = %tried, serial, "update applied");
            ResponseCode::NoError
        }
        Err(e) => {
            if matches!(e.rcode(), ResponseCode::Refused | ResponseCode::NotAuth) {
                refused(src, key_name, &tried, &e.to_string());
            } else {
                tracing::info!(key = key_name, zone = %zone.name(), name = %tried, error = %e, "update not applied");
            }
            e.rcode()
        }
    };
    Some(signed(reply(id, Some(zone), rcode), signing))
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

fn signed(mut answer: Vec<u8>, signing: Signing) -> Vec<u8> {
    signing::sign_single(&mut answer, signing);
    answer
}
