//! Minimal DNS clients that hold one connection open: TCP, DoT, DoH. kdig and dig cover what
//! users run; these cover what needs a connection kept across steps (timing, cert swaps).

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpStream},
    path::Path,
    sync::Arc,
    time::{Duration, Instant},
};

use hickory_proto::{
    op::{Message, Query},
    rr::{Name, RecordType},
};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};

/// A query message for `name`/`rtype` with id `id`.
pub fn query(id: u16, name: &str, rtype: RecordType) -> Vec<u8> {
    let mut message = Message::query();
    message.metadata.id = id;
    message.metadata.recursion_desired = true;
    message.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
    message.to_vec().unwrap()
}

pub fn parse(bytes: &[u8]) -> Message {
    Message::from_vec(bytes).expect("a DNS message")
}

/// A TLS client config trusting only `ca` (PEM file).
pub fn tls_config(ca: &Path, alpn: &[u8]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let mut config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    Arc::new(config)
}

/// DNS over a byte stream with two-byte framing.
pub struct StreamClient<S: Read + Write> {
    stream: S,
    next_id: u16,
}

pub type TcpClient = StreamClient<TcpStream>;
pub type DotClient = StreamClient<StreamOwned<ClientConnection, TcpStream>>;

impl TcpClient {
    pub fn connect(addr: SocketAddr) -> Self {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Self { stream, next_id: 1 }
    }
}

impl DotClient {
    /// Connects and completes the handshake, verifying `name` against `ca`.
    pub fn connect(addr: SocketAddr, ca: &Path, name: &str) -> Result<Self, std::io::Error> {
        let tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        tcp.set_read_timeout(Some(Duration::from_secs(5)))?;
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let conn = ClientConnection::new(tls_config(ca, b"dot"), server_name).unwrap();
        let mut stream = StreamOwned::new(conn, tcp);
        while stream.conn.is_handshaking() {
            stream.conn.complete_io(&mut stream.sock)?;
        }
        Ok(Self { stream, next_id: 1 })
    }

    /// DER of the certificate the server presented on this connection.
    pub fn peer_leaf(&self) -> Vec<u8> {
        self.stream.conn.peer_certificates().unwrap()[0].to_vec()
    }
}

impl<S: Read + Write> StreamClient<S> {
    /// Sends one query and reads its answer.
    pub fn ask(&mut self, name: &str, rtype: RecordType) -> std::io::Result<Message> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let q = query(id, name, rtype);
        let mut framed = (q.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&q);
        self.stream.write_all(&framed)?;
        self.stream.flush()?;
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf)?;
        let answer = parse(&buf);
        assert_eq!(answer.metadata.id, id, "answer matches query");
        Ok(answer)
    }

    /// Sends `message` as it is, framed, without waiting for anything.
    pub fn send(&mut self, message: &[u8]) -> std::io::Result<()> {
        let mut framed = (message.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(message);
        self.stream.write_all(&framed)?;
        self.stream.flush()
    }

    /// Reads one framed message.
    pub fn receive(&mut self) -> std::io::Result<Vec<u8>> {
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }

    /// Sends `query` as it is and returns the answer's bytes.
    pub fn exchange(&mut self, query: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut framed = (query.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(query);
        self.stream.write_all(&framed)?;
        self.stream.flush()?;
        let mut len = [0u8; 2];
        self.stream.read_exact(&mut len)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        self.stream.read_exact(&mut buf)?;
        Ok(buf)
    }
}

/// DoH over one HTTP/2 connection.
pub struct DohClient {
    runtime: tokio::runtime::Runtime,
    send: h2::client::SendRequest<bytes::Bytes>,
    authority: String,
}

impl DohClient {
    pub fn connect(addr: SocketAddr, ca: &Path, name: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let config = tls_config(ca, b"h2");
        let server_name = ServerName::try_from(name.to_string()).unwrap();
        let send = runtime.block_on(async move {
            let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
            let tls = tokio_rustls::TlsConnector::from(config)
                .connect(server_name, tcp)
                .await
                .unwrap();
            let (send, conn) = h2::client::handshake(tls).await.unwrap();
            tokio::spawn(async move {
                let _ = conn.await;
            });
            send
        });
        Self {
            runtime,
            send,
            // The address, not the certificate's name: servers must not insist on one authority.
            authority: addr.to_string(),
        }
    }

    /// One query by GET (`post == false`) or POST; returns the HTTP status and the answer.
    pub fn ask(&mut self, name: &str, rtype: RecordType, post: bool) -> (u16, Option<Message>) {
        use base64::Engine;
        let q = query(0, name, rtype);
        let request = if post {
            http::Request::post(format!("https://{}/dns-query", self.authority))
                .header("content-type", "application/dns-message")
                .body(())
        } else {
            let dns = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&q);
            http::Request::get(format!("https://{}/dns-query?dns={dns}", self.authority)).body(())
        }
        .unwrap();
        let send = self.send.clone();
        self.runtime.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (response, mut stream) = send.send_request(request, !post).unwrap();
            if post {
                stream.send_data(bytes::Bytes::from(q), true).unwrap();
            }
            let (status, bytes) = read_response(response).await;
            (status, (!bytes.is_empty()).then(|| parse(&bytes)))
        })
    }
}

impl DohClient {
    /// POSTs `body` as a DNS message as it is; returns the HTTP status and the body.
    pub fn post(&mut self, body: &[u8]) -> (u16, Vec<u8>) {
        let request = http::Request::post(format!("https://{}/dns-query", self.authority))
            .header("content-type", "application/dns-message")
            .body(())
            .unwrap();
        let send = self.send.clone();
        let body = bytes::Bytes::copy_from_slice(body);
        self.runtime.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (response, mut stream) = send.send_request(request, false).unwrap();
            stream.send_data(body, true).unwrap();
            read_response(response).await
        })
    }
}

/// An HTTP/2 response's status and whole body.
async fn read_response(response: h2::client::ResponseFuture) -> (u16, Vec<u8>) {
    let response = response.await.unwrap();
    let status = response.status().as_u16();
    let mut body = response.into_body();
    let mut bytes = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk = chunk.unwrap();
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes.extend_from_slice(&chunk);
    }
    (status, bytes)
}

/// Times `n` calls of `f`; returns each duration.
pub fn time_each(n: usize, mut f: impl FnMut()) -> Vec<Duration> {
    (0..n)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect()
}
