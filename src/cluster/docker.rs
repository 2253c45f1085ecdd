//! The cluster file's `[docker]` table: where `certzone cluster docker` runs the cluster.
//!
//! Owns the table's typed form and its checks: an IPv4 subnet, every node's address inside
//! it, the addresses of the test CA (Pebble) and the client container, the compose
//! project's name. It must not talk to Docker: `cli::docker` does, from these settings.

use std::{fmt, net::IpAddr, net::Ipv4Addr};

use hickory_proto::rr::Name;

use super::{Checker, ClusterError, file};

/// Compose project names: what `docker compose` accepts, kept short for container names.
const PROJECT_MAX: usize = 40;

/// The `[docker]` table, checked.
#[derive(Debug, Clone)]
pub struct Docker {
    pub subnet: Subnet,
    /// An image to use instead of building one from the running binary.
    pub image: Option<String>,
    /// The compose project: container names start with it, the network is called by it.
    pub project: String,
    /// Pebble on the network, the master's ACME directory.
    pub test_ca: Option<TestCa>,
    /// The address of the client container that checks the nodes with kdig.
    pub client: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Copy)]
pub struct TestCa {
    pub address: Ipv4Addr,
    /// Pebble's certificate lifetime; Pebble's own default (about five years) when unset.
    pub leaf_secs: Option<u64>,
}

/// An IPv4 network, `a.b.c.d/len` with the host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix: u8,
}

