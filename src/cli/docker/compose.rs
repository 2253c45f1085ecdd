//! The compose file of a docker cluster, `<state-dir>/docker/compose.json`: one service per
//! node with its static address, its directory mounted at /node, a restart policy and a
//! healthcheck; the test CA and the client when the cluster file asks for them; one
//! internal network on the cluster's subnet.
//!
//! Owns the file's contents. Compose reads JSON as it reads YAML, and serde_json quotes
//! every value, so no path or name can break the file. It must not run compose.

use std::path::Path;

use serde_json::{Value, json};

use super::project::{CLIENT_MOUNT, Project};
use crate::{
    cluster::{NodeSpec, docker},
    state,
};

/// Where a node's directory is mounted in its container.
pub(super) const NODE_MOUNT: &str = "/node";
/// Where the test CA's directory is mounted (its config and HTTPS certificate).
const PEBBLE_MOUNT: &str = "/pebble";

/// Writes the compose file for `image`; returns nothing but what failed.
pub(super) fn write(project: &Project, image: &str) -> Result<(), String> {
    let mut services = serde_json::Map::new();
    for node in &project.cluster.nodes {
        services.insert(node.name.clone(), node_service(project, node, image));
    }
    if let Some(test_ca) = project.docker.test_ca {
        services.insert(
            docker::TEST_CA.to_string(),
            test_ca_service(project, test_ca.address, image),
        );
    }
    if let Some(address) = project.docker.client {
        services.insert(
            docker::CLIENT.to_string(),
            client_service(project, address, image),
        );
    }
    let file = json!({
        "version": "2.4",
        "services": services,
        "networks": {
            "net": {
                "name": project.network(),
                // The containers reach each other and nothing else.
                "internal": true,
                "ipam": { "config": [ { "subnet": project.docker.subnet.to_string() } ] },
            }
        }
    });
    // Strings, numbers and maps only: serialising cannot fail.
    let text = serde_json::to_string_pretty(&file).expect("a JSON value serialises");
    // Compose reads `$` as the start of a variable: doubled, it stays a `$`.
    let text = text.replace('$', "$$");
    state::write_atomic(&project.compose_file(), text.as_bytes(), state::PUBLIC)
        .map_err(|e| e.to_string())
}

fn node_service(project: &Project, node: &NodeSpec, image: &str) -> Value {
    let cluster = &project.cluster;
    // Healthy: the node answers its domain's SOA over DoT (kdig's opportunistic TLS: the
    // certificate is checked by the client, not here).
    let health = format!(
        "kdig @{} -p {} +tls +timeout=2 +retry=0 {} SOA | grep -q 'status: NOERROR'",
        node.address,
        cluster.ports.tls,
        cluster.domain.to_ascii()
    );
    json!({
        "image": image,
        "container_name": project.container(&node.name),
        "command": ["certzone", "run", "--config", format!("{NODE_MOUNT}/node.toml")],
        "volumes": [bind(&project.node_dir(node), NODE_MOUNT, false)],
        "restart": "unless-stopped",
        // certzone finishes the queries in hand within 5 s of SIGTERM.
        "stop_grace_period": "10s",
        "healthcheck": {
            "test": ["CMD", "sh", "-c", health],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "60s",
        },
        "labels": { "org.certzone.role": node.role.as_str() },
        "networks": { "net": { "ipv4_address": node.address.to_string() } },
    })
}

fn test_ca_service(project: &Project, address: std::net::Ipv4Addr, image: &str) -> Value {
    let master = project.cluster.dns(project.cluster.master());
    json!({
        "image": image,
        "container_name": project.container(docker::TEST_CA),
        "command": ["pebble", "-config", format!("{PEBBLE_MOUNT}/pebble.json"),
                    "-dnsserver", master.to_string()],
        "environment": {
            // No random wait before validation, no rejected nonces, a challenge every time.
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
        },
        "volumes": [bind(&project.pebble_dir(), PEBBLE_MOUNT, true)],
        "restart": "unless-stopped",
        // Pebble keeps nothing worth a clean stop.
        "stop_signal": "SIGKILL",
        "labels": { "org.certzone.role": "test-ca" },
        "networks": { "net": { "ipv4_address": address.to_string() } },
    })
}

fn client_service(project: &Project, address: std::net::Ipv4Addr, image: &str) -> Value {
    json!({
        "image": image,
        "container_name": project.container(docker::CLIENT),
        // Idles; the checks run in it with `docker exec`.
        "command": ["sleep", "2147483647"],
        "volumes": [bind(&project.client_dir(), CLIENT_MOUNT, false)],
        "restart": "unless-stopped",
        "stop_signal": "SIGKILL",
        "labels": { "org.certzone.role": "client" },
        "networks": { "net": { "ipv4_address": address.to_string() } },
    })
}

fn bind(source: &Path, target: &str, read_only: bool) -> Value {
    json!({
        "type": "bind",
        "source": source.to_string_lossy(),
        "target": target,
        "read_only": read_only,
    })
}
