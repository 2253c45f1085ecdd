//! The typed node configuration, built once from the TOML file.
//!
//! Owns parsing and the checks that need nothing but the file itself (syntax, unknown keys,
//! addresses, names, which keys go together). It must not open sockets or read other files:
//! zone files and TLS material are checked by their own modules (see `node::prepare`).
//! Relative paths in the file are taken from the directory that holds the file.
//!
//! One file a concept: [`file`](mod@file) the TOML as written (serde, both ways), `role` the master's
//! and the worker's own sections, `tls` the served certificate's names and source, `acme`,
//! `forward`, `listen`, `certificate_zone`, `publish`, `update`, `limits`.

mod acme;
mod certificate_zone;
pub mod file;
mod forward;
mod limits;
mod listen;
mod publish;
mod role;
mod tls;
mod update;

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use hickory_proto::rr::Name;

pub use acme::{
    AcmeConfig, DEFAULT_PROPAGATION_SECS, DEFAULT_RETRY_BASE_SECS, Eab, LETSENCRYPT,
    LETSENCRYPT_STAGING,
};
pub use certificate_zone::{
    CERTIFICATE_ZONE_LABEL, CertificateReader, CertificateZoneConfig, Floors, WorkerKey,
};
pub use file::{Challenge, KeyAlgorithm, RoleKind};
pub use forward::{ForwardConfig, Upstream, UpstreamTransport};
pub use limits::{DEFAULT_UDP_MAX_PAYLOAD, Limits, Prefix, PrefixError, RrlConfig};
pub use listen::Listen;
pub use publish::PublishConfig;
pub use role::{MasterConfig, Role, WorkerConfig};
pub use tls::{CertificateSource, DEFAULT_LEAF_DAYS, TlsConfig, TlsName};
pub use update::{DEFAULT_GRANT, Grant, GrantKind, UpdateConfig, UpdateKey};

/// A problem with the configuration file itself.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("failed to read config {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid config {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
}

/// Every problem found in one configuration file, in file order; shown one a line.
#[derive(Debug)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let lines: Vec<String> = self.0.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

impl std::error::Error for ConfigErrors {}

impl From<ConfigError> for ConfigErrors {
    fn from(error: ConfigError) -> Self {
        Self(vec![error])
    }
}

/// Everything a node needs to know, typed.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages.
    pub path: PathBuf,
    /// What the node does in the cluster, with the sections only that role has.
    pub role: Role,
    pub state_dir: PathBuf,
    pub listen: Listen,
    pub tls: Option<TlsConfig>,
    pub zones: Vec<ZoneConfig>,
    pub forward: Option<ForwardConfig>,
    pub transfer: Option<TransferConfig>,
    /// What one client, connection or query may cost.
    pub limits: Limits,
    /// UDP response rate limiting, when configured.
    pub rrl: Option<RrlConfig>,
    /// `[metrics] listen`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics: Option<SocketAddr>,
}

/// `[transfer]`, typed: AXFR needs one of these TSIG keys, and a listed address if any.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub tsig_key_file: PathBuf,
    pub allow: Vec<IpAddr>,
    /// Secondaries told of every change (NOTIFY), signed with the file's first key.
    pub notify: Vec<SocketAddr>,
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub file: PathBuf,
}

impl Config {
    /// Reads and checks the file at `path`; every problem is returned, not only the first.
    pub fn load(path: &Path) -> Result<Self, ConfigErrors> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks `text` as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigErrors> {
        let raw: file::File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: syntax_message(&e),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let checker = Checker {
            path,
            base,
            problems: RefCell::default(),
            tls_broken: Cell::new(false),
        };
        let config = checker.config(raw);
        let problems = checker.problems.into_inner();
        match config {
            Ok(Some(config)) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigErrors(problems)),
            Err(e) => Err(ConfigErrors(problems.into_iter().chain([e]).collect())),
        }
    }

    /// The worker's own sections, when the node is one.
    pub fn worker(&self) -> Option<&WorkerConfig> {
        match &self.role {
            Role::Worker(worker) => Some(worker),
            Role::Master(_) => None,
        }
    }

    /// The master's own sections, when the node is one.
    pub fn master(&self) -> Option<&MasterConfig> {
        match &self.role {
            Role::Master(master) => Some(master),
            Role::Worker(_) => None,
        }
    }
}

