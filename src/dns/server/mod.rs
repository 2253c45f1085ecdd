//! The DNS server: UDP, TCP, DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484), and
//! everything a node answers on them.
//!
//! Owns the sockets and their framing. Every transport hands raw messages to one
//! [`Handler`] and sends back what it returns: answers from the zones (`answer`, `message`),
//! transfers out (`axfr`), NOTIFY in (`notify`), UPDATE in (`update`), and forwarding of
//! names outside every zone (`forward`, over the reused sockets of `upstream`). Each UDP
//! address is served by one SO_REUSEPORT socket per core. Stream sockets get TCP_NODELAY
//! (answers must not wait for the next query: the Nagle/delayed-ACK stall). TLS listeners
//! take their certificate from the swappable [`crate::tls::CertSlot`]. Everything a
//! stranger can make it do is bounded by `[limits]` (and `[rrl]`): connections in one
//! `pool`, UDP work in flight, HTTP/2 streams; at start the open-file limit is raised as
//! far as the system allows. It reads and changes zones only through `zones`, and must not
//! know where certificates or zone contents come from.

mod answer;
mod axfr;
mod doh;
mod doh_io;
mod forward;
mod framing;
mod handler;
mod message;
mod notify;
mod pool;
pub(crate) mod ratelog;
mod rrl;
mod stream;
mod udp;
mod update;
mod upstream;

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZero,
    sync::Arc,
};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

pub use axfr::TransferPolicy;
pub use forward::{ForwardError, Forwarder};
pub use handler::Handler;
pub use notify::{Notifiable, NotifyPolicy};
pub use update::UpdatePolicy;

use crate::{
    config::{Limits, Listen, RrlConfig},
    tls::CertSlot,
    tsig::TsigKey,
};

/// How a message arrived; decides size limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
    Https,
}

impl Transport {
    /// Its index in [`crate::metrics::stats::TRANSPORTS`].
    pub fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, thiserror::Error)]
#[error("failed to listen on {kind} {address}: {source}")]
pub struct ListenError {
    kind: &'static str,
    address: SocketAddr,
    source: std::io::Error,
}

/// Who is never starved by others on stream listeners: transfer partners.
#[derive(Debug, Clone, Default)]
pub struct Trust {
    /// `[transfer] allow` and a worker's primary.
    pub addresses: Vec<IpAddr>,
    /// A connection that shows a valid signature with one of these keys is trusted.
    pub keys: Vec<TsigKey>,
}

/// What the listeners may spend, from the config.
#[derive(Debug, Clone, Default)]
pub struct Budget {
    pub limits: Limits,
    pub rrl: Option<RrlConfig>,
    pub trust: Trust,
}

/// Sockets bound and listening, not yet served.
pub struct Bound {
    /// Every socket of every UDP address (blocking: each gets its own thread).
    udp: Vec<std::net::UdpSocket>,
    tcp: Vec<TcpListener>,
    tls: Vec<TcpListener>,
    https: Vec<TcpListener>,
    budget: Budget,
}

impl Bound {
    /// Raises the open-file limit, then binds every configured address; the listeners will
    /// spend at most `budget`. Must run inside the tokio runtime.
    pub fn bind(listen: &Listen, budget: Budget) -> Result<Self, ListenError> {
        raise_open_files();
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
            budget,
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
        let Budget { limits, rrl, trust } = self.budget;
        let udp = Arc::new(udp::Shared {
            handler: handler.clone(),
            slow: Arc::new(tokio::sync::Semaphore::new(limits.udp_slow_queries)),
            rrl: rrl.map(rrl::Rrl::new),
            dropped: Default::default(),
        });
        let runtime = tokio::runtime::Handle::current();
        let sockets: Vec<Arc<std::net::UdpSocket>> = self.udp.into_iter().map(Arc::new).collect();
        for socket in &sockets {
            let (socket, udp) = (socket.clone(), udp.clone());
            let (shutdown, runtime) = (shutdown.clone(), runtime.clone());
            tracker.spawn_blocking(move || udp::serve(socket, udp, shutdown, runtime));
        }
        tracker.spawn(udp::wake_on(shutdown.clone(), sockets));
        let connections = limits.connections.min(descriptor_budget());
        if connections < limits.connections {
            tracing::warn!(
                connections,
                "limits.connections lowered to half the open-file limit"
            );
        }
        let pool = pool::Pool::new(
            connections,
            limits.connections_per_source,
            limits.idle_timeout,
            trust.addresses,
        );
        let shared = Arc::new(stream::Shared {
            handler,
            pool,
            limits,
            keys: trust.keys,
            shutdown: shutdown.clone(),
            tracker: tracker.clone(),
        });
        let dot = stream::Kind::Tls(crate::tls::server_config(certs.clone(), &[b"dot"]));
        let h2 = stream::Kind::Https(crate::tls::server_config(certs, &[b"h2"]));
        let listeners = (self.tcp.into_iter().map(|l| (stream::Kind::Tcp, l)))
            .chain(self.tls.into_iter().map(|l| (dot.clone(), l)))
            .chain(self.https.into_iter().map(|l| (h2.clone(), l)));
        for (kind, listener) in listeners {
            tracker.spawn(stream::run(kind, listener, shared.clone()));
        }
    }
}

/// Raises the soft open-file limit to the hard one (logged); returns the limit in force.
fn raise_open_files() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return 1024;
    };
    let limit = if hard > soft && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    tracing::info!(open_files = limit, "open-file limit");
    limit
}

/// Half the open-file limit: the rest is for UDP sockets, zone files, upstreams and
/// transfers (Knot's default for `tcp-max-clients` too).
fn descriptor_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let soft = getrlimit(Resource::RLIMIT_NOFILE).map_or(1024, |(soft, _)| soft);
    usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1)
}

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
    // Blocking: each socket has a thread (`udp::serve`), woken at shutdown by `udp::wake_on`
    // (and this often in any case, should that wake-up be lost).
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

/// Signing failures, logged at most once per interval: the answer they belonged to is not
/// sent at all (see [`crate::tsig`]).
static SIGNING_FAILED: ratelog::RateLog = ratelog::RateLog::new();

/// Logs an answer to a signed request left unsent because signing it failed.
fn signing_failed(what: &'static str, error: &crate::tsig::server::SignError) {
    if let Some(left_out) = SIGNING_FAILED.allow() {
        tracing::error!(what, %error, left_out, "signed request left unanswered");
    }
}
