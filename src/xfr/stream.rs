//! One TCP connection carrying length-prefixed DNS messages (RFC 1035
//! section 4.2.2), with every connect, write and read bounded in time and
//! the total bytes read capped.
//!
//! Owns framing and time limits only; it must not interpret messages.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{Options, XfrError};

pub(super) struct Conn {
    tcp: TcpStream,
    pub(super) server: SocketAddr,
    options: Options,
    read_so_far: usize,
}

impl Conn {
    pub(super) async fn open(server: SocketAddr, options: &Options) -> Result<Self, XfrError> {
        let tcp = bounded(
            server,
            "connection",
            options,
            connect(server, options.source),
        )
        .await?;
        // small request, then a stream of answers: no reason to delay the request
        let _ = tcp.set_nodelay(true);
        Ok(Self {
            tcp,
            server,
            options: *options,
            read_so_far: 0,
        })
    }

    pub(super) async fn send(&mut self, message: &[u8]) -> Result<(), XfrError> {
        let len = u16::try_from(message.len()).map_err(|_| self.bad("request too long"))?;
        let framed = [&len.to_be_bytes()[..], message].concat();
        let (server, options) = (self.server, self.options);
        bounded(server, "write", &options, self.tcp.write_all(&framed)).await
    }

    /// The next message, or `None` if the server closed the connection
    /// cleanly before its length prefix.
    pub(super) async fn recv(&mut self) -> Result<Option<Vec<u8>>, XfrError> {
        let (server, options) = (self.server, self.options);
        let mut len = [0u8; 2];
        match timeout(options.timeout, self.tcp.read_exact(&mut len)).await {
            Err(_) => return Err(timed_out(server, "response", &options)),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Ok(Err(e)) => return Err(io(server, "read", e)),
            Ok(Ok(_)) => {}
        }
        let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.count(body.len())?;
        bounded(server, "read", &options, self.tcp.read_exact(&mut body)).await?;
        Ok(Some(body))
    }

    fn count(&mut self, more: usize) -> Result<(), XfrError> {
        self.read_so_far += more;
        if self.read_so_far > self.options.max_bytes {
            return Err(self.bad("responses exceed the size limit"));
        }
        Ok(())
    }

    pub(super) fn bad(&self, reason: impl Into<String>) -> XfrError {
        XfrError::BadResponse {
            server: self.server,
            reason: reason.into(),
        }
    }
}

/// Runs one I/O step under the time limit.
async fn bounded<T>(
    server: SocketAddr,
    action: &'static str,
    options: &Options,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T, XfrError> {
    match timeout(options.timeout, step).await {
        Err(_) => Err(timed_out(server, action, options)),
        Ok(result) => result.map_err(|e| io(server, action, e)),
    }
}

fn timed_out(server: SocketAddr, what: &'static str, options: &Options) -> XfrError {
    XfrError::Timeout {
        server,
        what,
        waited: options.timeout,
    }
}

fn io(server: SocketAddr, action: &'static str, source: std::io::Error) -> XfrError {
    XfrError::Io {
        server,
        action,
        source,
    }
}

impl Conn {
    /// Sends `message` with a fresh random id; returns the id.
    /// Sends `message` with the id it has (see [`random_id`]); returns that id.
    pub(super) async fn send_message(&mut self, message: &mut Message) -> Result<u16, XfrError> {
        let bytes = message
            .to_vec()
            .map_err(|e| self.bad(format!("request does not encode: {e}")))?;
        self.send(&bytes).await?;
        Ok(message.metadata.id)
    }

    /// Decodes a response and checks it answers request `id`. The caller
    /// judges the rcode.
    pub(super) fn decode(&self, bytes: &[u8], id: u16) -> Result<Message, XfrError> {
        let message =
            Message::from_vec(bytes).map_err(|e| self.bad(format!("undecodable message: {e}")))?;
        if message.metadata.id != id || message.metadata.message_type != MessageType::Response {
            return Err(self.bad("a message that is not the response to the request"));
        }
        if message.metadata.truncation {
            return Err(self.bad("truncated message over TCP"));
        }
        Ok(message)
    }
}

/// Connects to `server`, from `source` when given.
async fn connect(
    server: SocketAddr,
    source: Option<std::net::IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    socket.connect(server).await
}

/// Query ids are random so an off-path sender cannot guess them.
pub(super) fn random_id() -> u16 {
    crate::dns::exchange::random_id()
}
