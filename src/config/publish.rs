//! `[publish]`: the records a master announces about the certificate it serves (SVCB
//! `_dns`, TLSA 3 1 1, CAA pinned to its ACME account), typed and checked.
//!
//! Owns the section's spelling and its checks against the rest of the file (a master with
//! `[tls]`, ports from the listeners, TLSA only for keys the node makes, CAA only with
//! ACME). It must not build records or touch zones: that is `crate::announce`.

use std::{net::SocketAddr, time::Duration};

use super::{CertificateSource, Checker, ConfigError, Listen, RoleKind, TlsConfig, file::Publish};

/// `[publish]`, typed.
#[derive(Debug, Clone)]
pub struct PublishConfig {
    pub svcb: bool,
    pub tlsa: bool,
    pub caa: bool,
    /// TTL of every published record; also the least time a new TLSA is served before a
    /// certificate with its key.
    pub ttl: u32,
    /// Port of DoT (`_<port>._tcp` TLSA, SVCB `port`); `None` when the node serves no DoT.
    pub dot_port: Option<u16>,
    pub doh_port: Option<u16>,
    /// RFC 9461 `dohpath` (a URI template with `{?dns}`).
    pub doh_path: String,
    /// The CA's CAA issuer domain, published (with `caa`) and checked before every order;
    /// the directory's `caaIdentities` are checked too.
    pub caa_issuer: Option<String>,
    /// Nameservers that must answer a new TLSA before its lead time starts counting.
    pub nameservers: Vec<SocketAddr>,
    /// DoT servers that must present the new key before the old TLSA is withdrawn.
    pub dot_servers: Vec<SocketAddr>,
}

pub(super) const DEFAULT_TTL: u32 = 300;
const DEFAULT_DOH_PATH: &str = "/dns-query{?dns}";

impl PublishConfig {
    /// How long a new TLSA is served before any node serves a certificate with its key.
    pub fn lead_time(&self) -> Duration {
        Duration::from_secs(u64::from(self.ttl))
    }
}

impl Checker<'_> {
    pub(super) fn publish(
        &self,
        raw: Publish,
        role: RoleKind,
        listen: &Listen,
        tls: Option<&TlsConfig>,
    ) -> Result<PublishConfig, ConfigError> {
        if role != RoleKind::Master {
            return Err(self.invalid(
                "publish",
                "only the master publishes records; workers serve them by transfer",
            ));
        }
        let Some(tls) = tls else {
            return Err(self.invalid("publish", "[publish] needs a [tls] section"));
        };
        let ttl = raw.ttl.unwrap_or(DEFAULT_TTL);
        if ttl == 0 {
            return Err(self.invalid("publish.ttl", "must be above 0"));
        }
        let port = |given: Option<u16>, listeners: &[SocketAddr]| {
            given.or_else(|| listeners.first().map(SocketAddr::port))
        };
        let dot_port = port(raw.dot_port, &listen.tls);
        let doh_port = port(raw.doh_port, &listen.https);
        if (raw.svcb || raw.tlsa) && dot_port.is_none() && doh_port.is_none() {
            return Err(self.invalid(
                "publish",
                "svcb and tlsa describe DoT or DoH: add listen.tls or listen.https, or give \
                 dot-port / doh-port",
            ));
        }
        let doh_path = raw
            .doh_path
            .clone()
            .unwrap_or_else(|| DEFAULT_DOH_PATH.into());
        if !doh_path.starts_with('/') || !doh_path.contains("{?dns}") {
            return Err(self.invalid(
                "publish.doh-path",
                format!("`{doh_path}`: a path starting with / holding {{?dns}} (RFC 9461)"),
            ));
        }
        self.publish_source(&raw, tls)?;
        Ok(PublishConfig {
            svcb: raw.svcb,
            tlsa: raw.tlsa,
            caa: raw.caa,
            ttl,
            dot_port,
            doh_port,
            doh_path,
            caa_issuer: raw
                .caa_issuer
                .map(|i| i.trim_end_matches('.').to_lowercase()),
            nameservers: raw.nameservers,
            dot_servers: raw.dot_servers,
        })
    }

    /// TLSA needs a key the node makes (its rollover is planned); CAA needs ACME.
    fn publish_source(&self, raw: &Publish, tls: &TlsConfig) -> Result<(), ConfigError> {
        let acme = matches!(tls.source, CertificateSource::Acme(_));
        let own_key = acme || matches!(tls.source, CertificateSource::LocalCa { .. });
        if raw.tlsa && !own_key {
            return Err(self.invalid(
                "publish.tlsa",
                "TLSA needs tls.source = \"acme\" or \"local-ca\": the next key must be made \
                 and announced before a certificate uses it",
            ));
        }
        if raw.caa && !acme {
            return Err(self.invalid(
                "publish.caa",
                "CAA pins the ACME account: it needs tls.source = \"acme\"",
            ));
        }
        if raw.caa_issuer.is_some() && !acme {
            return Err(self.invalid(
                "publish.caa-issuer",
                "the CA's CAA name is for tls.source = \"acme\"",
            ));
        }
        if let Some(issuer) = &raw.caa_issuer
            && (issuer.is_empty()
                || !issuer
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
        {
            return Err(self.invalid(
                "publish.caa-issuer",
                format!("`{issuer}` is not a domain name (RFC 8659 issuer-domain-name)"),
            ));
        }
        Ok(())
    }
}
