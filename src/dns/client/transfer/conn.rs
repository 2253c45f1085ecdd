//! One transfer's TCP connection: [`exchange`]'s connect and framing, with every connect,
//! write and read bounded in time, the total bytes read capped, and failures as
//! [`XfrError`]s that name the server.
//!
//! Owns the limits only; it must not interpret messages beyond their id and flags.

use std::net::SocketAddr;

use hickory_proto::op::{Message, MessageType};
use tokio::net::TcpStream;
use tokio::time::timeout;

use super::{Options, XfrError};
use crate::dns::client::exchange;

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
            exchange::connect(server, options.source),
        )
        .await?;
        Ok(Self {
            tcp,
            server,
            options: *options,
            read_so_far: 0,
        })
    }

    pub(super) async fn send(&mut self, message: &[u8]) -> Result<(), XfrError> {
        if u16::try_from(message.len()).is_err() {
            return Err(self.bad("request too long"));
        }
        let (server, options) = (self.server, self.options);
        let send = exchange::send_framed(&mut self.tcp, message);
        bounded(server, "write", &options, send).await
    }

    /// The next message, or `None` if the server closed the connection
    /// cleanly before its length prefix.
    pub(super) async fn recv(&mut self) -> Result<Option<Vec<u8>>, XfrError> {
        let (server, options) = (self.server, self.options);
        let len = match timeout(options.timeout, exchange::recv_length(&mut self.tcp)).await {
            Err(_) => return Err(timed_out(server, "response", &options)),
            Ok(Err(e)) => return Err(io(server, "read", e)),
            Ok(Ok(None)) => return Ok(None),
            Ok(Ok(Some(len))) => len,
        };
        self.count(len)?;
        let body = exchange::recv_body(&mut self.tcp, len);
        bounded(server, "read", &options, body).await.map(Some)
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
    /// Sends `message` with the id it has (see `exchange::random_id`); returns that id.
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
