//! The cluster file: one TOML file describing every node, from which each node's own config
//! is derived.
//!
//! Owns the cluster file's format and its checks (one master, unique names and addresses,
//! keys present or generated), the cluster's key directory, and the node directories it
//! writes (`render`). It must not run nodes or open sockets: `cli::cluster` starts the
//! processes, and each node reads only its own derived file like any hand-written one.

pub mod docker;
mod file;
mod keys;
mod render;
#[cfg(test)]
mod tests;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::{Path, PathBuf},
};

use hickory_proto::rr::Name;

/// A cluster node's role is the word alone: what each role configures is derived by
/// `render`, so the node's typed `config::Role` has no place here.
pub use crate::config::RoleKind as Role;
pub use docker::Docker;
pub use render::{RenderedNode, render};

/// A problem with the cluster file, its keys or the node directories.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("failed to read cluster file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid cluster file {path}: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("invalid cluster file {path}: key `{key}`: {message}")]
    Invalid {
        path: PathBuf,
        key: String,
        message: String,
    },
    #[error("cluster keys: {0}")]
    Keys(String),
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    #[error("the config derived for node `{node}` does not pass the checks: {message}")]
    Derived { node: String, message: String },
}

/// The cluster, typed and checked.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// The file this came from, for messages.
    pub path: PathBuf,
    pub state_dir: PathBuf,
    pub domain: Name,
    pub zone_file: PathBuf,
    /// Names the certificate is for; clients verify one of them.
    pub names: Vec<String>,
    pub certificate_zone: Name,
    pub refresh_secs: Option<u32>,
    pub retry_secs: Option<u32>,
    /// The cluster id signed into its bundles (`[certificate-zone] cluster-id`).
    pub id: Option<String>,
    pub ports: Ports,
    pub ca: Ca,
    pub keys_dir: PathBuf,
    /// Missing keys are made on first use; otherwise they must be there.
    pub generate_keys: bool,
    /// The master first, then the workers in file order.
    pub nodes: Vec<NodeSpec>,
    /// `[docker]`: where `certzone cluster docker` runs the cluster, when the file says.
    pub docker: Option<Docker>,
    /// `[publish]`: the records the master announces, rendered into its `[publish]`.
    pub publish: Option<file::Publish>,
    /// `[[update.key]]`: RFC 2136 update keys the master takes, by name, with their grants
    /// (`None`: the default grant).
    pub update_keys: Vec<UpdateKeySpec>,
}

/// One update key of the cluster file: `<keys-dir>/update-NAME.key`, TSIG name `update-NAME.`.
#[derive(Debug, Clone)]
pub struct UpdateKeySpec {
    pub name: String,
    pub grants: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub dns: u16,
    pub tls: u16,
    pub https: u16,
    /// `/metrics`, `/healthz`, `/readyz` on every node, when set.
    pub metrics: Option<u16>,
}

#[derive(Debug, Clone)]
pub enum Ca {
    /// The built-in local CA on the master.
    Local { leaf_days: Option<u32> },
    /// An ACME directory; the master orders, the workers answer the challenge too.
    Acme {
        /// None only with `[docker] test-ca`, which gives the directory on docker.
        directory: Option<String>,
        contact: Vec<String>,
        ca_roots: Vec<PathBuf>,
        propagation_timeout_secs: Option<u64>,
        retry_base_secs: Option<u64>,
        max_orders_per_hour: Option<u32>,
    },
}

#[derive(Debug, Clone)]
pub struct NodeSpec {
    pub name: String,
    pub role: Role,
    pub address: IpAddr,
}

impl Cluster {
    /// Reads and checks the cluster file at `path`.
    pub fn load(path: &Path) -> Result<Self, ClusterError> {
        let text = std::fs::read_to_string(path).map_err(|source| ClusterError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(&text, path)
    }

    /// Checks `text` as if read from `path`; relative paths are from the file's directory.
    pub fn parse(text: &str, path: &Path) -> Result<Self, ClusterError> {
        let raw: file::File = toml::from_str(text).map_err(|e| ClusterError::Syntax {
            path: path.to_path_buf(),
            message: e.to_string().trim_end().to_string(),
        })?;
        Checker {
            path,
            base: path.parent().unwrap_or(Path::new(".")),
        }
        .cluster(raw)
    }

    pub fn master(&self) -> &NodeSpec {
        &self.nodes[0]
    }

    pub fn workers(&self) -> &[NodeSpec] {
        &self.nodes[1..]
    }

    /// Where a node's derived config, its files and its own state directory live.
    pub fn node_dir(&self, node: &NodeSpec) -> PathBuf {
        self.state_dir.join("nodes").join(&node.name)
    }

    pub fn dns(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.address, self.ports.dns)
    }

