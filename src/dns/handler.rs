//! One DNS message in, one out: the answer logic every transport shares.
//!
//! Owns the routing of a request: to the answer prepared for the same question, to the
//! zones' catalog (authoritative answers, REFUSED for names outside every zone) or, with
//! `[forward]`, to the upstreams. It owns what may be prepared: catalog answers to plain
//! queries (see [`crate::prepared`]), never transfers, NOTIFY, TSIG-signed or forwarded
//! messages. It must not know about sockets: listeners hand it bytes and send back what it
//! returns.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use arc_swap::Guard;

use hickory_proto::{
    op::{MessageType, OpCode, ResponseCode},
    rr::Record,
    serialize::binary::BinEncoder,
};
use hickory_server::{
    net::{NetError, runtime::TokioTime, xfer::Protocol},
    server::{Request, RequestHandler, ResponseHandler, ResponseInfo},
    zone_handler::{Catalog, MessageResponse},
};

use super::{
    Transport,
    axfr::{self, TransferPolicy},
    forward::Forwarder,
    notify::{self, NotifyPolicy},
    signing, wire,
};
use crate::{prepared::Question, zones::Zones};

/// Answers queries for a node.
pub struct Handler {
    zones: Arc<Zones>,
    forwarder: Option<Forwarder>,
    transfer: Option<TransferPolicy>,
    notify: Option<NotifyPolicy>,
    /// Whether catalog answers are prepared and reused (`[listen] prepared-answers`).
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
            prepared: true,
            udp_max_payload: crate::config::DEFAULT_UDP_MAX_PAYLOAD,
        }
    }

    /// Caps UDP answers at `size` bytes (TC above it), whatever the client's EDNS size.
    pub fn with_udp_max_payload(self, size: u16) -> Self {
        Self {
            udp_max_payload: size.max(512),
            ..self
        }
    }

    /// Whether catalog answers are prepared and reused (the default); without them every
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
            return Vec::new().into();
        }
        if wire::question_type(query).is_some_and(|t| TRANSFER_TYPES.contains(&t))
            && let Ok(request) = hickory_proto::op::Message::from_vec(query)
            && axfr::is_transfer(&request)
        {
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

    /// The response to `query`, or `None` when nothing should be sent (not even a header).
    pub async fn answer(
        &self,
        query: &[u8],
        src: SocketAddr,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        // Never answer a response (RFC 1035 4.1.1): two servers would bounce it for ever.
        if wire::is_response(query) {
            return None;
        }
        // One snapshot for the whole query: the answer is prepared from the catalog it
        // came from, and dropped with it.
        let snapshot = self.zones.snapshot();
        let question = self.question(query, transport);
        if let Some(question) = &question {
            let mut out = Vec::new();
            if snapshot.answers.write(question, query, &mut out) {
                return Some(out);
            }
        }
        let snapshot = Guard::into_inner(snapshot);
        let protocol = match transport {
            Transport::Udp => Protocol::Udp,
            // The catalog only distinguishes datagrams (size limits) from streams.
            Transport::Tcp | Transport::Tls | Transport::Https => Protocol::Tcp,
        };
        if wire::opcode(query) == Some(u8::from(OpCode::Notify)) {
            return notify::respond(query, src.ip(), self.notify.as_ref());
        }
        if wire::question_type(query).is_some_and(|t| TRANSFER_TYPES.contains(&t)) {
            // Transfers need a stream (RFC 5936 4.2); over UDP and DoH they are refused.
            return wire::header_only_response(query, ResponseCode::Refused);
        }
        let Ok(request) = Request::from_bytes(query.to_vec(), src, protocol) else {
            return wire::header_only_response(query, ResponseCode::FormErr);
        };
        if let Some(forwarder) = &self.forwarder
            && is_forwarded(&request, &snapshot.catalog)
        {
            let limit = udp_limit(&request, transport, self.udp_max_payload);
            return forwarder.forward(query, limit, src.ip()).await;
        }
        if request.signature.is_some() {
            return self
                .answer_signed(query, &request, &snapshot.catalog, transport)
                .await;
        }
        let answer = lookup(&snapshot.catalog, &request, self.capture(transport)).await?;
        if let Some(question) = &question {
            snapshot.answers.insert(question, &answer);
        }
        Some(answer)
    }

    /// The key of a query that may have a prepared answer.
    fn question<'q>(&self, query: &'q [u8], transport: Transport) -> Option<Question<'q>> {
        self.prepared
            .then(|| Question::parse(query, transport == Transport::Udp))
            .flatten()
    }

    /// A TSIG-signed query (a secondary's SOA check, say) gets a signed answer, or NOTAUTH
    /// when its key or MAC does not check out (RFC 8945 5.2).
    async fn answer_signed(
        &self,
        query: &[u8],
        request: &Request,
        catalog: &Catalog,
        transport: Transport,
    ) -> Option<Vec<u8>> {
        let message = hickory_proto::op::Message::from_vec(query).ok()?;
        match signing::authenticate(query, &message, &self.tsig_keys()) {
            Ok(signing) => {
                let mut answer = lookup(catalog, request, self.capture(transport)).await?;
                signing::sign_single(&mut answer, signing);
                Some(answer)
            }
            Err(rejection) => {
                Some(rejection.response(message.metadata.id, message.queries.first()?.clone()))
            }
        }
    }

    fn capture(&self, transport: Transport) -> Capture {
        Capture::new(transport, self.udp_max_payload)
    }

    /// Every key this node knows: transfer keys and its primary's.
    fn tsig_keys(&self) -> Vec<crate::tsig::TsigKey> {
        let transfer = self.transfer.iter().flat_map(|t| t.keys.iter());
        let notify = self.notify.iter().flat_map(|n| n.keys.iter());
        transfer.chain(notify).cloned().collect()
    }
}

