//! One DNS message in, one out: the answer logic every transport shares.
//!
//! Owns the routing of a request: to the answer prepared for the same question, to the
//! zones (authoritative answers by [`super::answer`], REFUSED for names outside every zone)
//! or, with `[forward]`, to the upstreams. It drops every response (QR=1) unanswered. It
//! owns what may be prepared: answers from the zones to plain queries (see
//! [`crate::prepared`]), never transfers, NOTIFY, TSIG-signed or forwarded messages. It
//! must not know about sockets: listeners hand it bytes and send back what it returns.

use std::{net::SocketAddr, sync::Arc};

use arc_swap::Guard;
use hickory_proto::op::OpCode;

use super::{
    Transport, answer,
    axfr::{self, TransferPolicy},
    forward::Forwarder,
    notify::{self, NotifyPolicy},
    update::{self, UpdatePolicy},
};
use crate::{
    metrics::{DropReason, STATS},
    prepared::Question,
    tsig, wire,
    zones::{ZoneIndex, Zones},
};

/// Answers queries for a node.
pub struct Handler {
    zones: Arc<Zones>,
    forwarder: Option<Forwarder>,
    transfer: Option<TransferPolicy>,
    notify: Option<NotifyPolicy>,
    /// Who may send RFC 2136 UPDATE (masters with `[update]`); none: REFUSED.
    update: Option<UpdatePolicy>,
    /// Whether answers from the zones are prepared and reused (`[listen] prepared-answers`).
    prepared: bool,
    /// The largest UDP answer (`[limits] udp-max-payload`), whatever the client's EDNS size.
    udp_max_payload: u16,
}

/// AXFR and IXFR type codes.
const TRANSFER_TYPES: [u16; 2] = [252, 251];

impl Handler {
    pub fn new(
        zones: Arc<Zones>,
        forwarder: Option<Forwarder>,
        transfer: Option<TransferPolicy>,
    ) -> Self {
        Self {
            zones,
            forwarder,
            transfer,
            notify: None,
            update: None,
            prepared: true,
            udp_max_payload: crate::config::DEFAULT_UDP_MAX_PAYLOAD,
        }
    }

    /// Caps datagram answers at `bytes` (TC above it), whatever size the client offers.
    pub fn with_udp_max_payload(self, bytes: u16) -> Self {
        Self {
            udp_max_payload: bytes.max(512),
            ..self
        }
    }

    /// Whether answers from the zones are prepared and reused (the default); without them every
    /// query takes the full path.
    pub fn with_prepared_answers(self, prepared: bool) -> Self {
        Self { prepared, ..self }
    }

    /// Accepts NOTIFY as `policy` says (secondaries only).
    pub fn with_notify(self, policy: NotifyPolicy) -> Self {
        Self {
            notify: Some(policy),
            ..self
        }
    }

    /// Takes RFC 2136 UPDATE as `policy` says (the master's `[update]`).
    pub fn with_update(self, policy: UpdatePolicy) -> Self {
        Self {
            update: Some(policy),
            ..self
        }
    }

