//! One query, one answer, as a client: over UDP (the answer with the query's id), over TCP,
//! or over any byte stream (DoT), with two-byte framing (RFC 1035 4.2.2). The one copy of
//! connecting and framing every client uses: forwarding's upstream sockets, NOTIFY out,
//! SOA checks, the ACME propagation check, the announce watch, and transfers in (which
//! read many framed answers to one query through [`connect`], [`send_framed`],
//! [`recv_length`] and [`recv_body`]). Callers bound the wait with a timeout; nothing here
//! interprets a message beyond its id.

use std::net::{IpAddr, SocketAddr};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpSocket, TcpStream, UdpSocket},
};

use crate::wire;

/// A fresh random message id: off-path senders cannot guess it.
pub(crate) fn random_id() -> u16 {
    use ring::rand::{SecureRandom, SystemRandom};
    let mut bytes = [0u8; 2];
    // SystemRandom only fails when the OS has no entropy source at all.
    let _ = SystemRandom::new().fill(&mut bytes);
    u16::from_be_bytes(bytes)
}

/// Sends `query` (whose id is `id`) over UDP from `source` (any address when `None`) and
/// returns the first answer carrying that id.
pub(crate) async fn udp(
    server: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
    id: u16,
) -> std::io::Result<Vec<u8>> {
    let socket = UdpSocket::bind(SocketAddr::new(
        source.unwrap_or_else(|| unspecified(server)),
        0,
    ))
    .await?;
    socket.connect(server).await?;
    socket.send(query).await?;
    let mut buf = vec![0u8; 65_535];
    loop {
        let n = socket.recv(&mut buf).await?;
        // A connected socket only hears from the server; the id guards against stale
        // answers to an earlier query on a reused port.
        if wire::id(&buf[..n]) == Some(id) {
            buf.truncate(n);
            return Ok(buf);
        }
    }
}

/// A new TCP connection to `server` from `source` (any address when `None`), with
/// TCP_NODELAY: a small request, then answers, so nothing should wait for more bytes.
pub(crate) async fn connect(
    server: SocketAddr,
    source: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let stream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Sends `query` over a new TCP connection from `source` and returns the answer.
pub(crate) async fn tcp(
    server: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    let mut stream = connect(server, source).await?;
    stream_exchange(&mut stream, query).await
}

/// Writes one framed query and reads one framed answer.
pub(crate) async fn stream_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    send_framed(stream, query).await?;
    match recv_length(stream).await? {
        Some(len) => recv_body(stream, len).await,
        None => Err(std::io::ErrorKind::UnexpectedEof.into()),
    }
}

/// Writes `message` after its two-byte length, in one write.
pub(crate) async fn send_framed<S: AsyncWrite + Unpin>(
    stream: &mut S,
    message: &[u8],
) -> std::io::Result<()> {
    let len = u16::try_from(message.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(message.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(message);
    stream.write_all(&framed).await?;
    stream.flush().await
}

/// The next message's length, or `None` when the peer closed the stream cleanly before it.
/// Read apart from the body so a caller can refuse a length before reading that much.
pub(crate) async fn recv_length<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> std::io::Result<Option<usize>> {
    let mut len = [0u8; 2];
    match stream.read_exact(&mut len).await {
        Ok(_) => Ok(Some(usize::from(u16::from_be_bytes(len)))),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `len` bytes of a message whose length [`recv_length`] read.
pub(crate) async fn recv_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok(body)
}

fn unspecified(server: SocketAddr) -> IpAddr {
    if server.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    }
}