/// toml's message, with a hint when the file is a cluster file given to a node command.
fn syntax_message(error: &toml::de::Error) -> String {
    let message = error.to_string().trim_end().to_string();
    if message.contains("unknown field `cluster`") {
        return format!(
            "{message}\nhint: this looks like a cluster file; use `certzone cluster render \
             --config FILE` (or `cluster up`), which derives each node's own file from it"
        );
    }
    message
}

/// Converts the serde types into the typed config, naming the key of every problem. Each
/// section is checked whatever the others hold, so one run lists every problem.
struct Checker<'a> {
    path: &'a Path,
    base: &'a Path,
    /// Problems found so far; a section with one is left out of the config, and checks
    /// that depend on it are skipped rather than report what follows from it.
    problems: RefCell<Vec<ConfigError>>,
    /// `[tls]` or `[acme]` was given but refused: checks that need it are skipped.
    tls_broken: Cell<bool>,
}

impl Checker<'_> {
    /// Records the problem of `result`, if any, and goes on with the default.
    fn keep<T: Default>(&self, result: Result<T, ConfigError>) -> T {
        result.unwrap_or_else(|e| {
            self.problems.borrow_mut().push(e);
            T::default()
        })
    }

    fn note(&self, error: ConfigError) {
        self.problems.borrow_mut().push(error);
    }

    /// The whole file, section by section in the order their problems are listed. `None`
    /// when the role's own sections were refused (the problem is noted).
    fn config(&self, raw: file::File) -> Result<Option<Config>, ConfigError> {
        let file::File {
            role,
            state_dir,
            listen,
            tls,
            zones,
            forward,
            acme,
            certificate_zone,
            transfer,
            primary,
            secondaries,
            limits,
            rrl,
            metrics,
            publish,
            update,
        } = raw;
        let tls_given = tls.is_some() || acme.is_some();
        let tls = self.tls_and_acme(tls, acme, &listen.udp);
        let config = Config {
            path: self.path.to_path_buf(),
            // A stand-in until the role's sections are checked against the typed rest.
            role: Role::Master(MasterConfig::default()),
            state_dir: self.resolve(&state_dir),
            listen: Listen::from(listen),
            tls,
            zones: self.zones(zones),
            forward: forward.and_then(|f| self.keep(self.forward(f).map(Some))),
            limits: self.limits(limits)?,
            rrl: rrl.map(|r| self.rrl(r)).transpose()?,
            metrics: metrics.map(|m| m.listen),
            transfer: transfer.map(|t| TransferConfig {
                tsig_key_file: self.resolve(&t.tsig_key_file),
                allow: t.allow,
                notify: t.notify,
            }),
        };
        let sections = role::Sections {
            certificate_zone,
            primary,
            secondaries,
            update,
        };
        let kind = role;
        let role = self.role(kind, sections, &config);
        self.listeners(&config, tls_given);
        let publish = publish.and_then(|p| {
            let publish = self.publish(p, kind, &config.listen, config.tls.as_ref());
            self.keep(publish.map(Some))
        });
        if publish.is_some() {
            self.published_names_in_zones(&config);
        }
        Ok(role.map(|role| Config {
            role: role.with_publish(publish),
            ..config
        }))
    }

    /// Every zone with a good name; each bad one is noted.
    fn zones(&self, raw: Vec<file::Zone>) -> Vec<ZoneConfig> {
        let mut seen = HashSet::new();
        let mut zones = Vec::with_capacity(raw.len());
        for (i, zone) in raw.into_iter().enumerate() {
            let key = format!("zone[{i}].name");
            let mut origin = match Name::from_ascii(&zone.name) {
                Ok(origin) => origin,
                Err(e) => {
                    self.note(self.invalid(&key, format!("`{}`: {e}", zone.name)));
                    continue;
                }
            };
            origin.set_fqdn(true);
            if !seen.insert(origin.to_lowercase()) {
                self.note(self.invalid(&key, format!("zone {origin} is listed twice")));
                continue;
            }
            zones.push(ZoneConfig {
                origin,
                file: self.resolve(&zone.file),
            });
        }
        zones
    }

    fn resolve(&self, path: &Path) -> PathBuf {
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base.join(path)
        }
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

#[cfg(test)]
mod tests;
