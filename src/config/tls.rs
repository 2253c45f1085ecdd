//! `[tls]`, typed: the names the served certificate is for, parsed once into [`TlsName`]s,
//! and where the certificate comes from.
//!
//! Owns which names each source accepts (addresses or DNS names only) and the checks that
//! tie names to the node's zones. It must not read certificate files (`tls`, `localca` and
//! `acme` do, from `node::prepare`).

use std::net::{IpAddr, SocketAddr};

use hickory_proto::rr::Name;

use super::{AcmeConfig, Checker, Config, ConfigError, ZoneConfig, file};
use file::CertSource;

/// The local CA's default leaf lifetime, the same as a public ACME certificate's.
pub const DEFAULT_LEAF_DAYS: u32 = 90;

/// The served certificate: its names and its source.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub names: Vec<TlsName>,
    pub source: CertificateSource,
}

impl TlsConfig {
    /// The names as written: what certificates carry and orders ask for.
    pub fn texts(&self) -> Vec<String> {
        self.names.iter().map(|n| n.as_str().to_string()).collect()
    }
}

/// One of `tls.names`, parsed once at load: its text as written, and the DNS name it is
/// (a wildcard keeps its `*` label), or none for an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsName {
    text: String,
    dns: Option<Name>,
}

impl TlsName {
    /// `None` when `text` is neither an IP address nor a DNS name.
    pub fn parse(text: &str) -> Option<Self> {
        if text.parse::<IpAddr>().is_ok() {
            return Some(Self {
                text: text.to_string(),
                dns: None,
            });
        }
        let mut name = Name::from_ascii(text).ok()?;
        name.set_fqdn(true);
        Some(Self {
            text: text.to_string(),
            dns: Some(name),
        })
    }

    /// The name as written in the file.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The DNS name, wildcard included; `None` for an address.
    pub fn dns(&self) -> Option<&Name> {
        self.dns.as_ref()
    }

    /// The DNS name a wildcard stands under (the name itself when it is none).
    pub fn base(&self) -> Option<Name> {
        let name = self.dns.as_ref()?;
        Some(if name.is_wildcard() {
            name.base_name()
        } else {
            name.clone()
        })
    }

    pub fn is_address(&self) -> bool {
        self.dns.is_none()
    }

    /// Where dns-01 puts the challenge for this name (RFC 8555 8.4); a wildcard's is its
    /// base's. `None` for an address.
    pub fn challenge_owner(&self) -> Option<Result<Name, hickory_proto::ProtoError>> {
        let base = self.base()?;
        Some(Name::from_ascii(ACME_CHALLENGE_LABEL).and_then(|label| label.append_domain(&base)))
    }

    /// Whether `identifier` (as an ACME authorization shows it, `*.` for a wildcard) is
    /// this name: DNS names compare without case or a final dot.
    pub fn is(&self, identifier: &str) -> bool {
        let bare = |s: &str| s.trim_end_matches('.').to_ascii_lowercase();
        bare(&self.text) == bare(identifier)
    }
}

const ACME_CHALLENGE_LABEL: &str = "_acme-challenge";

impl std::fmt::Display for TlsName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// The built-in local CA; the leaf lives this many days.
    LocalCa { leaf_days: u32 },
    /// PEM files, re-read on SIGHUP.
    Files {
        cert: std::path::PathBuf,
        key: std::path::PathBuf,
    },
    /// An ACME CA.
    Acme(Box<AcmeConfig>),
    /// The master's certificate zone (workers).
    CertificateZone,
}

/// Why a node that publishes the certificate zone takes DNS names only.
pub(super) const PUBLISHED_NAMES: &str = "a master publishing [certificate-zone] takes DNS \
     names only (the bundle's names and the workers' checks are names; clients verify one \
     with kdig +tls-hostname=NAME)";

/// Why a certificate source takes DNS names only, if it does; the local CA and PEM files
/// serve addresses too, unless the node publishes a certificate zone.
fn dns_only(source: CertSource) -> Option<&'static str> {
    match source {
        CertSource::Acme => Some("dns-01 proves DNS names, not addresses"),
        CertSource::CertificateZone => Some(
            "a worker serves the master's certificate, whose names are DNS names only \
             (clients verify one with kdig +tls-hostname=NAME)",
        ),
        CertSource::LocalCa | CertSource::Files => None,
    }
}

