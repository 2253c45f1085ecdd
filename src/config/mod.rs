//! The typed node configuration, built once from the TOML file.
//!
//! Owns parsing and the checks that need nothing but the file itself (syntax, unknown keys,
//! addresses, names, which keys go together). It must not open sockets or read other files:
//! zone files and TLS material are checked by their own modules (see `node::prepare`).
//! Relative paths in the file are taken from the directory that holds the file.

mod certificate_zone;
mod file;
mod limits;
mod publish;
mod update;

use std::{
    cell::{Cell, RefCell},
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use hickory_proto::rr::Name;

use file::{CertSource, UpstreamProtocol};
pub use file::{Challenge, KeyAlgorithm, Role};
pub use limits::{DEFAULT_UDP_MAX_PAYLOAD, Limits, Prefix, RrlConfig};
pub use publish::PublishConfig;
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
    pub role: Role,
    pub state_dir: PathBuf,
    pub listen: Listen,
    pub tls: Option<TlsConfig>,
    pub zones: Vec<ZoneConfig>,
    pub forward: Option<ForwardConfig>,
    pub certificate_zone: Option<CertificateZoneConfig>,
    pub transfer: Option<TransferConfig>,
    /// Set exactly when `role` is worker.
    pub worker: Option<WorkerConfig>,
    /// What one client, connection or query may cost.
    pub limits: Limits,
    /// UDP response rate limiting, when configured.
    pub rrl: Option<RrlConfig>,
    /// `[metrics] listen`: where `/metrics`, `/healthz` and `/readyz` are served.
    pub metrics: Option<SocketAddr>,
    /// Records announcing the certificate (master only), when configured.
    pub publish: Option<PublishConfig>,
    /// `[update]`: RFC 2136 UPDATE keys and grants (masters only).
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

/// `[certificate-zone]`, typed.
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

/// `[transfer]`, typed: AXFR needs one of these TSIG keys, and a listed address if any.
#[derive(Debug, Clone)]
pub struct TransferConfig {
    pub tsig_key_file: PathBuf,
    pub allow: Vec<IpAddr>,
    /// Secondaries told of every change (NOTIFY), signed with the file's first key.
    pub notify: Vec<SocketAddr>,
}

/// The listener addresses (each list may be empty) and how they answer.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
    /// Whether answers from the zones are prepared once and reused (`crate::prepared`).
    pub prepared_answers: bool,
}

/// The served certificate: its names and its source.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub names: Vec<String>,
    pub source: CertificateSource,
}

#[derive(Debug, Clone)]
pub enum CertificateSource {
    /// The built-in local CA; the leaf lives this many days.
    LocalCa { leaf_days: u32 },
    /// PEM files, re-read on SIGHUP.
    Files { cert: PathBuf, key: PathBuf },
    /// An ACME CA.
    Acme(Box<AcmeConfig>),
    /// The master's certificate zone (workers).
    CertificateZone,
}

/// `[acme]`, typed.
#[derive(Debug, Clone)]
pub struct AcmeConfig {
    /// The directory URL (presets already expanded).
    pub directory: String,
    pub contact: Vec<String>,
    pub challenge: Challenge,
    pub eab: Option<Eab>,
    /// Extra roots for the directory's own HTTPS (Pebble, private CAs).
    pub ca_roots: Vec<PathBuf>,
    pub key_algorithm: KeyAlgorithm,
    /// Servers that must answer the challenge before the CA is told "ready".
    pub authoritative: Vec<SocketAddr>,
    pub propagation_timeout: Duration,
    /// First delay after a failure; later ones grow tenfold, capped.
    pub retry_base: Duration,
    pub max_orders_per_hour: u32,
    /// Every HTTP request to the CA, answer included.
    pub http_timeout: Duration,
    /// A whole order, from creation to the certificate.
    pub order_timeout: Duration,
}

/// External Account Binding credentials.
#[derive(Clone)]
pub struct Eab {
    pub key_id: String,
    pub hmac_key: Vec<u8>,
}

impl std::fmt::Debug for Eab {
    // The HMAC key is a secret: never in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Eab")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// Directory presets operators can name instead of a URL.
pub const LETSENCRYPT: &str = "https://acme-v02.api.letsencrypt.org/directory";
pub const LETSENCRYPT_STAGING: &str = "https://acme-staging-v02.api.letsencrypt.org/directory";

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub file: PathBuf,
}

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

