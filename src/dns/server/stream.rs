//! TCP and DNS over TLS listeners: two-byte length framing (RFC 1035 4.2.2, RFC 7858), and
//! the accept loop DoH shares.
//!
//! Every accepted connection takes a place in the shared [`Pool`] first (per-source cap,
//! the longest-idle connection closed when full). Queries on one connection are answered
//! in order; a client may pipeline them. A query with a prepared answer is answered from
//! buffers the connection reuses. A connection waits for its next query up to the pool's
//! idle time, gets the message time for the rest of a query once it started, the write
//! time for each answer, and closes after its query cap or lifetime. Responses (QR=1) are
//! never answered. On shutdown, connections finish the query in hand and close. When the
//! process runs out of file descriptors, accepting pauses briefly instead of spinning.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    time::{Instant, timeout},
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    Handler, Transport,
    framing::{Frames, Stop},
    pool::{Pool, Refusal, Slot},
    ratelog::RateLog,
};
use crate::{
    config::Limits,
    metrics::{DropReason, STATS},
    tsig::{self, TsigKey},
    wire,
};

/// How long accepting pauses when the process is out of file descriptors.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

static TOO_MANY: RateLog = RateLog::new();
static NO_DESCRIPTORS: RateLog = RateLog::new();

#[derive(Clone)]
pub(super) enum Kind {
    Tcp,
    Tls(Arc<ServerConfig>),
    /// DNS over HTTPS: TLS, then HTTP/2 (`super::doh`).
    Https(Arc<ServerConfig>),
}

/// What every connection of every stream listener shares.
pub(super) struct Shared {
    pub(super) handler: Arc<Handler>,
    pub(super) pool: Arc<Pool>,
    pub(super) limits: Limits,
    /// Keys whose valid signature makes a connection trusted (never closed for others).
    pub(super) keys: Vec<TsigKey>,
    pub(super) shutdown: CancellationToken,
    pub(super) tracker: TaskTracker,
}

/// One accepted connection and what it may use.
pub(super) struct Conn {
    pub(super) peer: SocketAddr,
    pub(super) slot: Slot,
    pub(super) shared: Arc<Shared>,
    /// When the connection must close (`connection-lifetime-secs`).
    pub(super) closes_at: Instant,
    /// Counted open in the metrics while it lives.
    pub(super) _open: Open,
}

/// A stream connection counted open in the metrics until dropped.
pub(super) struct Open(usize);

impl Open {
    fn new(kind: &Kind) -> Self {
        let transport = match kind {
            Kind::Tcp => Transport::Tcp,
            Kind::Tls(_) => Transport::Tls,
            Kind::Https(_) => Transport::Https,
        }
        .index();
        STATS.connection(transport, 1);
        Self(transport)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        STATS.connection(self.0, -1);
    }
}

impl Conn {
    /// Whether the connection has served its share: its query cap or its lifetime.
    pub(super) fn spent(&self, answered: u32) -> bool {
        answered >= self.shared.limits.queries_per_connection || Instant::now() >= self.closes_at
    }
}

/// Accepts on `listener` until shutdown, each connection served as `kind` says.
pub(super) async fn run(kind: Kind, listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) if out_of_descriptors(&e) => {
                if let Some(left_out) = NO_DESCRIPTORS.allow() {
                    tracing::warn!(error = %e, left_out, "accept failed; pausing {ACCEPT_PAUSE:?}");
                }
                tokio::select! {
                    () = shared.shutdown.cancelled() => return,
                    () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "accept failed");
                continue;
            }
        };
        let slot = match shared.pool.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                if let Some(left_out) = TOO_MANY.allow() {
                    let why = match refusal {
                        Refusal::PerSource => "too many connections from this source",
                        Refusal::Full => "every connection is busy",
                    };
                    tracing::warn!(%peer, left_out, "{why}; closing a new connection");
                }
                continue;
            }
        };
        let conn = Conn {
            _open: Open::new(&kind),
            peer,
            slot,
            closes_at: Instant::now() + shared.limits.connection_lifetime,
            shared: shared.clone(),
        };
        shared.tracker.spawn(connection(kind.clone(), stream, conn));
    }
}

/// EMFILE, ENFILE (and buffer shortages): retrying at once would only spin.
fn out_of_descriptors(error: &std::io::Error) -> bool {
    matches!(error.raw_os_error(), Some(23 | 24 | 105 | 12))
}

async fn connection(kind: Kind, stream: TcpStream, conn: Conn) {
    let _ = stream.set_nodelay(true);
    match kind {
        Kind::Https(config) => super::doh::connection(config, stream, conn).await,
        Kind::Tcp => serve_stream(stream, Transport::Tcp, conn).await,
        Kind::Tls(config) => {
            let accept = TlsAcceptor::from(config).accept(stream);
            let tls = handshake(&conn, accept, "TLS").await;
            STATS.handshake(Transport::Tls.index(), tls.is_some());
            if let Some(tls) = tls {
                serve_stream(tls, Transport::Tls, conn).await;
            }
        }
    }
}