impl Checker<'_> {
    /// `[tls]` with `[acme]`; a refused `[acme]` leaves `[tls]` unchecked (its problems
    /// would follow from it). Sets `tls_broken` when either was given and refused.
    pub(super) fn tls_and_acme(
        &self,
        tls: Option<file::Tls>,
        acme: Option<file::Acme>,
        udp: &[SocketAddr],
    ) -> Option<TlsConfig> {
        let given = tls.is_some() || acme.is_some();
        let acme_given = acme.is_some();
        let acme = acme.and_then(|a| self.keep(self.acme(a, udp).map(Some)));
        let tls = if acme_given && acme.is_none() {
            None
        } else {
            self.keep(self.tls_with(tls, acme))
        };
        self.tls_broken.set(given && tls.is_none());
        tls
    }

    fn tls_with(
        &self,
        tls: Option<file::Tls>,
        acme: Option<AcmeConfig>,
    ) -> Result<Option<TlsConfig>, ConfigError> {
        match (tls, acme) {
            (None, None) => Ok(None),
            (None, Some(_)) => Err(self.invalid(
                "acme",
                "[acme] needs a [tls] section with source = \"acme\"",
            )),
            (Some(tls), acme) => self.tls(tls, acme),
        }
    }

    /// `[tls]`, typed; `None` when only its names were refused (each one noted), so the
    /// source's own problems are reported in the same run.
    fn tls(
        &self,
        raw: file::Tls,
        acme: Option<AcmeConfig>,
    ) -> Result<Option<TlsConfig>, ConfigError> {
        if raw.source != CertSource::Acme && acme.is_some() {
            return Err(self.invalid("acme", "[acme] is used only with tls.source = \"acme\""));
        }
        if raw.names.is_empty() {
            return Err(self.invalid("tls.names", "at least one name is needed"));
        }
        let mut names = Vec::with_capacity(raw.names.len());
        let mut names_refused = false;
        for text in &raw.names {
            match self.tls_name(text, dns_only(raw.source)) {
                Ok(name) => names.push(name),
                Err(e) => {
                    self.note(e);
                    names_refused = true;
                }
            }
        }
        let source = self.source(raw, acme)?;
        Ok((!names_refused).then_some(TlsConfig { names, source }))
    }

    /// `tls.source` with the keys that go with it.
    fn source(
        &self,
        raw: file::Tls,
        acme: Option<AcmeConfig>,
    ) -> Result<CertificateSource, ConfigError> {
        let files_given = raw.cert_file.is_some() || raw.key_file.is_some();
        let not_with = |source: &str| {
            self.invalid(
                "tls.source",
                format!("cert-file, key-file and leaf-days do not go with \"{source}\""),
            )
        };
        Ok(match raw.source {
            CertSource::LocalCa => {
                if files_given {
                    return Err(self.invalid(
                        "tls.cert-file",
                        "cert-file and key-file need `source = \"files\"`",
                    ));
                }
                let leaf_days = raw.leaf_days.unwrap_or(DEFAULT_LEAF_DAYS);
                if leaf_days == 0 {
                    return Err(self.invalid("tls.leaf-days", "must be at least 1"));
                }
                CertificateSource::LocalCa { leaf_days }
            }
            CertSource::Files => self.files(raw)?,
            CertSource::CertificateZone => {
                if files_given || raw.leaf_days.is_some() {
                    return Err(not_with("certificate-zone"));
                }
                CertificateSource::CertificateZone
            }
            CertSource::Acme => {
                let acme = acme.ok_or_else(|| {
                    self.invalid("tls.source", "\"acme\" needs an [acme] section")
                })?;
                if files_given || raw.leaf_days.is_some() {
                    return Err(not_with("acme"));
                }
                CertificateSource::Acme(Box::new(acme))
            }
        })
    }

    /// `source = "files"`: both files, no local CA key.
    fn files(&self, raw: file::Tls) -> Result<CertificateSource, ConfigError> {
        let cert = raw
            .cert_file
            .ok_or_else(|| self.invalid("tls.cert-file", "missing (source = \"files\")"))?;
        let key = raw
            .key_file
            .ok_or_else(|| self.invalid("tls.key-file", "missing (source = \"files\")"))?;
        if raw.leaf_days.is_some() {
            return Err(self.invalid("tls.leaf-days", "only for the local CA"));
        }
        Ok(CertificateSource::Files {
            cert: self.resolve(&cert),
            key: self.resolve(&key),
        })
    }

    /// The name typed; refused when it is neither a DNS name nor an address, or an address
    /// where `dns_only` says why only DNS names will do.
    fn tls_name(&self, text: &str, dns_only: Option<&str>) -> Result<TlsName, ConfigError> {
        let name = TlsName::parse(text)
            .ok_or_else(|| self.invalid("tls.names", format!("`{text}` is not a DNS name")))?;
        match dns_only {
            Some(why) if name.is_address() => {
                Err(self.invalid("tls.names", format!("`{text}` is an IP address: {why}")))
            }
            _ => Ok(name),
        }
    }

    /// dns-01 puts `_acme-challenge.<name>` in a zone this node serves: it must have one.
    pub(super) fn challenges_in_zones(
        &self,
        names: &[TlsName],
        zones: &[ZoneConfig],
    ) -> Result<(), ConfigError> {
        for name in names {
            let Some(owner) = name.challenge_owner() else {
                continue; // addresses are refused for ACME before this
            };
            let owner = owner.map_err(|e| self.invalid("tls.names", format!("`{name}`: {e}")))?;
            if !zones.iter().any(|z| z.origin.zone_of(&owner)) {
                return Err(self.invalid(
                    "tls.names",
                    format!("`{name}`: dns-01 needs {owner} inside one of this node's zones"),
                ));
            }
        }
        Ok(())
    }

    /// Published records go into the node's zones: at least one certificate name must be
    /// inside one (names outside every zone, such as `localhost`, are skipped).
    pub(super) fn published_names_in_zones(&self, config: &Config) {
        let Some(tls) = &config.tls else { return };
        let inside = tls
            .names
            .iter()
            .filter_map(TlsName::base)
            .any(|name| config.zones.iter().any(|z| z.origin.zone_of(&name)));
        if !inside {
            self.note(self.invalid(
                "publish",
                "no name of tls.names is inside one of this node's zones: nothing to publish at",
            ));
        }
    }
}
