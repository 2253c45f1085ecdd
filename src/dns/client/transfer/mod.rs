//! Transfers in: getting a zone from a server as a client. AXFR over
//! TCP (TSIG-signed when a key is given, every response message checked),
//! and, when the server refuses transfers, the bundle's records one plain
//! query at a time (docs/PROTOCOL.md, "Reading by queries"). With a key, only
//! a TSIG-signed refusal leads to the queries, and they are signed and their
//! answers checked too: nothing unauthenticated decides how the zone is read.
//!
//! Owns the network exchange only: it returns records, a typed error and no
//! output. It must not judge the bundle (that is `bundle::read`/`inspect`),
//! print, or read files. Every read is bounded by [`Options::timeout`].

mod answers;
mod axfr;
mod conn;
mod query;

#[cfg(test)]
mod tests;

use std::{net::SocketAddr, time::Duration};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, Record, TSigner};

use crate::bundle::BundleError;

/// How the records were obtained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// one zone transfer
    Axfr,
    /// the manifest, then each record it names, by plain queries
    Queries,
}

impl Method {
    /// `axfr` or `queries`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Axfr => "axfr",
            Self::Queries => "queries",
        }
    }
}

/// A zone's records as fetched, not yet judged.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// how they were fetched
    pub method: Method,
    /// the zone's SOA serial, if the server gave one
    pub serial: Option<u32>,
    /// the records (for AXFR the whole zone, SOA once; for queries only the
    /// bundle's records)
    pub records: Vec<Record>,
}

/// Limits of one fetch.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// the longest wait for a connection or for any one message
    pub timeout: Duration,
    /// the most bytes of responses accepted in one fetch
    pub max_bytes: usize,
    /// the local address to connect from (a primary's allow-list sees it); any when `None`
    pub source: Option<std::net::IpAddr>,
}

impl Default for Options {
    fn default() -> Self {
        // a bundle is at most a few MiB (256 sealed keys of ~6 KiB base64);
        // 32 MiB leaves room for a zone that holds more than the bundle
        Self {
            timeout: Duration::from_secs(5),
            max_bytes: 32 << 20,
            source: None,
        }
    }
}

/// Why records could not be fetched. Every message names the server.
/// Names are kept as text: hickory's `Name` would make every `Result` large.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum XfrError {
    /// Connecting, reading or writing failed.
    #[error("server {server}: {action}: {source}")]
    Io {
        server: SocketAddr,
        action: &'static str,
        source: std::io::Error,
    },
    /// The server did not answer in time.
    #[error("server {server}: no {what} within {waited:?}")]
    Timeout {
        server: SocketAddr,
        what: &'static str,
        waited: Duration,
    },
    /// The server will not transfer the zone (REFUSED, NOTAUTH, NOTIMP, or,
    /// without a key, it closed the connection); with a key, only a refusal
    /// whose TSIG verified. Reading by queries may still work.
    #[error("server {server} refused the transfer of {zone}: {reason}")]
    Refused {
        server: SocketAddr,
        zone: String,
        reason: String,
    },
    /// The server answered with an error code.
    #[error("server {server} answered {rcode} for {name} {kind}")]
    Rcode {
        server: SocketAddr,
        name: String,
        kind: String,
        rcode: ResponseCode,
    },
    /// A response that is not a well-formed answer to what was asked.
    #[error("server {server}: bad response: {reason}")]
    BadResponse { server: SocketAddr, reason: String },
    /// A response whose TSIG is missing or does not verify.
    #[error("server {server}: TSIG check failed: {reason}")]
    Tsig { server: SocketAddr, reason: String },
    /// The manifest fetched by query cannot say which records to fetch.
    #[error("server {server}: {source}")]
    Bundle {
        server: SocketAddr,
        source: BundleError,
    },
}

impl XfrError {
    /// An answer came but could not be authenticated (no TSIG, or one that fails).
    pub fn unauthenticated(&self) -> bool {
        matches!(self, Self::Tsig { .. })
    }
}

/// AXFR of `zone` from `server` (signed with `tsig` when given); when the
/// server refuses it (with a key: a signed refusal), the bundle's records by
/// queries instead, signed with the same key.
pub async fn fetch(
    server: SocketAddr,
    zone: &Name,
    tsig: Option<&TSigner>,
    options: &Options,
) -> Result<Fetched, XfrError> {
    match transfer(server, zone, tsig, options).await {
        Err(XfrError::Refused { .. }) => query_bundle(server, zone, tsig, options).await,
        other => other,
    }
}

pub use axfr::{Sink, transfer, transfer_into};
pub use query::bundle as query_bundle;
