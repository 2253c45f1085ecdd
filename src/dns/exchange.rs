//! One query, one answer, as a client: over UDP (the answer with the query's id), over TCP,
//! or over any byte stream (DoT), with two-byte framing. Used by forwarding, NOTIFY out,
//! SOA checks and the ACME propagation check. Callers bound the wait with a timeout.

use std::net::{IpAddr, SocketAddr};

use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    net::{TcpSocket, TcpStream, UdpSocket},
};

use super::wire;

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

/// Sends `query` over a new TCP connection from `source` and returns the answer.
pub(crate) async fn tcp(
    server: SocketAddr,
    source: Option<IpAddr>,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    let socket = if server.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(source) = source {
        socket.bind(SocketAddr::new(source, 0))?;
    }
    let mut stream: TcpStream = socket.connect(server).await?;
    stream.set_nodelay(true)?;
    stream_exchange(&mut stream, query).await
}

/// Writes one framed query and reads one framed answer.
pub(crate) async fn stream_exchange<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    query: &[u8],
) -> std::io::Result<Vec<u8>> {
    let len = u16::try_from(query.len()).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut framed = Vec::with_capacity(query.len() + 2);
    framed.extend_from_slice(&len.to_be_bytes());
    framed.extend_from_slice(query);
    stream.write_all(&framed).await?;
    stream.flush().await?;
    let len = stream.read_u16().await?;
    let mut answer = vec![0u8; usize::from(len)];
    stream.read_exact(&mut answer).await?;
    Ok(answer)
}

fn unspecified(server: SocketAddr) -> IpAddr {
    if server.is_ipv4() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    }
}
