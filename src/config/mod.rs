//! The typed node configuration, built once from the TOML file.
//!
//! Owns parsing and the checks that need nothing but the file itself (syntax, unknown keys,
//! addresses, names, which keys go together). It must not open sockets or read other files:
//! zone files and TLS material are checked by their own modules (see `node::prepare`).
//! Relative paths in the file are taken from the directory that holds the file.

mod file;

use std::{
    collections::HashSet,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
    time::Duration,
};

use hickory_proto::rr::Name;

pub use file::Role;
use file::{CertSource, UpstreamProtocol};

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
}

/// The listener addresses; each list may be empty.
#[derive(Debug, Clone, Default)]
pub struct Listen {
    pub udp: Vec<SocketAddr>,
    pub tcp: Vec<SocketAddr>,
    pub tls: Vec<SocketAddr>,
    pub https: Vec<SocketAddr>,
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
}

#[derive(Debug, Clone)]
pub struct ZoneConfig {
    pub origin: Name,
    pub file: PathBuf,
}

#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub upstreams: Vec<Upstream>,
    pub timeout: Duration,
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
const DEFAULT_LEAF_DAYS: u32 = 90;
const DEFAULT_FORWARD_TIMEOUT_MS: u64 = 3000;

impl Config {
    /// Reads and checks the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks `text` as if it had been read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        let raw: file::File = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let checker = Checker { path, base };
        checker.config(raw)
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

/// Converts the serde types into the typed config, naming the key of every problem.
struct Checker<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl Checker<'_> {
    fn config(&self, raw: file::File) -> Result<Config, ConfigError> {
        let file::File {
            role,
            state_dir,
            listen,
            tls,
            zones,
            forward,
        } = raw;
        let config = Config {
            path: self.path.to_path_buf(),
            role,
            state_dir: self.resolve(&state_dir),
            listen: Listen {
                udp: listen.udp,
                tcp: listen.tcp,
                tls: listen.tls,
                https: listen.https,
            },
            tls: tls.map(|t| self.tls(t)).transpose()?,
            zones: self.zones(zones)?,
            forward: forward.map(|f| self.forward(f)).transpose()?,
        };
        self.listeners(&config)?;
        Ok(config)
    }

    fn tls(&self, raw: file::Tls) -> Result<TlsConfig, ConfigError> {
        if raw.names.is_empty() {
            return Err(self.invalid("tls.names", "at least one name is needed"));
        }
        for name in &raw.names {
            if name.parse::<IpAddr>().is_err() && Name::from_ascii(name).is_err() {
                return Err(self.invalid("tls.names", format!("`{name}` is not a DNS name")));
            }
        }
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
        };
        Ok(TlsConfig {
            names: raw.names,
            source,
        })
    }

    fn zones(&self, raw: Vec<file::Zone>) -> Result<Vec<ZoneConfig>, ConfigError> {
        let mut seen = HashSet::new();
        let mut zones = Vec::with_capacity(raw.len());
        for (i, zone) in raw.into_iter().enumerate() {
            let key = format!("zone[{i}].name");
            let mut origin = Name::from_ascii(&zone.name)
                .map_err(|e| self.invalid(&key, format!("`{}`: {e}", zone.name)))?;
            origin.set_fqdn(true);
            if !seen.insert(origin.to_lowercase()) {
                return Err(self.invalid(&key, format!("zone {origin} is listed twice")));
            }
            zones.push(ZoneConfig {
                origin,
                file: self.resolve(&zone.file),
            });
        }
        Ok(zones)
    }

    fn forward(&self, raw: file::Forward) -> Result<ForwardConfig, ConfigError> {
        if raw.upstreams.is_empty() {
            return Err(self.invalid("forward.upstream", "at least one upstream is needed"));
        }
        let upstreams = raw
            .upstreams
            .into_iter()
            .enumerate()
            .map(|(i, u)| self.upstream(i, u))
            .collect::<Result<_, _>>()?;
        let timeout_ms = raw.timeout_ms.unwrap_or(DEFAULT_FORWARD_TIMEOUT_MS);
        if timeout_ms == 0 {
            return Err(self.invalid("forward.timeout-ms", "must be above 0"));
        }
        Ok(ForwardConfig {
            upstreams,
            timeout: Duration::from_millis(timeout_ms),
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

    /// Listener lists must not clash, and TLS listeners need a certificate.
    fn listeners(&self, config: &Config) -> Result<(), ConfigError> {
        let listen = &config.listen;
        let mut udp = HashSet::new();
        for addr in &listen.udp {
            if !udp.insert(addr) {
                return Err(self.invalid("listen.udp", format!("{addr} is listed twice")));
            }
        }
        let mut stream = HashSet::new();
        for (key, addr) in config.stream_addresses() {
            if !stream.insert(addr) {
                return Err(
                    self.invalid(key, format!("{addr} is already used by another listener"))
                );
            }
        }
        let wants_tls = !listen.tls.is_empty() || !listen.https.is_empty();
        if wants_tls && config.tls.is_none() {
            return Err(self.invalid("tls", "listen.tls and listen.https need a [tls] section"));
        }
        if listen.udp.is_empty() && stream.is_empty() {
            return Err(self.invalid("listen", "no listener is configured"));
        }
        Ok(())
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
