//! `[forward]`, typed: the upstreams names outside the node's zones go to, and who may
//! have names forwarded.
//!
//! Owns the upstreams' transports and their keys. It must not open sockets or read the CA
//! files it names (`dns::Forwarder::new` does, from `node::prepare`).

use std::{net::SocketAddr, path::PathBuf, time::Duration};

use super::{Checker, ConfigError, Prefix, file};
use file::UpstreamProtocol;

const DEFAULT_FORWARD_TIMEOUT_MS: u64 = 3000;

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub upstreams: Vec<Upstream>,
    pub timeout: Duration,
    /// Clients that may have names forwarded; others are REFUSED.
    pub allow: Vec<Prefix>,
    /// Forwards waiting on upstreams at once; more get SERVFAIL at once.
    pub max_in_flight: usize,
}

#[derive(Debug, Clone)]
pub struct Upstream {
    pub address: SocketAddr,
    pub transport: UpstreamTransport,
}

#[derive(Debug, Clone)]
pub enum UpstreamTransport {
    Udp,
    Tcp,
    /// DoT; `name` is what the upstream's certificate must be for, `ca_file` extra roots
    /// (the system's roots are always trusted too).
    Tls {
        name: String,
        ca_file: Option<PathBuf>,
    },
}

impl Checker<'_> {
    pub(super) fn forward(&self, raw: file::Forward) -> Result<ForwardConfig, ConfigError> {
        if raw.upstreams.is_empty() {
            return Err(self.invalid("forward.upstream", "at least one upstream is needed"));
        }
        let upstreams: Vec<Upstream> = raw
            .upstreams
            .into_iter()
            .enumerate()
            .filter_map(|(i, u)| self.upstream(i, u).map_err(|e| self.note(e)).ok())
            .collect();
        let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_FORWARD_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(self.invalid("forward.timeout-ms", "must be above 0"));
        }
        let (allow, max_in_flight) = self.forward_limits(raw.allow, raw.max_in_flight)?;
        Ok(ForwardConfig {
            upstreams,
            timeout: Duration::from_millis(timeout_ms),
            allow,
            max_in_flight,
        })
    }

    fn upstream(&self, i: usize, raw: file::Upstream) -> Result<Upstream, ConfigError> {
        let key = |k: &str| format!("forward.upstream[{i}].{k}");
        let transport = match raw.protocol {
            UpstreamProtocol::Tls => {
                let name = raw.tls_name.ok_or_else(|| {
                    self.invalid(&key("tls-name"), "missing (protocol = \"tls\")")
                })?;
                UpstreamTransport::Tls {
                    name,
                    ca_file: raw.ca_file.map(|p| self.resolve(&p)),
                }
            }
            plain => {
                if raw.tls_name.is_some() || raw.ca_file.is_some() {
                    return Err(self.invalid(&key("tls-name"), "only for protocol = \"tls\""));
                }
                match plain {
                    UpstreamProtocol::Tcp => UpstreamTransport::Tcp,
                    _ => UpstreamTransport::Udp,
                }
            }
        };
        Ok(Upstream {
            address: raw.address,
            transport,
        })
    }
}
