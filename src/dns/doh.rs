//! DNS over HTTPS (RFC 8484) on HTTP/2: `/dns-query`, GET with `?dns=` (base64url, no
//! padding) and POST with an `application/dns-message` body.
//!
//! Any `:authority` is accepted: the certificate already says who we are, and clients reach
//! nodes by address as often as by name. Not implemented: HTTP/1.1, JSON forms.

use std::{net::SocketAddr, sync::Arc};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use h2::{RecvStream, server::SendResponse};
use http::{Method, Request, Response, StatusCode};
use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    time::timeout,
};
use tokio_rustls::TlsAcceptor;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{Handler, IDLE_TIMEOUT, Transport, stream::HANDSHAKE_TIMEOUT};

const PATH: &str = "/dns-query";
const MEDIA_TYPE: &str = "application/dns-message";
/// A DNS message never exceeds 64 KiB.
const MAX_BODY: usize = 65_535;

/// One DoH connection: TLS, then HTTP/2 until the peer leaves or the node shuts down.
pub(super) async fn connection(
    config: Arc<ServerConfig>,
    stream: TcpStream,
    peer: SocketAddr,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Ok(Ok(tls)) = timeout(
        HANDSHAKE_TIMEOUT,
        TlsAcceptor::from(config).accept(super::doh_io::Coalesce::new(stream)),
    )
    .await
    else {
        tracing::debug!(%peer, "DoH TLS handshake failed");
        return;
    };
    serve_h2(
        super::doh_io::PerAnswer::new(tls),
        peer,
        handler,
        shutdown,
        tracker,
    )
    .await;
}

async fn serve_h2<S: AsyncRead + AsyncWrite + Unpin>(
    io: S,
    peer: SocketAddr,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let Ok(Ok(mut conn)) = timeout(HANDSHAKE_TIMEOUT, h2::server::handshake(io)).await else {
        tracing::debug!(%peer, "HTTP/2 handshake failed");
        return;
    };
    loop {
        let next = tokio::select! {
            () = shutdown.cancelled() => {
                conn.graceful_shutdown();
                break;
            }
            n = timeout(IDLE_TIMEOUT, conn.accept()) => n,
        };
        match next {
            Ok(Some(Ok((request, respond)))) => {
                tracker.spawn(exchange(request, respond, peer, handler.clone()));
            }
            Ok(Some(Err(e))) => {
                tracing::debug!(%peer, error = %e, "HTTP/2 error");
                return;
            }
            Ok(None) => return,
            Err(_) => {
                conn.graceful_shutdown();
                break;
            }
        }
    }
    // Let streams in flight finish after a GOAWAY.
    let _ = timeout(
        HANDSHAKE_TIMEOUT,
        std::future::poll_fn(|cx| conn.poll_closed(cx)),
    )
    .await;
}

async fn exchange(
    request: Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    peer: SocketAddr,
    handler: Arc<Handler>,
) {
    let (status, body) = match query_of(request).await {
        Ok(query) => match handler.answer(&query, peer, Transport::Https).await {
            Some(answer) => (StatusCode::OK, Some(answer)),
            None => (StatusCode::BAD_REQUEST, None),
        },
        Err(status) => (status, None),
    };
    let mut response = Response::builder().status(status);
    if let Some(body) = &body {
        // BIND's dig reads exactly content-length bytes and nothing without it.
        response = response
            .header(http::header::CONTENT_TYPE, MEDIA_TYPE)
            .header(http::header::CONTENT_LENGTH, body.len());
    }
    // Local invariant: a status and a static header always build.
    let response = response.body(()).expect("static response parts");
    let Ok(mut send) = respond.send_response(response, body.is_none()) else {
        return;
    };
    if let Some(body) = body {
        let _ = send.send_data(Bytes::from(body), true);
    }
}

/// The DNS message carried by a request, or the HTTP status that refuses it.
async fn query_of(request: Request<RecvStream>) -> Result<Vec<u8>, StatusCode> {
    if request.uri().path() != PATH {
        return Err(StatusCode::NOT_FOUND);
    }
    match *request.method() {
        Method::GET => {
            let param = request
                .uri()
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("dns=")))
                .ok_or(StatusCode::BAD_REQUEST)?;
            URL_SAFE_NO_PAD
                .decode(param.trim_end_matches('='))
                .map_err(|_| StatusCode::BAD_REQUEST)
        }
        Method::POST => {
            let content_type = request.headers().get(http::header::CONTENT_TYPE);
            if content_type.and_then(|v| v.to_str().ok()) != Some(MEDIA_TYPE) {
                return Err(StatusCode::UNSUPPORTED_MEDIA_TYPE);
            }
            read_body(request.into_body()).await
        }
        _ => Err(StatusCode::METHOD_NOT_ALLOWED),
    }
}

async fn read_body(mut body: RecvStream) -> Result<Vec<u8>, StatusCode> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.map_err(|_| StatusCode::BAD_REQUEST)?;
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
        if bytes.len() > MAX_BODY {
            return Err(StatusCode::PAYLOAD_TOO_LARGE);
        }
    }
    Ok(bytes)
}
