//! The UDP listener: one thread per socket of an address's SO_REUSEPORT group (one per
//! core), as Knot and NSD do. Each blocks in `recvmmsg` until datagrams come and takes up
//! to [`BATCH`] at once; prepared answers go out together in one `sendmmsg` call. At
//! saturation the system calls and wake-ups, not the answers, are most of the cost, so the
//! sockets stay out of tokio's event loop. A NOTIFY is answered on the thread too (a TSIG
//! check, no lookup). Any other query without a prepared answer becomes a task on the
//! runtime, so a slow one (forwarded, say) never holds up the socket; at most
//! `[limits] udp-slow-queries` of them at once, and past that they are dropped and counted
//! (the client asks again). Responses (QR=1) are dropped unread. With `[rrl]`, every
//! answer asks `super::rrl` first.

use std::{
    io::{self, IoSlice, IoSliceMut},
    net::{SocketAddr, UdpSocket},
    os::fd::AsRawFd,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use nix::sys::socket::{
    ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg, sendto,
};
use tokio::{
    runtime::Handle,
    sync::{OwnedSemaphorePermit, Semaphore},
};
use tokio_util::sync::CancellationToken;

use crate::{
    metrics::{DropReason, STATS, stats::LocalCounts},
    wire,
};

use super::{
    Handler, Transport,
    ratelog::RateLog,
    rrl::{Rrl, Verdict},
};

/// What every UDP socket's thread shares.
pub(super) struct Shared {
    pub(super) handler: Arc<Handler>,
    /// Permits for queries answered in tasks (`udp-slow-queries`).
    pub(super) slow: Arc<Semaphore>,
    pub(super) rrl: Option<Rrl>,
    /// Queries dropped because every permit was taken.
    pub(super) dropped: AtomicU64,
}

static SLOW_FULL: RateLog = RateLog::new();

/// Largest datagram read; larger EDNS queries do not exist in practice.
const MAX_QUERY: usize = 4096;

/// Datagrams read (and answers sent) per system call at most.
const BATCH: usize = 32;

/// How long a receive waits at most before the thread looks at `shutdown` again. Shutdown
/// wakes the threads at once ([`wake_on`]); this is the fallback. Idle, a node's UDP threads
/// wake this seldom, so a hundred nodes on one machine cost nothing while they wait.
pub(super) const WAKE_UP: Duration = Duration::from_secs(2);

/// Serves `socket` (blocking, with a read timeout of [`WAKE_UP`]) on this thread until
/// `shutdown` is cancelled; slower answers run on `runtime`.
pub(super) fn serve(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    runtime: Handle,
) {
    let mut batch = Batch::new();
    while !shutdown.is_cancelled() {
        match batch.receive(&socket) {
            Ok(()) => batch.answer(&socket, &shared, &runtime),
            // The read timeout: nothing came.
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // ICMP errors from earlier sends surface here; they are not fatal.
            Err(e) => tracing::debug!(error = %e, "udp receive failed"),
        }
    }
}

/// At shutdown, shuts the sockets for reading: on Linux that wakes a thread blocked in
/// `recvmmsg` on an unconnected UDP socket, which then sees `shutdown` and returns.
/// (`shutdown(2)` reports ENOTCONN for such a socket, but marks and wakes it all the same.)
pub(super) async fn wake_on(shutdown: CancellationToken, sockets: Vec<Arc<UdpSocket>>) {
    shutdown.cancelled().await;
    for socket in sockets {
        let _ = nix::sys::socket::shutdown(socket.as_raw_fd(), nix::sys::socket::Shutdown::Read);
    }
}

/// Buffers reused from batch to batch.
struct Batch {
    queries: Vec<Vec<u8>>,
    received: Vec<(usize, Option<SocketAddr>)>,
    answers: Vec<Vec<u8>>,
    destinations: Vec<Option<SockaddrStorage>>,
    /// The batch's prepared answers, added to the metrics once per batch.
    counts: LocalCounts,
}

impl Batch {
    fn new() -> Self {
        Self {
            queries: vec![vec![0; MAX_QUERY]; BATCH],
            received: Vec::with_capacity(BATCH),
            answers: (0..BATCH).map(|_| Vec::with_capacity(MAX_QUERY)).collect(),
            destinations: Vec::with_capacity(BATCH),
            counts: LocalCounts::default(),
        }
    }

    /// Waits for a datagram (up to the socket's read timeout: then `WouldBlock`) and reads
    /// it with whatever else has come, up to [`BATCH`].
    fn receive(&mut self, socket: &UdpSocket) -> io::Result<()> {
        // Fresh headers each call: nix does not reset the address lengths the kernel writes
        // back into them.
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
            MsgFlags::MSG_WAITFORONE,
            None,
        )?;
        self.received.clear();
        self.received
            .extend(results.map(|m| (m.bytes, m.address.and_then(socket_addr))));
        Ok(())
    }

    /// Answers what [`Batch::receive`] read: prepared answers together, the rest in tasks.
    fn answer(&mut self, socket: &Arc<UdpSocket>, shared: &Arc<Shared>, runtime: &Handle) {
        self.destinations.clear();
        for (index, &(len, src)) in self.received.iter().enumerate() {
            let Some(src) = src else { continue };
            let query = &self.queries[index][..len.min(MAX_QUERY)];
            if wire::is_response(query) {
                self.counts.query();
                STATS.drop(DropReason::Response);
                continue;
            }
            let slot = self.destinations.len();
            let answer = &mut self.answers[slot];
            if shared
                .handler
                .answer_prepared(query, Transport::Udp, answer)
            {
                self.counts.query();
                if limit(shared, src, answer) {
                    self.counts.prepared_answer(answer);
                    self.destinations.push(Some(SockaddrStorage::from(src)));
                }
            } else if let Some(answer) = shared.handler.answer_notify(query, src, Transport::Udp) {
                if let Some(mut response) = answer
                    && limit(shared, src, &mut response)
                {
                    send(socket, &response, src);
                }
            } else if let Ok(permit) = shared.slow.clone().try_acquire_owned() {
                let task =
                    answer_slowly(socket.clone(), shared.clone(), query.to_vec(), src, permit);
                runtime.spawn(task);
            } else {
                self.counts.query();
                STATS.drop(DropReason::SlowQueries);
                let total = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if let Some(left_out) = SLOW_FULL.allow() {
                    tracing::warn!(
                        total,
                        left_out,
                        "UDP queries waiting at limits.udp-slow-queries; dropping"
                    );
                }
            }
        }
        self.counts.flush();
        if self.destinations.is_empty() {
            return;
        }
        let count = self.destinations.len();
        let sent = self.send(socket).unwrap_or_else(|e| {
            tracing::debug!(error = %e, "udp send failed");
            0
        });
        // An error part way (an unreachable client, say): the rest one by one.
        for slot in sent..count {
            if let Some(dest) = self.destinations[slot].and_then(socket_addr) {
                send(socket, &self.answers[slot], dest);
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
            MsgFlags::empty(),
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

async fn answer_slowly(
    socket: Arc<UdpSocket>,
    shared: Arc<Shared>,
    query: Vec<u8>,
    src: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    if let Some(mut response) = shared.handler.answer(&query, src, Transport::Udp).await
        && limit(&shared, src, &mut response)
    {
        send(&socket, &response, src);
    }
}

/// Whether `answer` may go to `client` under response rate limiting; a slipped one is cut
/// to header and question with TC set, in place.
fn limit(shared: &Shared, client: SocketAddr, answer: &mut Vec<u8>) -> bool {
    let Some(rrl) = &shared.rrl else {
        return true;
    };
    match rrl.check(client.ip()) {
        Verdict::Send => true,
        Verdict::Drop => {
            STATS.drop(DropReason::Rrl);
            false
        }
        Verdict::Slip => match wire::truncated(answer) {
            Some(cut) => {
                *answer = cut;
                true
            }
            None => false,
        },
    }
}

/// One answer, without waiting: from a task, a full send buffer drops it (the client asks
/// again) rather than block the runtime.
fn send(socket: &UdpSocket, response: &[u8], dest: SocketAddr) {
    let dest = SockaddrStorage::from(dest);
    if let Err(e) = sendto(socket.as_raw_fd(), response, &dest, MsgFlags::MSG_DONTWAIT) {
        tracing::debug!(%dest, error = %e, "udp send failed");
    }
}
