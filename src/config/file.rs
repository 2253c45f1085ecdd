//! The configuration file as it is written: serde types that mirror the TOML, nothing more.
//!
//! Owns the spelling of keys (kebab-case) and the rejection of unknown ones. It must not
//! interpret values: turning these into the typed [`crate::config::Config`] is `mod.rs`'s job.

use std::{net::SocketAddr, path::PathBuf};

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct File {
    #[serde(default)]
    pub(super) role: Role,
    pub(super) state_dir: PathBuf,
    #[serde(default)]
    pub(super) listen: Listen,
    pub(super) tls: Option<Tls>,
    #[serde(default, rename = "zone")]
    pub(super) zones: Vec<Zone>,
    pub(super) forward: Option<Forward>,
    pub(super) acme: Option<Acme>,
    pub(super) certificate_zone: Option<CertificateZone>,
    pub(super) transfer: Option<Transfer>,
    pub(super) primary: Option<Primary>,
    #[serde(default, rename = "secondary")]
    pub(super) secondaries: Vec<Secondary>,
    #[serde(default)]
    pub(super) limits: Limits,
    pub(super) rrl: Option<Rrl>,
    pub(super) metrics: Option<Metrics>,
    pub(super) publish: Option<super::publish::Publish>,
    pub(super) update: Option<Update>,
}

/// `[metrics]`: the Prometheus and health listener; off without this section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Metrics {
    pub(super) listen: SocketAddr,
}

/// `[update]` (master): keys that may send RFC 2136 UPDATE, and what each may change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Update {
    #[serde(rename = "key")]
    pub(super) keys: Vec<UpdateKey>,
    pub(super) wait_for_workers_ms: Option<u64>,
}

/// `[[update.key]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct UpdateKey {
    pub(super) tsig_key_file: PathBuf,
    pub(super) grant: Option<Vec<String>>,
}

/// `[limits]`: what one client, connection or query may cost (`limits.rs` has the defaults).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Limits {
    pub(super) udp_max_payload: Option<u16>,
    pub(super) udp_slow_queries: Option<usize>,
    pub(super) connections: Option<usize>,
    pub(super) connections_per_source: Option<usize>,
    pub(super) idle_timeout_ms: Option<u64>,
    pub(super) message_timeout_ms: Option<u64>,
    pub(super) write_timeout_ms: Option<u64>,
    pub(super) handshake_timeout_ms: Option<u64>,
    pub(super) queries_per_connection: Option<u32>,
    pub(super) connection_lifetime_secs: Option<u64>,
    pub(super) doh_streams: Option<u32>,
    pub(super) doh_header_bytes: Option<u32>,
    pub(super) doh_window_bytes: Option<u32>,
}

/// `[rrl]`: response rate limiting for UDP; off without this section.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Rrl {
    pub(super) responses_per_second: u32,
    pub(super) slip: Option<u32>,
    pub(super) ipv4_prefix_length: Option<u8>,
    pub(super) ipv6_prefix_length: Option<u8>,
    pub(super) table_size: Option<usize>,
    pub(super) log_interval_secs: Option<u64>,
}

/// `[primary]` (workers): the master they replicate from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Primary {
    pub(super) address: SocketAddr,
    pub(super) tsig_key_file: PathBuf,
}

/// `[[secondary]]` (workers): an ordinary zone transferred from the primary.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Secondary {
    pub(super) name: String,
}

/// `[listen]`: every listener is optional; a node runs the subset it names.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Listen {
    #[serde(default)]
    pub(super) udp: Vec<SocketAddr>,
    #[serde(default)]
    pub(super) tcp: Vec<SocketAddr>,
    #[serde(default)]
    pub(super) tls: Vec<SocketAddr>,
    #[serde(default)]
    pub(super) https: Vec<SocketAddr>,
    pub(super) prepared_answers: Option<bool>,
}

/// `[tls]`: the names the served certificate is for and where it comes from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Tls {
    pub(super) names: Vec<String>,
    #[serde(default)]
    pub(super) source: CertSource,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) leaf_days: Option<u32>,
}

/// `[[zone]]`: one authoritative zone from an RFC 1035 file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Zone {
    pub(super) name: String,
    pub(super) file: PathBuf,
}

