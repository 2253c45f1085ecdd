//! NOTIFY in (RFC 1996) on a secondary: accepted only from a configured primary address,
//! TSIG-signed with a configured key (RFC 8945), for a zone the node replicates. Others get
//! REFUSED (wrong source, unknown zone) or NOTAUTH (no or bad signature), and nothing moves.
//!
//! The zone's refresh is asked for through the [`Notifiable`] trait this module owns, so
//! the DNS layer never reaches into replication.

use std::{net::IpAddr, sync::Arc};

use hickory_proto::{
    op::{Message, OpCode, ResponseCode},
    rr::Name,
};

use super::signing::{self, Signing};
use crate::tsig::TsigKey;

/// What a NOTIFY asks of the node.
pub trait Notifiable: Send + Sync + 'static {
    /// Whether `zone` is replicated here (its primary may NOTIFY it).
    fn replicates(&self, zone: &Name) -> bool;
    /// `zone` changed at the primary: check it now.
    fn notified(&self, zone: &Name);
}

/// Who may NOTIFY this node.
#[derive(Clone)]
pub struct NotifyPolicy {
    pub primaries: Vec<IpAddr>,
    pub keys: Vec<TsigKey>,
    pub target: Arc<dyn Notifiable>,
}

static REFUSED: super::ratelog::RateLog = super::ratelog::RateLog::new();

/// The answer to a NOTIFY `raw` from `peer`.
pub(super) fn respond(raw: &[u8], peer: IpAddr, policy: Option<&NotifyPolicy>) -> Option<Vec<u8>> {
    let request = Message::from_vec(raw).ok()?;
    let id = request.metadata.id;
    let zone = request.queries.first().map(|q| q.name().clone());
    let Some(policy) = policy else {
        return Some(answer(&request, ResponseCode::Refused, None));
    };
    // Anyone can send one: the refusals are logged at most once per interval.
    let Some(zone) = zone.filter(|z| policy.target.replicates(z)) else {
        if let Some(left_out) = REFUSED.allow() {
            tracing::info!(%peer, left_out, "NOTIFY refused: not a zone this node replicates");
        }
        return Some(answer(&request, ResponseCode::Refused, None));
    };
    if !policy.primaries.contains(&peer) {
        if let Some(left_out) = REFUSED.allow() {
            tracing::warn!(%peer, %zone, left_out, "NOTIFY refused: not from the primary");
        }
        return Some(answer(&request, ResponseCode::Refused, None));
    }
    let signing = match signing::authenticate(raw, &request, &policy.keys) {
        Ok(signing) => signing,
        Err(rejection) => {
            if let Some(left_out) = REFUSED.allow() {
                tracing::warn!(%peer, %zone, reason = rejection.reason, left_out, "NOTIFY refused");
            }
            return Some(answer(&request, ResponseCode::NotAuth, None));
        }
    };
    tracing::info!(%peer, %zone, id, "NOTIFY accepted");
    policy.target.notified(&zone);
    Some(answer(&request, ResponseCode::NoError, Some(signing)))
}

fn answer(request: &Message, rcode: ResponseCode, signing: Option<Signing>) -> Vec<u8> {
    let mut message = Message::response(request.metadata.id, OpCode::Notify);
    message.metadata.authoritative = true;
    message.metadata.response_code = rcode;
    for query in &request.queries {
        message.add_query(query.clone());
    }
    // Local invariant: a header and a question always encode.
    let mut bytes = message.to_vec().expect("NOTIFY answer encodes");
    if let Some(signing) = signing {
        signing::sign_single(&mut bytes, signing);
    }
    bytes
}
