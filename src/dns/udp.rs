//! The UDP listener: one receive loop per socket of an address's SO_REUSEPORT group (one per
//! core). A query with a prepared answer is answered in the loop itself, with buffers
//! reused from query to query; any other query gets its own task, so a slow one (forwarded,
//! say) never holds up the socket.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::UdpSocket;
use tokio_util::sync::CancellationToken;

use super::{Handler, Transport};

/// Largest datagram read; larger EDNS queries do not exist in practice.
const MAX_QUERY: usize = 4096;

pub(super) async fn serve(
    socket: Arc<UdpSocket>,
    handler: Arc<Handler>,
    shutdown: CancellationToken,
) {
    // One select around the whole loop: the shutdown future is made once, not per query.
    tokio::select! {
        () = shutdown.cancelled() => {}
        () = receive(socket, handler) => {}
    }
}

async fn receive(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut buf = vec![0u8; MAX_QUERY];
    let mut out = Vec::with_capacity(MAX_QUERY);
    loop {
        let (len, src) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP errors from earlier sends surface here; they are not fatal.
                tracing::debug!(error = %e, "udp receive failed");
                continue;
            }
        };
        let query = &buf[..len];
        if handler.answer_prepared(query, Transport::Udp, &mut out) {
            send(&socket, &out, src).await;
            continue;
        }
        tokio::spawn(answer(socket.clone(), handler.clone(), query.to_vec(), src));
    }
}

async fn answer(socket: Arc<UdpSocket>, handler: Arc<Handler>, query: Vec<u8>, src: SocketAddr) {
    if let Some(response) = handler.answer(&query, src, Transport::Udp).await {
        send(&socket, &response, src).await;
    }
}

async fn send(socket: &UdpSocket, response: &[u8], src: SocketAddr) {
    if let Err(e) = socket.send_to(response, src).await {
        tracing::debug!(%src, error = %e, "udp send failed");
    }
}