/// The local CA's default leaf lifetime, the same as a public ACME certificate's.
pub(crate) const DEFAULT_LEAF_DAYS: u32 = 90;
const DEFAULT_FORWARD_TIMEOUT_MS: u64 = 3000;
pub(crate) const DEFAULT_PROPAGATION_SECS: u64 = 60;
pub(crate) const DEFAULT_RETRY_BASE_SECS: u64 = 60;
const DEFAULT_MAX_ORDERS_PER_HOUR: u32 = 5;
/// The certificate zone's label under the first zone when no name is given.
pub const CERTIFICATE_ZONE_LABEL: &str = "_certzone";

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
            Ok(config) if problems.is_empty() => Ok(config),
            Ok(_) => Err(ConfigErrors(problems)),
            Err(e) => Err(ConfigErrors(problems.into_iter().chain([e]).collect())),
        }
    }

    /// Every TCP-based listener address, for clash checks and messages.
    fn stream_addresses(&self) -> impl Iterator<Item = (&'static str, &SocketAddr)> {
        let listen = &self.listen;
        listen
            .tcp
            .iter()
            .map(|a| ("listen.tcp", a))
            .chain(listen.tls.iter().map(|a| ("listen.tls", a)))
            .chain(listen.https.iter().map(|a| ("listen.https", a)))
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

/// Why a node that publishes the certificate zone takes DNS names only.
const PUBLISHED_NAMES: &str = "a master publishing [certificate-zone] takes DNS names only (the \
     bundle's names and the workers' checks are names; clients verify one with \
     kdig +tls-hostname=NAME)";

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

    fn config(&self, raw: file::File) -> Result<Config, ConfigError> {
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
            role,
            state_dir: self.resolve(&state_dir),
            listen: Listen {
                udp: listen.udp,
                tcp: listen.tcp,
                tls: listen.tls,
                https: listen.https,
                prepared_answers: listen.prepared_answers.unwrap_or(true),
            },
            tls,
            zones: self.zones(zones),
            forward: forward.and_then(|f| self.keep(self.forward(f).map(Some))),
            certificate_zone: None,
            worker: None,
            limits: self.limits(limits)?,
            rrl: rrl.map(|r| self.rrl(r)).transpose()?,
            metrics: metrics.map(|m| m.listen),
            publish: None,
            update: None,
            transfer: transfer.map(|t| TransferConfig {
                tsig_key_file: self.resolve(&t.tsig_key_file),
                allow: t.allow,
                notify: t.notify,
            }),
        };
        let config = match role {
            Role::Master => {
                if primary.is_some() || !secondaries.is_empty() {
                    self.note(self.invalid(
                        "primary",
                        "[primary] and [[secondary]] are for role = \"worker\"",
                    ));
                }
                let certificate_zone = certificate_zone
                    .and_then(|c| self.keep(self.certificate_zone(c, &config).map(Some)));
                Config {
                    certificate_zone,
                    update: update.map(|u| self.update(u)),
                    ..config
                }
            }
            Role::Worker => {
                if update.is_some() {
                    self.note(self.invalid(
                        "update",
                        "[update] is for the master; workers refuse UPDATE (REFUSED), \
                         clients send it to the master",
                    ));
                }
                let worker = self
                    .worker(primary, secondaries, certificate_zone, &config)
                    .map_err(|e| self.note(e))
                    .ok();
                Config { worker, ..config }
            }
        };
        self.listeners(&config, tls_given);
        let publish = publish.and_then(|p| {
            let publish = self.publish(p, role, &config.listen, config.tls.as_ref());
            self.keep(publish.map(Some))
        });
        if publish.is_some() {
            self.published_names_in_zones(&config);
        }
        Ok(Config { publish, ..config })
    }

    /// `[tls]` with `[acme]`; a refused `[acme]` leaves `[tls]` unchecked (its problems
    /// would follow from it). Sets `tls_broken` when either was given and refused.
    fn tls_and_acme(
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
        let bad: Vec<ConfigError> = raw
            .names
            .iter()
            .filter_map(|name| self.tls_name_problem(name, dns_only(raw.source)))
            .collect();
        let names_refused = !bad.is_empty();
        bad.into_iter().for_each(|e| self.note(e));
        let source = match raw.source {
            CertSource::LocalCa => {
                if raw.cert_file.is_some() || raw.key_file.is_some() {
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
            CertSource::Files => {
                let cert = raw
                    .cert_file
                    .ok_or_else(|| self.invalid("tls.cert-file", "missing (source = \"files\")"))?;
                let key = raw
                    .key_file
                    .ok_or_else(|| self.invalid("tls.key-file", "missing (source = \"files\")"))?;
                if raw.leaf_days.is_some() {
                    return Err(self.invalid("tls.leaf-days", "only for the local CA"));
                }
                CertificateSource::Files {
                    cert: self.resolve(&cert),
                    key: self.resolve(&key),
                }
            }
            CertSource::CertificateZone => {
                if raw.cert_file.is_some() || raw.key_file.is_some() || raw.leaf_days.is_some() {
                    return Err(self.invalid(
                        "tls.source",
                        "cert-file, key-file and leaf-days do not go with \"certificate-zone\"",
                    ));
                }
                CertificateSource::CertificateZone
            }
            CertSource::Acme => {
                let acme = acme.ok_or_else(|| {
                    self.invalid("tls.source", "\"acme\" needs an [acme] section")
                })?;
                if raw.cert_file.is_some() || raw.key_file.is_some() || raw.leaf_days.is_some() {
                    return Err(self.invalid(
                        "tls.source",
                        "cert-file, key-file and leaf-days do not go with \"acme\"",
                    ));
                }
                CertificateSource::Acme(Box::new(acme))
            }
        };
        Ok((!names_refused).then_some(TlsConfig {
            names: raw.names,
            source,
        }))
    }

    /// A name that is neither a DNS name nor an address; an address where `dns_only` says
    /// why only DNS names will do.
    fn tls_name_problem(&self, name: &str, dns_only: Option<&str>) -> Option<ConfigError> {
        if name.parse::<IpAddr>().is_ok() {
            return dns_only
                .map(|why| self.invalid("tls.names", format!("`{name}` is an IP address: {why}")));
        }
        Name::from_ascii(name)
            .err()
            .map(|_| self.invalid("tls.names", format!("`{name}` is not a DNS name")))
    }

    fn acme(&self, raw: file::Acme, udp: &[SocketAddr]) -> Result<AcmeConfig, ConfigError> {
        let directory = match raw.directory.as_str() {
            "letsencrypt" => LETSENCRYPT.to_string(),
            "letsencrypt-staging" => LETSENCRYPT_STAGING.to_string(),
            url if url.starts_with("https://") => url.to_string(),
            other => {
                return Err(self.invalid(
                    "acme.directory",
                    format!("`{other}` is neither an https:// URL nor a preset (letsencrypt, letsencrypt-staging)"),
                ));
            }
        };
        if let Some(bad) = raw.contact.iter().find(|c| !c.starts_with("mailto:")) {
            return Err(self.invalid("acme.contact", format!("`{bad}` must be a mailto: URL")));
        }
        let eab = match (raw.eab_key_id, raw.eab_hmac_key) {
            (None, None) => None,
            (Some(key_id), Some(key)) => {
                use base64::Engine;
                let hmac_key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(key.trim_end_matches('='))
                    .map_err(|e| {
                        self.invalid("acme.eab-hmac-key", format!("not base64url: {e}"))
                    })?;
                Some(Eab { key_id, hmac_key })
            }
            _ => {
                return Err(
                    self.invalid("acme.eab-key-id", "eab-key-id and eab-hmac-key go together")
                );
            }
        };
        let authoritative = if raw.authoritative.is_empty() {
            let own = udp.first().ok_or_else(|| {
                self.invalid(
                    "acme.authoritative",
                    "no UDP listener to check the challenge on; list the servers here",
                )
            })?;
            vec![*own]
        } else {
            raw.authoritative
        };
        let (http_timeout, order_timeout) =
            self.acme_timeouts(raw.http_timeout_secs, raw.order_timeout_secs)?;
        let positive = |key: &str, value: u64| {
            if value == 0 {
                Err(self.invalid(key, "must be above 0"))
            } else {
                Ok(value)
            }
        };
        Ok(AcmeConfig {
            directory,
            contact: raw.contact,
            challenge: raw.challenge,
            eab,
            ca_roots: raw.ca_roots.iter().map(|p| self.resolve(p)).collect(),
            key_algorithm: raw.key_algorithm,
            authoritative,
            propagation_timeout: Duration::from_secs(positive(
                "acme.propagation-timeout-secs",
                raw.propagation_timeout_secs
                    .unwrap_or(DEFAULT_PROPAGATION_SECS),
            )?),
            retry_base: Duration::from_secs(positive(
                "acme.retry-base-secs",
                raw.retry_base_secs.unwrap_or(DEFAULT_RETRY_BASE_SECS),
            )?),
            max_orders_per_hour: positive(
                "acme.max-orders-per-hour",
                u64::from(
                    raw.max_orders_per_hour
                        .unwrap_or(DEFAULT_MAX_ORDERS_PER_HOUR),
                ),
            )? as u32,
            http_timeout,
            order_timeout,
        })
    }

    fn worker(
        &self,
        primary: Option<file::Primary>,
        secondaries: Vec<file::Secondary>,
        certificate_zone: Option<file::CertificateZone>,
        config: &Config,
    ) -> Result<WorkerConfig, ConfigError> {
        let primary =
            primary.ok_or_else(|| self.invalid("primary", "a worker needs a [primary] section"))?;
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
        // With [tls] refused (already reported), take the section as meant for it.
        let from_zone = matches!(
            config.tls.as_ref().map(|t| &t.source),
            Some(CertificateSource::CertificateZone)
        ) || (self.tls_broken.get() && certificate_zone.is_some());
        let certificate = match (certificate_zone, from_zone) {
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

    /// `[update]`: each grant read, each bad one noted with its key's position.
    fn update(&self, raw: file::Update) -> UpdateConfig {
        if raw.keys.is_empty() {
            self.note(self.invalid("update.key", "at least one [[update.key]] is needed"));
        }
        let keys = raw.keys.into_iter().enumerate().map(|(i, key)| {
            let texts = key.grant.unwrap_or_else(|| vec![DEFAULT_GRANT.to_string()]);
            if texts.is_empty() {
                self.note(self.invalid(
                    &format!("update.key[{i}].grant"),
                    "an empty list grants nothing; leave it out for the default",
                ));
            }
            let grants = texts
                .iter()
                .filter_map(|text| {
                    Grant::parse(text)
                        .map_err(|m| self.note(self.invalid(&format!("update.key[{i}].grant"), m)))
                        .ok()
                })
                .collect();
            UpdateKey {
                file: self.resolve(&key.tsig_key_file),
                grants,
            }
        });
        let wait = raw
            .wait_for_workers_ms
            .unwrap_or(update::DEFAULT_WAIT_FOR_WORKERS_MS);
        if wait > 60_000 {
            self.note(self.invalid(
                "update.wait-for-workers-ms",
                format!("{wait}: at most 60000 (clients time out long before)"),
            ));
        }
        UpdateConfig {
            keys: keys.collect(),
            wait_for_workers: Duration::from_millis(wait.min(60_000)),
        }
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

    fn forward(&self, raw: file::Forward) -> Result<ForwardConfig, ConfigError> {
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

    /// Listener lists must not clash, and TLS listeners need a certificate. Notes every
    /// problem; `tls_given`: a `[tls]` section was there (refused or not).
    fn listeners(&self, config: &Config, tls_given: bool) {
        let listen = &config.listen;
        let mut udp = HashSet::new();
        for addr in &listen.udp {
            if !udp.insert(addr) {
                self.note(self.invalid("listen.udp", format!("{addr} is listed twice")));
            }
        }
        let mut stream = HashSet::new();
        for (key, addr) in config.stream_addresses() {
            if !stream.insert(addr) {
                self.note(self.invalid(key, format!("{addr} is already used by another listener")));
            }
        }
        if let Some(metrics) = config.metrics
            && stream.contains(&metrics)
        {
            let message = format!("{metrics} is already a DNS listener; give metrics its own port");
            self.note(self.invalid("metrics.listen", message));
        }
        let wants_tls = !listen.tls.is_empty() || !listen.https.is_empty();
        if wants_tls && !tls_given {
            self.note(self.invalid("tls", "listen.tls and listen.https need a [tls] section"));
        }
        // The challenge check reads the zones: skipped when a zone was refused.
        if let Some(TlsConfig {
            names,
            source: CertificateSource::Acme(_),
        }) = &config.tls
            && self.problems.borrow().is_empty()
            && let Err(e) = self.challenges_in_zones(names, &config.zones)
        {
            self.note(e);
        }
        if listen.udp.is_empty() && stream.is_empty() {
            self.note(self.invalid("listen", "no listener is configured"));
        }
    }

    /// dns-01 puts `_acme-challenge.<name>` in a zone this node serves: it must have one.
    fn challenges_in_zones(
        &self,
        names: &[String],
        zones: &[ZoneConfig],
    ) -> Result<(), ConfigError> {
        for name in names {
            let owner = challenge_owner(name)
                .map_err(|e| self.invalid("tls.names", format!("`{name}`: {e}")))?;
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
    fn published_names_in_zones(&self, config: &Config) {
        let Some(tls) = &config.tls else { return };
        let inside = tls.names.iter().any(|name| {
            Name::from_ascii(name.trim_start_matches("*.")).is_ok_and(|mut n| {
                n.set_fqdn(true);
                config.zones.iter().any(|z| z.origin.zone_of(&n))
            })
        });
        if !inside {
            self.note(self.invalid(
                "publish",
                "no name of tls.names is inside one of this node's zones: nothing to publish at",
            ));
        }
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

/// Where dns-01 puts the challenge for `name` (RFC 8555 8.4); a wildcard's is its base's.
pub fn challenge_owner(name: &str) -> Result<Name, hickory_proto::ProtoError> {
    let base = name.strip_prefix("*.").unwrap_or(name);
    let mut owner = Name::from_ascii(format!("_acme-challenge.{}", base.trim_end_matches('.')))?;
    owner.set_fqdn(true);
    Ok(owner)
}

#[cfg(test)]
mod tests;