impl Subnet {
    /// Parses `a.b.c.d/len`; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (address, prefix) = text
            .split_once('/')
            .ok_or_else(|| format!("{text:?}: write it as an IPv4 network, e.g. 172.30.77.0/24"))?;
        let address: Ipv4Addr = address.parse().map_err(|_| {
            format!(
                "{text:?}: {address:?} is not an IPv4 address (IPv6 networks are not supported)"
            )
        })?;
        let prefix: u8 = prefix
            .parse()
            .ok()
            .filter(|p| (8..=29).contains(p))
            .ok_or_else(|| format!("{text:?}: the prefix length must be 8 to 29"))?;
        let subnet = Self {
            network: Ipv4Addr::from(u32::from(address) & mask(prefix)),
            prefix,
        };
        if subnet.network != address {
            return Err(format!("{text:?} has host bits set: write {subnet}"));
        }
        Ok(subnet)
    }

    pub fn contains(&self, address: Ipv4Addr) -> bool {
        u32::from(address) & mask(self.prefix) == u32::from(self.network)
    }

    pub fn overlaps(&self, other: &Self) -> bool {
        self.contains(other.network) || other.contains(self.network)
    }

    /// The first host address: Docker gives it to the network's gateway.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) | !mask(self.prefix))
    }

    /// An address a container may take: inside, not the network, gateway or broadcast.
    fn usable(&self, address: Ipv4Addr) -> bool {
        self.contains(address)
            && address != self.network
            && address != self.gateway()
            && address != self.broadcast()
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

fn mask(prefix: u8) -> u32 {
    u32::MAX << (32 - u32::from(prefix))
}

impl Checker<'_> {
    /// Checks `[docker]` against the nodes (in file order, for the keys in messages).
    pub(super) fn docker(
        &self,
        raw: file::Docker,
        nodes: &[file::Node],
        domain: &Name,
        acme: bool,
    ) -> Result<Docker, ClusterError> {
        let subnet = Subnet::parse(&raw.subnet).map_err(|m| self.invalid("docker.subnet", m))?;
        let mut taken = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let address = self.inside(
                &format!("node[{i}].address"),
                &format!("node {:?}", node.name),
                node.address,
                subnet,
            )?;
            taken.push(address);
        }
        let test_ca = self.test_ca(&raw, acme, subnet, &mut taken)?;
        if !raw.client && raw.client_address.is_some() {
            return Err(self.invalid("docker.client-address", "is for client = true"));
        }
        let client = if raw.client {
            Some(self.extra("client", raw.client_address, subnet, &mut taken)?)
        } else {
            None
        };
        self.service_names(nodes, test_ca.is_some(), client.is_some())?;
        Ok(Docker {
            subnet,
            image: self.image(raw.image)?,
            project: self.project(raw.project, domain)?,
            test_ca,
            client,
        })
    }

    /// `test-ca` and its keys: Pebble is an ACME directory, with an address of its own.
    fn test_ca(
        &self,
        raw: &file::Docker,
        acme: bool,
        subnet: Subnet,
        taken: &mut Vec<Ipv4Addr>,
    ) -> Result<Option<TestCa>, ClusterError> {
        if raw.test_ca && !acme {
            return Err(self.invalid(
                "docker.test-ca",
                "the test CA (Pebble) is an ACME directory: set ca.kind = \"acme\", or leave \
                 test-ca out to use the local CA",
            ));
        }
        if !raw.test_ca && (raw.test_ca_address.is_some() || raw.test_ca_leaf_secs.is_some()) {
            return Err(self.invalid(
                "docker.test-ca",
                "test-ca-address and test-ca-leaf-secs are for test-ca = true",
            ));
        }
        if raw.test_ca_leaf_secs.is_some_and(|s| s < 30) {
            return Err(self.invalid(
                "docker.test-ca-leaf-secs",
                "at least 30: the master renews at half the lifetime, and a renewal takes \
                 seconds",
            ));
        }
        if !raw.test_ca {
            return Ok(None);
        }
        let address = self.extra("test-ca", raw.test_ca_address, subnet, taken)?;
        Ok(Some(TestCa {
            address,
            leaf_secs: raw.test_ca_leaf_secs,
        }))
    }

    /// A container's address (`who` says whose) must be a usable IPv4 address of the subnet.
    fn inside(
        &self,
        key: &str,
        who: &str,
        address: IpAddr,
        subnet: Subnet,
    ) -> Result<Ipv4Addr, ClusterError> {
        let IpAddr::V4(v4) = address else {
            return Err(self.invalid(
                key,
                format!(
                    "{who}: {address} is IPv6; on docker every address is in the IPv4 \
                     [docker] subnet {subnet}"
                ),
            ));
        };
        if !subnet.contains(v4) {
            return Err(self.invalid(
                key,
                format!("{who}: {v4} is outside the [docker] subnet {subnet}"),
            ));
        }
        if !subnet.usable(v4) {
            return Err(self.invalid(
                key,
                format!(
                    "{who}: {v4} is the network's own address, its gateway ({}) or its \
                     broadcast address; give it another address of {subnet}",
                    subnet.gateway()
                ),
            ));
        }
        Ok(v4)
    }

    /// The test CA's or the client's address: the one given, else the first free one.
    fn extra(
        &self,
        what: &str,
        given: Option<IpAddr>,
        subnet: Subnet,
        taken: &mut Vec<Ipv4Addr>,
    ) -> Result<Ipv4Addr, ClusterError> {
        let key = format!("docker.{what}-address");
        let address = match given {
            Some(address) => {
                let v4 = self.inside(&key, &format!("the {what} container"), address, subnet)?;
                if taken.contains(&v4) {
                    return Err(self.invalid(&key, format!("{v4} is already taken by a node")));
                }
                v4
            }
            None => (u32::from(subnet.gateway()) + 1..u32::from(subnet.broadcast()))
                .map(Ipv4Addr::from)
                .find(|a| !taken.contains(a))
                .ok_or_else(|| {
                    self.invalid(
                        "docker.subnet",
                        format!("{subnet} has no free address left for the {what} container"),
                    )
                })?,
        };
        taken.push(address);
        Ok(address)
    }

    /// The test CA and the client are containers beside the nodes: their names are taken.
    fn service_names(
        &self,
        nodes: &[file::Node],
        test_ca: bool,
        client: bool,
    ) -> Result<(), ClusterError> {
        for (i, node) in nodes.iter().enumerate() {
            let clash = (test_ca && node.name == TEST_CA) || (client && node.name == CLIENT);
            if clash {
                return Err(self.invalid(
                    &format!("node[{i}].name"),
                    format!(
                        "{:?} is the name of a container `cluster docker` adds; rename the node",
                        node.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn image(&self, image: Option<String>) -> Result<Option<String>, ClusterError> {
        match image {
            Some(name) if name.trim().is_empty() || name.contains(char::is_whitespace) => {
                Err(self.invalid("docker.image", format!("{name:?} is not an image name")))
            }
            other => Ok(other),
        }
    }

    fn project(&self, given: Option<String>, domain: &Name) -> Result<String, ClusterError> {
        let Some(project) = given else {
            let labels: String = domain
                .to_ascii()
                .trim_end_matches('.')
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '-'
                    }
                })
                .collect();
            let mut project = format!("certzone-{labels}");
            project.truncate(PROJECT_MAX);
            return Ok(project.trim_end_matches('-').to_string());
        };
        let plain = project
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !plain
            || project.len() > PROJECT_MAX
            || !project.starts_with(|c: char| c.is_ascii_alphanumeric())
        {
            return Err(self.invalid(
                "docker.project",
                format!(
                    "{project:?}: use up to {PROJECT_MAX} lower-case letters, digits, '-' and \
                     '_', starting with a letter or digit"
                ),
            ));
        }
        Ok(project)
    }
}

/// The compose service (and container name suffix) of the test CA.
pub const TEST_CA: &str = "test-ca";
/// The compose service (and container name suffix) of the client.
pub const CLIENT: &str = "client";

#[cfg(test)]
mod tests {
    use super::Subnet;

    #[test]
    fn subnets_parse_contain_and_overlap() {
        let s = Subnet::parse("172.30.77.0/24").unwrap();
        assert!(s.contains("172.30.77.200".parse().unwrap()));
        assert!(!s.contains("172.30.78.1".parse().unwrap()));
        assert_eq!(s.gateway().to_string(), "172.30.77.1");
        assert_eq!(s.broadcast().to_string(), "172.30.77.255");
        assert!(s.overlaps(&Subnet::parse("172.30.0.0/16").unwrap()));
        assert!(!s.overlaps(&Subnet::parse("172.30.78.0/24").unwrap()));
        let host_bits = Subnet::parse("172.30.77.5/24").unwrap_err();
        assert!(host_bits.contains("write 172.30.77.0/24"), "{host_bits}");
        assert!(Subnet::parse("fd00::/64").unwrap_err().contains("IPv6"));
        assert!(
            Subnet::parse("10.0.0.0/31")
                .unwrap_err()
                .contains("8 to 29")
        );
        assert!(Subnet::parse("10.0.0.0").is_err());
    }
}
