//! The configuration file as it is written: serde types that mirror the TOML, nothing more.
//!
//! Owns the spelling of keys (kebab-case) and the rejection of unknown ones, both ways:
//! `cluster::render` builds these and serialises them, so a derived file has one schema with
//! a hand-written one. It must not interpret values: turning these into the typed
//! [`crate::config::Config`] is `mod.rs`'s job.

use std::{net::SocketAddr, path::PathBuf};

use serde::{Deserialize, Serialize};

/// The whole file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct File {
    #[serde(default)]
    pub role: RoleKind,
    pub state_dir: PathBuf,
    #[serde(default)]
    pub listen: Listen,
    pub tls: Option<Tls>,
    #[serde(default, rename = "zone", skip_serializing_if = "Vec::is_empty")]
    pub zones: Vec<Zone>,
    pub forward: Option<Forward>,
    pub acme: Option<Acme>,
    pub certificate_zone: Option<CertificateZone>,
    pub transfer: Option<Transfer>,
    pub primary: Option<Primary>,
    #[serde(default, rename = "secondary", skip_serializing_if = "Vec::is_empty")]
    pub secondaries: Vec<Secondary>,
    #[serde(default, skip_serializing_if = "Limits::is_unset")]
    pub limits: Limits,
    pub rrl: Option<Rrl>,
    pub metrics: Option<Metrics>,
    pub publish: Option<Publish>,
    pub update: Option<Update>,
}

/// `[publish]`: the records a master announces about the certificate it serves.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Publish {
    #[serde(default)]
    pub svcb: bool,
    #[serde(default)]
    pub tlsa: bool,
    #[serde(default)]
    pub caa: bool,
    pub ttl: Option<u32>,
    pub dot_port: Option<u16>,
    pub doh_port: Option<u16>,
    pub doh_path: Option<String>,
    pub caa_issuer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nameservers: Vec<SocketAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dot_servers: Vec<SocketAddr>,
}

/// `[metrics]`: the Prometheus and health listener; off without this section.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Metrics {
    pub listen: SocketAddr,
}

/// `[update]` (master): keys that may send RFC 2136 UPDATE, and what each may change.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Update {
    #[serde(rename = "key")]
    pub keys: Vec<UpdateKey>,
    pub wait_for_workers_ms: Option<u64>,
}

/// `[[update.key]]`
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct UpdateKey {
    pub tsig_key_file: PathBuf,
    pub grant: Option<Vec<String>>,
}

/// `[limits]`: what one client, connection or query may cost (`limits.rs` has the defaults).
#[derive(Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Limits {
    pub udp_max_payload: Option<u16>,
    pub udp_slow_queries: Option<usize>,
    pub connections: Option<usize>,
    pub connections_per_source: Option<usize>,
    pub idle_timeout_ms: Option<u64>,
    pub message_timeout_ms: Option<u64>,
    pub write_timeout_ms: Option<u64>,
    pub handshake_timeout_ms: Option<u64>,
    pub queries_per_connection: Option<u32>,
    pub connection_lifetime_secs: Option<u64>,
    pub doh_streams: Option<u32>,
    pub doh_header_bytes: Option<u32>,
    pub doh_window_bytes: Option<u32>,
}

impl Limits {
    /// No key given: the section is left out when written.
    fn is_unset(&self) -> bool {
        *self == Self::default()
    }
}

/// `[rrl]`: response rate limiting for UDP; off without this section.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Rrl {
    pub responses_per_second: u32,
    pub slip: Option<u32>,
    pub ipv4_prefix_length: Option<u8>,
    pub ipv6_prefix_length: Option<u8>,
    pub table_size: Option<usize>,
    pub log_interval_secs: Option<u64>,
}

/// `[primary]` (workers): the master they replicate from.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Primary {
    pub address: SocketAddr,
    pub tsig_key_file: PathBuf,
}

/// `[[secondary]]` (workers): an ordinary zone transferred from the primary.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Secondary {
    pub name: String,
}

