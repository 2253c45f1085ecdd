//! The role as a type: a master's own sections (`[certificate-zone]` as publisher,
//! `[publish]`, `[update]`) and a worker's (`[primary]`, `[[secondary]]`, `[certificate-zone]`
//! as reader). A node holds the sections of its role only, so callers match on [`Role`]
//! instead of checking which options happen to be set.
//!
//! Owns which sections go with which role. It must not read the files they name.

use std::{net::SocketAddr, path::PathBuf};

use hickory_proto::rr::Name;

use super::{
    CertificateReader, CertificateSource, CertificateZoneConfig, Checker, Config, ConfigError,
    PublishConfig, RoleKind, UpdateConfig, file,
};

/// What the node does in the cluster, with what only that role configures.
#[derive(Debug, Clone)]
pub enum Role {
    /// The primary nameserver: owns the certificate and the zones.
    Master(MasterConfig),
    /// A secondary: replicates the master's zones and serves its certificate.
    Worker(WorkerConfig),
}

impl Role {
    /// The word the file uses.
    pub fn kind(&self) -> RoleKind {
        match self {
            Self::Master(_) => RoleKind::Master,
            Self::Worker(_) => RoleKind::Worker,
        }
    }

    /// `[publish]` goes to a master; the check refuses it for a worker before this.
    pub(super) fn with_publish(self, publish: Option<PublishConfig>) -> Self {
        match self {
            Self::Master(master) => Self::Master(MasterConfig { publish, ..master }),
            worker @ Self::Worker(_) => worker,
        }
    }
}

/// A master's own sections, each optional.
#[derive(Debug, Clone, Default)]
pub struct MasterConfig {
    /// `[certificate-zone]`: the certificate published, signed and sealed, for the workers.
    pub certificate_zone: Option<CertificateZoneConfig>,
    /// Records announcing the certificate, when configured.
    pub publish: Option<PublishConfig>,
    /// `[update]`: RFC 2136 UPDATE keys and grants.
    pub update: Option<UpdateConfig>,
}

/// What a worker replicates, and from whom.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub primary: SocketAddr,
    pub tsig_key_file: PathBuf,
    /// Ordinary zones transferred from the primary.
    pub secondaries: Vec<Name>,
    /// The certificate zone to read, verify and serve TLS from.
    pub certificate: Option<CertificateReader>,
}

/// The sections of the file that belong to one role or the other.
pub(super) struct Sections {
    pub(super) certificate_zone: Option<file::CertificateZone>,
    pub(super) primary: Option<file::Primary>,
    pub(super) secondaries: Vec<file::Secondary>,
    pub(super) update: Option<file::Update>,
}

impl Checker<'_> {
    /// The role with its sections; the other role's sections are noted as problems. `None`
    /// when a worker's sections were refused (noted too).
    pub(super) fn role(&self, kind: RoleKind, sections: Sections, config: &Config) -> Option<Role> {
        match kind {
            RoleKind::Master => Some(Role::Master(self.master(sections, config))),
            RoleKind::Worker => {
                if sections.update.is_some() {
                    self.note(self.invalid(
                        "update",
                        "[update] is for the master; workers refuse UPDATE (REFUSED), \
                         clients send it to the master",
                    ));
                }
                self.worker(sections, config)
                    .map_err(|e| self.note(e))
                    .ok()
                    .map(Role::Worker)
            }
        }
    }

    fn master(&self, sections: Sections, config: &Config) -> MasterConfig {
        if sections.primary.is_some() || !sections.secondaries.is_empty() {
            self.note(self.invalid(
                "primary",
                "[primary] and [[secondary]] are for role = \"worker\"",
            ));
        }
        let certificate_zone = sections
            .certificate_zone
            .and_then(|c| self.keep(self.certificate_zone(c, config).map(Some)));
        MasterConfig {
            certificate_zone,
            publish: None,
            update: sections.update.map(|u| self.update(u)),
        }
    }

    fn worker(&self, sections: Sections, config: &Config) -> Result<WorkerConfig, ConfigError> {
        let primary = sections
            .primary
            .ok_or_else(|| self.invalid("primary", "a worker needs a [primary] section"))?;
        let names = self.secondaries(&sections.secondaries, config)?;
        // With [tls] refused (already reported), take the section as meant for it.
        let from_zone = matches!(
            config.tls.as_ref().map(|t| &t.source),
            Some(CertificateSource::CertificateZone)
        ) || (self.tls_broken.get() && sections.certificate_zone.is_some());
        let certificate = match (sections.certificate_zone, from_zone) {
            (Some(raw), true) => Some(self.certificate_reader(raw, names.first(), config)?),
            (None, true) => {
                return Err(self.invalid(
                    "certificate-zone",
                    "tls.source = \"certificate-zone\" needs this section",
                ));
            }
            (Some(_), false) => {
                return Err(self.invalid(
                    "tls.source",
                    "reading [certificate-zone] needs tls.source = \"certificate-zone\"",
                ));
            }
            (None, false) => None,
        };
        Ok(WorkerConfig {
            primary: primary.address,
            tsig_key_file: self.resolve(&primary.tsig_key_file),
            secondaries: names,
            certificate,
        })
    }

    /// `[[secondary]]` names, none listed twice nor also a `[[zone]]`.
    fn secondaries(
        &self,
        secondaries: &[file::Secondary],
        config: &Config,
    ) -> Result<Vec<Name>, ConfigError> {
        let mut names = Vec::with_capacity(secondaries.len());
        for (i, secondary) in secondaries.iter().enumerate() {
            let key = format!("secondary[{i}].name");
            let mut name = Name::from_ascii(&secondary.name)
                .map_err(|e| self.invalid(&key, format!("`{}`: {e}", secondary.name)))?;
            name.set_fqdn(true);
            if names.contains(&name) || config.zones.iter().any(|z| z.origin == name) {
                return Err(self.invalid(&key, format!("zone {name} is listed twice")));
            }
            names.push(name);
        }
        Ok(names)
    }
}