/// The catalog's answer, encoded as `capture` says.
async fn lookup(catalog: &Catalog, request: &Request, capture: Capture) -> Option<Vec<u8>> {
    catalog
        .handle_request::<_, TokioTime>(request, capture.clone())
        .await;
    capture.take()
}

/// Plain queries for names outside every zone go upstream; everything else is ours.
fn is_forwarded(request: &Request, catalog: &Catalog) -> bool {
    let Ok(info) = request.request_info() else {
        return false;
    };
    info.metadata.message_type == MessageType::Query
        && info.metadata.op_code == OpCode::Query
        && catalog.find(info.query.name()).is_none()
}

/// The largest response a UDP client takes: its EDNS size, else 512 (RFC 1035 4.2.1),
/// never above `cap`.
fn udp_limit(request: &Request, transport: Transport, cap: u16) -> Option<usize> {
    (transport == Transport::Udp).then(|| {
        request.edns.as_ref().map_or(512, |edns| {
            usize::from(edns.max_payload().clamp(512, cap.max(512)))
        })
    })
}

/// Catches the catalog's response as bytes instead of sending it.
#[derive(Clone)]
struct Capture {
    transport: Transport,
    /// The UDP size cap (`[limits] udp-max-payload`).
    udp_cap: u16,
    bytes: Arc<Mutex<Option<Vec<u8>>>>,
}

impl Capture {
    fn new(transport: Transport, udp_cap: u16) -> Self {
        Self {
            transport,
            udp_cap: udp_cap.max(512),
            bytes: Arc::default(),
        }
    }

    fn take(&self) -> Option<Vec<u8>> {
        self.bytes.lock().unwrap_or_else(|e| e.into_inner()).take()
    }
}

#[async_trait::async_trait]
impl ResponseHandler for Capture {
    async fn send_response<'a>(
        &mut self,
        response: MessageResponse<
            '_,
            'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
            impl Iterator<Item = &'a Record> + Send + 'a,
        >,
    ) -> Result<ResponseInfo, NetError> {
        let max_size = match (self.transport, response.edns()) {
            (Transport::Udp, Some(edns)) => edns.max_payload().clamp(512, self.udp_cap),
            (Transport::Udp, None) => 512,
            _ => u16::MAX,
        };
        let mut bytes = Vec::with_capacity(512);
        let mut encoder = BinEncoder::new(&mut bytes);
        encoder.set_max_size(max_size);
        let info = response.destructive_emit(&mut encoder)?;
        *self.bytes.lock().unwrap_or_else(|e| e.into_inner()) = Some(bytes);
        Ok(info)
    }
}
