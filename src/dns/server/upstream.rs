//! One upstream of the forwarder and the sockets it reuses: over UDP, a few connected
//! sockets shared by every query, each with one reader that hands answers to the query
//! waiting on their id (and question); over TCP and DoT, connections kept open between
//! queries (a few at most) and used one query at a time.
//!
//! Owns the sockets and matching answers to queries. It must not decide what is forwarded
//! or how long to wait: the caller times each exchange out, and a cancelled exchange
//! drops its connection, so no late answer is read as the next one's.

use std::{
    collections::HashMap,
    io,
    net::{Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
};

use rustls::pki_types::ServerName;
use tokio::{
    net::{TcpStream, UdpSocket},
    sync::{OnceCell, oneshot},
};
use tokio_rustls::{TlsConnector, client::TlsStream};

use crate::{dns::client::exchange, wire};

/// Connected UDP sockets per upstream: ids stay unique among queries in flight on each.
const UDP_SOCKETS: usize = 4;
/// Idle TCP/DoT connections kept per upstream.
const MAX_IDLE: usize = 4;
/// Tries to find an id no query in flight on a socket uses.
const ID_TRIES: usize = 16;

/// How the upstream is reached.
pub(super) enum Kind {
    Udp,
    Tcp,
    Tls {
        name: ServerName<'static>,
        connector: TlsConnector,
    },
}

pub(super) struct Upstream {
    pub(super) address: SocketAddr,
    kind: Kind,
    sockets: OnceCell<Vec<Arc<Channel>>>,
    next: AtomicUsize,
    idle: Mutex<Vec<Conn>>,
}

impl Upstream {
    pub(super) fn new(address: SocketAddr, kind: Kind) -> Self {
        Self {
            address,
            kind,
            sockets: OnceCell::new(),
            next: AtomicUsize::new(0),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `query` (its id is replaced) and returns the upstream's answer, whose id is
    /// the one sent. UDP answers with TC set are asked again over TCP.
    pub(super) async fn exchange(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        if !matches!(self.kind, Kind::Udp) {
            return self.over_stream(query).await;
        }
        let response = self.over_udp(query).await?;
        if response.get(2).is_some_and(|flags| flags & 0x02 != 0) {
            return self.over_stream(query).await;
        }
        Ok(response)
    }

    async fn over_udp(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        let sockets = self
            .sockets
            .get_or_try_init(|| open_channels(self.address))
            .await?;
        let channel = &sockets[self.next.fetch_add(1, Ordering::Relaxed) % sockets.len()];
        let question = question_of(query)?;
        let (reply, answer) = oneshot::channel();
        let registered = channel.register(question, reply)?;
        let mut outgoing = query.to_vec();
        wire::set_id(&mut outgoing, registered.id);
        channel.socket.send(&outgoing).await?;
        answer
            .await
            .map_err(|_| io::Error::other("the upstream socket's reader stopped"))
    }

    /// One query on a kept connection, else on a new one (also when the kept one turns out
    /// closed); the connection is kept again afterwards.
    async fn over_stream(&self, query: &[u8]) -> io::Result<Vec<u8>> {
        let mut outgoing = query.to_vec();
        let id = exchange::random_id();
        wire::set_id(&mut outgoing, id);
        let kept = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = kept
            && let Ok(answer) = conn.exchange(&outgoing, id).await
        {
            self.keep(conn);
            return Ok(answer);
        }
        let mut conn = self.connect().await?;
        let answer = conn.exchange(&outgoing, id).await?;
        self.keep(conn);
        Ok(answer)
    }

    fn keep(&self, conn: Conn) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < MAX_IDLE {
            idle.push(conn);
        }
    }

    async fn connect(&self) -> io::Result<Conn> {
        let tcp = exchange::connect(self.address, None).await?;
        match &self.kind {
            Kind::Tls { name, connector } => Ok(Conn::Tls(Box::new(
                connector.connect(name.clone(), tcp).await?,
            ))),
            Kind::Udp | Kind::Tcp => Ok(Conn::Tcp(tcp)),
        }
    }
}

/// A kept stream connection.
enum Conn {
    Tcp(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Conn {
    async fn exchange(&mut self, query: &[u8], id: u16) -> io::Result<Vec<u8>> {
        let answer = match self {
            Self::Tcp(tcp) => exchange::stream_exchange(tcp, query).await?,
            Self::Tls(tls) => exchange::stream_exchange(tls.as_mut(), query).await?,
        };
        if wire::id(&answer) != Some(id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "the upstream answered another id",
            ));
        }
        Ok(answer)
    }
}

/// One connected UDP socket and the queries waiting on it.
struct Channel {
    socket: UdpSocket,
    pending: Mutex<HashMap<u16, Waiter>>,
}

struct Waiter {
    question: Vec<u8>,
    reply: oneshot::Sender<Vec<u8>>,
}

/// A query's place on a channel; leaving (answered, timed out, cancelled) frees its id.
struct Registered<'c> {
    channel: &'c Channel,
    id: u16,
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.channel.waiters().remove(&self.id);
    }
}

impl Channel {
    fn waiters(&self) -> std::sync::MutexGuard<'_, HashMap<u16, Waiter>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a random id no query in flight here uses.
    fn register(
        &self,
        question: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    ) -> io::Result<Registered<'_>> {
        let mut pending = self.waiters();
        for _ in 0..ID_TRIES {
            let id = exchange::random_id();
            if let std::collections::hash_map::Entry::Vacant(slot) = pending.entry(id) {
                slot.insert(Waiter { question, reply });
                return Ok(Registered { channel: self, id });
            }
        }
        Err(io::Error::other("no free query id on the upstream socket"))
    }

    /// Hands an answer to the query waiting on its id, if its question is the query's.
    fn deliver(&self, answer: &[u8]) {
        let Some(id) = wire::id(answer) else { return };
        let mut pending = self.waiters();
        let matches = pending.get(&id).is_some_and(|w| {
            question_of(answer).is_ok_and(|q| q.eq_ignore_ascii_case(&w.question))
        });
        if matches && let Some(waiter) = pending.remove(&id) {
            let _ = waiter.reply.send(answer.to_vec());
        }
    }
}

async fn open_channels(address: SocketAddr) -> io::Result<Vec<Arc<Channel>>> {
    let any: std::net::IpAddr = if address.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let mut channels = Vec::with_capacity(UDP_SOCKETS);
    for _ in 0..UDP_SOCKETS {
        let socket = UdpSocket::bind(SocketAddr::new(any, 0)).await?;
        socket.connect(address).await?;
        let channel = Arc::new(Channel {
            socket,
            pending: Mutex::new(HashMap::new()),
        });
        tokio::spawn(read_answers(channel.clone()));
        channels.push(channel);
    }
    Ok(channels)
}

/// The one reader of a channel's socket, for the life of the process.
async fn read_answers(channel: Arc<Channel>) {
    let mut buffer = vec![0u8; 65_535];
    loop {
        match channel.socket.recv(&mut buffer).await {
            Ok(n) => channel.deliver(&buffer[..n]),
            // ICMP errors for earlier sends (port unreachable) surface here; the queries
            // they belonged to time out.
            Err(e) => tracing::debug!(error = %e, "upstream socket receive failed"),
        }
    }
}

/// The question section of a message (header counts checked, names skipped).
fn question_of(message: &[u8]) -> io::Result<Vec<u8>> {
    wire::truncated(message)
        .map(|t| t[wire::HEADER_LEN..].to_vec())
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "a message without a question"))
}
