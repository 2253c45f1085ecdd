//! DNS over HTTPS (RFC 8484) on HTTP/2: `/dns-query`, GET with `?dns=` (base64url, no
//! padding) and POST with an `application/dns-message` body.
//!
//! Any `:authority` is accepted: the certificate already says who we are, and clients reach
//! nodes by address as often as by name. The HTTP/2 server has explicit limits (`[limits]`
//! `doh-*`: streams at once, header list size, flow-control windows) instead of the `h2`
//! crate's open-ended defaults; a request body must arrive within the message time; the
//! requests of one connection run inside its task, at most its stream limit of them; a
//! request whose stream the client resets is dropped unfinished. A connection closes (with
//! GOAWAY) after its idle time without requests, its request cap or its lifetime. Answers
//! leave as `super::doh_io` says. Not implemented: HTTP/1.1, JSON forms.

use std::{sync::Arc, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use bytes::Bytes;
use futures_util::{StreamExt, stream::FuturesUnordered};
use h2::{RecvStream, server::SendResponse};
use http::{Method, Request, Response, StatusCode};
use rustls::ServerConfig;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    time::{Instant, sleep_until, timeout},
};
use tokio_rustls::TlsAcceptor;

use super::{
    Transport,
    doh_io::{Coalesce, PerAnswer},
    stream::{Conn, handshake},
};
use crate::{
    config::Limits,
    metrics::{DropReason, STATS},
    wire,
};

const PATH: &str = "/dns-query";
const MEDIA_TYPE: &str = "application/dns-message";
/// A DNS message never exceeds 64 KiB.
const MAX_BODY: usize = 65_535;

/// One DoH connection: TLS, then HTTP/2 until the peer leaves, idles out, has served its
/// share, is closed for room, or the node shuts down.
pub(super) async fn connection(config: Arc<ServerConfig>, stream: TcpStream, conn: Conn) {
    let accept = TlsAcceptor::from(config).accept(Coalesce::new(stream));
    let tls = handshake(&conn, accept, "DoH TLS").await;
    STATS.handshake(Transport::Https.index(), tls.is_some());
    let Some(tls) = tls else {
        return;
    };
    let h2 = server(&conn.shared.limits).handshake(PerAnswer::new(tls));
    let Some(h2) = handshake(&conn, h2, "HTTP/2").await else {
        return;
    };
    serve_h2(h2, &conn).await;
}

/// The HTTP/2 server's settings, from `[limits]`.
fn server(limits: &Limits) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(limits.doh_streams)
        .max_header_list_size(limits.doh_header_bytes)
        .initial_window_size(limits.doh_window_bytes)
        .initial_connection_window_size(limits.doh_window_bytes)
        .max_send_buffer_size(MAX_BODY);
    builder
}

async fn serve_h2<S: AsyncRead + AsyncWrite + Unpin>(
    mut h2: h2::server::Connection<S, Bytes>,
    conn: &Conn,
) {
    let shared = &conn.shared;
    let mut exchanges = FuturesUnordered::new();
    let mut requests = 0u32;
    let mut idle_until = Instant::now() + conn.slot.idle_timeout();
    loop {
        let idle = exchanges.is_empty();
        tokio::select! {
            () = shared.shutdown.cancelled() => break,
            // Requests still waiting for their bodies do not keep a connection from being
            // closed for room; the pool picks none that is answering.
            () = conn.slot.evicted() => return,
            () = sleep_until(idle_until), if idle => break,
            Some(()) = exchanges.next() => {
                if exchanges.is_empty() {
                    idle_until = Instant::now() + conn.slot.idle_timeout();
                }
            }
            next = h2.accept() => match next {
                Some(Ok((request, respond))) => {
                    requests = requests.saturating_add(1);
                    exchanges.push(exchange(request, respond, conn));
                    if conn.spent(requests) {
                        break;
                    }
                }
                Some(Err(e)) => {
                    tracing::debug!(peer = %conn.peer, error = %e, "HTTP/2 error");
                    return;
                }
                None => return,
            },
        }
    }
    // GOAWAY: requests in hand finish and their answers leave, within a bound. The
    // connection is driven meanwhile: bodies still come in, answers go out.
    h2.graceful_shutdown();
    let limits = &shared.limits;
    let drain = async { while exchanges.next().await.is_some() {} };
    let closed = std::future::poll_fn(|cx| h2.poll_closed(cx));
    let bound = limits.message_timeout + limits.write_timeout;
    let _ = timeout(bound, async { tokio::join!(drain, closed) }).await;
}

/// One request: its query answered, unless the client resets the stream first.
async fn exchange(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, conn: &Conn) {
    let work = answer(request, conn);
    let reset = std::future::poll_fn(|cx| respond.poll_reset(cx));
    let (status, body) = tokio::select! {
        _ = reset => return,
        done = work => done,
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

/// The status and body answering `request`.
async fn answer(request: Request<RecvStream>, conn: &Conn) -> (StatusCode, Option<Vec<u8>>) {
    let handler = &conn.shared.handler;
    let query = query_of(request, conn.shared.limits.message_timeout).await;
    // Answering, not waiting on the client: this connection is not closed for room.
    let _busy = conn.slot.busy();
    match query {
        // A response (QR=1) is never answered, over HTTP neither.
        Ok(query) if wire::is_response(&query) => {
            STATS.query(Transport::Https.index());
            STATS.drop(DropReason::Response);
            (StatusCode::BAD_REQUEST, None)
        }
        Ok(query) => match handler.answer(&query, conn.peer, Transport::Https).await {
            Some(answer) => (StatusCode::OK, Some(answer)),
            None => (StatusCode::BAD_REQUEST, None),
        },
        Err(status) => (status, None),
    }
}

/// The DNS message carried by a request, or the HTTP status that refuses it. A body must
/// arrive within `body_time`.
async fn query_of(
    request: Request<RecvStream>,
    body_time: Duration,
) -> Result<Vec<u8>, StatusCode> {
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
            timeout(body_time, read_body(request.into_body()))
                .await
                .map_err(|_| StatusCode::REQUEST_TIMEOUT)?
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