/// `[forward]`: where names outside the node's zones go.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Forward {
    #[serde(rename = "upstream")]
    pub(super) upstreams: Vec<Upstream>,
    pub(super) timeout_ms: Option<u64>,
    pub(super) allow: Option<Vec<String>>,
    pub(super) max_in_flight: Option<usize>,
}

/// `[[forward.upstream]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Upstream {
    pub(super) address: SocketAddr,
    #[serde(default)]
    pub(super) protocol: UpstreamProtocol,
    pub(super) tls_name: Option<String>,
    pub(super) ca_file: Option<PathBuf>,
}

/// `role`: what the node does in the cluster.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The primary nameserver: owns the certificate and the zones.
    #[default]
    Master,
    /// A secondary: replicates the master's zones and serves its certificate.
    Worker,
}

impl Role {
    /// The word the file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Worker => "worker",
        }
    }
}

/// `tls.source`: where the served certificate comes from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum CertSource {
    /// The built-in local CA in the state directory.
    #[default]
    LocalCa,
    /// PEM files named by `cert-file` and `key-file`, re-read on SIGHUP.
    Files,
    /// An ACME CA, configured in `[acme]`.
    Acme,
    /// The master's certificate zone, verified and unsealed (workers).
    CertificateZone,
}

/// `forward.upstream.protocol`
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum UpstreamProtocol {
    /// UDP, retried over TCP when the answer is truncated.
    #[default]
    Udp,
    Tcp,
    /// DNS over TLS (RFC 7858), the upstream's name verified.
    Tls,
}

/// `[acme]`: the CA and how the master proves its names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Acme {
    pub(super) directory: String,
    #[serde(default)]
    pub(super) contact: Vec<String>,
    #[serde(default)]
    pub(super) challenge: Challenge,
    pub(super) eab_key_id: Option<String>,
    pub(super) eab_hmac_key: Option<String>,
    #[serde(default)]
    pub(super) ca_roots: Vec<PathBuf>,
    #[serde(default)]
    pub(super) key_algorithm: KeyAlgorithm,
    #[serde(default)]
    pub(super) authoritative: Vec<SocketAddr>,
    pub(super) propagation_timeout_secs: Option<u64>,
    pub(super) retry_base_secs: Option<u64>,
    pub(super) max_orders_per_hour: Option<u32>,
    pub(super) http_timeout_secs: Option<u64>,
    pub(super) order_timeout_secs: Option<u64>,
}

/// `acme.challenge`
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Challenge {
    /// A TXT record in the master's own zone.
    #[default]
    #[serde(rename = "dns-01")]
    Dns01,
}

/// `acme.key-algorithm`: the certificate's key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    #[default]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
}

/// `[certificate-zone]`: the master publishes its certificate here, signed and sealed.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct CertificateZone {
    pub(super) name: Option<String>,
    pub(super) signing_key: Option<PathBuf>,
    pub(super) signing_public_key: Option<PathBuf>,
    pub(super) sealing_key: Option<PathBuf>,
    #[serde(default)]
    pub(super) roots: Vec<PathBuf>,
    #[serde(default, rename = "worker")]
    pub(super) workers: Vec<Worker>,
    pub(super) ttl: Option<u32>,
    pub(super) refresh_secs: Option<u32>,
    pub(super) retry_secs: Option<u32>,
    pub(super) cluster_id: Option<String>,
    pub(super) format: Option<u8>,
    pub(super) minimum_version: Option<u64>,
    pub(super) minimum_published: Option<Moment>,
    pub(super) minimum_format: Option<u8>,
}

/// A point in time: unix seconds, or an RFC 3339 string.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Moment {
    Unix(u64),
    Text(String),
}

/// `[[certificate-zone.worker]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Worker {
    pub(super) name: String,
    pub(super) public_key: PathBuf,
}

/// `[transfer]`: who may AXFR the node's zones.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Transfer {
    pub(super) tsig_key_file: PathBuf,
    #[serde(default)]
    pub(super) allow: Vec<std::net::IpAddr>,
    #[serde(default)]
    pub(super) notify: Vec<SocketAddr>,
}
