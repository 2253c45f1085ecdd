//! DNS on the wire: UDP, TCP, DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484).
//!
//! Owns the sockets and their framing. Every transport hands raw messages to one
//! [`Handler`] and sends back what it returns. Each UDP address is served by one
//! SO_REUSEPORT socket per core. Stream sockets get TCP_NODELAY (answers must not wait for
//! the next query: the Nagle/delayed-ACK stall). TLS listeners take their certificate from
//! the swappable [`crate::tls::CertSlot`]. It must not know about zones or certificates'
//! origins.

mod answer;
mod axfr;
mod doh;
pub(crate) mod exchange;
mod forward;
mod handler;
mod message;
mod notify;
mod signing;
mod stream;
mod udp;
pub(crate) mod wire;

use std::{net::SocketAddr, num::NonZero, sync::Arc, time::Duration};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use axfr::TransferPolicy;
pub use forward::{ForwardError, Forwarder};
pub use handler::Handler;
pub use notify::{Notifiable, NotifyPolicy};

use crate::{config::Listen, tls::CertSlot};

/// How a message arrived; decides size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Https,
}

#[derive(Debug, thiserror::Error)]
#[error("failed to listen on {kind} {address}: {source}")]
pub struct ListenError {
    kind: &'static str,
    address: SocketAddr,
    source: std::io::Error,
}

/// Sockets bound and listening, not yet served.
pub struct Bound {
    /// Every socket of every UDP address (blocking: each gets its own thread).
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    https: Vec<TcpListener>,
}

/// Queries waiting on a TCP-based connection at once, across all listeners.
const MAX_CONNECTIONS: usize = 4096;

impl Bound {
    /// Binds every configured address. Must run inside the tokio runtime.
    pub fn bind(listen: &Listen) -> Result<Self, ListenError> {
        let loops = std::thread::available_parallelism().map_or(1, NonZero::get);
        let mut udp = Vec::new();
        for address in &listen.udp {
            udp.extend(bind_udp(*address, loops)?);
        }
        Ok(Self {
            udp,
            tcp: listen
                .tcp
                .iter()
                .map(|a| bind_tcp("tcp", *a))
                .collect::<Result<_, _>>()?,
            tls: listen
                .tls
                .iter()
                .map(|a| bind_tcp("tls", *a))
                .collect::<Result<_, _>>()?,
            https: listen
                .https
                .iter()
                .map(|a| bind_tcp("https", *a))
                .collect::<Result<_, _>>()?,
        })
    }

    /// Serves every socket until `shutdown` is cancelled; tasks are tracked by `tracker`.
    pub fn serve(
        self,
        handler: Arc<Handler>,
        certs: Arc<CertSlot>,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) {
        let limit = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
        let runtime = tokio::runtime::Handle::current();
        for socket in self.udp {
            let (handler, shutdown, runtime) = (handler.clone(), shutdown.clone(), runtime.clone());
            tracker.spawn_blocking(move || udp::serve(socket, handler, shutdown, runtime));
        }
        let plain = stream::Kind::Tcp;
        for listener in self.tcp {
            let server = stream::Server::new(
                plain.clone(),
                handler.clone(),
                limit.clone(),
                tracker.clone(),
            );
            tracker.spawn(server.run(listener, shutdown.clone()));
        }
        let dot = stream::Kind::Tls(crate::tls::server_config(certs.clone(), &[b"dot"]));
        for listener in self.tls {
            let server =
                stream::Server::new(dot.clone(), handler.clone(), limit.clone(), tracker.clone());
            tracker.spawn(server.run(listener, shutdown.clone()));
        }
        let h2 = stream::Kind::Https(crate::tls::server_config(certs, &[b"h2"]));
        for listener in self.https {
            let server =
                stream::Server::new(h2.clone(), handler.clone(), limit.clone(), tracker.clone());
            tracker.spawn(server.run(listener, shutdown.clone()));
        }
    }
}

/// How long an idle stream connection is kept (RFC 7766 6.2.3 asks for seconds, not minutes).
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// `count` sockets on `address` with SO_REUSEPORT: the kernel spreads datagrams over them
/// by source, and each gets its own receive loop.
fn bind_udp(address: SocketAddr, count: usize) -> Result<Vec<std::net::UdpSocket>, ListenError> {
    let error = |source| ListenError {
        kind: "udp",
        address,
        source,
    };
    // A plain bind first: with SO_REUSEPORT alone, a second node started on the same
    // address would share it silently instead of failing with "address in use". Its
    // address also fixes port 0 for the whole group.
    let probe = udp_socket(address, false).map_err(error)?;
    let bound = probe
        .local_addr()
        .map_err(error)?
        .as_socket()
        .unwrap_or(address);
    drop(probe);
    (0..count)
        .map(|_| udp_socket(bound, true).map(Into::into).map_err(error))
        .collect()
}

fn udp_socket(address: SocketAddr, reuse_port: bool) -> std::io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    socket.set_reuse_port(reuse_port)?;
    // Blocking: each socket has a thread (`udp::serve`), which wakes this often to look at
    // the shutdown token.
    socket.set_read_timeout(Some(udp::WAKE_UP))?;
    socket.bind(&address.into())?;
    Ok(socket)
}

fn bind_tcp(kind: &'static str, address: SocketAddr) -> Result<TcpListener, ListenError> {
    let error = |source| ListenError {
        kind,
        address,
        source,
    };
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .map_err(error)?;
    socket.set_reuse_address(true).map_err(error)?;
    // Accepted sockets inherit it on Linux; each accepted stream sets it again anyway.
    socket.set_nodelay(true).map_err(error)?;
    socket.set_nonblocking(true).map_err(error)?;
    socket.bind(&address.into()).map_err(error)?;
    socket.listen(1024).map_err(error)?;
    TcpListener::from_std(socket.into()).map_err(error)
}
