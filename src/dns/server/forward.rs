//! Forwarding names outside the node's zones to configured upstreams over UDP, TCP or DoT.
//!
//! Owns who may have names forwarded (`[forward] allow`: loopback unless told otherwise;
//! others get REFUSED), how many forwards may wait on upstreams at once (SERVFAIL beyond
//! `max-in-flight`), and the exchange: a fresh random id per query, upstreams tried in
//! order within the timeout, sockets reused (`super::upstream`), DoT with the upstream's
//! name verified against the system roots plus any configured CA file. Every answer it
//! makes itself carries the question. It must not look at zones or decide what is
//! forwarded (that is `handler`).
//!
//! Not implemented: caching, pipelining several queries on one TCP/DoT connection.

use std::{net::IpAddr, sync::Arc, time::Duration};

use hickory_proto::op::ResponseCode;
use rustls::{RootCertStore, pki_types::ServerName};
use rustls_pki_types::{CertificateDer, pem::PemObject};
use tokio::{sync::Semaphore, time::timeout};
use tokio_rustls::TlsConnector;

use super::{
    ratelog::RateLog,
    upstream::{Kind, Upstream},
};
use crate::{
    config::{ForwardConfig, Prefix, UpstreamTransport},
    wire,
};

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
    allow: Vec<Prefix>,
    in_flight: Semaphore,
}

static UPSTREAM_FAILED: RateLog = RateLog::new();
static AT_CAPACITY: RateLog = RateLog::new();
static NOT_ALLOWED: RateLog = RateLog::new();

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
                Ok(Upstream::new(u.address, kind))
            })
            .collect::<Result<_, ForwardError>>()?;
        Ok(Self {
            upstreams,
            timeout: config.timeout,
            allow: config.allow.clone(),
            in_flight: Semaphore::new(config.max_in_flight),
        })
    }

    /// The upstream's answer with the client's id, cut to `udp_limit` for UDP clients;
    /// REFUSED for a `client` outside the allow-list; SERVFAIL when too many forwards are
    /// waiting already or no upstream answers in time.
    pub async fn forward(
        &self,
        query: &[u8],
        udp_limit: Option<usize>,
        client: IpAddr,
    ) -> Option<Vec<u8>> {
        let client_id = wire::id(query)?;
        if !self.allow.iter().any(|p| p.contains(client)) {
            if let Some(left_out) = NOT_ALLOWED.allow() {
                tracing::info!(%client, left_out, "forwarding refused: client not in forward.allow");
            }
            return error_answer(query, ResponseCode::Refused);
        }
        let Ok(_permit) = self.in_flight.try_acquire() else {
            if let Some(left_out) = AT_CAPACITY.allow() {
                tracing::warn!(
                    left_out,
                    "forwards at forward.max-in-flight; answering SERVFAIL"
                );
            }
            return error_answer(query, ResponseCode::ServFail);
        };
        let mut reasons = Vec::new();
        for upstream in &self.upstreams {
            match timeout(self.timeout, upstream.exchange(query)).await {
                Ok(Ok(mut response)) => {
                    wire::set_id(&mut response, client_id);
                    return Some(fit(response, udp_limit));
                }
                Ok(Err(e)) => reasons.push(format!("{}: {e}", upstream.address)),
                Err(_) => reasons.push(format!(
                    "{}: no answer in {:?}",
                    upstream.address, self.timeout
                )),
            }
        }
        if let Some(left_out) = UPSTREAM_FAILED.allow() {
            tracing::warn!(reasons = %reasons.join("; "), left_out, "no upstream answered; answering SERVFAIL");
        }
        error_answer(query, ResponseCode::ServFail)
    }
}

/// An answer of our own to `query`: its header (id, opcode, RD) and question, `rcode`.
fn error_answer(query: &[u8], rcode: ResponseCode) -> Option<Vec<u8>> {
    let Some(mut answer) = wire::truncated(query).filter(|_| !wire::is_response(query)) else {
        return wire::header_only_response(query, rcode);
    };
    // QR set, opcode and RD kept, AA/TC cleared; no RA, no Z, the rcode.
    answer[2] = 0x80 | (answer[2] & 0x79);
    answer[3] = rcode.low();
    Some(answer)
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
    let config = crate::tls::client_config(roots);
    let server_name = ServerName::try_from(name.to_string())
        .map_err(|_| ForwardError::TlsName(name.to_string()))?;
    Ok(Kind::Tls {
        name: server_name,
        connector: TlsConnector::from(Arc::new(config)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_answers_carry_the_question() {
        // id 0xbeef, RD, one question "a." A IN, an OPT record after it.
        let mut query = vec![0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
        query.extend_from_slice(&[1, b'a', 0, 0, 1, 0, 1]);
        query.extend_from_slice(&[0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0]);
        let answer = error_answer(&query, ResponseCode::ServFail).unwrap();
        assert_eq!(&answer[..4], &[0xbe, 0xef, 0x81, 2]);
        assert_eq!(&answer[4..12], &[0, 1, 0, 0, 0, 0, 0, 0]);
        assert_eq!(&answer[12..], &[1, b'a', 0, 0, 1, 0, 1]);
        let refused = error_answer(&query, ResponseCode::Refused).unwrap();
        assert_eq!(refused[3], 5);
        let mut response = query.clone();
        response[2] |= 0x80;
        assert!(error_answer(&response, ResponseCode::ServFail).is_none());
    }
}
