//! TCP and DNS over TLS listeners: two-byte length framing (RFC 1035 4.2.2, RFC 7858).
//!
//! Queries on one connection are answered in order; a client may pipeline them. A query
//! with a prepared answer is answered from buffers the connection reuses. Idle connections
//! close after [`super::IDLE_TIMEOUT`]; on shutdown, connections finish the query in hand
//! and close.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::Semaphore,
    time::timeout,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Handler, IDLE_TIMEOUT, Transport};

/// A TLS handshake that takes longer than this is abandoned.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub(super) enum Kind {
    Tcp,
    Tls(Arc<ServerConfig>),
    /// DNS over HTTPS: TLS, then HTTP/2 (`super::doh`).
    Https(Arc<ServerConfig>),
}

pub(super) struct Server {
    kind: Kind,
    handler: Arc<Handler>,
    limit: Arc<Semaphore>,
    tracker: TaskTracker,
}

impl Server {
    pub(super) fn new(
        kind: Kind,
        handler: Arc<Handler>,
        limit: Arc<Semaphore>,
        tracker: TaskTracker,
    ) -> Self {
        Self {
            kind,
            handler,
            limit,
            tracker,
        }
    }

    pub(super) async fn run(self, listener: TcpListener, shutdown: CancellationToken) {
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => return,
                a = listener.accept() => a,
            };
            let (stream, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed");
                    continue;
                }
            };
            let Ok(permit) = self.limit.clone().try_acquire_owned() else {
                tracing::warn!(%peer, "too many connections; closing a new one");
                continue;
            };
            let (kind, handler, shutdown) =
                (self.kind.clone(), self.handler.clone(), shutdown.clone());
            let tracker = self.tracker.clone();
            self.tracker.spawn(async move {
                connection(kind, stream, peer, handler, shutdown, tracker).await;
                drop(permit);
            });
        }
    }
}

async fn connection(
    kind: Kind,
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let _ = stream.set_nodelay(true);
    match kind {
        Kind::Https(config) => {
            super::doh::connection(config, stream, peer, handler, shutdown, tracker).await
        }
        Kind::Tcp => serve_stream(stream, peer, Transport::Tcp, &handler, &shutdown).await,
        Kind::Tls(config) => {
            let accept = TlsAcceptor::from(config).accept(stream);
            match timeout(HANDSHAKE_TIMEOUT, accept).await {
                Ok(Ok(tls)) => serve_stream(tls, peer, Transport::Tls, &handler, &shutdown).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

/// Reads framed queries and writes framed answers until the peer leaves, idles out, or
/// the node shuts down.
pub(super) async fn serve_stream<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    peer: SocketAddr,
    transport: Transport,
    handler: &Handler,
    shutdown: &CancellationToken,
) {
    let (mut query, mut prepared, mut framed) = (Vec::new(), Vec::new(), Vec::new());
    'serve: loop {
        let length = tokio::select! {
            () = shutdown.cancelled() => break,
            r = timeout(IDLE_TIMEOUT, stream.read_u16()) => r,
        };
        let Ok(Ok(length)) = length else { break };
        query.resize(usize::from(length), 0);
        if !matches!(
            timeout(IDLE_TIMEOUT, stream.read_exact(&mut query)).await,
            Ok(Ok(_))
        ) {
            break;
        }
        if handler.answer_prepared(&query, transport, &mut prepared) {
            if write_framed(&mut stream, &prepared, &mut framed)
                .await
                .is_err()
            {
                break;
            }
            continue;
        }
        for response in handler.answer_stream(&query, peer, transport).await {
            if write_framed(&mut stream, &response, &mut framed)
                .await
                .is_err()
            {
                break 'serve;
            }
        }
    }
    let _ = stream.shutdown().await;
}

/// One write for length and message (built in `framed`), so they leave in one segment.
async fn write_framed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
    framed: &mut Vec<u8>,
) -> std::io::Result<()> {
    let length = u16::try_from(message.len()).map_err(|_| std::io::ErrorKind::InvalidData)?;
    framed.clear();
    framed.extend_from_slice(&length.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(framed).await?;
    stream.flush().await
}