/// Runs a handshake within the handshake time, unless the pool wants the room or the node
/// shuts down first.
pub(super) async fn handshake<T, E: std::fmt::Display>(
    conn: &Conn,
    work: impl Future<Output = Result<T, E>>,
    what: &str,
) -> Option<T> {
    let limit = conn.shared.limits.handshake_timeout;
    let peer = conn.peer;
    tokio::select! {
        () = conn.slot.evicted() => None,
        () = conn.shared.shutdown.cancelled() => None,
        r = timeout(limit, work) => match r {
            Ok(Ok(done)) => Some(done),
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "{what} handshake failed");
                None
            }
            Err(_) => {
                tracing::debug!(%peer, "{what} handshake timed out");
                None
            }
        },
    }
}

/// Reads framed queries and writes framed answers until the peer leaves, idles out, is
/// closed for room, has served its share, or the node shuts down.
pub(super) async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    transport: Transport,
    conn: Conn,
) {
    let shared = conn.shared.clone();
    let (mut frames, mut buffers) = (Frames::default(), Buffers::default());
    let mut answered = 0u32;
    loop {
        let message_time = shared.limits.message_timeout;
        let query = tokio::select! {
            () = shared.shutdown.cancelled() => break,
            () = conn.slot.evicted() => break,
            r = frames.next(&mut stream, conn.slot.idle_timeout(), message_time) => r,
        };
        let query = match query {
            Ok(query) => query,
            Err(Stop::Slow) => {
                tracing::debug!(peer = %conn.peer, "a query did not arrive in time; closing");
                break;
            }
            Err(Stop::Io(e)) => {
                tracing::debug!(peer = %conn.peer, error = %e, "stream read failed");
                break;
            }
            Err(Stop::Closed | Stop::Idle) => break,
        };
        answered = answered.saturating_add(1);
        // Never answer a response; the rest of the connection goes on.
        if wire::is_response(query) {
            STATS.query(transport.index());
            STATS.drop(DropReason::Response);
            if conn.spent(answered) {
                break;
            }
            continue;
        }
        if !conn.slot.is_trusted() && signed_by_partner(query, &shared.keys) {
            conn.slot.trust();
        }
        // A client that does not read its answers may be closed for room meanwhile.
        let written = tokio::select! {
            () = conn.slot.evicted() => break,
            r = respond(&mut stream, query, transport, &conn, &mut buffers) => r,
        };
        if written.is_err() || conn.spent(answered) {
            break;
        }
        conn.slot.progressed();
    }
    let _ = timeout(shared.limits.write_timeout, stream.shutdown()).await;
}

/// Reused from query to query on a connection.
#[derive(Default)]
struct Buffers {
    prepared: Vec<u8>,
    framed: Vec<u8>,
}

/// Answers `query`: its prepared answer, else every message the handler makes for it.
async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    query: &[u8],
    transport: Transport,
    conn: &Conn,
    buffers: &mut Buffers,
) -> std::io::Result<()> {
    let shared = &conn.shared;
    let Buffers { prepared, framed } = buffers;
    if shared.handler.answer_prepared(query, transport, prepared) {
        STATS.query(transport.index());
        STATS.answer(transport.index(), true, prepared);
        return write_framed(stream, prepared, framed, &shared.limits).await;
    }
    // Working on the answer: not closed for room meanwhile.
    let busy = conn.slot.busy();
    let answers = shared
        .handler
        .answer_stream(query, conn.peer, transport)
        .await;
    drop(busy);
    let transfer = matches!(answers, super::axfr::Answers::Transfer(_)).then(Instant::now);
    let mut bytes = 0;
    for response in answers {
        bytes += response.len();
        write_framed(stream, &response, framed, &shared.limits).await?;
    }
    if let Some(started) = transfer {
        crate::metrics::stats::transfer("out", bytes, started.elapsed());
    }
    Ok(())
}

/// A transfer or SOA query signed with one of this node's keys: a transfer partner's.
fn signed_by_partner(query: &[u8], keys: &[TsigKey]) -> bool {
    const SIGNED_TYPES: [u16; 3] = [6, 251, 252];
    if keys.is_empty() || !wire::question_type(query).is_some_and(|t| SIGNED_TYPES.contains(&t)) {
        return false;
    }
    hickory_proto::op::Message::from_vec(query)
        .is_ok_and(|message| tsig::server::authenticate(query, &message, keys).is_ok())
}

/// One write for length and message (built in `framed`), so they leave in one segment,
/// within the write time.
async fn write_framed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
    framed: &mut Vec<u8>,
    limits: &Limits,
) -> std::io::Result<()> {
    let length = u16::try_from(message.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    framed.clear();
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    let write = async {
        stream.write_all(framed).await?;
        stream.flush().await
    };
    timeout(limits.write_timeout, write)
        .await
        .map_err(|_| std::io::ErrorKind::TimedOut)?
}