    pub fn tls(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.address, self.ports.tls)
    }

    pub fn https(&self, node: &NodeSpec) -> SocketAddr {
        SocketAddr::new(node.address, self.ports.https)
    }

    /// The node's metrics listener, when `ports.metrics` is set.
    pub fn metrics(&self, node: &NodeSpec) -> Option<SocketAddr> {
        self.ports.metrics.map(|p| SocketAddr::new(node.address, p))
    }
}

struct Checker<'a> {
    path: &'a Path,
    base: &'a Path,
}

impl Checker<'_> {
    fn cluster(&self, raw: file::File) -> Result<Cluster, ClusterError> {
        let settings = raw.cluster;
        let domain = self.name("cluster.domain", &settings.domain)?;
        let certificate_zone = match &settings.certificate_zone {
            Some(name) => self.name("cluster.certificate-zone", name)?,
            None => Name::from_ascii(crate::config::CERTIFICATE_ZONE_LABEL)
                .and_then(|label| label.append_domain(&domain))
                .map_err(|e| self.invalid("cluster.domain", e.to_string()))?,
        };
        if settings.names.is_empty() {
            return Err(self.invalid(
                "cluster.names",
                "list at least one name the certificate is for",
            ));
        }
        self.names(&settings.names)?;
        let ports = Ports {
            dns: raw.ports.dns,
            tls: raw.ports.tls,
            https: raw.ports.https,
            metrics: raw.ports.metrics,
        };
        if let Some(metrics) = ports.metrics
            && [ports.dns, ports.tls, ports.https].contains(&metrics)
        {
            return Err(self.invalid(
                "ports.metrics",
                format!("{metrics} is already the dns, tls or https port"),
            ));
        }
        if ports.dns == ports.tls || ports.dns == ports.https || ports.tls == ports.https {
            return Err(self.invalid(
                "ports",
                format!(
                    "dns ({}), tls ({}) and https ({}) must be three different ports",
                    ports.dns, ports.tls, ports.https
                ),
            ));
        }
        let state_dir = self.base.join(&settings.state_dir);
        let keys_dir = raw
            .keys
            .dir
            .map(|d| self.base.join(d))
            .unwrap_or_else(|| state_dir.join("keys"));
        let test_ca = raw.docker.as_ref().is_some_and(|d| d.test_ca);
        let acme = raw.ca.kind == file::CaKind::Acme;
        let ca = self.ca(raw.ca, test_ca)?;
        let nodes = self.nodes(&raw.nodes)?;
        let docker = raw
            .docker
            .map(|d| self.docker(d, &raw.nodes, &domain, acme))
            .transpose()?;
        Ok(Cluster {
            path: self.path.to_path_buf(),
            zone_file: self.base.join(&settings.zone_file),
            names: settings.names,
            refresh_secs: settings.refresh_secs,
            retry_secs: settings.retry_secs,
            id: settings.id,
            ca,
            nodes,
            docker,
            publish: raw.publish,
            state_dir,
            domain,
            certificate_zone,
            ports,
            keys_dir,
            generate_keys: raw.keys.generate,
            update_keys: raw
                .update
                .map(|u| self.update(u))
                .transpose()?
                .unwrap_or_default(),
        })
    }

    /// `[update]`: key names usable in file names, each once; grants read as a node would.
    fn update(&self, raw: file::Update) -> Result<Vec<UpdateKeySpec>, ClusterError> {
        let mut seen = std::collections::HashSet::new();
        for (i, key) in raw.keys.iter().enumerate() {
            if !valid_node_name(&key.name) || !seen.insert(key.name.as_str()) {
                return Err(self.invalid(
                    &format!("update.key[{i}].name"),
                    format!(
                        "{:?}: use lower-case letters, digits and '-', each name once (it \
                         names the key file update-NAME.key)",
                        key.name
                    ),
                ));
            }
            for grant in key.grant.iter().flatten() {
                crate::config::Grant::parse(grant)
                    .map_err(|m| self.invalid(&format!("update.key[{i}].grant"), m))?;
            }
        }
        Ok(raw
            .keys
            .into_iter()
            .map(|k| UpdateKeySpec {
                name: k.name,
                grants: k.grant,
            })
            .collect())
    }

    fn ca(&self, raw: file::Ca, test_ca: bool) -> Result<Ca, ClusterError> {
        match raw.kind {
            file::CaKind::Local => {
                if raw.directory.is_some()
                    || !raw.contact.is_empty()
                    || !raw.ca_roots.is_empty()
                    || raw.propagation_timeout_secs.is_some()
                    || raw.retry_base_secs.is_some()
                    || raw.max_orders_per_hour.is_some()
                {
                    return Err(self.invalid(
                        "ca",
                        "directory, contact, ca-roots, propagation-timeout-secs, \
                         retry-base-secs and max-orders-per-hour are for kind = \"acme\"",
                    ));
                }
                Ok(Ca::Local {
                    leaf_days: raw.leaf_days,
                })
            }
            file::CaKind::Acme => {
                if raw.leaf_days.is_some() {
                    return Err(self.invalid(
                        "ca.leaf-days",
                        "the ACME CA decides the lifetime; leaf-days is for kind = \"local\"",
                    ));
                }
                if raw.directory.is_none() && !test_ca {
                    return Err(self.invalid(
                        "ca.directory",
                        "kind = \"acme\" needs the directory URL (or, on docker only, \
                         [docker] test-ca = true)",
                    ));
                }
                Ok(Ca::Acme {
                    directory: raw.directory,
                    contact: raw.contact,
                    ca_roots: raw.ca_roots.iter().map(|p| self.base.join(p)).collect(),
                    propagation_timeout_secs: raw.propagation_timeout_secs,
                    retry_base_secs: raw.retry_base_secs,
                    max_orders_per_hour: raw.max_orders_per_hour,
                })
            }
        }
    }

    /// Checks names, roles and addresses; returns the master first.
    fn nodes(&self, raw: &[file::Node]) -> Result<Vec<NodeSpec>, ClusterError> {
        let mut names: HashMap<&str, usize> = HashMap::new();
        let mut addresses: HashMap<IpAddr, &str> = HashMap::new();
        let mut master: Option<usize> = None;
        for (i, node) in raw.iter().enumerate() {
            // Counted from 0, as every other list in messages (zone[0], upstream[0]).
            let key = |field: &str| format!("node[{i}].{field}");
            if !valid_node_name(&node.name) {
                return Err(self.invalid(
                    &key("name"),
                    format!(
                        "{:?}: use lower-case letters, digits and '-' (it names a directory \
                         and a key)",
                        node.name
                    ),
                ));
            }
            if let Some(first) = names.insert(&node.name, i) {
                return Err(self.invalid(
                    &key("name"),
                    format!(
                        "node name {:?} is used twice (node[{first}] and node[{i}])",
                        node.name,
                    ),
                ));
            }
            if node.address.is_unspecified() || node.address.is_multicast() {
                return Err(self.invalid(
                    &key("address"),
                    format!(
                        "{}: give the node's own address, the one the others reach it on",
                        node.address
                    ),
                ));
            }
            if let Some(other) = addresses.insert(node.address, &node.name) {
                return Err(self.invalid(
                    &key("address"),
                    format!(
                        "{} is already the address of node {other:?}; every node needs its own",
                        node.address
                    ),
                ));
            }
            if node.role == Role::Master {
                if let Some(first) = master {
                    return Err(self.invalid(
                        &key("role"),
                        format!(
                            "two masters: {:?} and {:?}; a cluster has exactly one",
                            raw[first].name, node.name
                        ),
                    ));
                }
                master = Some(i);
            }
        }
        let Some(master) = master else {
            return Err(self.invalid(
                "node",
                "no node has role = \"master\"; a cluster has exactly one",
            ));
        };
        let spec = |n: &file::Node| NodeSpec {
            name: n.name.clone(),
            role: n.role,
            address: n.address,
        };
        Ok(std::iter::once(spec(&raw[master]))
            .chain(
                raw.iter()
                    .enumerate()
                    .filter(|(i, _)| *i != master)
                    .map(|(_, n)| spec(n)),
            )
            .collect())
    }

    /// `cluster.names` are DNS names, as a node's `[tls] names`: checked here, before
    /// anything is written.
    fn names(&self, names: &[String]) -> Result<(), ClusterError> {
        for name in names {
            if name.parse::<IpAddr>().is_ok() {
                return Err(self.invalid(
                    "cluster.names",
                    format!(
                        "`{name}` is an IP address; list DNS names only (clients verify one, \
                         e.g. kdig +tls-hostname=NAME)"
                    ),
                ));
            }
            self.name("cluster.names", name)?;
        }
        Ok(())
    }

    fn name(&self, key: &str, text: &str) -> Result<Name, ClusterError> {
        let mut name =
            Name::from_ascii(text).map_err(|e| self.invalid(key, format!("{text:?}: {e}")))?;
        name.set_fqdn(true);
        Ok(name)
    }

    fn invalid(&self, key: &str, message: impl Into<String>) -> ClusterError {
        ClusterError::Invalid {
            path: self.path.to_path_buf(),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Node names become directory and key names: keep them plain.
fn valid_node_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
}