/// `[listen]`: every listener is optional; a node runs the subset it names.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Listen {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub udp: Vec<SocketAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tcp: Vec<SocketAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls: Vec<SocketAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub https: Vec<SocketAddr>,
    pub prepared_answers: Option<bool>,
}

/// `[tls]`: the names the served certificate is for and where it comes from.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Tls {
    pub names: Vec<String>,
    #[serde(default)]
    pub source: CertSource,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
    pub leaf_days: Option<u32>,
}

/// `[[zone]]`: one authoritative zone from an RFC 1035 file.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Zone {
    pub name: String,
    pub file: PathBuf,
}

/// `[forward]`: where names outside the node's zones go.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Forward {
    #[serde(rename = "upstream")]
    pub upstreams: Vec<Upstream>,
    pub timeout_ms: Option<u64>,
    pub allow: Option<Vec<String>>,
    pub max_in_flight: Option<usize>,
}

/// `[[forward.upstream]]`
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Upstream {
    pub address: SocketAddr,
    #[serde(default)]
    pub protocol: UpstreamProtocol,
    pub tls_name: Option<String>,
    pub ca_file: Option<PathBuf>,
}

/// `role`: what the node does in the cluster.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoleKind {
    /// The primary nameserver: owns the certificate and the zones.
    #[default]
    Master,
    /// A secondary: replicates the master's zones and serves its certificate.
    Worker,
}

impl RoleKind {
    /// The word the file uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Master => "master",
            Self::Worker => "worker",
        }
    }
}

/// `tls.source`: where the served certificate comes from.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CertSource {
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
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UpstreamProtocol {
    /// UDP, retried over TCP when the answer is truncated.
    #[default]
    Udp,
    Tcp,
    /// DNS over TLS (RFC 7858), the upstream's name verified.
    Tls,
}

/// `[acme]`: the CA and how the master proves its names.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Acme {
    pub directory: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contact: Vec<String>,
    #[serde(default)]
    pub challenge: Challenge,
    pub eab_key_id: Option<String>,
    pub eab_hmac_key: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ca_roots: Vec<PathBuf>,
    #[serde(default)]
    pub key_algorithm: KeyAlgorithm,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authoritative: Vec<SocketAddr>,
    pub propagation_timeout_secs: Option<u64>,
    pub retry_base_secs: Option<u64>,
    pub max_orders_per_hour: Option<u32>,
    pub http_timeout_secs: Option<u64>,
    pub order_timeout_secs: Option<u64>,
}

/// `acme.challenge`
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Challenge {
    /// A TXT record in the master's own zone.
    #[default]
    #[serde(rename = "dns-01")]
    Dns01,
}

/// `acme.key-algorithm`: the certificate's key.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyAlgorithm {
    #[default]
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ecdsa-p384")]
    EcdsaP384,
}

/// `[certificate-zone]`: the master publishes its certificate here, signed and sealed.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CertificateZone {
    pub name: Option<String>,
    pub signing_key: Option<PathBuf>,
    pub signing_public_key: Option<PathBuf>,
    pub sealing_key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roots: Vec<PathBuf>,
    #[serde(default, rename = "worker", skip_serializing_if = "Vec::is_empty")]
    pub workers: Vec<Worker>,
    pub ttl: Option<u32>,
    pub refresh_secs: Option<u32>,
    pub retry_secs: Option<u32>,
    pub cluster_id: Option<String>,
    pub format: Option<u8>,
    pub minimum_version: Option<u64>,
    pub minimum_published: Option<Moment>,
    pub minimum_format: Option<u8>,
}

/// A point in time: unix seconds, or an RFC 3339 string.
#[derive(Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Moment {
    Unix(u64),
    Text(String),
}

/// `[[certificate-zone.worker]]`
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Worker {
    pub name: String,
    pub public_key: PathBuf,
}

/// `[transfer]`: who may AXFR the node's zones.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Transfer {
    pub tsig_key_file: PathBuf,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<std::net::IpAddr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<SocketAddr>,
}
