//! `[certificate-zone]` in both roles: the master's (signing key file, workers, format,
//! cluster id, SOA timers) and a worker's (trusted keys, sealing key, roots, cluster id,
//! floors), each refusing the other role's keys.
//!
//! Owns the checks that need only the file; the key files themselves are read by
//! `publication` and `replication`.

use std::path::PathBuf;

use hickory_proto::rr::Name;

use super::{Checker, Config, ConfigError, file, tls::PUBLISHED_NAMES};

/// The certificate zone's label under the first zone when no name is given.
pub const CERTIFICATE_ZONE_LABEL: &str = "_certzone";

/// How a worker reads the certificate zone.
#[derive(Debug, Clone)]
pub struct CertificateReader {
    pub origin: Name,
    /// SPKI PEM file of the trusted signing keys (one or more blocks), re-read on SIGHUP.
    pub signing_public_key: PathBuf,
    pub sealing_key: PathBuf,
    /// Roots the chain must reach; empty: not checked.
    pub roots: Vec<PathBuf>,
    /// The cluster's id; a format 2 bundle must carry this one.
    pub cluster_id: String,
    /// Floors below which no bundle is accepted, even by a worker with nothing held.
    pub floors: Floors,
}

/// A worker's floors (docs/PROTOCOL.md, "Reader rules").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    pub version: u64,
    /// Unix seconds: bundles published earlier (and format 1 ones) are refused.
    pub published: u64,
    pub format: u8,
}

/// `[certificate-zone]` of a master, typed.
#[derive(Debug, Clone)]
pub struct CertificateZoneConfig {
    pub origin: Name,
    /// PKCS#8 PEM file of the signing keys (one, or two during a rotation), re-read on
    /// SIGHUP.
    pub signing_key: PathBuf,
    pub workers: Vec<WorkerKey>,
    pub ttl: u32,
    pub refresh: u32,
    pub retry: u32,
    /// The cluster's id, signed into format 2 bundles.
    pub cluster_id: String,
    /// The bundle format published: 2, or 1 while some workers read only format 1.
    pub format: u8,
}

/// A worker the master seals the key for.
#[derive(Debug, Clone)]
pub struct WorkerKey {
    pub name: String,
    pub public_key: PathBuf,
}