    /// Every message answering `query` on a stream: several for a zone transfer, made as
    /// they are taken.
    pub async fn answer_stream(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> axfr::Answers {
        // Never answer a response (RFC 1035 4.1.1): two servers would bounce it for ever.
        if wire::is_response(query) {
            STATS.query(transport.index());
            STATS.drop(DropReason::Response);
            return Vec::new().into();
        }
        if wire::question_type(query).is_some_and(|t| TRANSFER_TYPES.contains(&t))
            && let Ok(request) = hickory_proto::op::Message::from_vec(query)
            && axfr::is_transfer(&request)
        {
            STATS.query(transport.index());
            return axfr::respond(
                query,
                &request,
                src.ip(),
                &self.zones,
                self.transfer.as_ref(),
            )
            .await;
        }
        self.answer(query, src, transport)
            .await
            .into_iter()
            .collect::<Vec<_>>()
            .into()
    }

    /// Writes the prepared answer to `query` into `out` if there is one: no parse, no task,
    /// no allocation once `out` has grown. False means `query` needs [`Handler::answer`].
    pub fn answer_prepared(&self, query: &[u8], transport: Transport, out: &mut Vec<u8>) -> bool {
        self.question(query, transport)
            .is_some_and(|question| self.zones.snapshot().answers.write(&question, query, out))
    }

    /// The answer to a NOTIFY (`Some(None)`: no answer at all), made where it arrived: it
    /// needs no zone and no I/O, and handing it to a runtime task cost a worker more than
    /// answering it. `None`: `query` is not a NOTIFY. Counted as [`Handler::answer`] counts.
    pub fn answer_notify(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Option<Vec<u8>>> {
        if wire::is_response(query) || wire::opcode(query) != Some(u8::from(OpCode::Notify)) {
            return None;
        }
        let t = transport.index();
        STATS.query(t);
        let answer = notify::respond(query, src.ip(), self.notify.as_ref());
        if let Some(answer) = &answer {
            STATS.answer(t, false, answer);
        }
        Some(answer)
    }

    /// The response to `query`, or `None` when nothing should be sent (not even a header).
    /// Counted in the metrics: the query, and its answer or why there is none.
    pub async fn answer(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let t = transport.index();
        STATS.query(t);
        // Never answer a response (RFC 1035 4.1.1): two servers would bounce it for ever.
        if wire::is_response(query) {
            STATS.drop(DropReason::Response);
            return None;
        }
        // One snapshot for the whole query: the answer is prepared from the zones it
        // came from, and dropped with them.
        let snapshot = self.zones.snapshot();
        let question = self.question(query, transport);
        if let Some(question) = &question {
            let mut out = Vec::new();
            if snapshot.answers.write(question, query, &mut out) {
                STATS.answer(t, true, &out);
                return Some(out);
            }
        }
        let answer = self
            .answer_fully(query, src, transport, snapshot, question)
            .await;
        if let Some(answer) = &answer {
            STATS.answer(t, false, answer);
        }
        answer
    }

    /// [`Handler::answer`] past the prepared answers.
    async fn answer_fully(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
        snapshot: Guard<Arc<crate::zones::Snapshot>>,
        question: Option<Question<'_>>,
    ) -> Option<Vec<u8>> {
        let snapshot = Guard::into_inner(snapshot);
        let limits = self.limits(transport);
        if wire::opcode(query) == Some(u8::from(OpCode::Notify)) {
            return notify::respond(query, src.ip(), self.notify.as_ref());
        }
        if wire::opcode(query) == Some(u8::from(OpCode::Update)) {
            return update::respond(query, src.ip(), self.update.as_ref(), &self.zones).await;
        }
        if wire::question_type(query).is_some_and(|t| TRANSFER_TYPES.contains(&t)) {
            // Transfers need a stream (RFC 5936 4.2); over UDP and DoH they are refused.
            return answer::refuse(query, answer::REFUSED_RCODE, limits);
        }
        let Ok(parsed) = answer::Query::parse(query)? else {
            // FORMERR, with the question when it could be read.
            return answer::respond(query, &snapshot.zones, limits);
        };
        if let Some(forwarder) = &self.forwarder
            && is_forwarded(query, &parsed, &snapshot.zones)
        {
            let limit = limits
                .datagram
                .then(|| parsed.datagram_limit(limits.udp_max_payload));
            return forwarder.forward(query, limit, src.ip()).await;
        }
        if parsed.signed {
            return self.answer_signed(query, &snapshot.zones, limits);
        }
        let answer = answer::respond(query, &snapshot.zones, limits)?;
        if let Some(question) = &question {
            snapshot.answers.insert(question, &answer);
        }
        Some(answer)
    }

    fn limits(&self, transport: Transport) -> answer::Limits {
        answer::Limits {
            datagram: transport == Transport::Udp,
            udp_max_payload: self.udp_max_payload,
        }
    }

    /// The key of a query that may have a prepared answer.
    fn question<'q>(&self, query: &'q [u8], transport: Transport) -> Option<Question<'q>> {
        self.prepared
            .then(|| Question::parse(query, transport == Transport::Udp))
            .flatten()
    }

    /// A TSIG-signed query (a secondary's SOA check, say) gets a signed answer, or NOTAUTH
    /// when its key or MAC does not check out (RFC 8945 5.2).
    fn answer_signed(
        &self,
        query: &[u8],
        zones: &ZoneIndex,
        limits: answer::Limits,
    ) -> Option<Vec<u8>> {
        let message = hickory_proto::op::Message::from_vec(query).ok()?;
        match tsig::server::authenticate(query, &message, &self.tsig_keys()) {
            Ok(signing) => {
                let mut answer = answer::respond(query, zones, limits)?;
                tsig::server::sign_single(&mut answer, signing)
                    .map_err(|e| super::signing_failed("answer", &e))
                    .ok()?;
                Some(answer)
            }
            Err(rejection) => rejection
                .response(message.metadata.id, message.queries.first()?.clone())
                .map_err(|e| super::signing_failed("refusal", &e))
                .ok(),
        }
    }

    /// Every key this node knows: transfer keys, its primary's and update keys (RFC 2136
    /// clients such as certbot's find the zone with signed SOA queries).
    fn tsig_keys(&self) -> Vec<tsig::TsigKey> {
        let transfer = self.transfer.iter().flat_map(|t| t.keys.iter());
        let notify = self.notify.iter().flat_map(|n| n.keys.iter());
        let update = self
            .update
            .iter()
            .flat_map(|u| u.keys.iter().map(|(k, _)| k));
        transfer.chain(notify).chain(update).cloned().collect()
    }
}

/// Plain queries for names outside every zone go upstream; everything else is ours.
fn is_forwarded(query: &[u8], parsed: &answer::Query<'_>, zones: &ZoneIndex) -> bool {
    wire::opcode(query) == Some(u8::from(OpCode::Query)) && zones.find(parsed.name()).is_none()
}
