//! Forwarding names outside the node's zones to configured upstreams over UDP, TCP or DoT.
//!
//! Owns the exchange with upstreams: a fresh random id per query, UDP retried over TCP when
//! truncated, DoT with the upstream's name verified against the system roots plus any
//! configured CA file, upstreams tried in order within the timeout. It must not look at
//! zones or decide what is forwarded (that is `handler`).
//!
//! Not implemented: connection reuse for TCP/DoT upstreams (each query opens a connection;
//! TLS session resumption keeps the repeat cost low), caching.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use hickory_proto::op::ResponseCode;
use rustls::{ClientConfig, RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::{net::TcpStream, time::timeout};
use tokio_rustls::TlsConnector;

use super::{exchange, wire};
use crate::config::{ForwardConfig, UpstreamTransport};

#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    #[error("failed to read upstream CA file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("upstream TLS name `{0}` is not a valid server name")]
    TlsName(String),
}

/// The configured upstreams, ready to query.
pub struct Forwarder {
    upstreams: Vec<Upstream>,
    timeout: Duration,
}

struct Upstream {
    address: SocketAddr,
    kind: Kind,
}

enum Kind {
    Udp,
    Tcp,
    Tls {
        name: ServerName<'static>,
        connector: TlsConnector,
    },
}

impl Forwarder {
    /// Prepares the upstreams; reads CA files, so `check-config` runs it too.
    pub fn new(config: &ForwardConfig) -> Result<Self, ForwardError> {
        let upstreams = config
            .upstreams
            .iter()
            .map(|u| {
                let kind = match &u.transport {
                    UpstreamTransport::Udp => Kind::Udp,
                    UpstreamTransport::Tcp => Kind::Tcp,
                    UpstreamTransport::Tls { name, ca_file } => tls_kind(name, ca_file.as_deref())?,
                };
                Ok(Upstream {
                    address: u.address,
                    kind,
                })
            })
            .collect::<Result<_, ForwardError>>()?;
        Ok(Self {
            upstreams,
            timeout: config.timeout,
        })
    }

    /// The upstream's answer with the client's id, cut to `udp_limit` for UDP clients;
    /// SERVFAIL when no upstream answers in time.
    pub async fn forward(&self, query: &[u8], udp_limit: Option<usize>) -> Option<Vec<u8>> {
        let client_id = wire::id(query)?;
        let mut outgoing = query.to_vec();
        for upstream in &self.upstreams {
            let id = exchange::random_id();
            wire::set_id(&mut outgoing, id);
            match timeout(self.timeout, upstream.exchange(&outgoing, id)).await {
                Ok(Ok(mut response)) => {
                    wire::set_id(&mut response, client_id);
                    return Some(fit(response, udp_limit));
                }
                Ok(Err(e)) => {
                    tracing::debug!(upstream = %upstream.address, error = %e, "upstream failed")
                }
                Err(_) => tracing::debug!(upstream = %upstream.address, "upstream timed out"),
            }
        }
        tracing::warn!("no upstream answered; answering SERVFAIL");
        wire::header_only_response(query, ResponseCode::ServFail)
    }
}

impl Upstream {
    async fn exchange(&self, query: &[u8], id: u16) -> std::io::Result<Vec<u8>> {
        match &self.kind {
            Kind::Udp => {
                let response = exchange::udp(self.address, None, query, id).await?;
                if response.get(2).is_some_and(|flags| flags & 0x02 != 0) {
                    return exchange::tcp(self.address, None, query).await;
                }
                Ok(response)
            }
            Kind::Tcp => exchange::tcp(self.address, None, query).await,
            Kind::Tls { name, connector } => {
                let tcp = TcpStream::connect(self.address).await?;
                tcp.set_nodelay(true)?;
                let mut tls = connector.connect(name.clone(), tcp).await?;
                exchange::stream_exchange(&mut tls, query).await
            }
        }
    }
}

/// A response too large for the UDP client becomes a truncated one, so it retries on TCP.
fn fit(response: Vec<u8>, udp_limit: Option<usize>) -> Vec<u8> {
    match udp_limit {
        Some(limit) if response.len() > limit => wire::truncated(&response).unwrap_or(response),
        _ => response,
    }
}

fn tls_kind(name: &str, ca_file: Option<&std::path::Path>) -> Result<Kind, ForwardError> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let ca_error = |reason: String| ForwardError::CaFile {
            path: path.display().to_string(),
            reason,
        };
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
            .map_err(|e| ca_error(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_error("no CERTIFICATE block found".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| ca_error(e.to_string()))?;
        }
    }
    let config =
        ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            // Local invariant: ring's default provider supports the safe default versions.
            .expect("ring supports the default protocol versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| ForwardError::TlsName(name.to_string()))?;
    Ok(Kind::Tls {
        name: server_name,
        connector: TlsConnector::from(Arc::new(config)),
    })
}