impl Checker<'_> {
    /// A worker's `[certificate-zone]`; its name defaults to `_certzone.<first
    /// [[secondary]]>` (the zone the master serves it), else under the first `[[zone]]`.
    pub(super) fn certificate_reader(
        &self,
        raw: file::CertificateZone,
        first_secondary: Option<&Name>,
        config: &Config,
    ) -> Result<CertificateReader, ConfigError> {
        if raw.signing_key.is_some() || !raw.workers.is_empty() || raw.format.is_some() {
            return Err(self.invalid(
                "certificate-zone.signing-key",
                "signing-key, workers and format are for the master",
            ));
        }
        let public = raw.signing_public_key.as_ref().ok_or_else(|| {
            self.invalid(
                "certificate-zone.signing-public-key",
                "missing: the worker pins the signing key",
            )
        })?;
        let sealing = raw.sealing_key.as_ref().ok_or_else(|| {
            self.invalid(
                "certificate-zone.sealing-key",
                "missing: the worker's own sealing key",
            )
        })?;
        let format = raw.minimum_format.unwrap_or(1);
        if !(1..=2).contains(&format) {
            return Err(self.invalid("certificate-zone.minimum-format", "must be 1 or 2"));
        }
        let published = match &raw.minimum_published {
            None => 0,
            Some(moment) => self.moment("certificate-zone.minimum-published", moment)?,
        };
        let under = first_secondary.or(config.zones.first().map(|z| &z.origin));
        Ok(CertificateReader {
            origin: self.certificate_zone_name(raw.name.as_deref(), under)?,
            signing_public_key: self.resolve(public),
            sealing_key: self.resolve(sealing),
            roots: raw.roots.iter().map(|p| self.resolve(p)).collect(),
            cluster_id: self.cluster_id(raw.cluster_id)?,
            floors: Floors {
                version: raw.minimum_version.unwrap_or(0),
                published,
                format,
            },
        })
    }

    /// The configured name, or `_certzone.<under>`.
    fn certificate_zone_name(
        &self,
        name: Option<&str>,
        under: Option<&Name>,
    ) -> Result<Name, ConfigError> {
        let key = "certificate-zone.name";
        let mut origin = match name {
            Some(name) => {
                Name::from_ascii(name).map_err(|e| self.invalid(key, format!("`{name}`: {e}")))?
            }
            None => {
                let first = under.ok_or_else(|| {
                    self.invalid(key, "no name given and no zone to put it under")
                })?;
                Name::from_ascii(CERTIFICATE_ZONE_LABEL)
                    .and_then(|label| label.append_domain(first))
                    .map_err(|e| self.invalid(key, e.to_string()))?
            }
        };
        origin.set_fqdn(true);
        Ok(origin)
    }

    pub(super) fn certificate_zone(
        &self,
        raw: file::CertificateZone,
        config: &Config,
    ) -> Result<CertificateZoneConfig, ConfigError> {
        if config.tls.is_none() && !self.tls_broken.get() {
            return Err(self.invalid(
                "certificate-zone",
                "publishing a certificate needs a [tls] section",
            ));
        }
        self.no_addresses(config)?;
        self.no_worker_keys(&raw)?;
        let signing_key = raw.signing_key.as_ref().ok_or_else(|| {
            self.invalid(
                "certificate-zone.signing-key",
                "missing: the master signs the bundle",
            )
        })?;
        let first = config.zones.first().map(|z| &z.origin);
        let origin = self.certificate_zone_name(raw.name.as_deref(), first)?;
        if config.zones.iter().any(|z| z.origin == origin) {
            return Err(self.invalid(
                "certificate-zone.name",
                format!("{origin} is also a [[zone]]"),
            ));
        }
        self.unique_workers(&raw.workers)?;
        let cluster_id = self.cluster_id(raw.cluster_id)?;
        let format = self.format(raw.format, &cluster_id)?;
        Ok(CertificateZoneConfig {
            origin,
            signing_key: self.resolve(signing_key),
            workers: raw
                .workers
                .into_iter()
                .map(|w| WorkerKey {
                    name: w.name,
                    public_key: self.resolve(&w.public_key),
                })
                .collect(),
            ttl: raw.ttl.unwrap_or(300),
            refresh: raw.refresh_secs.unwrap_or(300),
            retry: raw.retry_secs.unwrap_or(60),
            cluster_id,
            format,
        })
    }

    /// Names travel in the bundle and workers check them as DNS names: no addresses.
    fn no_addresses(&self, config: &Config) -> Result<(), ConfigError> {
        let addresses: Vec<String> = config
            .tls
            .iter()
            .flat_map(|t| &t.names)
            .filter(|n| n.is_address())
            .map(|a| format!("`{a}`"))
            .collect();
        if addresses.is_empty() {
            return Ok(());
        }
        Err(self.invalid(
            "tls.names",
            format!(
                "{} is an IP address: {PUBLISHED_NAMES}",
                addresses.join(", ")
            ),
        ))
    }

    fn unique_workers(&self, workers: &[file::Worker]) -> Result<(), ConfigError> {
        let mut names = std::collections::HashSet::new();
        for (i, worker) in workers.iter().enumerate() {
            if !names.insert(worker.name.as_str()) {
                return Err(self.invalid(
                    &format!("certificate-zone.worker[{i}].name"),
                    format!("`{}` is listed twice", worker.name),
                ));
            }
        }
        Ok(())
    }

    /// The format published: 2 unless told 1, which carries no cluster id.
    fn format(&self, format: Option<u8>, cluster_id: &str) -> Result<u8, ConfigError> {
        match format.unwrap_or(2) {
            1 if !cluster_id.is_empty() => Err(self.invalid(
                "certificate-zone.cluster-id",
                "format 1 carries no cluster id; publish format 2",
            )),
            format @ (1 | 2) => Ok(format),
            _ => Err(self.invalid("certificate-zone.format", "must be 1 or 2")),
        }
    }

    fn no_worker_keys(&self, raw: &file::CertificateZone) -> Result<(), ConfigError> {
        let worker_only = raw.signing_public_key.is_some()
            || raw.sealing_key.is_some()
            || !raw.roots.is_empty()
            || raw.minimum_version.is_some()
            || raw.minimum_published.is_some()
            || raw.minimum_format.is_some();
        if worker_only {
            return Err(self.invalid(
                "certificate-zone.sealing-key",
                "signing-public-key, sealing-key, roots and the minimum-* floors are for workers",
            ));
        }
        Ok(())
    }

    /// At most 63 bytes of `a-z 0-9 - _ .`; empty when not given.
    fn cluster_id(&self, id: Option<String>) -> Result<String, ConfigError> {
        let id = id.unwrap_or_default();
        let ok = id.len() <= 63
            && id.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'-' | b'_' | b'.')
            });
        if !ok {
            return Err(self.invalid(
                "certificate-zone.cluster-id",
                format!("`{id}`: at most 63 characters of a-z 0-9 - _ ."),
            ));
        }
        Ok(id)
    }

    /// Unix seconds, or an RFC 3339 date-time string.
    fn moment(&self, key: &str, moment: &file::Moment) -> Result<u64, ConfigError> {
        match moment {
            file::Moment::Unix(secs) => Ok(*secs),
            file::Moment::Text(text) => {
                let parsed = time::OffsetDateTime::parse(
                    text,
                    &time::format_description::well_known::Rfc3339,
                )
                .map_err(|e| self.invalid(key, format!("`{text}` is not RFC 3339: {e}")))?;
                u64::try_from(parsed.unix_timestamp())
                    .map_err(|_| self.invalid(key, format!("`{text}` is before 1970")))
            }
        }
    }
}
