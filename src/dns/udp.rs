//! The UDP listener: one receive loop per socket of an address's SO_REUSEPORT group (one per
//! core). Datagrams are read in batches with one `recvmmsg` call and prepared answers go out
//! in one `sendmmsg` call, as Knot and NSD do: at saturation the system calls, not the
//! answers, are most of the cost. A query without a prepared answer gets its own task, so a
//! slow one (forwarded, say) never holds up the socket.

use std::{
    io::{self, IoSlice, IoSliceMut},
    net::SocketAddr,
    os::fd::AsRawFd,
    sync::Arc,
};

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg,
};
use tokio::{io::Interest, net::UdpSocket};
use tokio_util::sync::CancellationToken;

use super::{Handler, Transport};

/// Largest datagram read; larger EDNS queries do not exist in practice.
const MAX_QUERY: usize = 4096;

/// Datagrams read (and answers sent) per system call at most.
const BATCH: usize = 32;

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

/// Buffers reused from batch to batch.
struct Batch {
    queries: Vec<Vec<u8>>,
    received: Vec<(usize, Option<SocketAddr>)>,
    answers: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
}

impl Batch {
    fn new() -> Self {
        Self {
            queries: vec![vec![0; MAX_QUERY]; BATCH],
            received: Vec::with_capacity(BATCH),
            answers: (0..BATCH).map(|_| Vec::with_capacity(MAX_QUERY)).collect(),
            destinations: Vec::with_capacity(BATCH),
        }
    }

    /// Reads up to [`BATCH`] datagrams without waiting; `WouldBlock` when there are none.
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
        // The headers hold raw pointers (not `Send`), so they live only inside this call.
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(BATCH, None);
        let mut slices: Vec<[IoSliceMut<'_>; 1]> = self
            .queries
            .iter_mut()
            .map(|q| [IoSliceMut::new(&mut q[..])])
            .collect();
        let results = recvmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )?;
        self.received.clear();
        self.received
            .extend(results.map(|m| (m.bytes, m.address.and_then(socket_addr))));
        Ok(())
    }

    /// Answers what [`Batch::receive`] read: prepared answers together, the rest in tasks.
    async fn answer(&mut self, socket: &Arc<UdpSocket>, handler: &Arc<Handler>) {
        self.destinations.clear();
        for (index, &(len, src)) in self.received.iter().enumerate() {
            let Some(src) = src else { continue };
            let query = &self.queries[index][..len.min(MAX_QUERY)];
            let slot = self.destinations.len();
            if handler.answer_prepared(query, Transport::Udp, &mut self.answers[slot]) {
                self.destinations.push(Some(SockaddrStorage::from(src)));
            } else {
                tokio::spawn(answer(socket.clone(), handler.clone(), query.to_vec(), src));
            }
        }
        if self.destinations.is_empty() {
            return;
        }
        let count = self.destinations.len();
        let sent = socket
            .try_io(Interest::WRITABLE, || self.send(socket))
            .unwrap_or(0);
        // A full send buffer or an error part way: the rest one by one, waiting if need be.
        for slot in sent..count {
            if let Some(dest) = self.destinations[slot].and_then(socket_addr) {
                send(socket, &self.answers[slot], dest).await;
            }
        }
    }

    /// Sends the staged answers in one call; how many went.
    fn send(&self, socket: &UdpSocket) -> io::Result<usize> {
        let count = self.destinations.len();
        let mut headers = MultiHeaders::<SockaddrStorage>::preallocate(count, None);
        let slices: Vec<[IoSlice<'_>; 1]> = self.answers[..count]
            .iter()
            .map(|a| [IoSlice::new(a)])
            .collect();
        let results = sendmmsg(
            socket.as_raw_fd(),
            &mut headers,
            slices.iter(),
            &self.destinations,
            [] as [ControlMessage<'_>; 0],
            MsgFlags::MSG_DONTWAIT,
        )?;
        Ok(results.count())
    }
}

fn socket_addr(address: SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        return Some(SocketAddr::V4((*v4).into()));
    }
    address
        .as_sockaddr_in6()
        .map(|v6| SocketAddr::V6((*v6).into()))
}

async fn receive(socket: Arc<UdpSocket>, handler: Arc<Handler>) {
    let mut batch = Batch::new();
    loop {
        if let Err(e) = socket.readable().await {
            tracing::debug!(error = %e, "udp socket not readable");
            continue;
        }
        match socket.try_io(Interest::READABLE, || batch.receive(&socket)) {
            Ok(()) => batch.answer(&socket, &handler).await,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // ICMP errors from earlier sends surface here; they are not fatal.
            Err(e) => tracing::debug!(error = %e, "udp receive failed"),
        }
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
