//! The cluster file as it is written: serde types that mirror the TOML, nothing more.
//!
//! Owns the spelling of keys (kebab-case) and the rejection of unknown ones. It must not
//! interpret values: `mod.rs` turns these into the typed [`super::Cluster`].

use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct File {
    pub(super) cluster: Settings,
    #[serde(default)]
    pub(super) ports: Ports,
    #[serde(default)]
    pub(super) ca: Ca,
    #[serde(default)]
    pub(super) keys: Keys,
    #[serde(default, rename = "node")]
    pub(super) nodes: Vec<Node>,
    pub(super) docker: Option<Docker>,
    pub(super) publish: Option<Publish>,
    pub(super) update: Option<Update>,
}

/// `[publish]`: the master's published records, for every name of `cluster.names` inside
/// the domain.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Publish {
    #[serde(default)]
    pub svcb: bool,
    #[serde(default)]
    pub tlsa: bool,
    #[serde(default)]
    pub caa: bool,
    pub ttl: Option<u32>,
    pub caa_issuer: Option<String>,
}

/// `[update]`: RFC 2136 update keys for other ACME clients, made on first use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Update {
    #[serde(rename = "key")]
    pub(super) keys: Vec<UpdateKey>,
}

/// `[[update.key]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct UpdateKey {
    pub(super) name: String,
    pub(super) grant: Option<Vec<String>>,
}

/// `[cluster]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Settings {
    pub(super) state_dir: PathBuf,
    pub(super) domain: String,
    pub(super) zone_file: PathBuf,
    pub(super) names: Vec<String>,
    pub(super) certificate_zone: Option<String>,
    pub(super) refresh_secs: Option<u32>,
    pub(super) retry_secs: Option<u32>,
    pub(super) id: Option<String>,
}

/// `[ports]`: the same on every node, as on real hosts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Ports {
    #[serde(default = "default_dns")]
    pub(super) dns: u16,
    #[serde(default = "default_tls")]
    pub(super) tls: u16,
    #[serde(default = "default_https")]
    pub(super) https: u16,
    /// `[metrics] listen` on every node at this port; none without it.
    pub(super) metrics: Option<u16>,
}

impl Default for Ports {
    fn default() -> Self {
        Self {
            dns: default_dns(),
            tls: default_tls(),
            https: default_https(),
            metrics: None,
        }
    }
}

fn default_dns() -> u16 {
    53
}
fn default_tls() -> u16 {
    853
}
fn default_https() -> u16 {
    443
}

/// `[ca]`
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Ca {
    #[serde(default)]
    pub(super) kind: CaKind,
    pub(super) leaf_days: Option<u32>,
    pub(super) directory: Option<String>,
    #[serde(default)]
    pub(super) contact: Vec<String>,
    #[serde(default)]
    pub(super) ca_roots: Vec<PathBuf>,
    pub(super) propagation_timeout_secs: Option<u64>,
    pub(super) retry_base_secs: Option<u64>,
    pub(super) max_orders_per_hour: Option<u32>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(super) enum CaKind {
    /// The built-in local CA on the master.
    #[default]
    Local,
    /// Any ACME directory (Pebble in tests, Let's Encrypt in production).
    Acme,
}

/// `[keys]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Keys {
    pub(super) dir: Option<PathBuf>,
    #[serde(default = "yes")]
    pub(super) generate: bool,
}

impl Default for Keys {
    fn default() -> Self {
        Self {
            dir: None,
            generate: true,
        }
    }
}

fn yes() -> bool {
    true
}

/// `[[node]]`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Node {
    pub(super) name: String,
    pub(super) role: crate::config::RoleKind,
    pub(super) address: std::net::IpAddr,
}

/// `[docker]`: where `certzone cluster docker` runs the cluster.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Docker {
    pub(super) subnet: String,
    pub(super) image: Option<String>,
    pub(super) project: Option<String>,
    #[serde(default)]
    pub(super) test_ca: bool,
    pub(super) test_ca_address: Option<std::net::IpAddr>,
    pub(super) test_ca_leaf_secs: Option<u64>,
    #[serde(default = "yes")]
    pub(super) client: bool,
    pub(super) client_address: Option<std::net::IpAddr>,
}
